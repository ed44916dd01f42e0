/**
 * Synchronous SHA-256 (FIPS 180-4), HMAC-SHA256 (RFC 2104) and HKDF-SHA256 (RFC 5869) in plain
 * TypeScript, for the handshake's many small hashes and derivations. Each Web Crypto call costs
 * about 15–100 µs in Deno, nearly all of it dispatch whatever the size (an HMAC or HKDF also
 * needs an `importKey` first), while here a hash or HMAC of a handshake-sized input takes about
 * 2–4 µs and an 88-byte HKDF about 10 µs, most of it the compressions themselves (~0.5 µs per
 * 64-byte block). The algorithms are the same as Web Crypto's, so nothing on the wire changes.
 *
 * Hashing allocates nothing but its output: the message schedule, the padding block and the
 * HMAC key states are module-level buffers reused by every call (everything here is
 * synchronous, so calls never interleave). SHA-256 has no secret-dependent branches or table
 * indices; HMAC and HKDF zero their key-dependent buffers before returning.
 *
 * @module
 */

/** The SHA-256 round constants (FIPS 180-4 §4.2.2). */
// deno-fmt-ignore
const K = Int32Array.of(
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
);

/** The initial hash value (FIPS 180-4 §5.3.3). */
// deno-fmt-ignore
const IV = Int32Array.of(
  0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
);

/** The message schedule, shared by every compression. */
const W = new Int32Array(64);
/** Scratch for the final block(s) and the state they are compressed into. */
const FINAL_BLOCK = new Uint8Array(64);
const FINAL_STATE = new Int32Array(8);

/** Compresses the 64-byte blocks of `data[p..end)` into `s` (`end - p` a multiple of 64). */
function compress(s: Int32Array, data: Uint8Array, p: number, end: number): void {
  const w = W;
  const k = K;
  let h0 = s[0], h1 = s[1], h2 = s[2], h3 = s[3], h4 = s[4], h5 = s[5], h6 = s[6], h7 = s[7];
  for (; p < end; p += 64) {
    for (let t = 0, q = p; t < 16; t++, q += 4) {
      w[t] = (data[q] << 24) | (data[q + 1] << 16) | (data[q + 2] << 8) | data[q + 3];
    }
    for (let t = 16; t < 64; t++) {
      const x = w[t - 15];
      const y = w[t - 2];
      const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
      const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
      w[t] = (s1 + w[t - 7] + s0 + w[t - 16]) | 0;
    }
    let a = h0, b = h1, c = h2, d = h3, e = h4, f = h5, g = h6, h = h7;
    for (let t = 0; t < 64; t++) {
      const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
      const t1 = (h + S1 + (g ^ (e & (f ^ g))) + k[t] + w[t]) | 0;
      const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
      const t2 = (S0 + ((a & b) ^ (c & (a ^ b)))) | 0;
      h = g;
      g = f;
      f = e;
      e = (d + t1) | 0;
      d = c;
      c = b;
      b = a;
      a = (t1 + t2) | 0;
    }
    h0 = (h0 + a) | 0;
    h1 = (h1 + b) | 0;
    h2 = (h2 + c) | 0;
    h3 = (h3 + d) | 0;
    h4 = (h4 + e) | 0;
    h5 = (h5 + f) | 0;
    h6 = (h6 + g) | 0;
    h7 = (h7 + h) | 0;
  }
  s[0] = h0;
  s[1] = h1;
  s[2] = h2;
  s[3] = h3;
  s[4] = h4;
  s[5] = h5;
  s[6] = h6;
  s[7] = h7;
}

/**
 * Pads the `pos` pending bytes of `block` for a `total`-byte message and writes the digest of
 * `state` continued by them into `out[offset..offset + 32)`, leaving `state` and `block` as
 * they were.
 */
function finish(
  state: Int32Array,
  block: Uint8Array,
  pos: number,
  total: number,
  out: Uint8Array,
  offset: number,
): void {
  const s = FINAL_STATE;
  const f = FINAL_BLOCK;
  s.set(state);
  for (let i = 0; i < pos; i++) f[i] = block[i];
  f[pos] = 0x80;
  if (pos >= 56) {
    f.fill(0, pos + 1);
    compress(s, f, 0, 64);
    f.fill(0, 0, 56);
  } else {
    f.fill(0, pos + 1, 56);
  }
  const hi = Math.floor(total / 0x2000_0000);
  const lo = (total * 8) >>> 0;
  f[56] = hi >>> 24;
  f[57] = hi >>> 16;
  f[58] = hi >>> 8;
  f[59] = hi;
  f[60] = lo >>> 24;
  f[61] = lo >>> 16;
  f[62] = lo >>> 8;
  f[63] = lo;
  compress(s, f, 0, 64);
  for (let i = 0; i < 8; i++) {
    const v = s[i];
    const o = offset + 4 * i;
    out[o] = v >>> 24;
    out[o + 1] = v >>> 16;
    out[o + 2] = v >>> 8;
    out[o + 3] = v;
  }
}

/** Sets a hasher's state to `state` after `length` bytes (a multiple of 64) of input. */
let restore!: (hasher: Sha256, state: Int32Array, length: number) => void;
/** Zeroes a hasher's state and pending bytes (then resets it). */
let scrub!: (hasher: Sha256) => void;

/**
 * An incremental SHA-256 hasher: `update` any number of times, then `digest` or `digestInto`.
 * Digesting leaves the hasher unchanged (more input may follow); `reset` starts a new message.
 */
export class Sha256 {
  readonly #state = new Int32Array(8);
  readonly #block = new Uint8Array(64);
  #pos = 0;
  #length = 0;

  /** A hasher for a new, empty message. */
  constructor() {
    this.#state.set(IV);
  }

  static {
    restore = (hasher, state, length) => {
      hasher.#state.set(state);
      hasher.#pos = 0;
      hasher.#length = length;
    };
    scrub = (hasher) => {
      hasher.#block.fill(0);
      hasher.reset();
    };
  }

  /** Forgets all input: the hasher is as new. */
  reset(): this {
    this.#state.set(IV);
    this.#pos = 0;
    this.#length = 0;
    return this;
  }

  /** Appends `data` to the message; full blocks are read in place, not copied. */
  update(data: Uint8Array): this {
    const n = data.length;
    const block = this.#block;
    let pos = this.#pos;
    let i = 0;
    this.#length += n;
    if (pos > 0) {
      while (pos < 64 && i < n) block[pos++] = data[i++];
      if (pos < 64) {
        this.#pos = pos;
        return this;
      }
      compress(this.#state, block, 0, 64);
      pos = 0;
    }
    const end = i + ((n - i) & ~63);
    if (end > i) {
      compress(this.#state, data, i, end);
      i = end;
    }
    while (i < n) block[pos++] = data[i++];
    this.#pos = pos;
    return this;
  }

  /** Writes the 32-byte digest of the input so far into `out[offset..offset + 32)`. */
  digestInto(out: Uint8Array, offset = 0): void {
    if (!(offset >= 0 && out.length - offset >= 32) || offset !== Math.floor(offset)) {
      throw new RangeError("SHA-256 digest needs 32 bytes of output space");
    }
    finish(this.#state, this.#block, this.#pos, this.#length, out, offset);
  }

  /** The 32-byte digest of the input so far, in a new array. */
  digest(): Uint8Array {
    const out = new Uint8Array(32);
    finish(this.#state, this.#block, this.#pos, this.#length, out, 0);
    return out;
  }
}

/** The hasher behind the one-shot functions. */
const HASHER = new Sha256();

/** SHA-256 of `data`: 32 bytes, in a new array. */
export function sha256(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(32);
  HASHER.reset().update(data).digestInto(out);
  return out;
}

/** SHA-256 of the concatenation of `parts` (hashed in place, never copied together). */
export function sha256Concat(parts: readonly Uint8Array[]): Uint8Array {
  HASHER.reset();
  for (let i = 0; i < parts.length; i++) HASHER.update(parts[i]);
  const out = new Uint8Array(32);
  HASHER.digestInto(out);
  return out;
}

// HMAC scratch: the key block, the states after the ipad and opad blocks, the inner digest.
const KEY_BLOCK = new Uint8Array(64);
const INNER_STATE = new Int32Array(8);
const OUTER_STATE = new Int32Array(8);
const INNER_MAC = new Uint8Array(32);
const INNER = new Sha256();
const OUTER = new Sha256();

/** Keys the HMAC scratch with `key` (hashed first when longer than a block, RFC 2104 §2). */
function hmacKey(key: Uint8Array): void {
  const kb = KEY_BLOCK;
  kb.fill(0);
  if (key.length > 64) INNER.reset().update(key).digestInto(kb);
  else kb.set(key);
  for (let i = 0; i < 64; i++) kb[i] ^= 0x36;
  INNER_STATE.set(IV);
  compress(INNER_STATE, kb, 0, 64);
  for (let i = 0; i < 64; i++) kb[i] ^= 0x36 ^ 0x5c;
  OUTER_STATE.set(IV);
  compress(OUTER_STATE, kb, 0, 64);
  kb.fill(0);
}

/** Starts an HMAC message under the key of the last `hmacKey`; feed `INNER`, then `hmacEnd`. */
function hmacBegin(): Sha256 {
  restore(INNER, INNER_STATE, 64);
  return INNER;
}

/** Writes the HMAC of the message fed to `INNER` into `out[offset..offset + 32)`. */
function hmacEnd(out: Uint8Array, offset: number): void {
  INNER.digestInto(INNER_MAC);
  restore(OUTER, OUTER_STATE, 64);
  OUTER.update(INNER_MAC).digestInto(out, offset);
}

/** Zeroes every key-dependent scratch buffer. */
function wipe(): void {
  INNER_STATE.fill(0);
  OUTER_STATE.fill(0);
  INNER_MAC.fill(0);
  scrub(INNER);
  scrub(OUTER);
  W.fill(0);
  FINAL_STATE.fill(0);
  FINAL_BLOCK.fill(0);
}

/**
 * HMAC-SHA256 (RFC 2104) of the concatenation of `data` under `key`: 32 bytes, in a new array.
 * Keys longer than 64 bytes are hashed first; shorter ones are zero-padded.
 */
export function hmacSha256(key: Uint8Array, ...data: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(32);
  hmacKey(key);
  const inner = hmacBegin();
  for (let i = 0; i < data.length; i++) inner.update(data[i]);
  hmacEnd(out, 0);
  wipe();
  return out;
}

const PRK = new Uint8Array(32);
const BLOCK_OUT = new Uint8Array(32);
const COUNTER = new Uint8Array(1);

/**
 * HKDF-SHA256 (RFC 5869), extract then expand: `length` bytes (0 to 8160 = 255 × 32) in a new
 * array; any other length throws `RangeError`. An empty `salt` acts as 32 zero bytes, as the RFC
 * specifies (HMAC zero-pads short keys, so the two are the same key).
 */
export function hkdfSha256(
  ikm: Uint8Array,
  salt: Uint8Array,
  info: Uint8Array,
  length: number,
): Uint8Array {
  if (!Number.isInteger(length) || length < 0 || length > 255 * 32) {
    throw new RangeError(`HKDF-SHA256 output length must be 0 to 8160 bytes, not ${length}`);
  }
  const out = new Uint8Array(length);
  if (length === 0) return out;
  // Extract: PRK = HMAC(salt, IKM).
  hmacKey(salt);
  hmacBegin().update(ikm);
  hmacEnd(PRK, 0);
  // Expand: T(i) = HMAC(PRK, T(i-1) ‖ info ‖ i), keyed once for every block.
  hmacKey(PRK);
  for (let i = 1, offset = 0; offset < length; i++, offset += 32) {
    const inner = hmacBegin();
    if (i > 1) inner.update(BLOCK_OUT);
    COUNTER[0] = i;
    inner.update(info).update(COUNTER);
    hmacEnd(BLOCK_OUT, 0);
    const n = Math.min(32, length - offset);
    for (let j = 0; j < n; j++) out[offset + j] = BLOCK_OUT[j];
  }
  PRK.fill(0);
  BLOCK_OUT.fill(0);
  wipe();
  return out;
}

/**
 * True when `a` and `b` hold the same bytes, in time that depends only on their length (false
 * at once when the lengths differ).
 */
export function timingSafeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}
