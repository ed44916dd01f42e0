/**
 * The byte pipe the protocol runs over. Transports produce it (`Deno.Conn`-shaped); tests use
 * in-memory pairs. The protocol core knows nothing else of sockets.
 *
 * @module
 */

import { concatBytes } from "./bytes.ts";

/** A bidirectional byte pipe. */
export interface ByteChannel {
  /** Reads into `buffer`; the byte count, or `null` at end of stream. */
  read(buffer: Uint8Array): Promise<number | null>;
  /** Writes all of `data`. */
  write(data: Uint8Array): Promise<void>;
  /**
   * Writes `head`, then `body`, with nothing between them: the peer reads what one write of
   * the two joined would give, and nobody copies a large body to put a header before it.
   * Byte streams only; a channel whose writes are messages (WebSocket) leaves it out.
   */
  writeParts?(head: Uint8Array, body: Uint8Array): Promise<void>;
  /**
   * True where a small write can wait for the acknowledgement of the one before it (Nagle's
   * algorithm, at either end) and a write above 16 KiB leaves as several packets: TLS and wss
   * in Deno, whose accepted sockets get no `TCP_NODELAY` and which send each TLS record (up to
   * 16 KiB) with its own `send()`. The session then keeps records of small messages within one
   * TLS record and grants stream credit as soon as a reader runs dry, so that the acknowledgement
   * rides on a reply instead of waiting ~40 ms for the peer's delayed ACK.
   */
  readonly nagle?: boolean;
  /** Closes both directions; pending reads end. Idempotent, never throws. */
  close(): void;
}

/** Writes `head` then `body` to `channel`: as {@link ByteChannel.writeParts} where it has it, else joined. */
export function writeHeadAndBody(
  channel: ByteChannel,
  head: Uint8Array,
  body: Uint8Array,
): Promise<void> {
  return channel.writeParts?.(head, body) ?? channel.write(concatBytes(head, body));
}
