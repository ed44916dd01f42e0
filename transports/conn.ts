/**
 * The `Deno.Conn` and `Deno.Listener` wrappers shared by every transport. They smooth over
 * Deno's sharp edges: partial writes, `Interrupted`/`BadResource` rejections after a local
 * close, throwing double closes, and process-killing unhandled `BrokenPipe` rejections.
 *
 * @module
 */

import { TransportError } from "../protocol/errors.ts";
import type { Conn, Listener, TransportKind } from "./types.ts";

/** Errors that mean the peer is gone: `read()` reports them as end of stream. */
function isEndOfStream(err: unknown): boolean {
  return err instanceof Deno.errors.ConnectionReset ||
    err instanceof Deno.errors.ConnectionAborted ||
    err instanceof Deno.errors.BrokenPipe ||
    err instanceof Deno.errors.UnexpectedEof ||
    err instanceof Deno.errors.NotConnected;
}

function closeQuietly(resource: { close(): void }): void {
  try {
    resource.close();
  } catch {
    // already closed (BadResource): nothing to do
  }
}

/** Options of {@link SocketConn}. */
export interface SocketConnOptions {
  /** What carries the bytes. */
  transport: TransportKind;
  /**
   * The transport's own handshake (TLS), run once by {@link SocketConn.handshake} and before
   * the first read or write. Rejects with a `TransportError` that says what went wrong.
   */
  handshake?: () => Promise<void>;
}

/**
 * Wraps a `Deno.Conn` into a {@link Conn}: `write` loops over partial writes and is serialised,
 * `close` is idempotent and never throws, and after a local close (or a reset from the peer)
 * `read` resolves `null` instead of rejecting. `write` after a close or to a vanished peer
 * rejects. A failed handshake closes the connection.
 */
export class SocketConn implements Conn {
  /** What carries the bytes. */
  readonly transport: TransportKind;
  /** `127.0.0.1:5123`, `[::1]:5123` or `unix`. */
  readonly remoteAddress: string;
  /** `127.0.0.1`, `::1`, or `undefined` for Unix sockets. */
  readonly remoteHost: string | undefined;
  #conn: Deno.Conn;
  #runHandshake: (() => Promise<void>) | undefined;
  #handshake: Promise<void> | undefined;
  #handshakeError: unknown;
  #closed = false;
  /** The last write queued: the next one starts after it settles. */
  #lastWrite: Promise<void> = Promise.resolve();
  /** Writes queued or in progress. */
  #inFlight = 0;

  /**
   * @param conn the Deno connection; this object owns it from now on
   * @param options the transport kind and its handshake, if any
   */
  constructor(conn: Deno.Conn, options: SocketConnOptions) {
    this.#conn = conn;
    this.transport = options.transport;
    this.#runHandshake = options.handshake;
    const addr = conn.remoteAddr;
    if (addr.transport === "unix" || !("hostname" in addr)) {
      this.remoteAddress = "unix";
      this.remoteHost = undefined;
    } else {
      // An IPv4 peer seen through a dual-stack socket counts as its IPv4 address.
      const host = addr.hostname.replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/i, "$1");
      this.remoteHost = host;
      this.remoteAddress = `${host.includes(":") ? `[${host}]` : host}:${addr.port}`;
    }
  }

  /** TLS: small writes may wait for ACKs at the server end ({@link Conn.nagle}). */
  get nagle(): boolean {
    return this.transport === "tls";
  }

  /**
   * Completes the transport's handshake once; later calls share the outcome. Resolves at once
   * when there is none. Closing the connection interrupts it.
   *
   * @returns resolves when the handshake is done
   */
  handshake(): Promise<void> {
    if (this.#runHandshake === undefined) return Promise.resolve();
    if (this.#handshake === undefined) {
      this.#handshake = this.#runHandshake().then(() => {
        this.#runHandshake = undefined; // done: reads no longer wait for it
      }, (err) => {
        if (this.#closed) {
          throw new TransportError(
            "TLS_ERROR",
            "TLS handshake was interrupted because the connection was closed",
            { cause: err },
          );
        }
        this.#handshakeError = err;
        this.close();
        throw err;
      });
      // Nobody may be waiting: never let a failed handshake become an unhandled rejection.
      this.#handshake.catch(() => {});
    }
    return this.#handshake;
  }

  /**
   * Reads into `buffer` (after the handshake, if any).
   *
   * @param buffer where to put the bytes
   * @returns the byte count, or `null` at end of stream, after a reset, or after `close()`
   */
  read(buffer: Uint8Array): Promise<number | null> {
    if (this.#handshakeError !== undefined) return Promise.reject(this.#handshakeError);
    if (this.#closed) return Promise.resolve(null);
    if (this.#runHandshake !== undefined) return this.#readAfterHandshake(buffer);
    // Not an async function: an idle connection's pending read holds one promise, not a frame.
    return this.#conn.read(buffer).catch(this.#readFailed);
  }

  async #readAfterHandshake(buffer: Uint8Array): Promise<number | null> {
    try {
      await this.handshake();
    } catch (err) {
      if (this.#handshakeError === undefined) return null; // closed by us meanwhile
      throw err;
    }
    return this.#conn.read(buffer).catch(this.#readFailed);
  }

  /** A read that failed after a local close, or because the peer is gone, is end of stream. */
  #readFailed = (err: unknown): null => {
    if (this.#closed || isEndOfStream(err)) return null;
    throw err;
  };

  /**
   * Writes every byte of `data`. Concurrent writes are queued, never interleaved.
   *
   * @param data the bytes to send
   * @returns resolves once everything is handed to the OS
   * @throws {Deno.errors.BadResource} after `close()`; `BrokenPipe` and the like when the peer
   *   is gone; the handshake's error if it failed
   */
  write(data: Uint8Array): Promise<void> {
    if (this.#inFlight !== 0 || this.#runHandshake !== undefined || this.#closed) {
      return this.#queue(() => this.#writeAll(data));
    }
    // Nothing queued (the usual case): straight to the socket, one promise when it takes all.
    this.#inFlight++;
    const result = this.#conn.write(data).then(
      (n) => n === data.length ? this.#settled() : this.#writeRest(data.subarray(n)),
      this.#writeFailed,
    );
    this.#lastWrite = result;
    return result;
  }

  /**
   * Writes `head`, then `body`, queued like one {@link write}: nothing else goes between them.
   *
   * @param head the first bytes (a record header)
   * @param body the bytes after them (its sealed body)
   */
  writeParts(head: Uint8Array, body: Uint8Array): Promise<void> {
    return this.#queue(async () => {
      await this.#writeAll(head);
      await this.#writeAll(body);
    });
  }

  /** Runs `write` after every write queued before it, whatever their outcome. */
  #queue(write: () => Promise<void>): Promise<void> {
    this.#inFlight++;
    const result = this.#lastWrite.then(write, write);
    this.#lastWrite = result;
    result.then(this.#settled, this.#settled);
    return result;
  }

  #settled = (): void => {
    this.#inFlight--;
  };

  async #writeRest(data: Uint8Array): Promise<void> {
    try {
      await this.#writeAll(data);
    } finally {
      this.#inFlight--;
    }
  }

  #writeFailed = (err: unknown): never => {
    this.#inFlight--;
    this.#assertOpen(err);
    throw err;
  };

  async #writeAll(data: Uint8Array): Promise<void> {
    if (this.#handshakeError !== undefined) throw this.#handshakeError;
    this.#assertOpen();
    if (this.#runHandshake !== undefined) await this.handshake();
    let offset = 0;
    try {
      while (offset < data.length) {
        offset += await this.#conn.write(data.subarray(offset));
      }
    } catch (err) {
      this.#assertOpen(err);
      throw err;
    }
  }

  #assertOpen(cause?: unknown): void {
    if (this.#closed) {
      throw new Deno.errors.BadResource("Cannot write: the connection is closed", { cause });
    }
  }

  /**
   * Half-closes after the queued writes: the peer reads end of stream, this side can still
   * read. Does nothing once the connection is closed or the peer is gone.
   *
   * @returns resolves once the write side is shut down
   */
  async closeWrite(): Promise<void> {
    await this.#lastWrite.catch(() => {});
    if (this.#closed) return;
    if (this.#runHandshake !== undefined) {
      try {
        await this.handshake();
      } catch {
        return; // the connection is closed
      }
    }
    try {
      await this.#conn.closeWrite();
    } catch (err) {
      if (this.#closed || isEndOfStream(err)) return;
      throw err;
    }
  }

  /** Closes both directions. Idempotent, never throws; pending reads resolve `null`. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    closeQuietly(this.#conn);
  }
}

/** Options of {@link SocketListener}. */
export interface SocketListenerOptions {
  /** What the listener speaks. */
  transport: TransportKind;
  /** The bound address as a URL string. */
  address: string;
  /** Turns an accepted Deno connection into a {@link Conn}. */
  wrap: (conn: Deno.Conn) => Conn;
  /** Runs once after the Deno listener is closed (e.g. removes a socket file); must not throw. */
  onClose?: () => void;
}

/**
 * Wraps a `Deno.Listener` into a {@link Listener}: `accept()` resolves `null` once closed and
 * throws other errors (such as `Too many open files`) without ending the listener, so that an
 * accept loop can log, back off and continue.
 */
export class SocketListener implements Listener {
  /** What the listener speaks. */
  readonly transport: TransportKind;
  /** The bound address, port 0 resolved. */
  readonly address: string;
  #listener: Deno.Listener;
  #wrap: (conn: Deno.Conn) => Conn;
  #onClose: (() => void) | undefined;
  #closed = false;

  /**
   * @param listener the Deno listener; this object owns it from now on
   * @param options transport, address, wrapper and close hook
   */
  constructor(listener: Deno.Listener, options: SocketListenerOptions) {
    this.#listener = listener;
    this.transport = options.transport;
    this.address = options.address;
    this.#wrap = options.wrap;
    this.#onClose = options.onClose;
  }

  /**
   * Waits for the next connection (one `accept()` at a time).
   *
   * @returns the connection, or `null` once the listener is closed
   * @throws the OS error (e.g. `Too many open files`); the listener stays usable
   */
  async accept(): Promise<Conn | null> {
    if (this.#closed) return null;
    let conn: Deno.Conn;
    try {
      conn = await this.#listener.accept();
    } catch (err) {
      if (this.#closed || err instanceof Deno.errors.BadResource) return null;
      throw err;
    }
    if (this.#closed) {
      closeQuietly(conn);
      return null;
    }
    return this.#wrap(conn);
  }

  /** Stops accepting and releases the address. Idempotent, never throws. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    closeQuietly(this.#listener);
    try {
      this.#onClose?.();
    } catch {
      // a close hook must not make close() throw
    }
  }

  /** Closes the listener (for `await using`). */
  [Symbol.asyncDispose](): Promise<void> {
    this.close();
    return Promise.resolve();
  }
}
