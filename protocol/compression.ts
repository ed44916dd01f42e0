/**
 * deflate-raw compression of message payloads (the COMPRESSED flag), on Web streams only:
 * `CompressionStream` and `DecompressionStream`, no runtime-specific APIs.
 *
 * Inflating is bounded: {@link inflateRaw} stops as soon as the output would pass the
 * caller's limit, so a deflate bomb never allocates much more than that limit plus one
 * chunk. To keep a single step of the decompressor small, the compressed input is fed in
 * slices sized from the limit (deflate expands at most about 1032 times). Corrupt or
 * truncated input is an `INVALID_PARAMS` error; an oversized one is `RESOURCE_EXHAUSTED`.
 *
 * The deflate-raw data is inflated inside a gzip member this file frames around it (header,
 * then a trailer computed from the output): some `"deflate-raw"` decompressors, Deno's among
 * them, end quietly on truncated input, while a gzip decompressor must find the trailer right
 * where the deflate data ends.
 *
 * @module
 */

import { bufferSource, concatBytes, crc32 } from "./bytes.ts";
import { InvalidParamsError, ResourceExhaustedError } from "./errors.ts";

/** Payloads smaller than this many bytes are never worth compressing. */
export const DEFAULT_COMPRESSION_THRESHOLD = 1024;

/** The most bytes one byte of deflate data can inflate to (258 bytes per 2 bits). */
const MAX_DEFLATE_RATIO = 1032;
/** Smallest slice of compressed input fed to the decompressor at once. */
const MIN_INFLATE_SLICE = 64;
/** Largest slice of compressed input fed to the decompressor at once. */
const MAX_INFLATE_SLICE = 64 * 1024;
/** Reads allowed beyond one per output byte (the end of stream and some slack). */
const EXTRA_READS = 16;

/**
 * Compresses `data` with deflate-raw.
 *
 * @param data the bytes to compress (may be empty)
 * @returns the compressed bytes, in one contiguous buffer
 */
export async function deflateRaw(data: Uint8Array): Promise<Uint8Array> {
  const stream = new CompressionStream("deflate-raw");
  const writer = stream.writable.getWriter();
  const reader = stream.readable.getReader();
  const pumped = writer.write(bufferSource(data)).then(() => writer.close());
  // A failure also reaches the reader, which reports it; never leave this one unhandled.
  pumped.catch(() => {});
  const chunks: Uint8Array[] = [];
  // Chunks are never empty and deflate grows data by a few bytes per 16 KiB block at most.
  const maxReads = 2 * data.length + 1024;
  for (let reads = 0;; reads++) {
    if (reads > maxReads) {
      await reader.cancel();
      throw new RangeError("Compressor produced more output than deflate allows");
    }
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
  }
  await pumped;
  return joinChunks(chunks);
}

/**
 * Inflates deflate-raw `data`, refusing output larger than `maxBytes`. Inflating stops (and
 * the stream is cancelled) as soon as the output passes the limit.
 *
 * @param data the compressed bytes
 * @param maxBytes largest inflated size accepted (`Infinity` for no limit)
 * @returns the inflated bytes, in one contiguous buffer (may be empty)
 * @throws {ResourceExhaustedError} when the output would exceed `maxBytes`
 * @throws {InvalidParamsError} when `data` is corrupt, truncated or followed by extra bytes
 * @throws {RangeError} when `maxBytes` is negative or `NaN`
 */
export async function inflateRaw(data: Uint8Array, maxBytes: number): Promise<Uint8Array> {
  if (!(maxBytes >= 0)) throw new RangeError(`Invalid inflate limit: ${maxBytes}`);
  const slice = Math.min(
    MAX_INFLATE_SLICE,
    Math.max(MIN_INFLATE_SLICE, Math.floor(maxBytes / MAX_DEFLATE_RATIO)),
  );
  // Chunks are never empty, so every read but the last adds at least one byte.
  const maxReads = Math.min(maxBytes, data.length * MAX_DEFLATE_RATIO) + EXTRA_READS;
  const inflater = new BoundedInflater(maxBytes, maxReads);
  try {
    await inflater.write(GZIP_HEADER);
    for (let offset = 0; offset < data.length; offset += slice) {
      await inflater.write(data.subarray(offset, offset + slice));
    }
    const output = joinChunks(inflater.chunks);
    await inflater.write(gzipTrailer(output));
    await inflater.close();
    // Output after the trailer means the trailer was read as deflate data: never valid.
    if (inflater.size !== output.length) throw new RangeError("Output after the gzip trailer");
    return output;
  } catch (err) {
    await inflater.cancel();
    if (err instanceof ResourceExhaustedError) throw err;
    throw new InvalidParamsError("Corrupt compressed payload", { cause: err });
  }
}

/**
 * Whether a payload of `size` bytes should be compressed: `size >= threshold`. A threshold
 * of 0 (or less) compresses every payload; `Infinity` (or `NaN`) compresses none.
 *
 * @param size the payload size in bytes
 * @param threshold the smallest size worth compressing, e.g.
 *   {@link DEFAULT_COMPRESSION_THRESHOLD}
 */
export function shouldCompress(size: number, threshold: number): boolean {
  return size >= threshold;
}

/** A gzip member header: deflate, no flags, no mtime, unknown OS (RFC 1952). */
const GZIP_HEADER = new Uint8Array([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);

/** The gzip trailer of `output`: its CRC-32 and its size mod 2^32, little-endian. */
function gzipTrailer(output: Uint8Array): Uint8Array {
  const trailer = new Uint8Array(8);
  const view = new DataView(trailer.buffer);
  view.setUint32(0, crc32(output), true);
  view.setUint32(4, output.length >>> 0, true);
  return trailer;
}

/** What {@link BoundedInflater} sees in place of a read that has not settled yet. */
const NOT_READY: unique symbol = Symbol("not ready");
const NOT_READY_YET: Promise<typeof NOT_READY> = Promise.resolve(NOT_READY);

/**
 * A gzip `DecompressionStream` driven step by step: after each write, the output it produced
 * is collected and checked against the limit before anything more is written.
 *
 * The deflate-raw data travels inside a gzip member because a `"deflate-raw"` decompressor
 * may end quietly on truncated input (Deno's does); a gzip decompressor must find the
 * trailer right after the end of the deflate data, so truncated input, extra bytes and
 * corrupt data all fail.
 */
class BoundedInflater {
  readonly chunks: Uint8Array[] = [];
  size = 0;
  #stream = new DecompressionStream("gzip");
  #writer = this.#stream.writable.getWriter();
  #reader = this.#stream.readable.getReader();
  #pending: Promise<ReadableStreamReadResult<Uint8Array>> | undefined;
  #reads = 0;
  #done = false;
  #maxBytes: number;
  #maxReads: number;

  constructor(maxBytes: number, maxReads: number) {
    this.#maxBytes = maxBytes;
    this.#maxReads = maxReads;
  }

  /** Writes `bytes`, then collects the output they produced. */
  async write(bytes: Uint8Array): Promise<void> {
    await this.#collect();
    await this.#writer.write(bufferSource(bytes));
    await this.#collect();
  }

  /** Closes the input and collects the rest of the output; throws unless the stream ended. */
  async close(): Promise<void> {
    await this.#collect();
    await this.#writer.close();
    for (let i = 0; i <= this.#maxReads && !this.#done; i++) await this.#collect(true);
    if (!this.#done) throw new RangeError("Decompressor did not end");
  }

  /** Cancels both sides, ignoring their failures. */
  async cancel(): Promise<void> {
    this.chunks.length = 0;
    await this.#reader.cancel().catch(() => {});
    await this.#writer.abort().catch(() => {});
  }

  /**
   * Takes the output available now (or, with `wait`, the next output): a read that has not
   * settled is kept for the next call, so no chunk is lost or reordered.
   */
  async #collect(wait = false): Promise<void> {
    for (; !this.#done; this.#reads++) {
      if (this.#reads > this.#maxReads) {
        throw new RangeError("Decompressor produced too many chunks");
      }
      if (this.#pending === undefined) {
        this.#pending = this.#reader.read();
        this.#pending.catch(() => {});
      }
      // A read that has already settled wins the race: its reaction is queued first.
      const result = await (wait ? this.#pending : Promise.race([this.#pending, NOT_READY_YET]));
      if (result === NOT_READY) return;
      this.#pending = undefined;
      if (result.done) {
        this.#done = true;
        return;
      }
      this.size += result.value.length;
      if (this.size > this.#maxBytes) {
        throw new ResourceExhaustedError(
          `Compressed payload inflates past the ${this.#maxBytes}-byte message limit`,
        );
      }
      this.chunks.push(result.value);
      if (wait) return;
    }
  }
}

/** The chunks as one buffer; a lone chunk is returned as is. */
function joinChunks(chunks: Uint8Array[]): Uint8Array {
  return chunks.length === 1 ? chunks[0] : concatBytes(...chunks);
}
