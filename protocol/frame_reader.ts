/**
 * Reads whole frames from a {@link ByteChannel} into a buffer sized by the traffic: it starts
 * small (an idle connection holds {@link MIN_READ_BUFFER} bytes), doubles while reads fill it,
 * shrinks to twice a read that did not, and large records get a buffer of their own that is
 * dropped once they are consumed.
 *
 * @module
 */

import type { ByteChannel } from "./channel.ts";
import { ProtocolError } from "./errors.ts";
import { describeForeignBytes, HEADER_SIZE } from "./frame.ts";

/** Smallest adaptive read buffer: what an idle connection holds while it waits. */
export const MIN_READ_BUFFER = 512;
/** Largest steady read buffer under load. Larger records get a buffer of their own. */
export const MAX_READ_BUFFER = 64 * 1024;

/** Reads exact byte counts from a channel, buffering what arrives early. */
export class FrameReader {
  #channel: ByteChannel;
  #buf: Uint8Array;
  /** The buffer size wanted now (the steady size). */
  #size: number;
  #adaptive: boolean;
  #start = 0;
  #end = 0;
  #eof = false;

  /**
   * @param channel the byte pipe
   * @param bufferSize a fixed buffer size; without it the size adapts to the traffic. Before
   *   authentication the server uses exactly one M2 frame (140 bytes) so that nothing beyond
   *   it is read.
   */
  constructor(channel: ByteChannel, bufferSize?: number) {
    this.#channel = channel;
    this.#adaptive = bufferSize === undefined;
    this.#size = bufferSize ?? MIN_READ_BUFFER;
    this.#buf = new Uint8Array(this.#size);
  }

  /** Bytes already buffered and not yet consumed. */
  get buffered(): number {
    return this.#end - this.#start;
  }

  /** The size of the buffer held now (what an idle connection costs). */
  get bufferSize(): number {
    return this.#buf.length;
  }

  /**
   * Switches to a fixed buffer size, or to an adaptive one without an argument (the server
   * does that after authentication). Keeps buffered bytes.
   */
  resize(bufferSize?: number): void {
    this.#adaptive = bufferSize === undefined;
    this.#size = bufferSize ?? MIN_READ_BUFFER;
    if (this.#buf.length !== this.#size && this.#size >= this.buffered) this.#reallocate(0);
  }

  /**
   * Reads exactly `n` bytes. Resolves `null` on a clean end of stream before the first byte;
   * throws `ProtocolError` on an end of stream in the middle. The returned view is valid
   * only until the next call (copy what must outlive it).
   */
  async read(n: number): Promise<Uint8Array | null> {
    if (this.#end - this.#start >= n) return this.#take(n);
    if (n > this.#buf.length - this.#start || this.#buf.length < this.#size) this.#makeRoom(n);
    while (this.#end - this.#start < n) {
      if (this.#eof) break;
      const room = this.#buf.length - this.#end;
      this.#received(await this.#channel.read(this.#buf.subarray(this.#end)), room);
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

  /**
   * When nothing is buffered, reads once from the channel (at least a byte, or the end of
   * stream) and resolves when that read is in; `undefined` when bytes are buffered already or
   * the stream has ended. Not an async function: a connection idling here holds the channel's
   * pending read and one promise, not suspended frames.
   */
  fill(): Promise<void> | undefined {
    if (this.#end > this.#start || this.#eof) return undefined;
    this.#start = this.#end = 0;
    if (this.#buf.length < this.#size) this.#reallocate(0);
    return this.#channel.read(this.#buf).then(this.#filled);
  }

  #filled = (got: number | null): void => this.#received(got, this.#buf.length);

  /** Takes in what one channel read of at most `room` bytes gave (`null`: end of stream). */
  #received(got: number | null, room: number): void {
    if (got === null) {
      this.#eof = true;
      return;
    }
    this.#end += got;
    if (this.#adaptive) this.#adapt(got, room);
  }

  /** Reads one 20-byte header (see {@link read}). */
  readHeader(): Promise<Uint8Array | null> {
    return this.read(HEADER_SIZE);
  }

  /**
   * A read that filled the room doubles the buffer; one that did not (the socket had no more)
   * shrinks it to twice what it got, so a connection that falls idle holds little.
   */
  #adapt(got: number, room: number): void {
    if (got === room) {
      if (this.#size < MAX_READ_BUFFER) this.#size *= 2;
      return;
    }
    let want = MIN_READ_BUFFER;
    while (want < got * 2 && want < this.#size) want *= 2;
    this.#size = want;
  }

  /**
   * The read buffer, with the first unconsumed byte at {@link offset}: for parsing buffered
   * bytes in place, without a view. Valid until the next read or {@link consume}.
   */
  get bytes(): Uint8Array {
    return this.#buf;
  }

  /** Where the unconsumed bytes start in {@link bytes}. */
  get offset(): number {
    return this.#start;
  }

  /** Consumes `n` buffered bytes (at most {@link buffered}) that were parsed in place. */
  consume(n: number): void {
    if (n > this.#end - this.#start) throw new RangeError("Consumed more than is buffered");
    this.#start += n;
    if (this.#start === this.#end) this.#drained();
  }

  #take(n: number): Uint8Array {
    const view = this.#buf.subarray(this.#start, this.#start + n);
    this.#start += n;
    if (this.#start === this.#end) this.#drained();
    return view;
  }

  #drained(): void {
    this.#start = this.#end = 0;
    // A buffer grown for a large record or a burst goes back to the steady size once drained
    // (a view handed out keeps the old one alive as long as the caller needs it).
    if (this.#buf.length > this.#size) this.#buf = new Uint8Array(this.#size);
  }

  #makeRoom(n: number): void {
    if (n > this.#buf.length || this.#buf.length < this.#size) {
      this.#reallocate(n);
      return;
    }
    const have = this.#end - this.#start;
    this.#buf.copyWithin(0, this.#start, this.#end);
    this.#start = 0;
    this.#end = have;
  }

  /** Moves the buffered bytes to a new buffer of the steady size (or `n`, if larger). */
  #reallocate(n: number): void {
    const next = new Uint8Array(Math.max(n, this.#size));
    next.set(this.#buf.subarray(this.#start, this.#end));
    this.#end -= this.#start;
    this.#start = 0;
    this.#buf = next;
  }
}
