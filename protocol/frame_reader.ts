/**
 * Reads whole frames from a {@link ByteChannel} into a small buffer that grows only for large
 * records and shrinks back afterwards (idle connections stay cheap).
 *
 * @module
 */

import type { ByteChannel } from "./channel.ts";
import { ProtocolError } from "./errors.ts";
import { describeForeignBytes, HEADER_SIZE } from "./frame.ts";

/** Size of the steady read buffer. Larger records get a buffer of their own. */
export const DEFAULT_READ_BUFFER = 4 * 1024;

/** Reads exact byte counts from a channel, buffering what arrives early. */
export class FrameReader {
  #channel: ByteChannel;
  #buf: Uint8Array;
  #steady: number;
  #start = 0;
  #end = 0;
  #eof = false;

  /**
   * @param channel the byte pipe
   * @param bufferSize steady buffer size; before authentication the server uses exactly one
   *   M2 frame (140 bytes) so that nothing beyond it is read
   */
  constructor(channel: ByteChannel, bufferSize = DEFAULT_READ_BUFFER) {
    this.#channel = channel;
    this.#steady = bufferSize;
    this.#buf = new Uint8Array(bufferSize);
  }

  /** Bytes already buffered and not yet consumed. */
  get buffered(): number {
    return this.#end - this.#start;
  }

  /** Switches to a new steady buffer size (after authentication). Keeps buffered bytes. */
  resize(bufferSize: number): void {
    this.#steady = bufferSize;
    if (this.#buf.length !== bufferSize && bufferSize >= this.buffered) {
      const next = new Uint8Array(bufferSize);
      next.set(this.#buf.subarray(this.#start, this.#end));
      this.#end -= this.#start;
      this.#start = 0;
      this.#buf = next;
    }
  }

  /**
   * Reads exactly `n` bytes. Resolves `null` on a clean end of stream before the first byte;
   * throws `ProtocolError` on an end of stream in the middle. The returned view is valid
   * only until the next call (copy what must outlive it).
   */
  async read(n: number): Promise<Uint8Array | null> {
    if (this.#end - this.#start >= n) return this.#take(n);
    if (n > this.#buf.length - this.#start) this.#makeRoom(n);
    while (this.#end - this.#start < n) {
      if (this.#eof) break;
      const got = await this.#channel.read(this.#buf.subarray(this.#end));
      if (got === null) {
        this.#eof = true;
        break;
      }
      this.#end += got;
    }
    if (this.#end - this.#start >= n) return this.#take(n);
    if (this.#end === this.#start) return null;
    const partial = this.#buf.subarray(this.#start, this.#end);
    const foreign = partial[0] !== 0x54 || (partial.length > 1 && partial[1] !== 0x52);
    throw new ProtocolError(
      "PROTOCOL_ERROR",
      foreign
        ? `Not a trust-rpc peer: ${describeForeignBytes(partial)}`
        : "Connection ended in the middle of a frame",
    );
  }

  /** Reads one 20-byte header (see {@link read}). */
  readHeader(): Promise<Uint8Array | null> {
    return this.read(HEADER_SIZE);
  }

  #take(n: number): Uint8Array {
    const view = this.#buf.subarray(this.#start, this.#start + n);
    this.#start += n;
    if (this.#start === this.#end) {
      this.#start = this.#end = 0;
      // A buffer grown for one large record goes back to the steady size once drained
      // (the view handed out keeps the old one alive as long as the caller needs it).
      if (this.#buf.length > this.#steady) this.#buf = new Uint8Array(this.#steady);
    }
    return view;
  }

  #makeRoom(n: number): void {
    const have = this.#end - this.#start;
    if (n > this.#buf.length) {
      const next = new Uint8Array(Math.max(n, this.#steady));
      next.set(this.#buf.subarray(this.#start, this.#end));
      this.#buf = next;
    } else {
      this.#buf.copyWithin(0, this.#start, this.#end);
    }
    this.#start = 0;
    this.#end = have;
  }
}
