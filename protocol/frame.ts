/**
 * The 20-byte frame header of trust-rpc/1 (PROTOCOL.md §4), big-endian:
 * `magic "TR" ‖ version ‖ type ‖ u32 length ‖ u64 seq ‖ crc32(bytes 0..16)`.
 *
 * @module
 */

import { crc32, readU64, writeU64 } from "./bytes.ts";
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
  const view = new DataView(target.buffer, target.byteOffset + offset, HEADER_SIZE);
  target[offset] = 0x54;
  target[offset + 1] = 0x52;
  target[offset + 2] = PROTOCOL_VERSION;
  target[offset + 3] = type;
  view.setUint32(4, length);
  writeU64(view, 8, seq);
  view.setUint32(16, crc32(target, offset, offset + 16));
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
  if (bytes[0] !== 0x54 || bytes[1] !== 0x52) {
    throw new ProtocolError(
      "PROTOCOL_ERROR",
      `Not a trust-rpc peer: ${describeForeignBytes(bytes)}`,
    );
  }
  if (bytes[2] !== PROTOCOL_VERSION) {
    throw new ProtocolError(
      "UNSUPPORTED_VERSION",
      `Peer speaks trust-rpc v${bytes[2]}; this side supports v${PROTOCOL_VERSION}`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, HEADER_SIZE);
  if (view.getUint32(16) !== crc32(bytes, 0, 16)) {
    throw new ProtocolError("PROTOCOL_ERROR", "Frame header checksum mismatch");
  }
  return { type: bytes[3], length: view.getUint32(4), seq: readU64(view, 8) };
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
