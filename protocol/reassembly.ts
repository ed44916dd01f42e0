/**
 * Reassembly of messages sent in MORE pieces (PROTOCOL.md M.3). A message is checked against
 * `maxMessageSize` as its pieces arrive, never after buffering it; the bytes held for all
 * partial messages of a connection are capped too.
 *
 * @module
 */

import { ProtocolError } from "./errors.ts";
import { Flag, type Message } from "./messages.ts";
import { isSlabBytes } from "./slab.ts";

/** What {@link Reassembler.add} found. */
export type Assembled =
  /** The whole payload (flags without MORE). */
  | { state: "complete"; payload: Uint8Array; flags: number }
  /** More pieces are due. */
  | { state: "partial" }
  /** The message is over the limit; reported once, its later pieces are dropped. */
  | { state: "too-large"; size: number }
  /** A piece of a message already reported too large. */
  | { state: "dropped" };

interface Partial {
  chunks: Uint8Array[];
  size: number;
  dropping: boolean;
}

/** Collects the pieces of messages, per kind and id. */
export class Reassembler {
  /** Made for the first piece (most sessions never split a message). */
  #partial: Map<number, Partial> | undefined;
  #held = 0;
  #maxMessage: number;
  #maxHeld: number;

  /**
   * @param maxMessageSize largest payload of one message
   * @param maxHeldBytes bytes of partial messages held at once for the connection
   */
  constructor(maxMessageSize: number, maxHeldBytes: number) {
    this.#maxMessage = maxMessageSize;
    this.#maxHeld = maxHeldBytes;
  }

  /** Bytes currently held for partial messages. */
  get heldBytes(): number {
    return this.#held;
  }

  /**
   * True when a message with these header fields is whole and within the size limit, and no
   * earlier piece belongs to it: its payload is the message as it stands, and {@link add}
   * would only say so (in an object).
   */
  isWhole(kind: number, flags: number, id: number, length: number): boolean {
    return (flags & Flag.MORE) === 0 && length <= this.#maxMessage &&
      (this.#partial === undefined || !this.#partial.has(kind * 0x1_0000_0000 + id));
  }

  /**
   * Adds one message or piece. Throws `RESOURCE_EXHAUSTED` (fatal for the connection) when the
   * partial messages together exceed the connection's cap.
   */
  add(m: Message): Assembled {
    const more = (m.flags & Flag.MORE) !== 0;
    const key = m.kind * 0x1_0000_0000 + m.id;
    const p = this.#partial?.get(key);
    if (p === undefined && !more) {
      if (m.payload.length > this.#maxMessage) {
        return { state: "too-large", size: m.payload.length };
      }
      return { state: "complete", payload: m.payload, flags: m.flags };
    }
    const entry = p ?? { chunks: [], size: 0, dropping: false };
    if (p === undefined) (this.#partial ??= new Map()).set(key, entry);
    if (entry.dropping) {
      if (!more) this.#partial?.delete(key);
      return { state: "dropped" };
    }
    entry.size += m.payload.length;
    if (entry.size > this.#maxMessage) {
      this.#held -= entry.size - m.payload.length;
      entry.chunks = [];
      entry.dropping = more;
      if (!more) this.#partial?.delete(key);
      return { state: "too-large", size: entry.size };
    }
    this.#held += m.payload.length;
    if (this.#held > this.#maxHeld) {
      throw new ProtocolError(
        "RESOURCE_EXHAUSTED",
        `Partial messages exceed ${this.#maxHeld} bytes on one connection`,
      );
    }
    // Pieces are views into their record's plaintext; keep them until the message completes
    // (copies of small ones, which are views into a shared slab).
    entry.chunks.push(isSlabBytes(m.payload) ? m.payload.slice() : m.payload);
    if (more) return { state: "partial" };
    this.#partial?.delete(key);
    this.#held -= entry.size;
    const payload = new Uint8Array(entry.size);
    let offset = 0;
    for (const c of entry.chunks) {
      payload.set(c, offset);
      offset += c.length;
    }
    return { state: "complete", payload, flags: m.flags };
  }

  /** Forgets every partial message (connection closed). */
  clear(): void {
    this.#partial = undefined;
    this.#held = 0;
  }
}
