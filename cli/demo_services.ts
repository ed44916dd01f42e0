/**
 * The demo server's methods: the services the seed system offered (`greet`,
 * `long_running_task`) plus `echo` and `health`.
 *
 * @module
 */

import { CancelledError, InvalidParamsError } from "../protocol/errors.ts";
import type { CallContext, Methods } from "../protocol/methods.ts";

/** Longest task the demo accepts (seconds). */
const MAX_TASK_SECONDS = 3600;

/** Resolves after `ms`, or rejects with CANCELLED as soon as `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new CancelledError("Task cancelled"));
    const onAbort = () => {
      clearTimeout(timer);
      reject(new CancelledError("Task cancelled", { cause: signal.reason }));
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

/** Builds the demo methods. `started` is the server's start time (for `health`). */
export function demoServices(started = Date.now()): Methods {
  return {
    /** `greet(name)` → `"Hello, <name>!"`; a non-string name is a TypeError, as in the seed. */
    greet(name: unknown): string {
      if (typeof name !== "string") throw new TypeError("Name must be a string");
      return `Hello, ${name}!`;
    },
    /** Waits `seconds` (default 2) and reports it; cancelling the call stops it. */
    async long_running_task(this: CallContext, seconds: unknown = 2): Promise<string> {
      if (
        typeof seconds !== "number" || !Number.isFinite(seconds) || seconds < 0 ||
        seconds > MAX_TASK_SECONDS
      ) {
        throw new InvalidParamsError(`seconds must be a number from 0 to ${MAX_TASK_SECONDS}`);
      }
      await sleep(seconds * 1000, this.signal);
      return `Task completed after ${seconds} seconds.`;
    },
    /** Returns its argument unchanged (bytes included). */
    echo(value: unknown): unknown {
      return value;
    },
    /** Liveness: status and uptime. */
    health(): { status: string; uptime_s: number } {
      return { status: "ok", uptime_s: Math.round((Date.now() - started) / 1000) };
    },
  };
}
