/**
 * The table of calls this side has sent and not yet seen answered: each settles exactly once,
 * by its answer, its timeout, its caller's `AbortSignal`, or the connection closing.
 *
 * @module
 */

import { Deadlines } from "./deadlines.ts";
import { CallTimeoutError, CancelledError, type RpcError } from "./errors.ts";
import { KEEP, keptMap } from "./kept_map.ts";

interface Entry {
  method: string;
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

/** Options of one pending call. */
export interface PendingOptions {
  /** Milliseconds before the call fails with `TIMEOUT`; 0 or undefined: none. */
  timeoutMs?: number;
  /** Aborting it fails the call with `CANCELLED`. */
  signal?: AbortSignal;
}

/** The entry the table keeps for itself (see `kept_map.ts`): no call's. */
const KEPT: Entry = {
  method: "",
  resolve: () => {},
  reject: () => {},
  signal: undefined,
  onAbort: undefined,
};

/** Pending outgoing calls by id. */
export class PendingCalls {
  #entries = keptMap<number, Entry>(KEPT);
  #deadlines = new Deadlines<number>();
  #giveUp: (id: number) => void;

  /** @param giveUp called with the id when a call times out or is aborted (send CANCEL) */
  constructor(giveUp: (id: number) => void) {
    this.#giveUp = giveUp;
  }

  /** Calls waiting for an answer. */
  get size(): number {
    return this.#entries.size - 1;
  }

  /** Registers a call; the promise settles once. */
  add(id: number, method: string, options: PendingOptions): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const entry: Entry = {
        method,
        resolve,
        reject,
        signal: options.signal,
        onAbort: undefined,
      };
      if (options.timeoutMs && options.timeoutMs > 0) {
        const ms = options.timeoutMs;
        this.#deadlines.add(id, ms, () => {
          if (this.#take(id)) {
            reject(new CallTimeoutError(`Call to '${method}' timed out after ${ms} ms`));
            this.#giveUp(id);
          }
        });
      }
      if (options.signal) {
        const signal = options.signal;
        entry.onAbort = () => {
          if (this.#take(id)) {
            reject(
              new CancelledError(`Call to '${method}' was cancelled`, { cause: signal.reason }),
            );
            this.#giveUp(id);
          }
        };
        signal.addEventListener("abort", entry.onAbort, { once: true });
      }
      this.#entries.set(id, entry);
    });
  }

  /** Resolves call `id` with `value`; false when no such call is pending. */
  resolve(id: number, value: unknown): boolean {
    const entry = this.#take(id);
    entry?.resolve(value);
    return entry !== undefined;
  }

  /** Rejects call `id`; false when no such call is pending. */
  reject(id: number, err: Error): boolean {
    const entry = this.#take(id);
    entry?.reject(err);
    return entry !== undefined;
  }

  /** Stops the deadline timer (the session is closed; every call has been settled). */
  clear(): void {
    this.#deadlines.clear();
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
      entry?.reject(makeError(entry.method));
    }
  }

  #take(id: number): Entry | undefined {
    const entry = this.#entries.get(id);
    if (entry === undefined) return undefined;
    this.#entries.delete(id);
    // The timer stays armed when the table empties: re-arming it for every sequential call
    // cost a setTimeout and a clearTimeout each (~3 µs); {@link clear} stops it at close.
    this.#deadlines.delete(id);
    if (entry.onAbort) entry.signal!.removeEventListener("abort", entry.onAbort);
    return entry;
  }
}
