/**
 * HKDF-SHA256 (RFC 5869): the one derivation every key of trust-rpc/1 comes from (session
 * keys, KEY_UPDATE, the ChaCha20-Poly1305 keys). Synchronous (`sha256.ts`): through Web Crypto
 * it cost an `importKey` and a `deriveBits`, ~45 µs of dispatch for ~10 µs of work.
 *
 * @module
 */

import { labelBytes } from "./bytes.ts";
import { hkdfSha256 } from "./sha256.ts";

/** `HKDF-SHA256(IKM = ikm, salt, info = UTF-8 of info)`, `length` bytes. */
export function hkdf(
  ikm: Uint8Array,
  salt: Uint8Array,
  info: string,
  length: number,
): Uint8Array {
  return hkdfSha256(ikm, salt, labelBytes(info), length);
}
