/**
 * Timing of the calls that end while one record is being dispatched (refused, or answered by
 * a synchronous handler): they are reported together once the record is done, all with one
 * clock read, instead of two clock reads per call.
 *
 * @module
 */

import type { SessionMetrics } from "./metrics.ts";

/** Calls ended during the current record, reported with one clock read. */
export class RecordTiming {
  #metrics: SessionMetrics;
  /** `performance.now()` when the record being dispatched arrived. */
  arrived = 0;
  #methods: string[] = [];
  #outcomes: string[] = [];
  #count = 0;

  /** @param metrics where the calls are reported */
  constructor(metrics: SessionMetrics) {
    this.#metrics = metrics;
  }

  /** A record arrived: its calls are timed from now. */
  start(): void {
    this.arrived = performance.now();
  }

  /** Notes a call that ended during the current record. */
  ended(method: string, outcome: string): void {
    const n = this.#count++;
    this.#methods[n] = method;
    this.#outcomes[n] = outcome;
  }

  /** The record is done: reports its calls (arrays are reused, never shrunk). */
  flush(): void {
    const count = this.#count;
    if (count === 0) return;
    const seconds = (performance.now() - this.arrived) / 1000;
    this.#count = 0;
    for (let i = 0; i < count; i++) {
      this.#metrics.callDone(this.#methods[i], this.#outcomes[i], seconds);
      this.#methods[i] = "";
    }
  }
}
