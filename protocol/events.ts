/**
 * Named one-way events (PROTOCOL.md M.2 EVENT): listeners by name, a `"*"` listener that
 * sees every event, and a policy for events nobody listens to. A listener that throws is
 * logged and never reaches the connection.
 *
 * @module
 */

import { escapeForLog } from "./alerts.ts";
import { METHOD_NAME_PATTERN } from "./limits.ts";
import { type Logger, silentLogger } from "./logger.ts";

/** The name that subscribes to every event: its listener also gets the event name. */
export const ANY_EVENT = "*";

/**
 * What happens to an event nobody listens to: `"ignore"` (default; logged at debug level),
 * `"warn"` (logged at warn level, rate-limited), or a function told about it.
 */
export type UnhandledEventPolicy =
  | "ignore"
  | "warn"
  | ((name: string, ...args: unknown[]) => void);

/** Checks an event name: the same rule as method names. */
export function checkEventName(name: string): void {
  if (typeof name !== "string" || !METHOD_NAME_PATTERN.test(name)) {
    throw new TypeError(
      `Invalid event name ${JSON.stringify(name)}: use letters, digits, _ . / : -`,
    );
  }
}

// deno-lint-ignore no-explicit-any
type Listener = (...args: any[]) => void;

/**
 * Listeners by event name. `Args` are what a listener receives before the data (the peer,
 * on the server).
 */
export class EventHub<Args extends unknown[] = []> {
  #listeners = new Map<string, Set<Listener>>();
  #unhandled: UnhandledEventPolicy;
  #log: Logger;

  /**
   * @param unhandled what to do with events nobody listens to
   * @param log where listener errors and unhandled events are logged
   */
  constructor(unhandled: UnhandledEventPolicy = "ignore", log: Logger = silentLogger) {
    this.#unhandled = unhandled;
    this.#log = log;
  }

  /** Adds a listener; returns a function that removes it. */
  on(name: string, listener: Listener): () => void {
    if (name !== ANY_EVENT) checkEventName(name);
    let set = this.#listeners.get(name);
    if (set === undefined) this.#listeners.set(name, set = new Set());
    set.add(listener);
    return () => this.off(name, listener);
  }

  /** Removes a listener (no-op when it is not there). */
  off(name: string, listener: Listener): void {
    const set = this.#listeners.get(name);
    if (set?.delete(listener) && set.size === 0) this.#listeners.delete(name);
  }

  /** Calls the listeners of `name` (then the `"*"` ones) with `...args, data`. */
  dispatch(name: string, args: Args, data: unknown): void {
    const named = this.#listeners.get(name);
    const any = this.#listeners.get(ANY_EVENT);
    if (named === undefined && any === undefined) return this.#onUnhandled(name, args, data);
    if (named) { for (const fn of [...named]) this.#invoke(name, fn, [...args, data]); }
    if (any) { for (const fn of [...any]) this.#invoke(name, fn, [...args, name, data]); }
  }

  #invoke(name: string, fn: Listener, args: unknown[]): void {
    try {
      const result = fn(...args) as unknown;
      if (result instanceof Promise) result.catch((err) => this.#listenerFailed(name, err));
    } catch (err) {
      this.#listenerFailed(name, err);
    }
  }

  #listenerFailed(name: string, err: unknown): void {
    this.#log.limited("warn", "event_listener", "event_listener_failed", {
      event: escapeForLog(name),
      reason: escapeForLog(err instanceof Error ? err.message : String(err)),
    });
  }

  #onUnhandled(name: string, args: Args, data: unknown): void {
    const policy = this.#unhandled;
    if (typeof policy === "function") {
      try {
        policy(name, ...args, data);
      } catch (err) {
        this.#listenerFailed(name, err);
      }
    } else if (policy === "warn") {
      this.#log.limited("warn", "event_unhandled", "event_unhandled", {
        event: escapeForLog(name),
      });
    } else this.#log.debug("event_unhandled", { event: escapeForLog(name) });
  }
}
