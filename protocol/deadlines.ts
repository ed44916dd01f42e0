/**
 * Many keyed deadlines on one timer: handshakes, closing sessions, stalled writes, handlers
 * with a deadline. Arming a `setTimeout` for each costs several µs in Deno (its timers are
 * objects), which busy traffic would pay thousands of times a second. Entries are found by key
 * in a `Map` and timed by `timeout_lists.ts` (one timer armed for the earliest deadline; a table
 * that owns its entries can use it directly, as the pending calls do, and save the `Map` and a
 * closure per entry). Deadlines fire late by at most the timer's own lateness, never early.
 *
 * @module
 */

import { KEEP, keptMap } from "./kept_map.ts";
import { TimeoutEntry, TimeoutLists } from "./timeout_lists.ts";

class Entry<K> extends TimeoutEntry {
  constructor(readonly key: K, readonly fire: () => void) {
    super();
  }
}

/** The entry a table of deadlines keeps for itself (see `kept_map.ts`): it is never due. */
const NEVER = new Entry<never>(undefined as never, () => {});

/** A set of keyed deadlines served by a single timer. */
export class Deadlines<K> {
  /** Made on the first deadline (most sessions never set one), with the {@link KEEP} entry. */
  #entries: Map<K | typeof KEEP, Entry<K>> | undefined;
  /** Made with {@link #entries}. */
  #lists: TimeoutLists<Entry<K>> | undefined;
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
    return this.#lists?.size ?? 0;
  }

  /** Calls `fire` once, `ms` from now, unless {@link delete}d first. Replaces an entry with the same key. */
  add(key: K, ms: number, fire: () => void): void {
    const entries = this.#entries ??= keptMap<K, Entry<K>>(NEVER);
    const lists = this.#lists ??= new TimeoutLists(
      (due) => {
        this.#entries?.delete(due.key);
        due.fire();
      },
      this.#now,
      this.#release,
    );
    const old = entries.get(key);
    if (old !== undefined) lists.delete(old);
    const entry = new Entry(key, fire);
    entries.set(key, entry);
    lists.add(entry, ms);
  }

  /** Removes a deadline; true when it was there. */
  delete(key: K): boolean {
    const entry = this.#entries?.get(key);
    if (entry === undefined || key === KEEP) return false;
    this.#entries!.delete(key);
    return this.#lists!.delete(entry);
  }

  /** Removes every deadline and the timer. */
  clear(): void {
    this.#entries = undefined;
    this.#lists?.clear();
  }
}
