/**
 * Small byte helpers shared by the protocol files: hex, concatenation, big-endian u64 that
 * fit in a JS number, and CRC-32 (IEEE 802.3, the zlib polynomial) for frame headers.
 *
 * @module
 */

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

/**
 * Lower-case hex of `bytes`, as one flat string (joined, not concatenated: a `+=` loop leaves
 * a chain of string pieces that a long-lived id, such as a session's, would keep forever).
 */
export function toHex(bytes: Uint8Array): string {
  const parts = new Array<string>(bytes.length);
  for (let i = 0; i < bytes.length; i++) parts[i] = HEX[bytes[i]];
  return parts.join("");
}

/** Bytes of a hex string (even length, `[0-9a-f]`); throws `TypeError` otherwise. */
export function fromHex(hex: string): Uint8Array {
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) {
    throw new TypeError("Invalid hex string");
  }
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** One new buffer holding every part in order. */
export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let size = 0;
  for (const p of parts) size += p.length;
  const out = new Uint8Array(size);
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

/**
 * True when every byte (of `[start, end)`) is ASCII (below 0x80): such bytes are their own
 * UTF-8 text.
 */
export function isAscii(bytes: Uint8Array, start = 0, end = bytes.length): boolean {
  for (let i = start; i < end; i++) if (bytes[i] > 0x7f) return false;
  return true;
}

/** True when both arrays hold the same bytes (not constant-time: never for secrets). */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

const ENCODER = new TextEncoder();

/** ASCII (or UTF-8) bytes of a string. */
export function utf8(text: string): Uint8Array {
  return ENCODER.encode(text);
}

/**
 * {@link utf8} of a label the protocol uses over and over (HKDF infos, transcript contexts),
 * encoded once: the same few strings every handshake. Callers must not modify the bytes.
 */
export function labelBytes(label: string): Uint8Array {
  let bytes = LABELS.get(label);
  if (bytes === undefined) LABELS.set(label, bytes = utf8(label));
  return bytes;
}

const LABELS = new Map<string, Uint8Array>();

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xEDB88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC-32 (IEEE 802.3 / zlib) of `bytes[start..end)`. Not a security mechanism. */
export function crc32(bytes: Uint8Array, start = 0, end = bytes.length): number {
  let c = 0xFFFFFFFF;
  for (let i = start; i < end; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xFF] ^ (c >>> 8);
  return (c ^ 0xFFFFFFFF) >>> 0;
}

/**
 * The same bytes typed as a Web Crypto `BufferSource`. Our buffers are never backed by a
 * `SharedArrayBuffer`, which is all TypeScript's stricter typing guards against here.
 */
export function bufferSource(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return bytes as Uint8Array<ArrayBuffer>;
}

/** A timer handle, whatever the runtime's typing of `setTimeout`. */
export type Timer = ReturnType<typeof setTimeout>;
