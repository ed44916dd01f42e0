/**
 * A counting semaphore for handlers: at most `limit` run at once across every connection that
 * shares it (a server-wide worker pool). Work that finds no free slot waits in FIFO order.
 *
 * @module
 */

/** Slots for running handlers. */
export class Slots {
  #limit: number;
  #active = 0;
  #queue: (() => void)[] = [];
  #head = 0;

  /** @param limit how many may run at once (at least 1) */
  constructor(limit: number) {
    if (!(limit >= 1)) throw new RangeError("The handler limit must be at least 1");
    this.#limit = limit;
  }

  /** Slots taken now. */
  get active(): number {
    return this.#active;
  }

  /** Work waiting for a slot. */
  get queued(): number {
    return this.#queue.length - this.#head;
  }

  /** Takes a slot if one is free. */
  tryAcquire(): boolean {
    if (this.#active >= this.#limit) return false;
    this.#active++;
    return true;
  }

  /** Runs `start` holding a slot: at once if one is free, else when one is released. */
  run(start: () => void): void {
    if (this.tryAcquire()) start();
    else this.#queue.push(start);
  }

  /** Gives a slot back; the oldest waiting work gets it. */
  release(): void {
    if (this.#head < this.#queue.length) {
      const next = this.#queue[this.#head++];
      if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
        this.#queue = this.#queue.slice(this.#head);
        this.#head = 0;
      }
      next(); // the slot passes straight to it
      return;
    }
    this.#active--;
  }
}
