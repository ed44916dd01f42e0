/**
 * Many deadlines on one timer. A session has a deadline per pending call, per running handler
 * and per write; arming a `setTimeout` for each costs several µs per call in Deno (its timers
 * are objects), which pipelined traffic pays thousands of times a second. Here one timer is
 * armed for the earliest deadline; removing an entry is a `Map` delete. Deadlines fire late by
 * at most the timer's own lateness, never early.
 *
 * @module
 */

import type { Timer } from "./bytes.ts";
import { KEEP, keptMap } from "./kept_map.ts";

interface Entry {
  at: number;
  fire: () => void;
}

/** The entry a table of deadlines keeps for itself (see `kept_map.ts`): it never comes. */
const NEVER: Entry = { at: Infinity, fire: () => {} };

/** A set of keyed deadlines served by a single timer. */
export class Deadlines<K> {
  /** Made on the first deadline (most sessions never set one), with the {@link KEEP} entry. */
  #entries: Map<K | typeof KEEP, Entry> | undefined;
  #timer: Timer | undefined;
  #timerAt = Infinity;
  #now: () => number;
  #release: boolean;

  /**
   * @param now clock in ms (tests may inject one)
   * @param releaseWhenEmpty clear the timer when the last deadline is deleted. For a set shared
   *   by many short-lived owners (all handshakes of a process): a pending timer would keep the
   *   process alive after its work is done. Without it the timer stays armed for a deadline
   *   already gone, so a busy owner re-adding entries seldom re-arms.
   */
  constructor(now: () => number = Date.now, releaseWhenEmpty = false) {
    this.#now = now;
    this.#release = releaseWhenEmpty;
  }

  /** Entries not yet fired or removed. */
  get size(): number {
    return this.#entries === undefined ? 0 : this.#entries.size - 1;
  }

  /** Calls `fire` once, `ms` from now, unless {@link delete}d first. Replaces an entry with the same key. */
  add(key: K, ms: number, fire: () => void): void {
    const at = this.#now() + ms;
    (this.#entries ??= keptMap<K, Entry>(NEVER)).set(key, { at, fire });
    if (at < this.#timerAt) this.#arm(at);
  }

  /** Removes a deadline; true when it was there. */
  delete(key: K): boolean {
    const deleted = this.#entries?.delete(key) ?? false;
    if (this.#release && this.#entries?.size === 1) this.clear();
    return deleted;
  }

  /** Removes every deadline and the timer. */
  clear(): void {
    this.#entries = undefined;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Infinity;
  }

  #arm(at: number): void {
    clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = setTimeout(() => this.#sweep(), Math.max(0, at - this.#now()));
  }

  #sweep(): void {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    const now = this.#now();
    const due: Entry[] = [];
    let next = Infinity;
    const entries = this.#entries;
    if (entries === undefined) return;
    for (const [key, entry] of entries) {
      if (key === KEEP) continue;
      if (entry.at <= now) {
        entries.delete(key);
        due.push(entry);
      } else if (entry.at < next) next = entry.at;
    }
    if (next !== Infinity) this.#arm(next);
    // A late timer finds several due at once: they still fire in deadline order.
    if (due.length > 1) due.sort((a, b) => a.at - b.at);
    for (const entry of due) entry.fire();
  }
}
