/**
 * The handlers running for the peer's requests on one session: their contexts, cancellation,
 * deadlines, and the count the session uses for backpressure. A handler stays counted until
 * it has really stopped, even after a CANCEL (the lesson of HTTP/2 "Rapid Reset").
 *
 * @module
 */

import { CallTimeoutError, InvalidParamsError, RpcError } from "./errors.ts";
import { ChunkBuffer, isStreamSource, SendCredit } from "./flow.ts";
import type { SessionMetrics } from "./metrics.ts";
import { type Middleware, runMiddleware } from "./middleware.ts";
import type { Slots } from "./slots.ts";
import { type ContextHost, handlerContext, Running } from "./handler_context.ts";
import type { MethodHandler } from "./methods.ts";
import { TimeoutLists } from "./timeout_lists.ts";

/** Stream options a request carried. */
export interface StreamRequest {
  /** Chunks the caller granted up front: the caller accepts a stream. */
  credit?: number;
  /** Window for the caller's input: the call is a channel (`open()`). */
  input?: number;
}

/** What {@link IncomingCalls} needs from its session. */
export interface IncomingHost extends ContextHost {
  /** Sends a RESPONSE. */
  reply(id: number, value: unknown, compress: boolean): void;
  /** Sends an ERROR. */
  replyError(id: number, err: unknown): void;
  /** Sends one STREAM_DATA chunk. */
  streamData(id: number, value: unknown, compress: boolean): void;
  /** Sends STREAM_END with the stream's final value. */
  streamEnd(id: number, result: unknown, compress: boolean): void;
  /** Grants the caller `n` more chunks of input (CREDIT). */
  grant(id: number, n: number): void;
  /** Channel inputs grant credit as soon as their reader runs dry (`ByteChannel.nagle`). */
  readonly nagle?: boolean;
  /** Middleware around every handler, outermost first (none: called directly). */
  readonly middleware?: readonly Middleware[];
  /** Open streams allowed at once; more are refused with RESOURCE_EXHAUSTED. */
  readonly maxStreams: number;
  /** A running handler finished (a slot is free). */
  settled(): void;
  /** Server-wide handler slots shared by every connection, if capped. */
  readonly slots?: Slots;
  /** Told the method, outcome and duration of every finished call, if set. */
  readonly metrics?: SessionMetrics;
  /**
   * With `metrics`: a call that finished synchronously inside {@link IncomingCalls.run}. The
   * host reports it timed at the end of the record that carried it (its answer leaves with
   * that record's answers), which spares a clock read per call.
   */
  callEnded?(method: string, outcome: string): void;
}

/** The outcome label of a handler failure: its code as the caller will see it. */
export function outcomeOf(err: unknown): string {
  return err instanceof RpcError ? err.code : "APPLICATION_ERROR";
}

/**
 * Asks an iterator to stop (a generator's `finally` runs). Whatever `return()` does — throw,
 * reject, or return something that is not a promise — stays here.
 */
function stopIterator(iterator: AsyncIterator<unknown>): void {
  Promise.resolve().then(() => iterator.return?.()).catch(() => {});
}

function abort(state: Running, reason: RpcError): void {
  if (state.cancelled) return;
  state.cancelled = true;
  state.reason = reason;
  state.controller?.abort(reason);
  state.credit?.fail(reason);
  state.input?.fail(reason);
  // Stops the stream being sent; a generator's `finally` runs (once it is not awaiting).
  if (state.iterator) stopIterator(state.iterator);
}

/** The empty table every {@link IncomingCalls} reads until a handler outlives its record. */
const NONE_RUNNING = new Map<number, Running>(); // never written: see #runningMap()

/** The peer's requests that are running on this side. */
export class IncomingCalls {
  #host: IncomingHost;
  /** Made for the first handler that outlives its record (quick handlers never need it). */
  #running: Map<number, Running> = NONE_RUNNING;
  /** Made for the first handler with a deadline that outlives its record. */
  #deadlines: TimeoutLists<Running> | undefined;
  #streams = 0;

  /** @param host the session's side of things */
  constructor(host: IncomingHost) {
    this.#host = host;
  }

  /**
   * Handlers running now that count for backpressure (async ones; a synchronous handler
   * finishes before this counts it). Open streams are counted by {@link streams} instead:
   * they wait on the peer's credit, which only reading can bring.
   */
  get size(): number {
    return this.#running.size - this.#streams;
  }

  /** Streams and channels open now (handler side). */
  get streams(): number {
    return this.#streams;
  }

  /** True when nothing runs at all (calls and streams). */
  get idle(): boolean {
    return this.#running.size === 0;
  }

  /** True when a request with this id is running. */
  has(id: number): boolean {
    return this.#running.has(id);
  }

  /**
   * Runs `handler` with `this` = the call context. Answers when `reply` is true, unless the
   * call was cancelled meanwhile (its caller has gone).
   *
   * @param timeout the handler's deadline, ms from now (0: none)
   * @param started `performance.now()` when the request arrived (read only with metrics)
   * @param stream the request's stream options (a `stream()` or `open()` call)
   * @param compress compress the answers (the request was compressed)
   */
  run(
    id: number,
    reply: boolean,
    method: string,
    handler: MethodHandler,
    args: unknown[],
    meta: Record<string, unknown>,
    timeout = 0,
    started = 0,
    stream?: StreamRequest,
    compress = false,
  ): void {
    const credit = stream?.credit === undefined ? undefined : new SendCredit(stream.credit);
    const state = new Running(id, reply, method, compress, credit);
    if (stream?.input !== undefined) {
      // A channel: a conversation, not work. It takes no handler slot and does not count
      // for backpressure (it waits on the caller's input, which only reading brings).
      if (!this.#openStream(id, reply, method, state, started)) return;
      const host = this.#host;
      state.input = new ChunkBuffer(stream.input, (n) => host.grant(id, n), host.nagle);
      host.grant(id, stream.input);
      this.#invoke(id, reply, method, handler, args, meta, timeout, state, started, false, false);
      return;
    }
    const slots = this.#host.slots;
    if (slots === undefined || slots.tryAcquire()) {
      this.#invoke(id, reply, method, handler, args, meta, timeout, state, started, true, true);
      return;
    }
    // No free slot server-wide: the call waits its turn, counted as running here so that this
    // connection's backpressure still applies. Cancelled meanwhile, it never runs.
    this.#runningMap().set(id, state);
    slots.run(() => {
      this.#running.delete(id);
      if (state.cancelled) {
        slots.release();
        this.#done(method, state.reason?.code ?? "CANCELLED", started);
        this.#host.settled();
        return;
      }
      this.#invoke(id, reply, method, handler, args, meta, timeout, state, started, false, true);
    });
  }

  /** Counts a new stream; refuses it (and answers) past `maxStreams`. */
  #openStream(
    id: number,
    reply: boolean,
    method: string,
    state: Running,
    started: number,
  ): boolean {
    if (this.#streams >= this.#host.maxStreams) {
      const err = new RpcError(
        "RESOURCE_EXHAUSTED",
        `Too many open streams on this connection (${this.#host.maxStreams})`,
        { retryable: true },
      );
      if (reply) this.#host.replyError(id, err);
      this.#done(method, err.code, started);
      return false;
    }
    state.streaming = true;
    this.#streams++;
    return true;
  }

  #invoke(
    id: number,
    reply: boolean,
    method: string,
    handler: MethodHandler,
    args: unknown[],
    meta: Record<string, unknown>,
    timeout: number,
    state: Running,
    started: number,
    inRun: boolean,
    slot: boolean,
  ): void {
    const host = this.#host;
    const deadline = timeout ? Date.now() + timeout : undefined;
    const ctx = handlerContext(host, state, method, deadline, meta);
    let result: unknown;
    try {
      result = host.middleware === undefined
        ? handler.apply(ctx, args)
        : runMiddleware(host.middleware, ctx, args, reply, handler);
    } catch (err) {
      result = Promise.reject(err);
    }
    if (!(result instanceof Promise) && !isStreamSource(result) && !state.streaming) {
      if (slot) host.slots?.release();
      if (reply) host.reply(id, result, state.compress);
      this.#ended(method, "ok", started, inRun);
      return;
    }
    const release = () => {
      if (slot) host.slots?.release();
      slot = false;
    };
    this.#runningMap().set(id, state);
    if (timeout) {
      (this.#deadlines ??= new TimeoutLists((s) => this.#deadlinePassed(s))).add(state, timeout);
    }
    let outcome = "ok";
    Promise.resolve(result).then(async (value) => {
      if (state.cancelled) outcome = state.reason?.code ?? "CANCELLED";
      else if (isStreamSource(value)) {
        release();
        outcome = await this.#sendStream(id, reply, method, state, value, started);
      } else if (reply) host.reply(id, value, state.compress);
    }).catch((err) => {
      if (state.cancelled) outcome = state.reason?.code ?? "CANCELLED";
      else {
        outcome = outcomeOf(err);
        if (reply) host.replyError(id, err);
      }
    }).finally(() => {
      release();
      this.#done(method, outcome, started);
      this.#deadlines?.delete(state);
      this.#running.delete(id);
      if (state.streaming) {
        this.#streams--;
        state.input?.discard();
      }
      host.settled();
    });
  }

  /**
   * Sends a handler's stream: waits for credit before pulling each chunk (so a generator
   * never runs ahead of its consumer), ends with STREAM_END and the generator's return
   * value. Returns the outcome; throws (to be answered ERROR) when the stream fails.
   */
  async #sendStream(
    id: number,
    reply: boolean,
    method: string,
    state: Running,
    source: AsyncIterable<unknown>,
    started: number,
  ): Promise<string> {
    const host = this.#host;
    const iterator = source[Symbol.asyncIterator]();
    const credit = state.credit;
    if (credit === undefined || !reply) {
      stopIterator(iterator);
      throw new InvalidParamsError(
        `'${method}' returns a stream: call it with stream() (or open() for a channel)`,
      );
    }
    if (!state.streaming && !this.#openStream(id, false, method, state, started)) {
      stopIterator(iterator);
      throw new RpcError(
        "RESOURCE_EXHAUSTED",
        `Too many open streams on this connection (${host.maxStreams})`,
        { retryable: true },
      );
    }
    state.iterator = iterator;
    // The slot count for backpressure changed: this call is a stream now.
    host.settled();
    while (true) {
      if (!credit.tryTake()) await credit.acquire();
      const r = await iterator.next();
      if (state.cancelled) return state.reason?.code ?? "CANCELLED";
      if (r.done) {
        host.streamEnd(id, r.value, state.compress);
        return "ok";
      }
      host.streamData(id, r.value, state.compress);
    }
  }

  /** The caller granted `n` more chunks (CREDIT); unknown ids are ignored. */
  credit(id: number, n: number): void {
    this.#running.get(id)?.credit?.add(n);
  }

  /** A chunk of the caller's input arrived (STREAM_DATA); unknown ids are ignored. */
  inputChunk(id: number, value: unknown): void {
    this.#running.get(id)?.input?.push(value);
  }

  /** The caller ended its input (STREAM_END). */
  inputEnd(id: number): void {
    this.#running.get(id)?.input?.end();
  }

  /** A call finished synchronously: inside `run()` its host times it with its record. */
  #ended(method: string, outcome: string, started: number, inRun: boolean): void {
    const host = this.#host;
    if (host.metrics === undefined) return;
    if (inRun && host.callEnded !== undefined) host.callEnded(method, outcome);
    else this.#done(method, outcome, started);
  }

  #done(method: string, outcome: string, started: number): void {
    const metrics = this.#host.metrics;
    if (metrics !== undefined) {
      metrics.callDone(method, outcome, (performance.now() - started) / 1000);
    }
  }

  #runningMap(): Map<number, Running> {
    if (this.#running === NONE_RUNNING) this.#running = new Map();
    return this.#running;
  }

  /**
   * A handler's deadline (the caller's timeout, from the request) passed: its signal aborts
   * and a caller still waiting is answered `TIMEOUT` at once; whatever the handler does next
   * is dropped, like a cancelled call's.
   */
  #deadlinePassed(state: Running): void {
    if (state.cancelled) return;
    const err = new CallTimeoutError(`Call to '${state.method}' passed its deadline`);
    abort(state, err);
    if (state.reply) this.#host.replyError(state.id, err);
  }

  /** The caller cancelled (or its input failed): the handler's signal aborts. */
  cancel(id: number, reason?: Error): void {
    const state = this.#running.get(id);
    if (state === undefined) return;
    const err = reason instanceof RpcError
      ? reason
      : new RpcError("CANCELLED", reason?.message ?? "The caller cancelled the call");
    abort(state, err);
  }

  /**
   * The connection is gone: every running handler's signal aborts with the error `reason`
   * makes (made only when a handler is running).
   */
  abortAll(reason: () => RpcError): void {
    if (this.#running.size) {
      const err = reason();
      for (const state of this.#running.values()) abort(state, err);
    }
    this.#deadlines?.clear();
  }
}
