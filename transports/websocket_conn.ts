/**
 * A standard `WebSocket` as a byte pipe ({@link Conn}): every `write()` is one binary
 * message (the session writes one sealed record per write, so a record is never split over
 * two messages), and reads return the bytes of the messages received, in order.
 *
 * Used by the server on the socket `Deno.upgradeWebSocket` gives, and by browsers on the one they
 * opened (Deno clients frame their own: `websocket_client_conn.ts`). This file uses no `Deno.*`.
 *
 * @module
 */

import { TransportError } from "../protocol/errors.ts";
import type { Conn } from "./types.ts";

/** Bytes of unsent messages above which `write()` waits for the socket to drain. */
export const WEBSOCKET_HIGH_WATER = 1 << 20;
/**
 * Bytes of received messages not yet read above which the connection is closed: a WebSocket
 * cannot push back on its sender the way TCP does, so a peer that floods past this is cut off.
 */
export const WEBSOCKET_MAX_BUFFERED = 64 << 20;

/** Options of {@link WebSocketConn}. */
export interface WebSocketConnOptions {
  /** `ws` or `wss`. */
  transport: "ws" | "wss";
  /** The peer's address, printable. */
  remoteAddress: string;
  /** The peer's host for per-peer limits. */
  remoteHost: string | undefined;
  /** Received bytes held before the connection is closed. @default 64 MiB */
  maxBuffered?: number;
}

/** An open WebSocket as a {@link Conn}. */
export class WebSocketConn implements Conn {
  readonly transport: "ws" | "wss";
  readonly remoteAddress: string;
  readonly remoteHost: string | undefined;
  #socket: WebSocket;
  #chunks: Uint8Array[] = [];
  #head = 0;
  #offset = 0;
  #buffered = 0;
  #maxBuffered: number;
  #reader: { buffer: Uint8Array; resolve: (n: number | null) => void } | undefined;
  #ended = false;
  #closed = false;

  /**
   * @param socket an open WebSocket (`readyState === OPEN`)
   * @param options transport label and peer address
   */
  constructor(socket: WebSocket, options: WebSocketConnOptions) {
    this.#socket = socket;
    this.transport = options.transport;
    this.remoteAddress = options.remoteAddress;
    this.remoteHost = options.remoteHost;
    this.#maxBuffered = options.maxBuffered ?? WEBSOCKET_MAX_BUFFERED;
    socket.binaryType = "arraybuffer";
    socket.onmessage = (event) => this.#onMessage(event.data);
    socket.onclose = () => this.#end();
    socket.onerror = () => this.#end();
  }

  /** wss: small writes may wait for ACKs at the server end ({@link Conn.nagle}). */
  get nagle(): boolean {
    return this.transport === "wss";
  }

  /** Nothing to do: the WebSocket handshake is over once the socket is open. */
  handshake(): Promise<void> {
    return Promise.resolve();
  }

  read(buffer: Uint8Array): Promise<number | null> {
    if (this.#head < this.#chunks.length) return Promise.resolve(this.#copyInto(buffer));
    if (this.#ended) return Promise.resolve(null);
    if (this.#reader) return Promise.reject(new TypeError("One read at a time"));
    return new Promise((resolve) => this.#reader = { buffer, resolve });
  }

  async write(data: Uint8Array): Promise<void> {
    if (this.#closed || this.#socket.readyState !== WebSocket.OPEN) {
      throw new TransportError("CONNECT_FAILED", "The WebSocket is closed");
    }
    this.#socket.send(data as Uint8Array<ArrayBuffer>);
    // No write backpressure in the WebSocket API: wait while too much is queued.
    for (let waited = 0; this.#socket.bufferedAmount > WEBSOCKET_HIGH_WATER; waited++) {
      if (this.#closed || this.#socket.readyState !== WebSocket.OPEN) return;
      await new Promise((resolve) => setTimeout(resolve, Math.min(1 + waited, 20)));
    }
  }

  /** A WebSocket has no half-close: this closes the connection. */
  closeWrite(): Promise<void> {
    this.close();
    return Promise.resolve();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#socket.close(1000);
    } catch {
      // Already closing.
    }
    this.#end();
  }

  #onMessage(data: unknown): void {
    if (this.#ended) return;
    if (!(data instanceof ArrayBuffer)) {
      // trust-rpc/1 sends binary messages only: a text message is not ours.
      this.close();
      return;
    }
    if (data.byteLength === 0) return;
    this.#buffered += data.byteLength;
    if (this.#buffered > this.#maxBuffered) {
      // Cut off: what it sent is dropped.
      this.#chunks = [];
      this.#head = 0;
      this.#offset = 0;
      this.#buffered = 0;
      this.close();
      return;
    }
    this.#chunks.push(new Uint8Array(data));
    const reader = this.#reader;
    if (reader !== undefined) {
      this.#reader = undefined;
      reader.resolve(this.#copyInto(reader.buffer));
    }
  }

  #copyInto(buffer: Uint8Array): number {
    let written = 0;
    while (written < buffer.length && this.#head < this.#chunks.length) {
      const chunk = this.#chunks[this.#head];
      const n = Math.min(buffer.length - written, chunk.length - this.#offset);
      buffer.set(chunk.subarray(this.#offset, this.#offset + n), written);
      written += n;
      this.#offset += n;
      if (this.#offset === chunk.length) {
        this.#chunks[this.#head++] = undefined as unknown as Uint8Array;
        this.#offset = 0;
      }
    }
    this.#buffered -= written;
    if (this.#head === this.#chunks.length) {
      this.#chunks = [];
      this.#head = 0;
    }
    return written;
  }

  #end(): void {
    if (this.#ended) return;
    this.#ended = true;
    const reader = this.#reader;
    this.#reader = undefined;
    // Bytes already received stay readable; a waiting reader has none, so it ends.
    reader?.resolve(null);
  }
}

/**
 * Opens a WebSocket and resolves once it is open. Rejects with `CONNECT_FAILED` when it
 * cannot open, and with the abort reason when `signal` aborts first.
 *
 * @param create makes the socket (`new WebSocket(url)`, or one with Deno's TLS options)
 */
export function openWebSocket(
  url: string,
  create: (url: string) => WebSocket,
  signal?: AbortSignal,
): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    let socket: WebSocket;
    try {
      socket = create(url);
    } catch (err) {
      reject(new TransportError("CONNECT_FAILED", (err as Error).message, { cause: err }));
      return;
    }
    socket.binaryType = "arraybuffer";
    const onAbort = () => {
      socket.close();
      reject(signal!.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    socket.onopen = () => {
      signal?.removeEventListener("abort", onAbort);
      resolve(socket);
    };
    socket.onerror = (event) => {
      signal?.removeEventListener("abort", onAbort);
      const detail = (event as ErrorEvent).message;
      reject(
        new TransportError(
          "CONNECT_FAILED",
          `the WebSocket did not open${detail ? ` (${detail})` : ""}`,
        ),
      );
    };
  });
}
