/**
 * HKDF-SHA256 (RFC 5869) through Web Crypto: the one derivation every key of trust-rpc/1
 * comes from (session keys, KEY_UPDATE, the ChaCha20-Poly1305 keys).
 *
 * @module
 */

import { bufferSource as bs, utf8 } from "./bytes.ts";

/** `HKDF-SHA256(IKM = ikm, salt, info = UTF-8 of info)`, `length` bytes. */
export async function hkdf(
  ikm: Uint8Array,
  salt: Uint8Array,
  info: string,
  length: number,
): Promise<Uint8Array> {
  const key = await crypto.subtle.importKey("raw", bs(ikm), "HKDF", false, ["deriveBits"]);
  return new Uint8Array(
    await crypto.subtle.deriveBits(
      { name: "HKDF", hash: "SHA-256", salt: bs(salt), info: bs(utf8(info)) },
      key,
      length * 8,
    ),
  );
}
