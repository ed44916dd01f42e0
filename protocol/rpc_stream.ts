/**
 * What a caller holds for a streaming call: {@link RpcStream} (a server stream: async
 * iteration, `readable`, the final `result`) and {@link RpcChannel} (a bidirectional
 * channel: the same plus `send` and `close`). Both are flow-controlled with credits
 * (`flow.ts`); breaking out of `for await`, `cancel()` or `await using` cancel the call end to
 * end.
 *
 * @module
 */

import { CancelledError } from "./errors.ts";
import { type ChunkBuffer, SendCredit } from "./flow.ts";

/** What a stream needs from its session. */
export interface StreamLink {
  /** Cancels the call (CANCEL to the peer; `result` rejects with `CANCELLED`). */
  cancel(reason?: unknown): void;
  /** Sends one chunk upstream (channels only; credit already taken). */
  send?(value: unknown): void;
  /** Ends the upstream (channels only). */
  end?(): void;
}

/**
 * A stream of chunks from the peer. Iterate it once (`for await`), or read `readable`; the
 * call's final value (a generator's `return`) is `result`. Chunks are read in order; the
 * producer waits whenever this side has `window` unread chunks.
 *
 * @example
 * ```ts ignore
 * for await (const tick of client.stream<{ timestamp: string }>("time", [3, 100])) {
 *   console.log(tick.timestamp);
 * }
 * ```
 */
export class RpcStream<T = unknown, R = unknown> implements AsyncIterable<T>, AsyncDisposable {
  /** The method called. */
  readonly method: string;
  /** The call's final value; rejects with the call's error (also thrown by iteration). */
  readonly result: Promise<R>;
  /**
   * Resolves on the peer's first answer: `true` when it streams (a chunk or the stream's
   * end), `false` when the handler answered with a plain value (then `result` holds it).
   */
  readonly streaming: Promise<boolean>;
  #buffer: ChunkBuffer<T>;
  #link: StreamLink;
  #taken = false;
  #settled = false;

  /** @internal created by `Session.stream()` / `Session.open()` */
  constructor(
    method: string,
    buffer: ChunkBuffer<T>,
    result: Promise<R>,
    link: StreamLink,
    streaming: Promise<boolean>,
  ) {
    this.method = method;
    this.streaming = streaming;
    this.#buffer = buffer;
    this.#link = link;
    this.result = result;
    result.then(
      () => {
        this.#settled = true;
        buffer.end();
        this.ended();
      },
      (err) => {
        this.#settled = true;
        buffer.fail(err);
        this.ended(err);
      },
    );
  }

  /** True once the call has ended (result settled). */
  get done(): boolean {
    return this.#settled;
  }

  /** Chunks received and not yet read. */
  get buffered(): number {
    return this.#buffer.size;
  }

  /** The most chunks buffered at once so far (never more than the window). */
  get bufferedHighWater(): number {
    return this.#buffer.highWater;
  }

  /** Iterates the chunks once. Leaving the loop early cancels the call. */
  [Symbol.asyncIterator](): AsyncIterator<T> {
    this.#take();
    return {
      next: () => this.#buffer.next(),
      return: (value?: unknown) => {
        // The loop was left: cancel quietly.
        if (!this.#settled) this.#link.cancel();
        this.#buffer.discard();
        return Promise.resolve({ value: value as T, done: true });
      },
    };
  }

  /** The chunks as a `ReadableStream` (pull-based: flow control is kept). */
  get readable(): ReadableStream<T> {
    this.#take();
    return new ReadableStream<T>({
      pull: async (controller) => {
        const r = await this.#buffer.next();
        if (r.done) controller.close();
        else controller.enqueue(r.value);
      },
      cancel: (reason) => this.cancel(reason),
    }, { highWaterMark: 0 });
  }

  /**
   * Cancels the call unless it has ended: the producer's signal aborts on the peer, and a
   * loop reading this stream throws `CANCELLED` (buffered chunks are dropped).
   */
  cancel(reason?: unknown): void {
    if (this.#settled) return;
    this.#link.cancel(reason);
    this.#buffer.discard(
      new CancelledError(`The stream of '${this.method}' was cancelled`, { cause: reason }),
    );
  }

  /** Cancels the call unless it has ended. */
  [Symbol.asyncDispose](): Promise<void> {
    this.cancel();
    return Promise.resolve();
  }

  /** Hook for subclasses: the call ended (with its error, if any). */
  protected ended(_err?: unknown): void {}

  #take(): void {
    if (this.#taken) throw new TypeError(`The stream of '${this.method}' is already being read`);
    this.#taken = true;
  }
}

/**
 * A bidirectional channel: {@link RpcStream} for what the peer sends, plus `send` for what
 * this side sends (each `send` waits for credit from the peer, in call order) and `close`
 * to end this side's half. The handler reads what this side sends as `this.input`.
 *
 * @example
 * ```ts ignore
 * await using chat = client.open<string, string>("chat");
 * await chat.send("hello");
 * await chat.close();                      // no more input: the handler's loop ends
 * for await (const line of chat) console.log(line);
 * ```
 */
export class RpcChannel<In = unknown, Out = unknown, R = unknown> extends RpcStream<Out, R> {
  #credit: SendCredit;
  #sendLink: StreamLink;
  #last: Promise<void> = Promise.resolve();
  #closed = false;

  /** @internal created by `Session.open()` */
  constructor(
    method: string,
    buffer: ChunkBuffer<Out>,
    result: Promise<R>,
    link: StreamLink,
    streaming: Promise<boolean>,
    credit: SendCredit = new SendCredit(),
  ) {
    super(method, buffer, result, link, streaming);
    this.#credit = credit;
    this.#sendLink = link;
  }

  /**
   * Sends one value to the handler. Resolves once it is queued (credit permitting); rejects
   * when the channel is closed for sending, the call has ended, or the value cannot be sent.
   */
  send(value: In): Promise<void> {
    if (this.#closed) {
      return Promise.reject(new TypeError(`The channel of '${this.method}' is closed for sending`));
    }
    if (this.#credit.tryTake()) {
      try {
        this.#sendLink.send!(value);
        return Promise.resolve();
      } catch (err) {
        return Promise.reject(err);
      }
    }
    const sent = this.#credit.acquire().then(() => this.#sendLink.send!(value));
    this.#last = sent.catch(() => {});
    return sent;
  }

  /** Ends this side's half once every `send` so far has left; reading goes on. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#last;
    if (!this.done) this.#sendLink.end!();
  }

  protected override ended(err?: unknown): void {
    this.#credit.fail(
      new CancelledError(`The call '${this.method}' has ended: nothing more can be sent`, {
        cause: err,
      }),
    );
  }
}
