/**
 * One authenticated client as the server sees it: who it is, its counters, and everything
 * the server can do with it — call it, stream from it, open a channel, send it events.
 *
 * @module
 */

import type { Methods, Params } from "./methods.ts";
import type { CallOptions, StreamOptions } from "./outgoing_calls.ts";
import type { RpcChannel, RpcStream } from "./rpc_stream.ts";
import type { EmitOptions, Session } from "./session.ts";
import { type Api, createApi } from "./typed_api.ts";

/** Where a peer's connection comes from. */
export interface PeerOrigin {
  /** What carries the connection (`tcp`, `tls`, `unix`, `ws`, …). */
  readonly transport: string;
  /** The client's address (`127.0.0.1:53122`, `unix`). */
  readonly remoteAddress: string;
}

/** One authenticated client as the server sees it. */
export class Peer {
  /** Session id (32 hex digits), the same on both sides. */
  readonly id: string;
  /** What carries the connection. */
  readonly transport: string;
  /** The client's address (`127.0.0.1:53122`, `unix`). */
  readonly remoteAddress: string;
  #connectedAt = Date.now();
  #data: Record<string, unknown> | undefined;
  #session: Session;

  /** @internal created by the server */
  constructor(session: Session, origin: PeerOrigin) {
    this.#session = session;
    this.id = session.id;
    this.transport = origin.transport;
    this.remoteAddress = origin.remoteAddress;
  }

  /** When it authenticated. */
  get connectedAt(): Date {
    return new Date(this.#connectedAt);
  }

  /**
   * Your own data about this peer (a user name, a room…), kept for the life of the
   * connection: `peer.data.name = "alice"`. Never sent anywhere. (Made on first use: most
   * peers of a busy server never need one.)
   */
  get data(): Record<string, unknown> {
    return this.#data ??= {};
  }

  /** Calls served for this peer right now (open streams not included). */
  get inFlight(): number {
    return this.#session.inFlight;
  }

  /** Streams and channels open with this peer, both directions. */
  get openStreams(): number {
    return this.#session.openStreams;
  }

  /** Requests and notifications received from this peer so far. */
  get calls(): number {
    return this.#session.requestsReceived;
  }

  /** Bytes of sealed records received from this peer after the handshake. */
  get bytesIn(): number {
    return this.#session.bytesIn;
  }

  /** Bytes of sealed records sent to this peer after the handshake. */
  get bytesOut(): number {
    return this.#session.bytesOut;
  }

  /** Resolves when the connection has closed (`undefined` for a normal close). */
  get closed(): Promise<Error | undefined> {
    return this.#session.closed;
  }

  /** Calls a method the client registered (`connect(url, { methods })`). */
  call<T = unknown>(method: string, params?: Params, options?: CallOptions): Promise<T> {
    return this.#session.call<T>(method, params, options);
  }

  /** Sends the client a notification. */
  notify(method: string, params?: Params): void {
    this.#session.notify(method, params);
  }

  /** Calls a streaming method the client registered. */
  stream<T = unknown, R = unknown>(
    method: string,
    params?: Params,
    options?: StreamOptions,
  ): RpcStream<T, R> {
    return this.#session.stream<T, R>(method, params, options);
  }

  /** Opens a channel to a method the client registered. */
  open<In = unknown, Out = unknown, R = unknown>(
    method: string,
    params?: Params,
    options?: StreamOptions,
  ): RpcChannel<In, Out, R> {
    return this.#session.open<In, Out, R>(method, params, options);
  }

  /** Sends the client an event (its `client.on(name, …)` listeners get `data`). */
  emit(name: string, data?: unknown, options?: EmitOptions): void {
    this.#session.emit(name, data, options);
  }

  /** A typed facade over the client's methods: `peer.api<typeof clientMethods>()`. */
  api<M extends Methods>(options?: StreamOptions): Api<M> {
    return createApi<M>((m, p, o) => this.#session.stream(m, p, o), options);
  }

  /** Closes this peer's connection at once. */
  close(): void {
    this.#session.close();
  }

  /** @internal */
  get session(): Session {
    return this.#session;
  }
}
