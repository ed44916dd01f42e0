/**
 * The write-stall deadline of a send queue (protocol/README.md §5.4, "Write stalls"): a write
 * still in progress `stallMs` after it began closes the channel, which ends it, and the queue
 * then reports `PEER_TIMEOUT`. The deadlines of every queue in the process share one timer. A
 * write does not move its queue's entry, it only notes when it began: the entry fires `stallMs`
 * after it was added, and a queue still writing then is checked against the write in progress
 * (and watched again for the rest of its time), while one that is not writing drops out. So a
 * busy queue touches no timer per write and an idle one holds no deadline at all.
 *
 * @module
 */

import type { ByteChannel } from "./channel.ts";
import { Deadlines } from "./deadlines.ts";
import { ProtocolError } from "./errors.ts";

const WATCHES = new Deadlines<WriteStallWatch>(Date.now, true);

/** Watches the writes of one send queue for a stall. */
export class WriteStallWatch {
  #channel: ByteChannel;
  #stallMs: number;
  /** `Date.now()` when the write in progress began; 0 between writes. */
  #started = 0;
  /** This watch has an entry on the shared timer. */
  #watched = false;
  #error: Error | undefined;

  /**
   * @param channel closed when a write stalls
   * @param stallMs how long a write may take (ms)
   */
  constructor(channel: ByteChannel, stallMs: number) {
    this.#channel = channel;
    this.#stallMs = stallMs;
  }

  /** The `PEER_TIMEOUT` error once a write stalled (the channel is closed then). */
  get error(): Error | undefined {
    return this.#error;
  }

  /** A write begins. */
  begin(): void {
    this.#started = Date.now();
    if (!this.#watched) this.#watch(this.#stallMs);
  }

  /** The write in progress has ended. */
  end(): void {
    this.#started = 0;
  }

  /** Stops watching for good (the queue failed). */
  stop(): void {
    if (this.#watched) WATCHES.delete(this);
    this.#watched = false;
    this.#started = 0;
  }

  #watch(ms: number): void {
    this.#watched = true;
    WATCHES.add(this, ms, () => this.#check());
  }

  /** The deadline came: closes the channel if the write in progress is stuck. */
  #check(): void {
    this.#watched = false;
    const started = this.#started;
    if (started === 0) return;
    const waited = Date.now() - started;
    if (waited < this.#stallMs) {
      this.#watch(this.#stallMs - waited);
      return;
    }
    this.#error = new ProtocolError(
      "PEER_TIMEOUT",
      `The peer stopped reading: a write stalled for ${this.#stallMs} ms`,
    );
    this.#channel.close();
  }
}
