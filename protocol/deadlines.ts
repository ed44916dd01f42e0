/**
 * Keyed deadlines on one timer: handshakes, closing sessions, stalled writes, a record body
 * that is late. Arming a `setTimeout` for each costs several µs in Deno (its timers are
 * objects). Here one timer is armed for the earliest deadline; an entry is a `Map` entry and a
 * two-field object; removing one is a `Map` delete. Deadlines fire late by at most the timer's
 * own lateness, never early. A table that owns its entries and gives thousands of them a
 * deadline every second (the calls a session waits on) uses `timeout_lists.ts` instead, which
 * keeps the deadline in the entry itself. (Built on those lists, these entries held six fields
 * each, and the server's RSS per idle connection at 5,000 was ~2 KiB higher, 29.5–30.0 KiB
 * against 27.1–27.7, in the bench's `mem`.)
 *
 * @module
 */

import { EarliestTimer } from "./earliest_timer.ts";
import { KEEP, keptMap } from "./kept_map.ts";

interface Entry {
  at: number;
  fire: () => void;
}

/** The entry a table of deadlines keeps for itself (see `kept_map.ts`): it never comes. */
const NEVER: Entry = { at: Infinity, fire: () => {} };

/** A set of keyed deadlines served by a single timer. */
export class Deadlines<K> extends EarliestTimer {
  /** Made on the first deadline (most sessions never set one), with the {@link KEEP} entry. */
  #entries: Map<K | typeof KEEP, Entry> | undefined;
  #release: boolean;

  /**
   * @param now clock in ms (tests may inject one)
   * @param releaseWhenEmpty clear the timer when the last deadline is deleted. For a set shared
   *   by many short-lived owners (all handshakes of a process): a pending timer would keep the
   *   process alive after its work is done. Without it the timer stays armed for a deadline
   *   already gone, so a busy owner re-adding entries seldom re-arms.
   */
  constructor(now: () => number = Date.now, releaseWhenEmpty = false) {
    super(now);
    this.#release = releaseWhenEmpty;
  }

  /** Entries not yet fired or removed. */
  get size(): number {
    return this.#entries === undefined ? 0 : this.#entries.size - 1;
  }

  /** Calls `fire` once, `ms` from now, unless {@link delete}d first. Replaces an entry with the same key. */
  add(key: K, ms: number, fire: () => void): void {
    const at = this.now() + ms;
    (this.#entries ??= keptMap<K, Entry>(NEVER)).set(key, { at, fire });
    this.armBy(at);
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
    this.disarm();
  }

  protected override sweep(): void {
    const now = this.now();
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
    if (next !== Infinity) this.armBy(next);
    // A late timer finds several due at once: they still fire in deadline order.
    if (due.length > 1) due.sort((a, b) => a.at - b.at);
    for (const entry of due) entry.fire();
  }
}
