/**
 * The record layer (PROTOCOL.md §8): every frame after the handshake is sealed with
 * AES-256-GCM under a per-direction key, with `nonce = iv XOR u64be(seq)` and the 20-byte
 * header as additional data — or, when both sides agreed in the handshake, a MESSAGES record of
 * at most {@link CHACHA_MAX_PLAINTEXT} bytes with ChaCha20-Poly1305 (`chacha.ts`, record type
 * `0x11`, synchronous: no Web Crypto dispatch on small calls). Sequence numbers are assigned synchronously, so callers that keep
 * one ordered queue never reorder records. After 2^24 records or 2^36 bytes under one key the
 * sender announces KEY_UPDATE and both sides derive the next key.
 *
 * @module
 */

import { bufferSource as bs, concatBytes } from "./bytes.ts";
import { hkdf } from "./hkdf.ts";
import { deriveChaChaKey } from "./chacha.ts";
import { ChaCha20Poly1305 } from "./chacha20poly1305.ts";
import { ProtocolError } from "./errors.ts";
import { slabBytes } from "./slab.ts";
import { FrameType, HEADER_SIZE, TAG_SIZE, writeHeader } from "./frame.ts";
import { KEY_UPDATE_BYTES, KEY_UPDATE_RECORDS } from "./limits.ts";

/**
 * The largest MESSAGES plaintext sealed with ChaCha20-Poly1305 when it was negotiated; larger
 * records use Web Crypto AES-GCM, which is faster per byte and runs off the main thread.
 */
export const CHACHA_MAX_PLAINTEXT = 1024;

/**
 * AES-GCM records whose sealed body is at least this long come back from
 * {@link RecordSealer.sealParts} as header and body, for a channel that can write them one
 * after the other: below it, joining them costs less than a second write.
 */
export const SPLIT_WRITE_BYTES = 64 * 1024;

/** A sealed record: the whole frame, or a large one's header and sealed body. */
export type SealedRecord = Uint8Array | readonly [header: Uint8Array, body: Uint8Array];

/** Records can be numbered up to this (the connection closes before reuse is possible). */
export const MAX_SEQ = Number.MAX_SAFE_INTEGER;

/** Thresholds for KEY_UPDATE (test hooks lower them). */
export interface KeyUpdatePolicy {
  /** Records per key. */
  records?: number;
  /** Plaintext bytes per key. */
  bytes?: number;
}

/** Scratch for a nonce, used synchronously (AES-GCM gets a copy): one for every direction. */
const NONCE = new Uint8Array(12);

// A direction's key material lives in one buffer (one allocation per direction, not four):
/** AES-256-GCM key, kept for KEY_UPDATE and for importing it on first use: [0, 32). */
const AES_KEY = 0;
/** AES-GCM IV: [32, 44). */
const AES_IV = 32;
/** ChaCha20-Poly1305 IV: [44, 56). */
const CHACHA_IV = 44;
/** ChaCha20-Poly1305 key as 8 words: [56, 88) (4-byte aligned). */
const CHACHA_WORDS = 56;
const MATERIAL_SIZE = 88;

/** `iv XOR u64be(seq)`, with the 12-byte IV at `material[at..]`, into {@link NONCE}. */
function nonceFor(material: Uint8Array, at: number, seq: number): Uint8Array<ArrayBuffer> {
  const out = NONCE;
  for (let i = 0; i < 12; i++) out[i] = material[at + i];
  const hi = Math.floor(seq / 0x1_0000_0000);
  const lo = seq >>> 0;
  out[4] ^= hi >>> 24;
  out[5] ^= hi >>> 16;
  out[6] ^= hi >>> 8;
  out[7] ^= hi;
  out[8] ^= lo >>> 24;
  out[9] ^= lo >>> 16;
  out[10] ^= lo >>> 8;
  out[11] ^= lo;
  return out;
}

function importAesKey(raw: Uint8Array, usage: "encrypt" | "decrypt"): Promise<CryptoKey> {
  return crypto.subtle.importKey("raw", bs(raw), "AES-GCM", false, [usage]);
}

/** `new_key ‖ new_iv = HKDF-SHA256(IKM = old_key, salt = ∅, info = "trust-rpc/1 key update", 44)`. */
export function nextKey(rawKey: Uint8Array): { key: Uint8Array; iv: Uint8Array } {
  const okm = hkdf(rawKey, new Uint8Array(0), "trust-rpc/1 key update", 44);
  return { key: okm.slice(0, 32), iv: okm.slice(32, 44) };
}

/** Key state shared by both directions' halves. */
class Direction {
  /** This direction's keys and IVs (layout above). */
  #material = new Uint8Array(MATERIAL_SIZE);
  /** The AES-GCM key, imported on first use (small records may never need it). */
  #key: Promise<CryptoKey> | undefined;
  /** Small records use ChaCha20-Poly1305 (negotiated). */
  #chachaOn: boolean;
  /** Its key, derived on first use (a direction that carries nothing never derives it). */
  #chacha: ChaCha20Poly1305 | undefined;
  protected usage: "encrypt" | "decrypt";
  /** Next sequence number. */
  seq = 0;
  protected recordsUnderKey = 0;
  protected bytesUnderKey = 0;

  constructor(
    rawKey: Uint8Array,
    iv: Uint8Array,
    usage: "encrypt" | "decrypt",
    chacha: boolean,
  ) {
    this.#material.set(rawKey, AES_KEY);
    this.#material.set(iv, AES_IV);
    this.usage = usage;
    this.#chachaOn = chacha;
    if (!chacha) {
      // Every record needs it: start at once (awaited by the first record).
      this.#key = importAesKey(this.#rawKey(), usage);
      this.#key.catch(() => {});
    }
  }

  #rawKey(): Uint8Array {
    return this.#material.subarray(AES_KEY, AES_KEY + 32);
  }

  /** The AES-GCM key of this direction (imported on the first call). */
  protected aesKey(): Promise<CryptoKey> {
    return this.#key ??= importAesKey(this.#rawKey(), this.usage);
  }

  /** The ChaCha20-Poly1305 key of this direction (derived on the first call). */
  protected chacha(): ChaCha20Poly1305 {
    if (this.#chacha !== undefined) return this.#chacha;
    const okm = deriveChaChaKey(this.#rawKey());
    this.#material.set(okm.subarray(32, 44), CHACHA_IV);
    const words = new Uint32Array(this.#material.buffer, CHACHA_WORDS, 8);
    this.#chacha = new ChaCha20Poly1305(okm.subarray(0, 32), words);
    okm.fill(0);
    return this.#chacha;
  }

  /** The nonce of record `seq`: the ChaCha20-Poly1305 one, or the AES-GCM one (a copy). */
  protected nonce(seq: number, chacha: boolean): Uint8Array<ArrayBuffer> {
    if (!chacha) return nonceFor(this.#material, AES_IV, seq).slice();
    this.chacha(); // its first use derives the ChaCha IV
    return nonceFor(this.#material, CHACHA_IV, seq);
  }

  /** True when small MESSAGES records use ChaCha20-Poly1305. */
  get usesChaCha(): boolean {
    return this.#chachaOn;
  }

  /** Derives and installs the next key (KEY_UPDATE). */
  async rotate(): Promise<void> {
    const next = nextKey(this.#rawKey());
    this.#material.set(next.key, AES_KEY);
    this.#material.set(next.iv, AES_IV);
    next.key.fill(0);
    this.#key = undefined;
    this.#chacha = undefined;
    this.recordsUnderKey = 0;
    this.bytesUnderKey = 0;
    if (!this.#chachaOn) await this.aesKey();
  }
}

/** Seals outgoing records. Call {@link seal} from one ordered queue only. */
export class RecordSealer extends Direction {
  #maxRecords: number;
  #maxBytes: number;

  /**
   * @param rawKey 32-byte AES key for this direction
   * @param iv 12-byte IV for this direction
   * @param policy KEY_UPDATE thresholds
   * @param chacha seal small MESSAGES records with ChaCha20-Poly1305 (negotiated)
   */
  constructor(
    rawKey: Uint8Array,
    iv: Uint8Array,
    policy: KeyUpdatePolicy = {},
    chacha = false,
  ) {
    super(rawKey, iv, "encrypt", chacha);
    this.#maxRecords = policy.records ?? KEY_UPDATE_RECORDS;
    this.#maxBytes = policy.bytes ?? KEY_UPDATE_BYTES;
  }

  /** True when the next record should be a KEY_UPDATE. */
  get needsKeyUpdate(): boolean {
    return this.recordsUnderKey >= this.#maxRecords || this.bytesUnderKey >= this.#maxBytes;
  }

  /**
   * Seals one record: assigns the next seq synchronously, then encrypts. Returns the whole
   * frame (header ‖ ciphertext ‖ tag), ready for one write.
   */
  async seal(type: number, plaintext: Uint8Array): Promise<Uint8Array> {
    const sealed = await this.sealParts(type, plaintext);
    return sealed instanceof Uint8Array ? sealed : concatBytes(sealed[0], sealed[1]);
  }

  /**
   * {@link seal}, except that a large AES-GCM record (sealed body of
   * {@link SPLIT_WRITE_BYTES} or more) comes back as `[header, body]`, not joined.
   */
  async sealParts(type: number, plaintext: Uint8Array): Promise<SealedRecord> {
    const small = this.sealSmall(type, plaintext);
    if (small !== undefined) return small;
    const seq = this.#nextSeq(plaintext.length);
    const header = new Uint8Array(HEADER_SIZE);
    writeHeader(header, 0, type, plaintext.length + TAG_SIZE, seq);
    const nonce = this.nonce(seq, false);
    const key = await this.aesKey();
    const sealed = new Uint8Array(
      await crypto.subtle.encrypt(
        { name: "AES-GCM", iv: nonce, additionalData: header },
        key,
        bs(plaintext),
      ),
    );
    if (sealed.length >= SPLIT_WRITE_BYTES) return [header, sealed];
    const frame = new Uint8Array(HEADER_SIZE + sealed.length);
    frame.set(header);
    frame.set(sealed, HEADER_SIZE);
    return frame;
  }

  /**
   * Seals a small MESSAGES or ALERT record at once, with ChaCha20-Poly1305 (when negotiated
   * and the plaintext is at most {@link CHACHA_MAX_PLAINTEXT} bytes); `undefined`, with no
   * sequence number used, for a record that takes AES-GCM ({@link sealParts}).
   */
  sealSmall(type: number, plaintext: Uint8Array): Uint8Array | undefined {
    const frame = this.smallFrame(type, plaintext.length);
    if (frame === undefined) return undefined;
    frame.set(plaintext, HEADER_SIZE);
    return this.sealSmallFrame(type, frame);
  }

  /**
   * A buffer for a record of `length` plaintext bytes that {@link sealSmallFrame} seals in
   * place (write the plaintext at {@link HEADER_SIZE}); `undefined` when such a record takes
   * AES-GCM. Building the plaintext in its frame saves a buffer and a copy per record.
   */
  smallFrame(type: number, length: number): Uint8Array | undefined {
    if (length > CHACHA_MAX_PLAINTEXT || !this.usesChaCha) return undefined;
    if (type !== FrameType.MESSAGES && type !== FrameType.ALERT) return undefined;
    return slabBytes(HEADER_SIZE + length + TAG_SIZE);
  }

  /** Seals a frame from {@link smallFrame} in place and returns it. */
  sealSmallFrame(type: number, frame: Uint8Array): Uint8Array {
    const length = frame.length - HEADER_SIZE - TAG_SIZE;
    const seq = this.#nextSeq(length);
    const chachaType = type === FrameType.MESSAGES
      ? FrameType.MESSAGES_CHACHA
      : FrameType.ALERT_CHACHA;
    writeHeader(frame, 0, chachaType, length + TAG_SIZE, seq);
    this.chacha().sealFrame(this.nonce(seq, true), frame, HEADER_SIZE);
    return frame;
  }

  /** Takes the next sequence number for a record of `length` plaintext bytes. */
  #nextSeq(length: number): number {
    if (this.seq >= MAX_SEQ) {
      throw new ProtocolError("SEQUENCE", "Record sequence numbers exhausted: reconnect");
    }
    this.recordsUnderKey++;
    this.bytesUnderKey += length;
    return this.seq++;
  }

  /** Seals a KEY_UPDATE with the current key, then switches to the next one. */
  async sealKeyUpdate(): Promise<Uint8Array> {
    const frame = await this.seal(FrameType.KEY_UPDATE, new Uint8Array(0));
    await this.rotate();
    return frame;
  }
}

/** Opens incoming records, checking their sequence numbers. */
export class RecordOpener extends Direction {
  /**
   * @param rawKey 32-byte AES key for this direction
   * @param iv 12-byte IV for this direction
   * @param chacha accept small MESSAGES records sealed with ChaCha20-Poly1305 (negotiated)
   */
  constructor(rawKey: Uint8Array, iv: Uint8Array, chacha = false) {
    super(rawKey, iv, "decrypt", chacha);
  }

  /**
   * Checks that `seq` is the expected next one and advances the counter synchronously, before
   * any await (PROTOCOL.md §8 step 3). Throws `SEQUENCE` on a replayed, reordered or dropped
   * record.
   */
  accept(seq: number): void {
    if (seq !== this.seq) {
      throw new ProtocolError("SEQUENCE", "Record out of sequence: replayed, reordered or dropped");
    }
    this.seq++;
  }

  /**
   * Opens, at once, a ChaCha20-Poly1305 record whose seq was accepted, read in place: its
   * header at `at` of `bytes` and its `bodyLength` bytes of body right after. Any failure is
   * `BAD_RECORD`.
   */
  openChaChaAt(seq: number, bytes: Uint8Array, at: number, bodyLength: number): Uint8Array {
    return this.#openChaCha(seq, bytes, at, bytes, at + HEADER_SIZE, bodyLength);
  }

  #openChaCha(
    seq: number,
    header: Uint8Array,
    headerAt: number,
    body: Uint8Array,
    bodyAt: number,
    bodyLength: number,
  ): Uint8Array {
    if (!this.usesChaCha) {
      throw new ProtocolError("PROTOCOL_ERROR", "ChaCha20-Poly1305 record, not negotiated");
    }
    try {
      const nonce = this.nonce(seq, true);
      // The plaintext of a small record is a slab view (see slab.ts).
      const out = bodyLength >= TAG_SIZE ? slabBytes(bodyLength - TAG_SIZE) : undefined;
      const plain = this.chacha().openAt(
        nonce,
        header,
        headerAt,
        HEADER_SIZE,
        body,
        bodyAt,
        bodyLength,
        out,
      );
      this.recordsUnderKey++;
      return plain;
    } catch {
      throw new ProtocolError("BAD_RECORD", "A record failed authentication");
    }
  }

  /**
   * Opens a record whose seq was accepted. `header` is the 20 header bytes (the AAD), `body`
   * is `ciphertext ‖ tag`. Any failure is `BAD_RECORD`.
   */
  async open(seq: number, header: Uint8Array, body: Uint8Array): Promise<Uint8Array> {
    if (header[3] === FrameType.MESSAGES_CHACHA || header[3] === FrameType.ALERT_CHACHA) {
      return this.#openChaCha(seq, header, 0, body, 0, body.length);
    }
    const nonce = this.nonce(seq, false);
    try {
      const key = await this.aesKey();
      const plain = await crypto.subtle.decrypt(
        { name: "AES-GCM", iv: nonce, additionalData: bs(header) },
        key,
        bs(body),
      );
      this.recordsUnderKey++;
      return new Uint8Array(plain);
    } catch {
      throw new ProtocolError("BAD_RECORD", "A record failed authentication");
    }
  }
}
