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

/**
 * Splits a record plaintext into messages. Throws `PROTOCOL_ERROR` for an empty record, an
 * unknown kind or flag, or a length that runs past the end.
 */
export function decodeMessages(plaintext: Uint8Array): Message[] {
  if (plaintext.length === 0) throw new ProtocolError("PROTOCOL_ERROR", "Empty MESSAGES record");
  const out: Message[] = [];
  let offset = 0;
  while (offset < plaintext.length) {
    if (plaintext.length - offset < MESSAGE_HEADER_SIZE) {
      throw new ProtocolError("PROTOCOL_ERROR", "Truncated message header");
    }
    const kind = plaintext[offset];
    const flags = plaintext[offset + 1];
    const id = ((plaintext[offset + 2] << 24) | (plaintext[offset + 3] << 16) |
      (plaintext[offset + 4] << 8) | plaintext[offset + 5]) >>> 0;
    const length = ((plaintext[offset + 6] << 24) | (plaintext[offset + 7] << 16) |
      (plaintext[offset + 8] << 8) | plaintext[offset + 9]) >>> 0;
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
    out.push({ kind, flags, id, payload: plaintext.subarray(start, start + length) });
    offset = start + length;
  }
  return out;
}
