/**
 * The table of calls this side has sent and not yet seen answered: each settles exactly once,
 * by its answer, its timeout, its caller's `AbortSignal`, or the connection closing.
 *
 * @module
 */

import { CallTimeoutError, CancelledError, type RpcError } from "./errors.ts";
import { KEEP, keptMap } from "./kept_map.ts";
import type { Params } from "./methods.ts";
import type { CallOptions } from "./outgoing_calls.ts";
import { TimeoutEntry, TimeoutLists } from "./timeout_lists.ts";

/** A call that failed before its answer, as its retry needs it. */
export interface RetryableCall {
  /** The method called. */
  readonly method: string;
  /** Its params. */
  readonly params: Params;
  /** The options it was called with. */
  readonly options: CallOptions;
  /** When its timeout ends (epoch ms), `Infinity` without one. */
  readonly deadline: number;
}

/**
 * Asked, when a call fails before its answer (the connection went, the peer refused it), for a
 * promise of the call sent again: the caller's promise then settles with it. `undefined`: the
 * call fails with `err`. Not asked for timeouts and aborts.
 */
export type RetryHook = (call: RetryableCall, err: Error) => Promise<unknown> | undefined;

/** One pending call: its promise's settlers, and its deadline (no closure of its own). */
class Pending extends TimeoutEntry implements RetryableCall {
  onAbort: (() => void) | undefined = undefined;
  constructor(
    readonly id: number,
    readonly method: string,
    readonly timeoutMs: number,
    readonly resolve: (value: unknown) => void,
    readonly reject: (err: Error) => void,
    readonly options: CallOptions,
    readonly params: Params,
    readonly retry: RetryHook | undefined,
  ) {
    super();
  }

  get deadline(): number {
    return this.timeoutMs > 0 ? this.dueAt : Infinity;
  }

  /** Fails the call with `err`, unless its retry hook sends it again. */
  fail(err: Error): void {
    const again = this.retry?.(this, err);
    if (again === undefined) this.reject(err);
    else this.resolve(again);
  }
}

const NO_OPTIONS: CallOptions = Object.freeze({});
const NO_PARAMS = Object.freeze([]) as unknown as Params;

/** The entry the table keeps for itself (see `kept_map.ts`): no call's. */
const KEPT = new Pending(0, "", 0, () => {}, () => {}, NO_OPTIONS, NO_PARAMS, undefined);

/** Pending outgoing calls by id. */
export class PendingCalls {
  #entries = keptMap<number, Pending>(KEPT);
  /** Made for the first call with a timeout (a server seldom calls its clients). */
  #deadlines: TimeoutLists<Pending> | undefined;
  #giveUp: (id: number) => void;

  /** @param giveUp called with the id when a call times out or is aborted (send CANCEL) */
  constructor(giveUp: (id: number) => void) {
    this.#giveUp = giveUp;
  }

  /** Calls waiting for an answer. */
  get size(): number {
    return this.#entries.size - 1;
  }

  /**
   * Registers a call; the promise settles once.
   *
   * @param timeoutMs milliseconds before it fails with `TIMEOUT` (0: never)
   * @param options its `signal`, if any (kept for a retry)
   * @param params what it was called with (kept for a retry)
   * @param retry asked before it fails for any reason but its timeout or signal
   */
  add(
    id: number,
    method: string,
    timeoutMs: number,
    options: CallOptions = NO_OPTIONS,
    params: Params = NO_PARAMS,
    retry?: RetryHook,
  ): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const ms = timeoutMs > 0 ? timeoutMs : 0;
      const call = new Pending(id, method, ms, resolve, reject, options, params, retry);
      if (ms > 0) (this.#deadlines ??= new TimeoutLists((c) => this.#timedOut(c))).add(call, ms);
      if (options.signal) {
        const signal = options.signal;
        call.onAbort = () => {
          if (this.#take(id)) {
            reject(
              new CancelledError(`Call to '${method}' was cancelled`, { cause: signal.reason }),
            );
            this.#giveUp(id);
          }
        };
        signal.addEventListener("abort", call.onAbort, { once: true });
      }
      this.#entries.set(id, call);
    });
  }

  #timedOut(call: Pending): void {
    if (this.#take(call.id) !== call) return;
    call.reject(
      new CallTimeoutError(`Call to '${call.method}' timed out after ${call.timeoutMs} ms`),
    );
    this.#giveUp(call.id);
  }

  /** Resolves call `id` with `value`; false when no such call is pending. */
  resolve(id: number, value: unknown): boolean {
    const entry = this.#take(id);
    entry?.resolve(value);
    return entry !== undefined;
  }

  /** Fails call `id` (or retries it: see {@link RetryHook}); false when no such call is pending. */
  reject(id: number, err: Error): boolean {
    const entry = this.#take(id);
    entry?.fail(err);
    return entry !== undefined;
  }

  /** Stops the deadline timer (the session is closed; every call has been settled). */
  clear(): void {
    this.#deadlines?.clear();
  }

  /** Gives up call `id` as if its signal aborted: rejects with `CANCELLED`, tells the peer. */
  abort(id: number, reason?: unknown): void {
    const entry = this.#take(id);
    if (entry === undefined) return;
    entry.reject(new CancelledError(`Call to '${entry.method}' was cancelled`, { cause: reason }));
    this.#giveUp(id);
  }

  /** Rejects every pending call whose id passes `filter`, with an error made per call. */
  rejectWhere(filter: (id: number) => boolean, makeError: (method: string) => RpcError): void {
    for (const id of [...this.#entries.keys()]) {
      if (id === KEEP || !filter(id)) continue;
      const entry = this.#take(id);
      entry?.fail(makeError(entry.method));
    }
  }

  #take(id: number): Pending | undefined {
    const entry = this.#entries.get(id);
    if (entry === undefined) return undefined;
    this.#entries.delete(id);
    // The timer stays armed when the table empties: re-arming it for every sequential call
    // cost a setTimeout and a clearTimeout each (~3 µs); {@link clear} stops it at close.
    this.#deadlines?.delete(entry);
    if (entry.onAbort) entry.options.signal!.removeEventListener("abort", entry.onAbort);
    return entry;
  }
}
