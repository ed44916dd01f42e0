/**
 * The handlers running for the peer's requests on one session: their contexts, cancellation,
 * deadlines, and the count the session uses for backpressure. A handler stays counted until
 * it has really stopped, even after a CANCEL (the lesson of HTTP/2 "Rapid Reset").
 *
 * @module
 */

import { Deadlines } from "./deadlines.ts";
import { RpcError } from "./errors.ts";
import type { SessionMetrics } from "./metrics.ts";
import type { Slots } from "./slots.ts";
import type { CallContext, MethodHandler, Params } from "./methods.ts";

interface Running {
  controller: AbortController | undefined;
  cancelled: boolean;
  reason: RpcError | undefined;
}

/** What {@link IncomingCalls} needs from its session. */
export interface IncomingHost {
  /** Session id (hex). */
  readonly sessionId: string;
  /** Extra context properties (getters stay live), e.g. `peer` on the server. */
  readonly context: Record<string, unknown>;
  /** Calls back the peer. */
  call(method: string, params?: Params): Promise<unknown>;
  /** Notifies the peer. */
  notify(method: string, params?: Params): void;
  /** Sends a RESPONSE. */
  reply(id: number, value: unknown): void;
  /** Sends an ERROR. */
  replyError(id: number, err: unknown): void;
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

const STATE = Symbol("call state");

/** Per-call state lives on the context object under a symbol; everything else is shared. */
type Context = CallContext & { [STATE]: Running };

/** The outcome label of a handler failure: its code as the caller will see it. */
export function outcomeOf(err: unknown): string {
  return err instanceof RpcError ? err.code : "APPLICATION_ERROR";
}

function abort(state: Running, reason: RpcError): void {
  if (state.cancelled) return;
  state.cancelled = true;
  state.reason = reason;
  state.controller?.abort(reason);
}

/** The peer's requests that are running on this side. */
export class IncomingCalls {
  #host: IncomingHost;
  #running = new Map<number, Running>();
  #deadlines = new Deadlines<number>();
  #base: object;

  /** @param host the session's side of things */
  constructor(host: IncomingHost) {
    this.#host = host;
    // One shared prototype per session: a call's context is `Object.create(base)` plus
    // three fields, instead of a fresh object with closures and getters per call.
    this.#base = Object.defineProperties({}, {
      ...Object.getOwnPropertyDescriptors(host.context),
      sessionId: { value: host.sessionId },
      call: { value: (m: string, p?: Params) => host.call(m, p) },
      notify: { value: (m: string, p?: Params) => host.notify(m, p) },
      signal: {
        get(this: Context) {
          const state = this[STATE];
          if (state.controller === undefined) {
            state.controller = new AbortController();
            if (state.reason) state.controller.abort(state.reason);
          }
          return state.controller.signal;
        },
      },
    });
  }

  /** Handlers running now (async ones; a synchronous handler finishes before this counts it). */
  get size(): number {
    return this.#running.size;
  }

  /** True when a request with this id is running. */
  has(id: number): boolean {
    return this.#running.has(id);
  }

  /**
   * Runs `handler` with `this` = the call context. Answers when `reply` is true, unless the
   * call was cancelled meanwhile (its caller has gone).
   *
   * @param started `performance.now()` when the request arrived (read only with metrics)
   */
  run(
    id: number,
    reply: boolean,
    method: string,
    handler: MethodHandler,
    args: unknown[],
    meta: Record<string, unknown>,
    started = 0,
  ): void {
    const state: Running = { controller: undefined, cancelled: false, reason: undefined };
    const slots = this.#host.slots;
    if (slots === undefined || slots.tryAcquire()) {
      this.#invoke(id, reply, method, handler, args, meta, state, started, true);
      return;
    }
    // No free slot server-wide: the call waits its turn, counted as running here so that this
    // connection's backpressure still applies. Cancelled meanwhile, it never runs.
    this.#running.set(id, state);
    slots.run(() => {
      this.#running.delete(id);
      if (state.cancelled) {
        slots.release();
        this.#done(method, state.reason?.code ?? "CANCELLED", started);
        this.#host.settled();
        return;
      }
      this.#invoke(id, reply, method, handler, args, meta, state, started, false);
    });
  }

  #invoke(
    id: number,
    reply: boolean,
    method: string,
    handler: MethodHandler,
    args: unknown[],
    meta: Record<string, unknown>,
    state: Running,
    started: number,
    inRun: boolean,
  ): void {
    const slots = this.#host.slots;
    const timeout = typeof meta.timeout === "number" && meta.timeout > 0 ? meta.timeout : 0;
    const ctx = Object.create(this.#base) as Context;
    ctx[STATE] = state;
    (ctx as { method: string }).method = method;
    (ctx as { deadline: number | undefined }).deadline = timeout ? Date.now() + timeout : undefined;
    (ctx as { meta: Record<string, unknown> }).meta = meta;
    let result: unknown;
    try {
      result = handler.apply(ctx, args);
    } catch (err) {
      slots?.release();
      if (reply) this.#host.replyError(id, err);
      this.#ended(method, outcomeOf(err), started, inRun);
      return;
    }
    if (!(result instanceof Promise)) {
      slots?.release();
      if (reply) this.#host.reply(id, result);
      this.#ended(method, "ok", started, inRun);
      return;
    }
    this.#running.set(id, state);
    if (timeout) {
      this.#deadlines.add(
        id,
        timeout,
        () => abort(state, new RpcError("TIMEOUT", `Call to '${method}' passed its deadline`)),
      );
    }
    let outcome = "ok";
    result.then(
      (value) => {
        if (state.cancelled) outcome = state.reason?.code ?? "CANCELLED";
        else if (reply) this.#host.reply(id, value);
      },
      (err) => {
        if (state.cancelled) outcome = state.reason?.code ?? "CANCELLED";
        else {
          outcome = outcomeOf(err);
          if (reply) this.#host.replyError(id, err);
        }
      },
    ).finally(() => {
      slots?.release();
      this.#done(method, outcome, started);
      this.#deadlines.delete(id);
      this.#running.delete(id);
      if (this.#running.size === 0) this.#deadlines.clear();
      this.#host.settled();
    });
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

  /** The caller cancelled: the handler's signal aborts with `CANCELLED`. */
  cancel(id: number): void {
    const state = this.#running.get(id);
    if (state) abort(state, new RpcError("CANCELLED", "The caller cancelled the call"));
  }

  /** The connection is gone: every running handler's signal aborts with `reason`. */
  abortAll(reason: RpcError): void {
    for (const state of this.#running.values()) abort(state, reason);
    this.#deadlines.clear();
  }
}
