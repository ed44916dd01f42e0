/**
 * A WebSocket client framed by us (RFC 6455) over a byte {@link Conn}: used from Deno instead of
 * Deno's `WebSocket`, which turns `TCP_NODELAY` off and writes a frame's header and payload in
 * two `send()`s, so that a message of ~1 KiB or more waits ~40 ms for the server's delayed ACK
 * (Nagle). Here every frame leaves in one `write()` on a socket with `TCP_NODELAY`. The server's
 * frames are read as one byte stream (message borders mean nothing to trust-rpc/1), large
 * payloads straight into the caller's buffer. No `Deno.*` here.
 *
 * @module
 */

import { TransportError } from "../protocol/errors.ts";
import type { Conn } from "./types.ts";
import { clientFrame, clientFrameIn, OPCODE, readServerFrameHeader } from "./websocket_frames.ts";
import {
  checkUpgradeResponse,
  expectedAccept,
  MAX_UPGRADE_RESPONSE,
  newWebSocketKey,
  responseHeadLength,
  upgradeRequest,
} from "./websocket_upgrade.ts";

/** Bytes of raw input buffered for frame headers and small payloads. */
const READ_BUFFER_BYTES = MAX_UPGRADE_RESPONSE;
/** Payload bytes left in a frame from which a read goes straight into the caller's buffer. */
const DIRECT_READ_BYTES = 16 * 1024;
/** A control frame's most bytes: a 2-byte header and 125 of payload. */
const MAX_CONTROL_FRAME = 127;
/**
 * The reused buffer for small data frames: a record of a few small messages fits (a frame of
 * 2 KiB or less costs one buffer per connection, not one per frame).
 */
const FRAME_BUFFER_BYTES = 2048;

/** Options of {@link WebSocketClientConn.open}. */
export interface WebSocketClientOptions {
  /** `ws` or `wss` (the inner connection is TCP or TLS). */
  transport: "ws" | "wss";
  /** The `Host` header (`example.com:8443`). */
  host: string;
  /** The request path (`/rpc`). */
  path: string;
}

/** An open client WebSocket as a {@link Conn}: one binary frame per write. */
export class WebSocketClientConn implements Conn {
  readonly transport: "ws" | "wss";
  readonly remoteAddress: string;
  readonly remoteHost: string | undefined;
  #inner: Conn;
  #buffer = new Uint8Array(READ_BUFFER_BYTES);
  #start = 0;
  #end = 0;
  /** Payload bytes of the current data frame not read yet. */
  #payloadLeft = 0;
  /** A data message has begun and its last frame has not come. */
  #inMessage = false;
  /** The server sent a close frame, or the connection was closed here: no more data. */
  #done = false;
  /** Made on the first data frame: small frames are built here (see {@link writeParts}). */
  #frames: Uint8Array | undefined;
  /** A frame in {@link #frames} is being written. */
  #framesBusy = false;
  #framesFree = (): void => {
    this.#framesBusy = false;
  };

  private constructor(inner: Conn, transport: "ws" | "wss") {
    this.#inner = inner;
    this.transport = transport;
    this.remoteAddress = inner.remoteAddress;
    this.remoteHost = inner.remoteHost;
  }

  /**
   * Runs the HTTP upgrade on `inner` and returns the WebSocket on it. The caller bounds it in
   * time (closing `inner` makes it reject).
   *
   * @param inner an open TCP or TLS connection to the server (TLS handshake done)
   * @param options the transport label, `Host` and path
   * @returns the open WebSocket
   * @throws {Error} when the server does not upgrade (its status line in the message) or
   *   closes first
   */
  static async open(inner: Conn, options: WebSocketClientOptions): Promise<WebSocketClientConn> {
    const key = newWebSocketKey();
    const accept = expectedAccept(key);
    await inner.write(upgradeRequest(options.host, options.path, key));
    const conn = new WebSocketClientConn(inner, options.transport);
    await conn.#readUpgradeResponse(await accept);
    return conn;
  }

  async #readUpgradeResponse(accept: string): Promise<void> {
    let headLength: number;
    while ((headLength = responseHeadLength(this.#buffer, this.#end)) < 0) {
      if (this.#end === this.#buffer.length) {
        throw new Error(`the server's response head exceeds ${MAX_UPGRADE_RESPONSE} bytes`);
      }
      const n = await this.#inner.read(this.#buffer.subarray(this.#end));
      if (n === null) throw new Error("the server closed the connection instead of upgrading");
      this.#end += n;
    }
    checkUpgradeResponse(String.fromCharCode(...this.#buffer.subarray(0, headLength)), accept);
    this.#start = headLength; // what follows is already the server's first frame
  }

  /** wss: small writes may wait for ACKs at the server end ({@link Conn.nagle}). */
  get nagle(): boolean {
    return this.transport === "wss";
  }

  /** Nothing to do: the TLS handshake and the upgrade are done once the conn exists. */
  handshake(): Promise<void> {
    return Promise.resolve();
  }

  /**
   * Reads payload bytes of the server's binary messages, in order, across frame and message
   * borders; answers pings and the server's close on the way.
   *
   * @param buffer where to put the bytes
   * @returns the byte count, or `null` once the server closed or the connection ended
   * @throws {TransportError} `PROTOCOL_ERROR` for a frame RFC 6455 forbids, or a text message
   */
  async read(buffer: Uint8Array): Promise<number | null> {
    for (;;) {
      if (this.#payloadLeft > 0) {
        if (this.#end > this.#start) return this.#copyPayload(buffer);
        if (this.#payloadLeft >= DIRECT_READ_BYTES && buffer.length >= DIRECT_READ_BYTES) {
          const n = await this.#inner.read(
            buffer.subarray(0, Math.min(buffer.length, this.#payloadLeft)),
          );
          if (n === null) return this.#ended();
          this.#payloadLeft -= n;
          return n;
        }
      } else if (this.#done) {
        return null;
      } else if (this.#takeFrameHeader()) {
        continue;
      }
      if (!(await this.#fill())) return null;
    }
  }

  #copyPayload(buffer: Uint8Array): number {
    const n = Math.min(this.#end - this.#start, this.#payloadLeft, buffer.length);
    buffer.set(this.#buffer.subarray(this.#start, this.#start + n));
    this.#start += n;
    this.#payloadLeft -= n;
    return n;
  }

  /** Takes the next frame header (and a whole control frame); false when bytes are missing. */
  #takeFrameHeader(): boolean {
    let header;
    try {
      header = readServerFrameHeader(this.#buffer, this.#start, this.#end);
    } catch (err) {
      this.#fail((err as Error).message);
    }
    if (header === undefined) return false;
    const { opcode, headerLength, length } = header;
    if (opcode >= OPCODE.close) {
      if (this.#end - this.#start < headerLength + length) return false;
      const payloadAt = this.#start + headerLength;
      this.#start = payloadAt + length;
      this.#onControl(opcode, this.#buffer.slice(payloadAt, payloadAt + length));
      return true;
    }
    if (opcode === OPCODE.text) this.#fail("a text message (trust-rpc/1 sends binary only)");
    if ((opcode === OPCODE.continuation) !== this.#inMessage) {
      this.#fail(
        this.#inMessage ? "a new message inside a fragmented one" : "a stray continuation",
      );
    }
    this.#inMessage = !header.fin;
    this.#start += headerLength;
    this.#payloadLeft = length;
    return true;
  }

  #onControl(opcode: number, payload: Uint8Array): void {
    if (opcode === OPCODE.ping) {
      this.#send(clientFrame(OPCODE.pong, payload));
    } else if (opcode === OPCODE.close) {
      // Answer with the same status code (§5.5.1); no data follows a close.
      this.#send(clientFrame(OPCODE.close, payload.subarray(0, 2)));
      this.#done = true;
    }
  }

  /** A frame of our own (pong, close): queued behind the session's writes, errors dropped. */
  #send(frame: Uint8Array): void {
    if (!this.#done) this.#inner.write(frame).catch(() => {});
  }

  /** Reads more raw bytes; false at end of stream. */
  async #fill(): Promise<boolean> {
    if (this.#start === this.#end) {
      this.#start = this.#end = 0;
    } else if (this.#start > 0 && this.#buffer.length - this.#end < 2 * MAX_CONTROL_FRAME) {
      this.#buffer.copyWithin(0, this.#start, this.#end);
      this.#end -= this.#start;
      this.#start = 0;
    }
    const n = await this.#inner.read(this.#buffer.subarray(this.#end));
    if (n === null) {
      this.#ended();
      return false;
    }
    this.#end += n;
    return true;
  }

  /** The byte stream ended (in the middle of a frame, perhaps): nothing more to read. */
  #ended(): null {
    this.#done = true;
    this.#payloadLeft = 0;
    return null;
  }

  #fail(why: string): never {
    this.close();
    throw new TransportError("PROTOCOL_ERROR", `WebSocket: the server broke RFC 6455: ${why}`);
  }

  /**
   * Sends `data` as one binary frame (one write).
   *
   * @throws {TransportError} `CONNECT_FAILED` once the WebSocket is closed
   */
  write(data: Uint8Array): Promise<void> {
    return this.writeParts(data);
  }

  /** Sends `head` and `body` as one binary frame (one write). */
  writeParts(head: Uint8Array, body?: Uint8Array): Promise<void> {
    if (this.#done) {
      return Promise.reject(new TransportError("CONNECT_FAILED", "The WebSocket is closed"));
    }
    // While no earlier frame is being written, a small one is built in one reused buffer: an
    // `ArrayBuffer` per frame costs a backing store of its own (see protocol/slab.ts).
    if (!this.#framesBusy) {
      const scratch = this.#frames ??= new Uint8Array(FRAME_BUFFER_BYTES);
      const frame = body === undefined
        ? clientFrameIn(scratch, OPCODE.binary, head)
        : clientFrameIn(scratch, OPCODE.binary, head, body);
      if (frame !== undefined) {
        this.#framesBusy = true;
        const written = this.#inner.write(frame);
        written.then(this.#framesFree, this.#framesFree);
        return written;
      }
    }
    const frame = body === undefined
      ? clientFrame(OPCODE.binary, head)
      : clientFrame(OPCODE.binary, head, body);
    return this.#inner.write(frame);
  }

  /** A WebSocket has no half-close: this closes the connection. */
  closeWrite(): Promise<void> {
    this.close();
    return Promise.resolve();
  }

  /**
   * Closes the connection at once, without a close frame (the trust-rpc session has said
   * goodbye in its own records by then). Idempotent.
   */
  close(): void {
    this.#done = true;
    this.#payloadLeft = 0;
    this.#inner.close();
  }
}
