/**
 * The message layer inside MESSAGES records (PROTOCOL.md §M): each message is a 10-byte
 * header `kind u8 ‖ flags u8 ‖ id u32 ‖ length u32` followed by its payload. One record
 * carries one or more messages; a message larger than a record continues in later messages of
 * the same kind and id with the MORE flag.
 *
 * @module
 */

import { ProtocolError } from "./errors.ts";

/** Message kinds. */
export const Kind = {
  REQUEST: 1,
  RESPONSE: 2,
  ERROR: 3,
  NOTIFY: 4,
  EVENT: 5,
  STREAM_DATA: 6,
  STREAM_END: 7,
  CANCEL: 8,
  CREDIT: 9,
  PING: 10,
  PONG: 11,
  GOAWAY: 12,
} as const;

/** Message flags. */
export const Flag = {
  /** The payload continues in the next message of the same kind and id. */
  MORE: 1,
  /** The payload carries binary attachments. */
  BINARY: 2,
  /** The payload is deflate-raw compressed. */
  COMPRESSED: 4,
} as const;

/** Bytes in a message header. */
export const MESSAGE_HEADER_SIZE = 10;
const KNOWN_FLAGS = Flag.MORE | Flag.BINARY | Flag.COMPRESSED;
const MAX_KIND = Kind.GOAWAY;

/** One message (or one piece of one, when `flags & MORE`). */
export interface Message {
  /** Kind (see {@link Kind}). */
  kind: number;
  /** Flags (see {@link Flag}). */
  flags: number;
  /** Call or stream id; 0 for PING, PONG, GOAWAY and EVENT. */
  id: number;
  /** Payload bytes (a view into the record plaintext). */
  payload: Uint8Array;
}

/** Writes one message header at `offset`. */
export function writeMessageHeader(
  target: Uint8Array,
  offset: number,
  kind: number,
  flags: number,
  id: number,
  length: number,
): void {
  target[offset] = kind;
  target[offset + 1] = flags;
  target[offset + 2] = id >>> 24;
  target[offset + 3] = id >>> 16;
  target[offset + 4] = id >>> 8;
  target[offset + 5] = id;
  target[offset + 6] = length >>> 24;
  target[offset + 7] = length >>> 16;
  target[offset + 8] = length >>> 8;
  target[offset + 9] = length;
}

/** Encodes messages into one record plaintext. */
export function encodeMessages(messages: readonly Message[]): Uint8Array {
  let size = 0;
  for (const m of messages) size += MESSAGE_HEADER_SIZE + m.payload.length;
  const out = new Uint8Array(size);
  let offset = 0;
  for (const m of messages) {
    writeMessageHeader(out, offset, m.kind, m.flags, m.id, m.payload.length);
    out.set(m.payload, offset + MESSAGE_HEADER_SIZE);
    offset += MESSAGE_HEADER_SIZE + m.payload.length;
  }
  return out;
}

/** The u32 (big-endian) at `at`: a message header's id (offset 2) or length (offset 6). */
export function readU32(bytes: Uint8Array, at: number): number {
  return ((bytes[at] << 24) | (bytes[at + 1] << 16) | (bytes[at + 2] << 8) | bytes[at + 3]) >>> 0;
}

/**
 * Checks every message header of a record plaintext and returns how many messages it holds,
 * allocating nothing: read them with {@link readU32} and the offsets of §6.1 afterwards.
 * Throws `PROTOCOL_ERROR` for an empty record, an unknown kind or flag, or a length that runs
 * past the end.
 */
export function checkMessages(plaintext: Uint8Array): number {
  if (plaintext.length === 0) throw new ProtocolError("PROTOCOL_ERROR", "Empty MESSAGES record");
  let count = 0;
  let offset = 0;
  while (offset < plaintext.length) {
    if (plaintext.length - offset < MESSAGE_HEADER_SIZE) {
      throw new ProtocolError("PROTOCOL_ERROR", "Truncated message header");
    }
    const kind = plaintext[offset];
    const flags = plaintext[offset + 1];
    const length = readU32(plaintext, offset + 6);
    if (kind < 1 || kind > MAX_KIND) {
      throw new ProtocolError("PROTOCOL_ERROR", `Unknown message kind ${kind}`);
    }
    if ((flags & ~KNOWN_FLAGS) !== 0) {
      throw new ProtocolError("PROTOCOL_ERROR", `Unknown message flags ${flags}`);
    }
    const start = offset + MESSAGE_HEADER_SIZE;
    if (length > plaintext.length - start) {
      throw new ProtocolError("PROTOCOL_ERROR", "Message length runs past the record");
    }
    offset = start + length;
    count++;
  }
  return count;
}

/**
 * Splits a record plaintext into messages, checked as by {@link checkMessages} (which
 * throws the same errors).
 */
export function decodeMessages(plaintext: Uint8Array): Message[] {
  const out: Message[] = new Array(checkMessages(plaintext));
  let offset = 0;
  for (let i = 0; i < out.length; i++) {
    const start = offset + MESSAGE_HEADER_SIZE;
    const length = readU32(plaintext, offset + 6);
    out[i] = {
      kind: plaintext[offset],
      flags: plaintext[offset + 1],
      id: readU32(plaintext, offset + 2),
      payload: plaintext.subarray(start, start + length),
    };
    offset = start + length;
  }
  return out;
}
