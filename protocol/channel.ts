/**
 * The byte pipe the protocol runs over. Transports produce it (`Deno.Conn`-shaped); tests use
 * in-memory pairs. The protocol core knows nothing else of sockets.
 *
 * @module
 */

/** A bidirectional byte pipe. */
export interface ByteChannel {
  /** Reads into `buffer`; the byte count, or `null` at end of stream. */
  read(buffer: Uint8Array): Promise<number | null>;
  /** Writes all of `data`. */
  write(data: Uint8Array): Promise<void>;
  /** Closes both directions; pending reads end. Idempotent, never throws. */
  close(): void;
}
