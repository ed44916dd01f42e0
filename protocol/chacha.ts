/**
 * ChaCha20-Poly1305 (RFC 8439) keys for small records, sealed synchronously by
 * `chacha20poly1305.ts`: a Web Crypto call costs 20–35 µs of dispatch whatever its size and a
 * sealed round trip needs four, while this seals a 128-byte record in about 5 µs
 * (protocol/README.md §5.7 has the figures). ChaCha20-Poly1305 is an ARX construction (no
 * table lookups), so a JS implementation does not leak timing through memory access the way
 * table-based AES does.
 *
 * Keys: `key ‖ iv = HKDF-SHA256(IKM = the direction's AES key, salt = ∅,
 * info = "trust-rpc/1 chacha20-poly1305", 44)`, so a KEY_UPDATE renews both. Nonces are
 * `iv XOR u64be(seq)` with the direction's one record counter, as for AES-GCM.
 *
 * @module
 */

import { hkdf } from "./hkdf.ts";

/** Bytes of {@link deriveChaChaKey}'s output: the 32-byte key, then the 12-byte IV. */
export const CHACHA_KEY_MATERIAL = 44;

/**
 * The ChaCha20-Poly1305 key ‖ IV of a direction (44 bytes), derived from its AES-256-GCM key.
 * The caller keeps them where it keeps its other keys and wipes the returned array.
 */
export function deriveChaChaKey(aesKey: Uint8Array): Uint8Array {
  return hkdf(aesKey, new Uint8Array(0), "trust-rpc/1 chacha20-poly1305", CHACHA_KEY_MATERIAL);
}
