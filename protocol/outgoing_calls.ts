/**
 * The calls this side makes on one session: call ids (client odd, server even), the
 * request body, interceptors, pending answers, and the streams and channels it opened
 * (their chunk buffers and send credit). The session routes the peer's answers here.
 *
 * @module
 */

import {
  CancelledError,
  ConnectionClosedError,
  ProtocolError,
  ResourceExhaustedError,
  RpcError,
  UnavailableError,
} from "./errors.ts";
import { checkWindow, ChunkBuffer, SendCredit } from "./flow.ts";
import { Kind } from "./messages.ts";
import { type Interceptor, type OutgoingCall, runInterceptors } from "./middleware.ts";
import type { Params } from "./methods.ts";
import type { Outbox } from "./outbox.ts";
import { PendingCalls, type RetryHook } from "./pending_calls.ts";
import { RpcChannel, RpcStream, type StreamLink } from "./rpc_stream.ts";

/** Options of one outgoing call. */
export interface CallOptions {
  /** Milliseconds before the call fails with `TIMEOUT` (0 = none). */
  timeout?: number;
  /** Aborting fails the call with `CANCELLED` and cancels the handler on the peer. */
  signal?: AbortSignal;
  /** Metadata (headers) the handler reads as `this.meta`. */
  meta?: Record<string, unknown>;
  /**
   * Compress this request (deflate-raw) when it is at least the threshold (1 KiB); the
   * answer comes back compressed too. Mind the caveat in the README: never compress secrets
   * together with data an attacker controls.
   */
  compress?: boolean;
}

/** Options of {@link OutgoingCalls.stream} and {@link OutgoingCalls.open}. */
export interface StreamOptions extends CallOptions {
  /** Chunks the producer may have in flight (the window). @default the session's `streamWindow` */
  window?: number;
}

/** What {@link OutgoingCalls} needs from its session. */
export interface OutgoingHost {
  /** Session id, hex. */
  readonly sessionId: string;
  /** Where messages go. */
  readonly outbox: Outbox;
  /** Throws when no new call may start now (closed, closing, going away, send backlog full). */
  checkOpen(): void;
  /** A call settled or was given up (the session may have become idle). */
  settled(): void;
  /** Stream readers grant credit as soon as they run dry (`ByteChannel.nagle`). */
  readonly nagle: boolean;
}

interface OpenStream {
  buffer: ChunkBuffer<unknown>;
  credit: SendCredit | undefined;
  /** Settles `RpcStream.streaming` on the first answer: a chunk or end (true), a value (false). */
  shape: ((streamed: boolean) => void) | undefined;
}

/** Settings of {@link OutgoingCalls}. */
export interface OutgoingSettings {
  /** "client" uses odd ids, "server" even ones. */
  role: "client" | "server";
  /** Default timeout of calls (ms; 0 = none). Streams have none by default. */
  callTimeout: number;
  /**
   * The default timeout (ms) this side announced in the handshake (§5.8): a call with exactly
   * that timeout sends none, the peer applies it. 0: every timeout is sent.
   */
  announcedTimeout: number;
  /** Calls that may wait for answers at once. */
  maxPendingCalls: number;
  /** Default stream window. */
  streamWindow: number;
  /** Interceptors around `call()`. */
  interceptors?: readonly Interceptor[];
}

/** Outgoing calls, notifications, streams and channels of one session. */
export class OutgoingCalls {
  #host: OutgoingHost;
  #settings: OutgoingSettings;
  #nextId: number;
  #pending: PendingCalls;
  /** Open streams and channels (made for the first one). */
  #streams: Map<number, OpenStream> | undefined;
  #closed = false;

  /** @param host the session's side of things @param settings ids, timeouts, limits */
  constructor(host: OutgoingHost, settings: OutgoingSettings) {
    this.#host = host;
    this.#settings = settings;
    this.#nextId = settings.role === "client" ? 1 : 2;
    this.#pending = new PendingCalls((id) => {
      if (!this.#closed) host.outbox.bytes(Kind.CANCEL, 0, id, new Uint8Array(0));
      host.settled();
    });
  }

  /** Calls (and streams) waiting for their end. */
  get size(): number {
    return this.#pending.size;
  }

  /** Streams and channels open now (caller side). */
  get streams(): number {
    return this.#streams?.size ?? 0;
  }

  /** True while a stream or channel this side opened with this id is open. */
  hasStream(id: number): boolean {
    return this.#streams?.has(id) ?? false;
  }

  /**
   * Calls `method` on the peer and resolves with its result.
   *
   * @param retry asked before the call fails for any reason but its timeout or signal: a
   *   client's reconnect sends it again (kept in the pending call: no promise of its own)
   */
  call<T = unknown>(
    method: string,
    params: Params = [],
    options: CallOptions = {},
    retry?: RetryHook,
  ): Promise<T> {
    const interceptors = this.#settings.interceptors;
    if (interceptors === undefined || interceptors.length === 0) {
      return this.#call(method, params, options, options.meta, retry) as Promise<T>;
    }
    const call: OutgoingCall = { method, params, meta: { ...options.meta } };
    const sent = runInterceptors(
      interceptors,
      call,
      (c) => this.#call(c.method, c.params, options, c.meta, undefined),
    ) as Promise<T>;
    if (retry === undefined) return sent;
    // A retry sends what the caller called, not what the interceptors made of it.
    const again = { method, params, options, deadline: this.#deadlineOf(options) };
    return sent.catch((err) => retry(again, err) ?? Promise.reject(err)) as Promise<T>;
  }

  #call(
    method: string,
    params: Params,
    options: CallOptions,
    meta: Record<string, unknown> | undefined,
    retry: RetryHook | undefined,
  ): Promise<unknown> {
    const timeout = options.timeout ?? this.#settings.callTimeout;
    try {
      const id = this.#request(Kind.REQUEST, method, params, meta, timeout, options, undefined);
      return this.#pending.add(id, method, timeout, options, params, retry);
    } catch (err) {
      // Refused before it left (the session is closing, say): it may go elsewhere.
      const call = { method, params, options, deadline: this.#deadlineOf(options) };
      return retry?.(call, err as Error) ?? Promise.reject(err);
    }
  }

  /** When a call made now with `options` times out (epoch ms), `Infinity` without a timeout. */
  #deadlineOf(options: CallOptions): number {
    const timeout = options.timeout ?? this.#settings.callTimeout;
    return timeout > 0 ? Date.now() + timeout : Infinity;
  }

  /** Sends a notification (a request without an answer). Throws when it cannot be queued. */
  notify(method: string, params: Params = [], options: Omit<CallOptions, "timeout"> = {}): void {
    this.#request(Kind.NOTIFY, method, params, options.meta, 0, options, undefined);
  }

  /** Calls a streaming method: its chunks arrive through the returned {@link RpcStream}. */
  stream<T = unknown, R = unknown>(
    method: string,
    params: Params = [],
    options: StreamOptions = {},
  ): RpcStream<T, R> {
    const { buffer, result, link, shape } = this.#openStream(method, params, options, false);
    return new RpcStream(method, buffer as ChunkBuffer<T>, result as Promise<R>, link, shape);
  }

  /** Opens a bidirectional channel to `method` (its handler reads `this.input`). */
  open<In = unknown, Out = unknown, R = unknown>(
    method: string,
    params: Params = [],
    options: StreamOptions = {},
  ): RpcChannel<In, Out, R> {
    const { buffer, result, link, credit, shape } = this.#openStream(method, params, options, true);
    return new RpcChannel(
      method,
      buffer as ChunkBuffer<Out>,
      result as Promise<R>,
      link,
      shape,
      credit,
    );
  }

  #openStream(method: string, params: Params, options: StreamOptions, input: boolean) {
    const window = checkWindow(options.window ?? this.#settings.streamWindow, "window");
    const compress = options.compress === true;
    const outbox = this.#host.outbox;
    const credit = input ? new SendCredit() : undefined;
    const shape = Promise.withResolvers<boolean>();
    /** The call id once the request has left (interceptors may delay it). */
    let id = 0;
    let early: "cancel" | "end" | undefined;
    const buffer = new ChunkBuffer<unknown>(window, (n) => {
      if (!this.#closed) outbox.value(Kind.CREDIT, id, { credit: n });
    }, this.#host.nagle);
    const send = (call: OutgoingCall): Promise<unknown> => {
      if (early === "cancel") {
        return Promise.reject(new CancelledError(`Call to '${method}' was cancelled`));
      }
      try {
        const timeout = options.timeout ?? 0;
        id = this.#request(Kind.REQUEST, call.method, call.params, call.meta, timeout, options, {
          credit: window,
          input: input || undefined,
        });
      } catch (err) {
        return Promise.reject(err);
      }
      (this.#streams ??= new Map()).set(id, { buffer, credit, shape: shape.resolve });
      const result = this.#pending.add(id, method, options.timeout ?? 0, options);
      const forget = () => {
        this.#streams?.delete(id);
        shape.resolve(false);
      };
      result.then(forget, forget);
      if (early === "end") outbox.value(Kind.STREAM_END, id, {});
      return result;
    };
    const interceptors = this.#settings.interceptors;
    const result = interceptors === undefined || interceptors.length === 0
      ? send({ method, params, meta: options.meta as Record<string, unknown> })
      : runInterceptors(interceptors, { method, params, meta: { ...options.meta } }, send);
    result.catch(() => shape.resolve(false));
    const link: StreamLink = {
      cancel: (reason) => {
        if (id === 0) early = "cancel";
        else this.#pending.abort(id, reason);
      },
      send: (value) => outbox.value(Kind.STREAM_DATA, id, value, compress, "chunk"),
      end: () => {
        if (id === 0) early ??= "end";
        else outbox.value(Kind.STREAM_END, id, {});
      },
    };
    return { buffer, result, link, credit, shape: shape.promise };
  }

  /**
   * Builds and queues a REQUEST or NOTIFY; returns its id.
   *
   * @throws {ConnectionClosedError} the session is closed (never sent: retryable)
   * @throws {UnavailableError} the session is closing or the peer is going away
   * @throws {ResourceExhaustedError} too many calls pending, the send backlog is full, or the
   *   request is larger than the message limit
   */
  #request(
    kind: number,
    method: string,
    params: Params,
    meta: Record<string, unknown> | undefined,
    timeout: number,
    options: CallOptions,
    stream: { credit: number; input: true | undefined } | undefined,
  ): number {
    this.#host.checkOpen();
    if (typeof method !== "string") throw new TypeError("Method name must be a string");
    if (typeof params !== "object" || params === null) {
      throw new TypeError("Params must be an array or an object");
    }
    const signal = options.signal;
    if (signal?.aborted) {
      throw new RpcError("CANCELLED", `Call to '${method}' was cancelled`, {
        cause: signal.reason,
      });
    }
    if (kind === Kind.REQUEST && this.#pending.size >= this.#settings.maxPendingCalls) {
      throw new ResourceExhaustedError(
        `Too many calls waiting for answers (${this.#settings.maxPendingCalls})`,
        { retryable: true },
      );
    }
    if (this.#nextId > 0xFFFF_FFFF) {
      throw new UnavailableError("Call ids are exhausted on this connection: reconnect");
    }
    const headers = this.#headers(kind, meta, timeout, stream === undefined);
    const body: Record<string, unknown> = { method, params };
    if (headers !== undefined) body.meta = headers;
    if (stream !== undefined) {
      body.credit = stream.credit;
      if (stream.input) body.input = true;
    }
    const id = this.#nextId;
    this.#host.outbox.value(kind, id, body, options.compress === true, "request");
    this.#nextId += 2;
    return id;
  }

  /**
   * The `meta` a request carries: the caller's headers, with `timeout` set to the call's (it
   * overrides the caller's own key) when it has one. A plain call whose timeout is the
   * announced default leaves it out, and one without a timeout then says so (`timeout: 0`),
   * unless the caller's headers set a `timeout` by hand.
   */
  #headers(
    kind: number,
    meta: Record<string, unknown> | undefined,
    timeout: number,
    plain: boolean,
  ): Record<string, unknown> | undefined {
    const announced = this.#settings.announcedTimeout;
    if (announced > 0 && kind === Kind.REQUEST && plain) {
      if (meta?.timeout === undefined) {
        if (timeout === announced) return meta;
        return { ...meta, timeout };
      }
      if (timeout === 0) return meta;
    }
    return timeout > 0 ? { ...meta, timeout } : meta;
  }

  // ---- answers from the peer --------------------------------------------------------------

  /** A RESPONSE (or, with `streamed`, a STREAM_END's result) for call `id`. */
  resolve(id: number, value: unknown, streamed = false): void {
    if (streamed) this.#started(id);
    this.#pending.resolve(id, value);
    this.#host.settled();
  }

  #started(id: number): void {
    const stream = this.#streams?.get(id);
    if (stream?.shape === undefined) return;
    stream.shape(true);
    stream.shape = undefined;
  }

  /** An ERROR for call `id` (or a local failure to read its answer). */
  reject(id: number, err: Error): void {
    this.#pending.reject(id, err);
    this.#host.settled();
  }

  /** A STREAM_DATA chunk of a stream this side opened (late chunks are dropped). */
  chunk(id: number, value: unknown): void {
    const stream = this.#streams?.get(id);
    if (stream === undefined) return;
    if (stream.shape !== undefined) this.#started(id);
    stream.buffer.push(value);
  }

  /** A CREDIT for a channel this side opened. */
  credit(id: number, n: number): void {
    const stream = this.#streams?.get(id);
    if (stream === undefined) return;
    if (stream.credit === undefined) {
      throw new ProtocolError("PROTOCOL_ERROR", `CREDIT for stream ${id}, which has no input`);
    }
    stream.credit.add(n);
  }

  /** Rejects the calls the peer will not process (GOAWAY: `id > lastId`). */
  refuseAfter(lastId: number, sessionId: string): void {
    this.#pending.rejectWhere(
      (id) => id > lastId,
      (method) =>
        new UnavailableError(`Call to '${method}' was not processed: the peer is going away`, {
          sessionId,
        }),
    );
  }

  /** The connection is gone: every call and stream fails with `CONNECTION_CLOSED`. */
  failAll(message: string, sessionId: string, cause?: Error): void {
    this.#closed = true;
    this.#pending.rejectWhere(
      () => true,
      (method) =>
        new ConnectionClosedError(`Call to '${method}' failed: ${message}`, { sessionId, cause }),
    );
    this.#pending.clear();
  }
}

/** Reads a CREDIT payload: `{"credit": n}`. */
export function creditOf(value: unknown): number {
  const n = (value as { credit?: unknown } | null)?.credit;
  if (typeof n !== "number") throw new ProtocolError("PROTOCOL_ERROR", "Malformed CREDIT");
  return n;
}
