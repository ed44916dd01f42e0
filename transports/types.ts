/**
 * The contracts every transport fulfils: a {@link Conn} is a bidirectional byte pipe shaped
 * like `Deno.Conn`; a {@link Dialer} opens one; a {@link Listener} accepts them. Transports know
 * nothing of messages, authentication or sessions.
 *
 * @module
 */

/** Transport kinds, as bound into the trust-rpc/1 handshake. */
export type TransportKind = "tcp" | "tls" | "unix" | "ws" | "wss";

/** One open byte pipe. Reads and writes behave like `Deno.Conn`'s. */
export interface Conn {
  /** What carries the bytes. */
  readonly transport: TransportKind;
  /** A printable form of the peer's address (`127.0.0.1:5123`, `unix`). */
  readonly remoteAddress: string;
  /** The peer's host for per-peer limits; `undefined` where there is none (Unix). */
  readonly remoteHost: string | undefined;
  /**
   * Completes the transport's own handshake (TLS); resolves at once for TCP and Unix.
   * Rejects with a `TransportError` (`TLS_ERROR`) that says what went wrong.
   */
  handshake(): Promise<void>;
  /** Reads into `buffer`; resolves with the byte count, or `null` at end of stream. */
  read(buffer: Uint8Array): Promise<number | null>;
  /** Writes every byte of `data` (loops over partial writes). */
  write(data: Uint8Array): Promise<void>;
  /** Byte streams: writes `head` then `body`, nothing between (see `ByteChannel`). */
  writeParts?(head: Uint8Array, body: Uint8Array): Promise<void>;
  /**
   * True on TLS and wss: the server end has no `TCP_NODELAY` (Deno cannot set it on accepted
   * TLS sockets) and each TLS record leaves in its own `send()` (see `ByteChannel.nagle`).
   */
  readonly nagle?: boolean;
  /** Half-closes: the peer reads end of stream, this side can still read. */
  closeWrite(): Promise<void>;
  /** Closes both directions at once; pending and later reads resolve `null`. Idempotent. */
  close(): void;
}

/** Opens connections to one address. */
export interface Dialer {
  /** What the dialer speaks. */
  readonly transport: TransportKind;
  /** The address it dials, as a URL string (`tcp://127.0.0.1:8888`). */
  readonly address: string;
  /** Opens one connection (TLS: including the TLS handshake). */
  dial(options?: { signal?: AbortSignal }): Promise<Conn>;
}

/** Accepts connections on one address. */
export interface Listener extends AsyncDisposable {
  /** What the listener speaks. */
  readonly transport: TransportKind;
  /** The bound address as a URL string (port 0 resolved: `tcp://127.0.0.1:40123`). */
  readonly address: string;
  /**
   * Waits for the next connection. Resolves `null` once the listener is closed. A TLS
   * listener resolves before the TLS handshake: call {@link Conn.read} or `handshake()` to
   * drive it, under the caller's deadline.
   */
  accept(): Promise<Conn | null>;
  /** Stops accepting and releases the address (a Unix socket file is removed). Idempotent. */
  close(): void;
}
