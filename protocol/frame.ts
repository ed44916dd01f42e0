/**
 * The 20-byte frame header of trust-rpc/1 (PROTOCOL.md §4), big-endian:
 * `magic "TR" ‖ version ‖ type ‖ u32 length ‖ u64 seq ‖ crc32(bytes 0..16)`.
 *
 * @module
 */

import { crc32 } from "./bytes.ts";
import { ProtocolError } from "./errors.ts";

/** Bytes in a frame header. */
export const HEADER_SIZE = 20;
/** The only protocol version this implementation speaks. */
export const PROTOCOL_VERSION = 1;
/** AEAD tag bytes at the end of every record body (AES-GCM and ChaCha20-Poly1305 alike). */
export const TAG_SIZE = 16;

/** Frame types. */
export const FrameType = {
  SERVER_HELLO: 0x01,
  CLIENT_AUTH: 0x02,
  SERVER_AUTH: 0x03,
  MESSAGES: 0x10,
  /** MESSAGES sealed with ChaCha20-Poly1305 (small records, when negotiated). */
  MESSAGES_CHACHA: 0x11,
  KEY_UPDATE: 0x30,
  /** ALERT sealed with ChaCha20-Poly1305 (when negotiated; alerts are small by construction). */
  ALERT_CHACHA: 0x7E,
  ALERT: 0x7F,
} as const;

/** A parsed header. */
export interface FrameHeader {
  /** Frame type. */
  type: number;
  /** Body length in bytes. */
  length: number;
  /** Sequence number (handshake index, or record counter). */
  seq: number;
}

/** Writes a header with its CRC at `offset` of `target`. */
export function writeHeader(
  target: Uint8Array,
  offset: number,
  type: number,
  length: number,
  seq: number,
): void {
  target[offset] = 0x54;
  target[offset + 1] = 0x52;
  target[offset + 2] = PROTOCOL_VERSION;
  target[offset + 3] = type;
  writeU32(target, offset + 4, length);
  writeU32(target, offset + 8, Math.floor(seq / 0x1_0000_0000));
  writeU32(target, offset + 12, seq >>> 0);
  writeU32(target, offset + 16, crc32(target, offset, offset + 16));
}

/** Big-endian u32 at `offset` (byte by byte: no `DataView` per header). */
function writeU32(target: Uint8Array, offset: number, value: number): void {
  target[offset] = value >>> 24;
  target[offset + 1] = value >>> 16;
  target[offset + 2] = value >>> 8;
  target[offset + 3] = value;
}

function readU32(bytes: Uint8Array, offset: number): number {
  return ((bytes[offset] << 24) | (bytes[offset + 1] << 16) | (bytes[offset + 2] << 8) |
    bytes[offset + 3]) >>> 0;
}

/** A new header. */
export function encodeHeader(type: number, length: number, seq: number): Uint8Array {
  const out = new Uint8Array(HEADER_SIZE);
  writeHeader(out, 0, type, length, seq);
  return out;
}

/**
 * Parses and checks magic, version and CRC. Type, length and seq rules depend on the phase and
 * are checked by the caller. Throws {@link ProtocolError} with a code that names the problem;
 * `peerHint` adds what the bytes look like (TLS, HTTP, …) to the message.
 */
export function parseHeader(bytes: Uint8Array): FrameHeader {
  const header = { type: 0, length: 0, seq: 0 };
  parseHeaderAt(bytes, 0, header);
  return header;
}

/** {@link parseHeader} of the header at `offset` of `bytes`, into `out` (no allocation). */
export function parseHeaderAt(bytes: Uint8Array, offset: number, out: FrameHeader): void {
  if (bytes[offset] !== 0x54 || bytes[offset + 1] !== 0x52) {
    throw new ProtocolError(
      "PROTOCOL_ERROR",
      `Not a trust-rpc peer: ${describeForeignBytes(bytes.subarray(offset, offset + HEADER_SIZE))}`,
    );
  }
  if (bytes[offset + 2] !== PROTOCOL_VERSION) {
    throw new ProtocolError(
      "UNSUPPORTED_VERSION",
      `Peer speaks trust-rpc v${bytes[offset + 2]}; this side supports v${PROTOCOL_VERSION}`,
    );
  }
  if (readU32(bytes, offset + 16) !== crc32(bytes, offset, offset + 16)) {
    throw new ProtocolError("PROTOCOL_ERROR", "Frame header checksum mismatch");
  }
  const hi = readU32(bytes, offset + 8);
  out.type = bytes[offset + 3];
  out.length = readU32(bytes, offset + 4);
  // Values of 2^53 and above come back as `Infinity` (no valid sequence number is that large).
  out.seq = hi >= 0x20_0000 ? Infinity : hi * 0x1_0000_0000 + readU32(bytes, offset + 12);
}

/** A short, safe description of bytes that are not a trust-rpc frame. */
export function describeForeignBytes(bytes: Uint8Array): string {
  if ((bytes[0] === 0x15 || bytes[0] === 0x16) && bytes[1] === 0x03) {
    return "the peer speaks TLS (use tls:// on both sides, or a plain port)";
  }
  let printable = 0;
  const n = Math.min(bytes.length, 16);
  for (let i = 0; i < n; i++) if (bytes[i] >= 0x20 && bytes[i] < 0x7F) printable++;
  if (n > 0 && printable === n) {
    const text = String.fromCharCode(...bytes.subarray(0, n));
    return `the peer sent text ${JSON.stringify(text)}`;
  }
  return "bad magic bytes";
}
