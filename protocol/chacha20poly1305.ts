/**
 * ChaCha20-Poly1305 (RFC 8439), written for this library's small records: the working buffers
 * are allocated once, so sealing or opening allocates only the output. In Deno a
 * typed-array allocation costs about 1 µs, and a general-purpose implementation that makes a
 * dozen per call spends 20 µs on a 100-byte record; this one spends a few.
 *
 * Checked against the RFC 8439 vectors (§2.3.2 block, §2.5.2 Poly1305, §2.8.2 AEAD) and, on
 * thousands of random inputs, against `@noble/ciphers` (tests/protocol/chacha_test.ts).
 * ChaCha20 is add-rotate-xor and Poly1305 here is limb arithmetic without secret-dependent
 * branches or table lookups; the tag comparison is constant-time.
 *
 * @module
 */

const SIGMA0 = 0x61707865, SIGMA1 = 0x3320646e, SIGMA2 = 0x79622d32, SIGMA3 = 0x6b206574;

function le32(b: Uint8Array, i: number): number {
  return (b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24)) >>> 0;
}

/**
 * Working buffers, shared by every key: sealing and opening are synchronous and never
 * re-entered, so one set serves all (a connection then costs one small key array, not nine
 * typed arrays per direction).
 */
const words = new Uint32Array(16);
/** On little-endian machines (all Deno targets) the keystream bytes are the words' own bytes. */
const LITTLE_ENDIAN = new Uint8Array(Uint32Array.of(1).buffer)[0] === 1;
const work = {
  nonce: new Uint32Array(3),
  block: LITTLE_ENDIAN ? new Uint8Array(words.buffer) : new Uint8Array(64),
  words,
  scratch: new Uint8Array(16),
};

/**
 * Poly1305 state, in six 22-bit limbs (132 bits): r, 20·r (index 0 unused), the accumulator h,
 * a message block; and s, the pad, in 32-bit words.
 */
const poly = {
  r: new Float64Array(6),
  r20: new Float64Array(6),
  h: new Float64Array(6),
  m: new Float64Array(6),
  pad: new Uint32Array(4),
};
/** The 2^128 bit of a full block, in the top limb (bits 110–131). */
const HIBIT = 1 << 18;

/** A ChaCha20-Poly1305 key (32 bytes). */
export class ChaCha20Poly1305 {
  #key: Uint32Array;
  #nonce = work.nonce;
  #block = work.block;
  #words = work.words;
  #scratch = work.scratch;

  /**
   * @param key 32 bytes
   * @param words where to keep the key as 8 words (a view into a larger buffer saves a
   *   connection a buffer of its own); a new array without it
   */
  constructor(key: Uint8Array, words: Uint32Array = new Uint32Array(8)) {
    if (key.length !== 32) throw new RangeError("ChaCha20-Poly1305 needs a 32-byte key");
    if (words.length !== 8) throw new RangeError("ChaCha20-Poly1305 keeps its key in 8 words");
    for (let i = 0; i < 8; i++) words[i] = le32(key, i * 4);
    this.#key = words;
  }

  /** `ciphertext ‖ tag` of `plaintext`; `aad` is authenticated, `nonce` is 12 bytes. */
  seal(nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array): Uint8Array {
    const out = new Uint8Array(plaintext.length + 16);
    this.sealInto(nonce, aad, plaintext, out);
    return out;
  }

  /** {@link seal} into `out` (at least `plaintext.length + 16` bytes, not overlapping it). */
  sealInto(nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array, out: Uint8Array): void {
    this.#setNonce(nonce);
    this.#xor(plaintext, 0, plaintext.length, out, 0);
    this.#tag(aad, 0, aad.length, out, 0, plaintext.length, out, plaintext.length);
  }

  /**
   * Seals a record in place: `frame` holds `aadLength` bytes of additional data, then the
   * plaintext, then 16 bytes for the tag. The plaintext becomes the ciphertext.
   */
  sealFrame(nonce: Uint8Array, frame: Uint8Array, aadLength: number): void {
    const length = frame.length - aadLength - 16;
    if (length < 0) throw new RangeError("The frame has no room for its tag");
    this.#setNonce(nonce);
    this.#xor(frame, aadLength, length, frame, aadLength);
    this.#tag(frame, 0, aadLength, frame, aadLength, length, frame, aadLength + length);
  }

  /** The plaintext of `ciphertext ‖ tag`; throws when it does not authenticate. */
  open(nonce: Uint8Array, aad: Uint8Array, sealed: Uint8Array): Uint8Array {
    return this.openAt(nonce, aad, 0, aad.length, sealed, 0, sealed.length);
  }

  /**
   * {@link open} of the `sealedLength` bytes of `sealed` from `sealedAt`, with the additional
   * data at `aadAt` of `aad`: read in place (from a read buffer), no views made. The plaintext
   * goes to `out` when given (exactly `sealedLength - 16` bytes), else to a new buffer.
   */
  openAt(
    nonce: Uint8Array,
    aad: Uint8Array,
    aadAt: number,
    aadLength: number,
    sealed: Uint8Array,
    sealedAt: number,
    sealedLength: number,
    out?: Uint8Array,
  ): Uint8Array {
    if (sealedLength < 16) throw new Error("Sealed data shorter than its tag");
    const length = sealedLength - 16;
    this.#setNonce(nonce);
    const expected = this.#scratch;
    this.#tag(aad, aadAt, aadLength, sealed, sealedAt, length, expected, 0);
    let diff = 0;
    for (let i = 0; i < 16; i++) diff |= expected[i] ^ sealed[sealedAt + length + i];
    if (diff !== 0) throw new Error("ChaCha20-Poly1305 tag mismatch");
    const plain = out ?? new Uint8Array(length);
    if (plain.length !== length) throw new RangeError("The output does not fit the plaintext");
    this.#xor(sealed, sealedAt, length, plain, 0);
    return plain;
  }

  #setNonce(nonce: Uint8Array): void {
    if (nonce.length !== 12) throw new RangeError("ChaCha20-Poly1305 needs a 12-byte nonce");
    this.#nonce[0] = le32(nonce, 0);
    this.#nonce[1] = le32(nonce, 4);
    this.#nonce[2] = le32(nonce, 8);
  }

  /**
   * Encrypts or decrypts `length` bytes of `input` from `inAt` into `output` at `outAt`: XOR
   * with the keystream from block 1 (§2.4). In place when both are the same range.
   */
  #xor(input: Uint8Array, inAt: number, length: number, output: Uint8Array, outAt: number): void {
    const block = this.#block;
    for (let offset = 0, counter = 1; offset < length; offset += 64, counter++) {
      this.#chachaBlock(counter);
      const end = Math.min(64, length - offset);
      const i0 = inAt + offset, o0 = outAt + offset;
      for (let i = 0; i < end; i++) output[o0 + i] = input[i0 + i] ^ block[i];
    }
  }

  /** One ChaCha20 block (§2.3) for `counter` into `#block`, little-endian. */
  #chachaBlock(counter: number): void {
    const k = this.#key, n = this.#nonce;
    const j0 = SIGMA0, j1 = SIGMA1, j2 = SIGMA2, j3 = SIGMA3;
    const j4 = k[0], j5 = k[1], j6 = k[2], j7 = k[3], j8 = k[4], j9 = k[5], j10 = k[6], j11 = k[7];
    const j12 = counter >>> 0, j13 = n[0], j14 = n[1], j15 = n[2];
    let x0 = j0, x1 = j1, x2 = j2, x3 = j3, x4 = j4, x5 = j5, x6 = j6, x7 = j7;
    let x8 = j8, x9 = j9, x10 = j10, x11 = j11, x12 = j12, x13 = j13, x14 = j14, x15 = j15;
    for (let i = 0; i < 10; i++) {
      // Column rounds.
      x0 = (x0 + x4) | 0, x12 ^= x0, x12 = (x12 << 16) | (x12 >>> 16);
      x8 = (x8 + x12) | 0, x4 ^= x8, x4 = (x4 << 12) | (x4 >>> 20);
      x0 = (x0 + x4) | 0, x12 ^= x0, x12 = (x12 << 8) | (x12 >>> 24);
      x8 = (x8 + x12) | 0, x4 ^= x8, x4 = (x4 << 7) | (x4 >>> 25);
      x1 = (x1 + x5) | 0, x13 ^= x1, x13 = (x13 << 16) | (x13 >>> 16);
      x9 = (x9 + x13) | 0, x5 ^= x9, x5 = (x5 << 12) | (x5 >>> 20);
      x1 = (x1 + x5) | 0, x13 ^= x1, x13 = (x13 << 8) | (x13 >>> 24);
      x9 = (x9 + x13) | 0, x5 ^= x9, x5 = (x5 << 7) | (x5 >>> 25);
      x2 = (x2 + x6) | 0, x14 ^= x2, x14 = (x14 << 16) | (x14 >>> 16);
      x10 = (x10 + x14) | 0, x6 ^= x10, x6 = (x6 << 12) | (x6 >>> 20);
      x2 = (x2 + x6) | 0, x14 ^= x2, x14 = (x14 << 8) | (x14 >>> 24);
      x10 = (x10 + x14) | 0, x6 ^= x10, x6 = (x6 << 7) | (x6 >>> 25);
      x3 = (x3 + x7) | 0, x15 ^= x3, x15 = (x15 << 16) | (x15 >>> 16);
      x11 = (x11 + x15) | 0, x7 ^= x11, x7 = (x7 << 12) | (x7 >>> 20);
      x3 = (x3 + x7) | 0, x15 ^= x3, x15 = (x15 << 8) | (x15 >>> 24);
      x11 = (x11 + x15) | 0, x7 ^= x11, x7 = (x7 << 7) | (x7 >>> 25);
      // Diagonal rounds.
      x0 = (x0 + x5) | 0, x15 ^= x0, x15 = (x15 << 16) | (x15 >>> 16);
      x10 = (x10 + x15) | 0, x5 ^= x10, x5 = (x5 << 12) | (x5 >>> 20);
      x0 = (x0 + x5) | 0, x15 ^= x0, x15 = (x15 << 8) | (x15 >>> 24);
      x10 = (x10 + x15) | 0, x5 ^= x10, x5 = (x5 << 7) | (x5 >>> 25);
      x1 = (x1 + x6) | 0, x12 ^= x1, x12 = (x12 << 16) | (x12 >>> 16);
      x11 = (x11 + x12) | 0, x6 ^= x11, x6 = (x6 << 12) | (x6 >>> 20);
      x1 = (x1 + x6) | 0, x12 ^= x1, x12 = (x12 << 8) | (x12 >>> 24);
      x11 = (x11 + x12) | 0, x6 ^= x11, x6 = (x6 << 7) | (x6 >>> 25);
      x2 = (x2 + x7) | 0, x13 ^= x2, x13 = (x13 << 16) | (x13 >>> 16);
      x8 = (x8 + x13) | 0, x7 ^= x8, x7 = (x7 << 12) | (x7 >>> 20);
      x2 = (x2 + x7) | 0, x13 ^= x2, x13 = (x13 << 8) | (x13 >>> 24);
      x8 = (x8 + x13) | 0, x7 ^= x8, x7 = (x7 << 7) | (x7 >>> 25);
      x3 = (x3 + x4) | 0, x14 ^= x3, x14 = (x14 << 16) | (x14 >>> 16);
      x9 = (x9 + x14) | 0, x4 ^= x9, x4 = (x4 << 12) | (x4 >>> 20);
      x3 = (x3 + x4) | 0, x14 ^= x3, x14 = (x14 << 8) | (x14 >>> 24);
      x9 = (x9 + x14) | 0, x4 ^= x9, x4 = (x4 << 7) | (x4 >>> 25);
    }
    const w = this.#words;
    w[0] = x0 + j0, w[1] = x1 + j1, w[2] = x2 + j2, w[3] = x3 + j3;
    w[4] = x4 + j4, w[5] = x5 + j5, w[6] = x6 + j6, w[7] = x7 + j7;
    w[8] = x8 + j8, w[9] = x9 + j9, w[10] = x10 + j10, w[11] = x11 + j11;
    w[12] = x12 + j12, w[13] = x13 + j13, w[14] = x14 + j14, w[15] = x15 + j15;
    if (LITTLE_ENDIAN) return; // #block is a view of #words
    const b = this.#block;
    for (let i = 0; i < 16; i++) {
      const v = w[i];
      b[i * 4] = v, b[i * 4 + 1] = v >>> 8, b[i * 4 + 2] = v >>> 16, b[i * 4 + 3] = v >>> 24;
    }
  }

  /**
   * The Poly1305 tag (§2.5, §2.8) over `aad ‖ pad ‖ ciphertext ‖ pad ‖ le64(lengths)` (the
   * additional data is `aadLength` bytes of `aad` from `aadAt`, the ciphertext `length` bytes of
   * `sealed` from `sealedAt`), with the one-time key from block 0, written to `out` at `at`.
   */
  #tag(
    aad: Uint8Array,
    aadAt: number,
    aadLength: number,
    sealed: Uint8Array,
    sealedAt: number,
    length: number,
    out: Uint8Array,
    at: number,
  ): void {
    this.#chachaBlock(0);
    polyInit(this.#block);
    polyPadded(aad, aadAt, aadLength);
    polyPadded(sealed, sealedAt, length);
    const lengths = this.#scratch;
    lengths.fill(0);
    let a = aadLength, c = length;
    for (let i = 0; i < 6; i++, a = Math.floor(a / 256), c = Math.floor(c / 256)) {
      lengths[i] = a & 0xff;
      lengths[8 + i] = c & 0xff;
    }
    polyBlock(lengths, 0, HIBIT);
    polyFinish(out, at);
  }
}

/**
 * Poly1305 alone (§2.5): the tag of `message` under a 32-byte one-time key, computed by the same
 * code as the AEAD's tag (exported for the RFC 8439 Appendix A.3 vectors in the tests).
 */
export function poly1305(key: Uint8Array, message: Uint8Array): Uint8Array {
  if (key.length !== 32) throw new RangeError("Poly1305 needs a 32-byte key");
  polyInit(key);
  const full = message.length & ~15;
  for (let i = 0; i < full; i += 16) polyBlock(message, i, HIBIT);
  if (full < message.length) {
    // A short last block ends with a 1 byte in place of the 2^128 bit.
    const last = work.scratch;
    last.fill(0);
    last.set(message.subarray(full));
    last[message.length - full] = 1;
    polyBlock(last, 0, 0);
  }
  const tag = new Uint8Array(16);
  polyFinish(tag, 0);
  return tag;
}

/** r (clamped), 20·r and s from the first 32 bytes of `otk`; h = 0. */
function polyInit(otk: Uint8Array): void {
  const k = work.scratch, { r, r20, h, pad } = poly;
  for (let i = 0; i < 16; i++) k[i] = otk[i];
  k[3] &= 15, k[7] &= 15, k[11] &= 15, k[15] &= 15;
  k[4] &= 252, k[8] &= 252, k[12] &= 252;
  // r uses the same limbs as a message block (without the 2^128 bit).
  splitLimbs(k, 0, r, 0);
  // Products past 2^132 wrap with a factor 20 (2^132 = 4 · 2^130 ≡ 4 · 5 mod 2^130 − 5).
  for (let i = 1; i < 6; i++) r20[i] = 20 * r[i];
  h.fill(0);
  for (let i = 0; i < 4; i++) pad[i] = le32(otk, 16 + i * 4);
}

/** Absorbs `length` bytes of `data` from `at` in 16-byte blocks, the last zero-padded (§2.8). */
function polyPadded(data: Uint8Array, at: number, length: number): void {
  const full = length & ~15;
  for (let i = 0; i < full; i += 16) polyBlock(data, at + i, HIBIT);
  if (full < length) {
    const last = work.scratch;
    last.fill(0);
    for (let i = full; i < length; i++) last[i - full] = data[at + i];
    polyBlock(last, 0, HIBIT);
  }
}

/**
 * h = (h + block + hibit) · r mod 2^130 − 5, partly reduced: 36 multiply-adds on six 22-bit
 * limbs held in doubles, exact while every sum stays below 2^53.
 *
 * Bounds: on entry h0, h2…h5 < 2^22 and h1 < 2^22 + 2^8 (see the last carry below); adding a
 * block (limbs < 2^22, the top one < 2^19) leaves every h limb < 2^23 + 2^8. The r limbs are
 * < 2^22, so 20·r_j < 2^26.33 and each product is < 2^49.33; a limb of the product is six of
 * them plus a carry < 2^30, so < 2^51.91 < 2^53. d5 has no wrapped terms: d5 < 2^47.6, its
 * carry c is < 2^25.6 and 20·c < 2^30, so folding it into h0 carries at most 241 into h1.
 */
function polyBlock(m: Uint8Array, at: number, hibit: number): void {
  const { h, r, r20, m: block } = poly;
  splitLimbs(m, at, block, hibit);
  const h0 = h[0] + block[0], h1 = h[1] + block[1], h2 = h[2] + block[2];
  const h3 = h[3] + block[3], h4 = h[4] + block[4], h5 = h[5] + block[5];
  const r0 = r[0], r1 = r[1], r2 = r[2], r3 = r[3], r4 = r[4], r5 = r[5];
  const s1 = r20[1], s2 = r20[2], s3 = r20[3], s4 = r20[4], s5 = r20[5];
  // Limb k sums h_i · r_j for i + j = k, and 20 · h_i · r_j for i + j = k + 6.
  let d0 = h0 * r0 + h1 * s5 + h2 * s4 + h3 * s3 + h4 * s2 + h5 * s1;
  let d1 = h0 * r1 + h1 * r0 + h2 * s5 + h3 * s4 + h4 * s3 + h5 * s2;
  let d2 = h0 * r2 + h1 * r1 + h2 * r0 + h3 * s5 + h4 * s4 + h5 * s3;
  let d3 = h0 * r3 + h1 * r2 + h2 * r1 + h3 * r0 + h4 * s5 + h5 * s4;
  let d4 = h0 * r4 + h1 * r3 + h2 * r2 + h3 * r1 + h4 * r0 + h5 * s5;
  let d5 = h0 * r5 + h1 * r4 + h2 * r3 + h3 * r2 + h4 * r1 + h5 * r0;
  // Carries, on values past 2^32: division, not shifts.
  let c = Math.floor(d0 / 4194304);
  d0 -= c * 4194304, d1 += c, c = Math.floor(d1 / 4194304);
  d1 -= c * 4194304, d2 += c, c = Math.floor(d2 / 4194304);
  d2 -= c * 4194304, d3 += c, c = Math.floor(d3 / 4194304);
  d3 -= c * 4194304, d4 += c, c = Math.floor(d4 / 4194304);
  d4 -= c * 4194304, d5 += c, c = Math.floor(d5 / 4194304);
  d5 -= c * 4194304, d0 += c * 20, c = Math.floor(d0 / 4194304);
  h[0] = d0 - c * 4194304, h[1] = d1 + c, h[2] = d2, h[3] = d3, h[4] = d4, h[5] = d5;
}

/**
 * `out` = (`h` + `add`) mod 2^130 with every limb carried (22 bits, the top one 20); returns
 * what was carried past 2^130. Int32 operations: every limb of `h` is below 2^31 here.
 */
function carry130(h: Float64Array, add: number, out: Float64Array): number {
  let c = add;
  for (let i = 0; i < 5; i++) {
    const v = h[i] + c;
    c = v >>> 22;
    out[i] = v & 0x3fffff;
  }
  const top = h[5] + c;
  out[5] = top & 0xfffff;
  return top >>> 20;
}

/** Fully reduces h mod 2^130 − 5, adds s mod 2^128, and writes the 16-byte tag at `at`. */
function polyFinish(out: Uint8Array, at: number): void {
  const { h, m: g, pad } = poly; // the message limbs are free now; g reuses them
  // Limbs are below 2^31 from here on, so int32 operations are exact. Carry fully, folding
  // the bits from 2^130 up back into h0 with a factor 5 (2^130 ≡ 5). h < 2^132 + 2^30, so the
  // first pass folds at most 4; the second folds at most 1, and only when what stays is below
  // 20, so h0 < 25 then: every limb ends below 2^22 (the top one below 2^20), h < 2^130.
  for (let pass = 0; pass < 2; pass++) {
    const over = carry130(h, 0, h); // (before reading h[0]: the call rewrites it)
    h[0] += 5 * over;
  }
  // g = h + 5 − 2^130; it is the reduced value when h + 5 reaches 2^130 (h ≥ p).
  const mask = -carry130(h, 5, g); // −1 (take g) or 0 (keep h), without a branch on the value
  for (let i = 0; i < 6; i++) h[i] = (h[i] & ~mask) | (g[i] & mask);
  // h mod 2^128 in 32-bit words (bits 128 and 129 drop out), plus s, little-endian.
  const h0 = h[0], h1 = h[1], h2 = h[2], h3 = h[3], h4 = h[4], h5 = h[5];
  g[0] = (h0 | (h1 << 22)) >>> 0;
  g[1] = ((h1 >>> 10) | (h2 << 12)) >>> 0;
  g[2] = ((h2 >>> 20) | (h3 << 2) | (h4 << 24)) >>> 0;
  g[3] = ((h4 >>> 8) | (h5 << 14)) >>> 0;
  let carry = 0;
  for (let i = 0; i < 4; i++) {
    const f = g[i] + pad[i] + carry; // below 2^33: the bytes below keep its low 32 bits
    carry = Math.floor(f / 4294967296);
    const o = at + i * 4;
    out[o] = f, out[o + 1] = f >>> 8, out[o + 2] = f >>> 16, out[o + 3] = f >>> 24;
  }
}

/** Splits 16 little-endian bytes into six 22-bit limbs (the top one holds bits 110–127). */
function splitLimbs(m: Uint8Array, at: number, out: Float64Array, hibit: number): void {
  const w0 = le32(m, at), w1 = le32(m, at + 4), w2 = le32(m, at + 8), w3 = le32(m, at + 12);
  out[0] = w0 & 0x3fffff;
  out[1] = ((w0 >>> 22) | (w1 << 10)) & 0x3fffff;
  out[2] = ((w1 >>> 12) | (w2 << 20)) & 0x3fffff;
  out[3] = (w2 >>> 2) & 0x3fffff;
  out[4] = ((w2 >>> 24) | (w3 << 8)) & 0x3fffff;
  out[5] = (w3 >>> 14) | hibit;
}
