/**
 * Deadlines kept in the entries they belong to, all served by one timer. A table whose every
 * entry may carry a deadline, and whose entries mostly settle long before it (the calls a
 * session is waiting on: thousands a second when pipelined), should not pay a closure, an
 * object and a `Map` insertion and deletion per entry for it. Entries given the same duration
 * come due in the order they were added, so each duration keeps a doubly linked list in that
 * order (Node.js groups its timers the same way): adding appends, removing unlinks, neither
 * allocates, and the timer is armed for the earliest head. Entries fire late by at most the
 * timer's own lateness, never early. Keyed deadlines of other things are in `deadlines.ts`.
 *
 * @module
 */

import { EarliestTimer } from "./earliest_timer.ts";

/** The entries of one duration, oldest first. */
class TimeoutList {
  head: TimeoutEntry | undefined = undefined;
  tail: TimeoutEntry | undefined = undefined;
  constructor(readonly ms: number) {}
}

/**
 * What an entry extends to be given a deadline by {@link TimeoutLists}. The fields are the
 * lists' own: read {@link dueAt}, write none of them.
 */
export class TimeoutEntry {
  /** When the entry's last deadline is or was due (ms, on the lists' clock); `Infinity` before. */
  dueAt = Infinity;
  timeoutList: TimeoutList | undefined = undefined;
  timeoutPrev: TimeoutEntry | undefined = undefined;
  timeoutNext: TimeoutEntry | undefined = undefined;
}

/** Deadlines of entries, by duration, on one timer. */
export class TimeoutLists<E extends TimeoutEntry> extends EarliestTimer {
  #onDue: (entry: E) => void;
  /** Made on the first deadline: many owners (sessions) never set one. */
  #lists: Map<number, TimeoutList> | undefined;
  /** The list used last: most owners use one duration. */
  #last: TimeoutList | undefined;
  #size = 0;

  /**
   * @param onDue called once for each entry that comes due (it is out of the lists by then)
   * @param now clock in ms (tests may inject one)
   */
  constructor(onDue: (entry: E) => void, now: () => number = Date.now) {
    super(now);
    this.#onDue = onDue;
  }

  /** Entries waiting for their deadline. */
  get size(): number {
    return this.#size;
  }

  /** Gives `entry` a deadline `ms` from now, replacing the one it had. */
  add(entry: E, ms: number): void {
    if (entry.timeoutList !== undefined) this.delete(entry);
    let list = this.#last;
    if (list === undefined || list.ms !== ms) {
      const lists = this.#lists ??= new Map();
      list = lists.get(ms);
      if (list === undefined) lists.set(ms, list = new TimeoutList(ms));
      this.#last = list;
    }
    const tail = list.tail;
    let at = this.now() + ms;
    // A clock stepped back must not put the list out of order: such an entry fires later.
    if (tail !== undefined && tail.dueAt > at) at = tail.dueAt;
    entry.dueAt = at;
    entry.timeoutList = list;
    entry.timeoutPrev = tail;
    entry.timeoutNext = undefined;
    if (tail === undefined) list.head = entry;
    else tail.timeoutNext = entry;
    list.tail = entry;
    this.#size++;
    this.armBy(at);
  }

  /**
   * Takes `entry`'s deadline away; true when it had one. The timer stays armed when the last
   * entry goes (an owner adding entries all the time seldom re-arms it); {@link clear} stops it.
   */
  delete(entry: E): boolean {
    if (entry.timeoutList === undefined) return false;
    this.#unlink(entry);
    this.#size--;
    return true;
  }

  /** Takes every deadline away and stops the timer. */
  clear(): void {
    for (const list of this.#lists?.values() ?? []) {
      while (list.head !== undefined) this.#unlink(list.head);
    }
    this.#lists = undefined;
    this.#last = undefined;
    this.#size = 0;
    this.disarm();
  }

  #unlink(entry: TimeoutEntry): void {
    const list = entry.timeoutList!;
    const prev = entry.timeoutPrev, next = entry.timeoutNext;
    if (prev === undefined) list.head = next;
    else prev.timeoutNext = next;
    if (next === undefined) list.tail = prev;
    else next.timeoutPrev = prev;
    entry.timeoutList = entry.timeoutPrev = entry.timeoutNext = undefined;
  }

  protected override sweep(): void {
    const now = this.now();
    const due: E[] = [];
    let fromLists = 0;
    let next = Infinity;
    const lists = this.#lists;
    if (lists === undefined) return;
    for (const [ms, list] of lists) {
      const before = due.length;
      while (list.head !== undefined && list.head.dueAt <= now) {
        const entry = list.head as E;
        this.#unlink(entry);
        this.#size--;
        due.push(entry);
      }
      if (due.length > before) fromLists++;
      if (list.head !== undefined) next = Math.min(next, list.head.dueAt);
      else if (list !== this.#last) lists.delete(ms); // durations seldom used go
    }
    if (next !== Infinity) this.armBy(next);
    // A late timer finds several due at once: they still fire in deadline order.
    if (fromLists > 1) due.sort((a, b) => a.dueAt - b.dueAt);
    for (const entry of due) this.#onDue(entry);
  }
}
