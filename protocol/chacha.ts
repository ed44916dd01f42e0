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

import { ChaCha20Poly1305 } from "./chacha20poly1305.ts";
import { hkdf } from "./hkdf.ts";

/** Seals and opens with one ChaCha20-Poly1305 key. */
export interface ChaChaKey {
  /** The 12-byte IV the nonces are derived from. */
  readonly iv: Uint8Array;
  /** Writes `ciphertext ‖ tag` of `plaintext` under `nonce` into `out`, with `aad` authenticated. */
  seal(nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array, out: Uint8Array): void;
  /** The plaintext of `ciphertext ‖ tag`; throws when it does not authenticate. */
  open(nonce: Uint8Array, aad: Uint8Array, sealed: Uint8Array): Uint8Array;
}

/** A key and its IV, one small object per direction (no closures). */
class KeyWithIv implements ChaChaKey {
  readonly iv: Uint8Array;
  #cipher: ChaCha20Poly1305;

  constructor(key: Uint8Array, iv: Uint8Array) {
    this.#cipher = new ChaCha20Poly1305(key);
    this.iv = iv;
  }

  seal(nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array, out: Uint8Array): void {
    this.#cipher.sealInto(nonce, aad, plaintext, out);
  }

  open(nonce: Uint8Array, aad: Uint8Array, sealed: Uint8Array): Uint8Array {
    return this.#cipher.open(nonce, aad, sealed);
  }
}

/** A ChaCha20-Poly1305 key from 32 raw bytes (RFC 8439 §2.8). */
export function chachaKey(key: Uint8Array, iv: Uint8Array): ChaChaKey {
  return new KeyWithIv(key, iv);
}

/** Derives the ChaCha20-Poly1305 key and IV of a direction from its AES-256-GCM key. */
export function deriveChaChaKey(aesKey: Uint8Array): ChaChaKey {
  const okm = hkdf(aesKey, new Uint8Array(0), "trust-rpc/1 chacha20-poly1305", 44);
  return chachaKey(okm.slice(0, 32), okm.slice(32, 44));
}
