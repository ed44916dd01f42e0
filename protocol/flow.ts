/**
 * Credit-based flow control for streams (PROTOCOL.md M.2 CREDIT; protocol/README.md §6.7):
 * the consumer grants the producer a number of chunks; a producer without credit waits; a
 * chunk beyond the credit granted is a protocol violation. Both halves are used by both
 * sides: a caller consumes a server stream and produces into a channel, a handler the
 * reverse.
 *
 * @module
 */

import { ProtocolError } from "./errors.ts";

/** Chunks a consumer grants at the start of a stream, by default. */
export const DEFAULT_STREAM_WINDOW = 1024;
/** The largest window (and the largest single grant) accepted. */
export const MAX_STREAM_WINDOW = 1 << 16;

interface CreditWaiter {
  resolve: () => void;
  reject: (err: Error) => void;
}

/** The producer's side: chunks it may still send. */
export class SendCredit {
  #credit: number;
  #waiters: CreditWaiter[] = [];
  #error: Error | undefined;

  /** @param initial credit granted up front */
  constructor(initial = 0) {
    this.#credit = initial;
  }

  /** Chunks that may be sent now without waiting. */
  get available(): number {
    return this.#credit;
  }

  /** True when a chunk may be sent at once (credit left and nobody queued before it). */
  get ready(): boolean {
    return this.#credit > 0 && this.#waiters.length === 0 && this.#error === undefined;
  }

  /** The consumer granted `n` more chunks. Invalid grants are a protocol violation. */
  add(n: number): void {
    if (!Number.isInteger(n) || n < 1 || n > MAX_STREAM_WINDOW) {
      throw new ProtocolError("PROTOCOL_ERROR", `Invalid stream credit ${n}`);
    }
    this.#credit = Math.min(this.#credit + n, Number.MAX_SAFE_INTEGER);
    while (this.#credit > 0 && this.#waiters.length > 0) {
      this.#credit--;
      this.#waiters.shift()!.resolve();
    }
  }

  /** Takes one chunk of credit now; false when there is none (call {@link acquire}). */
  tryTake(): boolean {
    if (!this.ready) return false;
    this.#credit--;
    return true;
  }

  /** Resolves once one chunk of credit is taken for the caller, in call order. */
  acquire(): Promise<void> {
    if (this.#error) return Promise.reject(this.#error);
    if (this.tryTake()) return Promise.resolve();
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  /** No more credit will come: waiting and later producers reject with `err`. */
  fail(err: Error): void {
    if (this.#error) return;
    this.#error = err;
    for (const w of this.#waiters.splice(0)) w.reject(err);
  }
}

type Settle<T> = {
  resolve: (r: IteratorResult<T>) => void;
  reject: (err: Error) => void;
};

/**
 * The consumer's side: chunks received and not yet read. Reading a chunk gives its credit
 * back to the producer in batches of half the window, so the producer never holds more
 * than `window` chunks in flight and this buffer never holds more than `window` chunks.
 */
export class ChunkBuffer<T> {
  #window: number;
  #grant: (n: number) => void;
  #grantWhenDry: boolean;
  #items: T[] = [];
  #head = 0;
  /** Chunks the producer may still send (granted minus received). */
  #outstanding: number;
  #consumed = 0;
  #waiter: Settle<T> | undefined;
  #done = false;
  #error: Error | undefined;
  #highWater = 0;

  /**
   * @param window chunks granted up front (the caller sends this grant itself)
   * @param grant sends a CREDIT of `n` chunks to the producer
   * @param grantWhenDry also grant what was read as soon as the reader finds nothing left
   *   (on `ByteChannel.nagle` channels, where the CREDIT carries the ACK the peer waits for)
   */
  constructor(window: number, grant: (n: number) => void, grantWhenDry = false) {
    this.#window = window;
    this.#outstanding = window;
    this.#grant = grant;
    this.#grantWhenDry = grantWhenDry;
  }

  /** Chunks buffered now. */
  get size(): number {
    return this.#items.length - this.#head;
  }

  /** The most chunks ever buffered at once (to observe flow control). */
  get highWater(): number {
    return this.#highWater;
  }

  /** True once the end or an error arrived. */
  get finished(): boolean {
    return this.#done || this.#error !== undefined;
  }

  /**
   * A chunk arrived. Throws `PROTOCOL_ERROR` when the producer exceeded its credit.
   * Chunks arriving after the end are dropped.
   */
  push(value: T): void {
    if (this.finished) return;
    if (this.#outstanding <= 0) {
      throw new ProtocolError("PROTOCOL_ERROR", "Stream chunk beyond the credit granted");
    }
    this.#outstanding--;
    const waiter = this.#waiter;
    if (waiter !== undefined) {
      this.#waiter = undefined;
      this.#consumedOne();
      waiter.resolve({ value, done: false });
      return;
    }
    this.#items.push(value);
    const size = this.size;
    if (size > this.#highWater) this.#highWater = size;
  }

  /** The producer ended: reading ends after the buffered chunks. */
  end(): void {
    if (this.finished) return;
    this.#done = true;
    this.#wake();
  }

  /** The stream failed: reading throws `err` after the buffered chunks. */
  fail(err: Error): void {
    if (this.finished) return;
    this.#error = err;
    this.#wake();
  }

  /**
   * Drops whatever is buffered. Without `err` reading ends (the reader has gone); with it,
   * reading throws `err` at once (the stream was cancelled under a reader).
   */
  discard(err?: Error): void {
    this.#items = [];
    this.#head = 0;
    if (!this.finished) {
      if (err) this.#error = err;
      else this.#done = true;
    }
    this.#wake();
  }

  /** The next chunk, the end, or the error. */
  next(): Promise<IteratorResult<T>> {
    if (this.#head < this.#items.length) {
      const value = this.#items[this.#head];
      this.#items[this.#head++] = undefined as T;
      if (this.#head === this.#items.length) {
        this.#items = [];
        this.#head = 0;
      } else if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
        this.#items = this.#items.slice(this.#head);
        this.#head = 0;
      }
      this.#consumedOne();
      return Promise.resolve({ value, done: false });
    }
    if (this.#error) return Promise.reject(this.#error);
    if (this.#done) return Promise.resolve({ value: undefined, done: true });
    if (this.#waiter) return Promise.reject(new TypeError("A stream has one reader at a time"));
    if (this.#grantWhenDry && this.#consumed > 0) this.#grantConsumed();
    return new Promise((resolve, reject) => this.#waiter = { resolve, reject });
  }

  #consumedOne(): void {
    if (this.finished) return;
    this.#consumed++;
    if (this.#consumed * 2 >= this.#window) this.#grantConsumed();
  }

  #grantConsumed(): void {
    const n = this.#consumed;
    this.#consumed = 0;
    this.#outstanding += n;
    this.#grant(n);
  }

  #wake(): void {
    const waiter = this.#waiter;
    if (waiter === undefined || this.#head < this.#items.length) return;
    this.#waiter = undefined;
    if (this.#error) waiter.reject(this.#error);
    else waiter.resolve({ value: undefined, done: true });
  }
}

/** Checks a window or grant size from options or from the wire. */
export function checkWindow(n: unknown, what: string): number {
  if (typeof n !== "number" || !Number.isInteger(n) || n < 1 || n > MAX_STREAM_WINDOW) {
    throw new RangeError(`${what} must be an integer from 1 to ${MAX_STREAM_WINDOW}`);
  }
  return n;
}

/**
 * True for what a handler may return to stream: an async iterable (an async generator, a
 * `ReadableStream`, …). Strings, arrays and other sync iterables are plain values.
 */
export function isStreamSource(value: unknown): value is AsyncIterable<unknown> {
  return typeof value === "object" && value !== null &&
    typeof (value as AsyncIterable<unknown>)[Symbol.asyncIterator] === "function";
}
