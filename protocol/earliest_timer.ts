/**
 * One `setTimeout` for many deadlines, armed for the earliest: the base of the keyed deadlines
 * (`deadlines.ts`) and of the timeout lists (`timeout_lists.ts`). A timer per deadline would
 * cost several µs each in Deno (its timers are objects).
 *
 * @module
 */

import type { Timer } from "./bytes.ts";

/** A table of deadlines served by one timer; the subclass fires what is due in {@link sweep}. */
export abstract class EarliestTimer {
  #timer: Timer | undefined;
  #timerAt = Infinity;
  /** The clock, in ms. */
  protected readonly now: () => number;

  /** @param now the clock in ms (tests may inject one) */
  constructor(now: () => number) {
    this.now = now;
  }

  /** Arms the timer for `at`, unless it is armed for that time or earlier already. */
  protected armBy(at: number): void {
    if (at >= this.#timerAt) return;
    clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = setTimeout(() => this.#fired(), Math.max(0, at - this.now()));
  }

  /** Stops the timer. */
  protected disarm(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Infinity;
  }

  /** The timer came (it is disarmed by then): fire what is due, `armBy` the next deadline. */
  protected abstract sweep(): void;

  #fired(): void {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    this.sweep();
  }
}
