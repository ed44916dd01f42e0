/**
 * The server side of `@trust/rpc`: {@link serve} listens on one or more addresses, runs the
 * trust-rpc/1 handshake on every connection (admission caps and the per-peer failure budget
 * first), and serves your methods on each authenticated {@link Peer}.
 *
 * Run it as a program to start the demo server: `deno run -A server.ts --help`.
 *
 * @example Serve two methods on TCP and a Unix socket
 * ```ts ignore
 * import { serve } from "@trust/rpc/server";
 * await using server = await serve({
 *   listen: ["tcp://127.0.0.1:8888", "unix:///tmp/trust-rpc.sock"],
 *   methods: {
 *     greet(name: string) {
 *       if (typeof name !== "string") throw new TypeError("Name must be a string");
 *       return `Hello, ${name}!`;
 *     },
 *   },
 * });
 * ```
 *
 * @module
 */

import { Admission, type AdmissionOptions } from "./protocol/admission.ts";
import { AlertCode, escapeForLog } from "./protocol/alerts.ts";
import { RpcError } from "./protocol/errors.ts";
import { FrameReader } from "./protocol/frame_reader.ts";
import { encodeAlertFrame, PREAUTH_BUFFER, serverHandshake } from "./protocol/handshake.ts";
import {
  DEFAULT_CALL_TIMEOUT,
  DEFAULT_HANDSHAKE_TIMEOUT,
  DEFAULT_MAX_FRAME,
} from "./protocol/limits.ts";
import { createLogger, type Logger, type LogLevel } from "./protocol/logger.ts";
import { createMethodTable, type Methods } from "./protocol/methods.ts";
import { Peer } from "./protocol/peer.ts";
import { ServerCounters, type ServerStats } from "./protocol/server_stats.ts";
import { EventHub, type UnhandledEventPolicy } from "./protocol/events.ts";
import type { Interceptor, Middleware } from "./protocol/middleware.ts";
import type { CompressionOption } from "./protocol/outbox.ts";
import type { KeyUpdatePolicy } from "./protocol/record.ts";
import { Slots } from "./protocol/slots.ts";
import {
  type EmitOptions,
  encodeEvent,
  type Params,
  Session,
  type SessionLimits,
} from "./protocol/session.ts";
import { prepareSecret } from "./env/prepare_secret.ts";
import { listen } from "./transports/mod.ts";
import type { Conn, Listener } from "./transports/types.ts";

export { Peer } from "./protocol/peer.ts";
export type { ServerStats } from "./protocol/server_stats.ts";

/** The default listen address. */
export const DEFAULT_LISTEN = "tcp://127.0.0.1:8888";
/** How long {@link Server.close} lets calls in flight finish (ms). */
export const DEFAULT_DRAIN_TIMEOUT = 10_000;
/** How long a refused connection may take to receive its BUSY / RATE_LIMITED alert (ms). */
const REFUSE_DEADLINE = 1000;
/** Handlers a server runs at once, across all connections. */
export const DEFAULT_MAX_CONCURRENT_HANDLERS = 1024;
/** Authenticated connections a server keeps at once. */
export const DEFAULT_MAX_CONNECTIONS = 10_000;

/** Options of {@link serve}. */
export interface ServeOptions {
  /** Addresses (`tcp://`, `tls://`, `unix://`) or listeners. @default "tcp://127.0.0.1:8888" */
  listen?: string | Listener | (string | Listener)[];
  /** The shared secret. @default the `TRUST_ID` environment variable */
  secret?: string;
  /** The methods this server serves. */
  methods?: Methods;
  /** PEM certificate chain and key for `tls://` addresses. */
  tls?: { cert: string; key: string };
  /** Logger, or a level for the built-in one. @default level "info" */
  logger?: Logger | LogLevel;
  /** Per-connection limits. */
  limits?: SessionLimits;
  /** Admission caps and failure budget. */
  admission?: AdmissionOptions;
  /** Authenticated connections kept at once. @default 10000 */
  maxConnections?: number;
  /**
   * Handlers running at once across all connections (a worker pool); calls beyond it wait
   * their turn, counted against their connection's in-flight limit. @default 1024
   */
  maxConcurrentHandlers?: number;
  /** Handshake deadline from accept (ms). @default 10000 */
  handshakeTimeout?: number;
  /**
   * Called when a peer has authenticated (it may be async, e.g. to call the peer). What it
   * throws or rejects with is logged; the connection stays.
   */
  onConnect?: (peer: Peer, server: Server) => unknown;
  /** Called once when a peer's connection has closed (`reason` undefined: normal close). */
  onDisconnect?: (peer: Peer, reason: Error | undefined) => unknown;
  /**
   * Count served calls by method and outcome and time them (latency histograms in
   * {@link Server.metricsText}). It costs two `performance.now()` per record received, one per
   * call whose handler returns a promise, and a few `Map` operations per call; `false` skips it, and `stats().calls` then stays empty. Connection, handshake, byte and
   * in-flight figures are kept either way. @default true
   */
  metrics?: boolean;
  /** Middleware around every handler (before/after each call), outermost first. */
  middleware?: Middleware[];
  /** Interceptors around the calls the server makes to peers, outermost first. */
  interceptors?: Interceptor[];
  /**
   * Compress every payload the server sends at or above a threshold (deflate-raw). Off by
   * default; see the README's caveat on compressing secrets with attacker-controlled data.
   */
  compression?: CompressionOption;
  /** What to do with events nobody listens to. @default "ignore" */
  unhandledEvents?: UnhandledEventPolicy;
  /**
   * Offer ChaCha20-Poly1305 for small records (a synchronous AEAD: no Web Crypto dispatch on
   * small calls; large records stay on AES-256-GCM). `false` seals everything with AES-GCM.
   * @default true
   */
  chacha?: boolean;
  /** Test only: accept secrets shorter than 32 characters. */
  insecureAllowShortSecret?: boolean;
  /** Test hook: delay before AUTH_FAILED (ms). */
  authFailureDelayMs?: number;
  /** Test hook: KEY_UPDATE thresholds. */
  keyUpdate?: KeyUpdatePolicy;
}

/** Which peers a broadcast reaches. */
export interface BroadcastOptions {
  /** Peers (or peer ids) left out, e.g. the sender. */
  exclude?: Peer | string | Iterable<Peer | string>;
  /** Only peers for which this returns true. */
  filter?: (peer: Peer) => boolean;
  /** Compress the payload when it is at least the threshold (1 KiB). */
  compress?: boolean;
}

/** Options of {@link Server.broadcastCall}. */
export interface BroadcastCallOptions extends BroadcastOptions {
  /** Each peer's deadline (ms): a peer that has not answered by then gets `TIMEOUT`. @default 30000 */
  timeout?: number;
  /** Aborts every call. */
  signal?: AbortSignal;
  /** Metadata (headers) sent with every call. */
  meta?: Record<string, unknown>;
}

/** A running server. Close it with `await server.close()` or `await using`. */
export class Server implements AsyncDisposable {
  /** The bound addresses, port 0 resolved (`tcp://127.0.0.1:40211`). */
  readonly addresses: readonly string[];
  #listeners: Listener[];
  #peers = new Set<Peer>();
  #preauth = new Set<Conn>();
  #options: ServeOptions;
  #psk: Uint8Array;
  #instance = crypto.getRandomValues(new Uint8Array(16));
  #admission: Admission;
  #log: Logger;
  #methods;
  #closing: Promise<void> | undefined;
  #loops: Promise<void>[];
  #slots: Slots;
  #counters: ServerCounters;
  #events: EventHub<[Peer]>;

  /** @internal use {@link serve} */
  constructor(listeners: Listener[], psk: Uint8Array, options: ServeOptions, log: Logger) {
    this.#listeners = listeners;
    this.addresses = listeners.map((l) => l.address);
    this.#psk = psk;
    this.#options = options;
    this.#log = log;
    this.#methods = createMethodTable(options.methods);
    this.#events = new EventHub<[Peer]>(options.unhandledEvents, log);
    this.#counters = new ServerCounters(
      options.metrics === false ? undefined : this.#methods.keys(),
    );
    this.#admission = new Admission(options.admission);
    this.#slots = new Slots(options.maxConcurrentHandlers ?? DEFAULT_MAX_CONCURRENT_HANDLERS);
    this.#loops = listeners.map((l) => this.#acceptLoop(l));
  }

  /** The authenticated peers, live. */
  get peers(): Peer[] {
    return [...this.#peers];
  }

  /**
   * Listens to an event that clients send (`client.emit(name, data)`); `"*"` listens to all
   * (the listener then gets `(peer, name, data)`). Returns a function that removes it.
   */
  on(name: string, listener: (peer: Peer, data: unknown) => void): () => void;
  /** Listens to every event: `(peer, name, data)`. */
  on(name: "*", listener: (peer: Peer, name: string, data: unknown) => void): () => void;
  // deno-lint-ignore no-explicit-any
  on(name: string, listener: (...args: any[]) => void): () => void {
    return this.#events.on(name, listener);
  }

  /** Removes a listener added with {@link on}. */
  // deno-lint-ignore no-explicit-any
  off(name: string, listener: (...args: any[]) => void): void {
    this.#events.off(name, listener);
  }

  /**
   * Sends an event to every peer (or those `filter` keeps, minus `exclude`), encoded once.
   * Returns how many peers it was queued for; peers whose connection is closing are skipped.
   *
   * @example
   * ```ts ignore
   * server.on("chat", (from, text) => server.broadcast("chat", { from: from.id, text }, { exclude: from }));
   * ```
   */
  broadcast(name: string, data?: unknown, options: BroadcastOptions = {}): number {
    const event = encodeEvent(name, data);
    const emit: EmitOptions = { compress: options.compress };
    let sent = 0;
    for (const peer of this.#select(options)) {
      try {
        peer.session.emitEncoded(event, emit);
        sent++;
      } catch {
        // Closing: it will not see this event.
      }
    }
    return sent;
  }

  /**
   * Calls `method` on every peer (or those `filter` keeps, minus `exclude`) at once and
   * resolves with each one's settled result, keyed by peer, once all have answered, failed,
   * or reached `timeout` — a slow or dead peer never delays the others beyond it.
   */
  async broadcastCall<T = unknown>(
    method: string,
    params: Params = [],
    options: BroadcastCallOptions = {},
  ): Promise<Map<Peer, PromiseSettledResult<T>>> {
    const timeout = options.timeout ?? 30_000;
    const peers = [...this.#select(options)];
    const results = await Promise.allSettled(
      peers.map((peer) =>
        peer.session.call<T>(method, params, {
          timeout,
          signal: options.signal,
          meta: options.meta,
          compress: options.compress,
        })
      ),
    );
    return new Map(peers.map((peer, i) => [peer, results[i]]));
  }

  *#select(options: BroadcastOptions): Iterable<Peer> {
    const excluded = new Set<Peer | string>();
    const { exclude, filter } = options;
    if (typeof exclude === "string" || exclude instanceof Peer) excluded.add(exclude);
    else if (exclude !== undefined) { for (const e of exclude) excluded.add(e); }
    for (const peer of this.#peers) {
      if (excluded.has(peer) || excluded.has(peer.id)) continue;
      if (filter !== undefined && !filter(peer)) continue;
      yield peer;
    }
  }

  /** A snapshot of the server's counters (a fresh plain object, safe to serialize). */
  stats(): ServerStats {
    return this.#counters.stats(this.#peers);
  }

  /**
   * The counters of {@link stats} and the per-method latency histograms in the Prometheus
   * text exposition format 0.0.4 (serve it as `text/plain; version=0.0.4`): gauges
   * `trust_rpc_uptime_seconds`, `trust_rpc_connections`, `trust_rpc_calls_in_flight`,
   * `trust_rpc_streams_open`; counters `trust_rpc_handshakes_total{outcome}` (`ok` or the
   * failure code), `trust_rpc_received_bytes_total`, `trust_rpc_sent_bytes_total`,
   * `trust_rpc_calls_total{method,outcome}`; histogram
   * `trust_rpc_call_duration_seconds{method}` (100 µs to 10 s).
   */
  metricsText(): string {
    return this.#counters.metricsText(this.#peers);
  }

  /**
   * Shuts down gracefully: stops accepting, sends GOAWAY to every peer, lets calls in flight
   * finish within `timeout` ms, then closes every connection. Idempotent.
   */
  close(options: { timeout?: number } = {}): Promise<void> {
    this.#closing ??= this.#shutdown(options.timeout ?? DEFAULT_DRAIN_TIMEOUT);
    return this.#closing;
  }

  /** Same as {@link close} with the default drain timeout. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #shutdown(timeout: number): Promise<void> {
    for (const l of this.#listeners) l.close();
    await Promise.all(this.#loops);
    for (const conn of this.#preauth) conn.close();
    const peers = [...this.#peers];
    for (const p of peers) p.session.goAway();
    await Promise.all(peers.map((p) => p.session.drain({ timeout, shutdown: true })));
    await Promise.all(peers.map((p) => p.closed));
    this.#log.info("stopped", { peers: peers.length });
  }

  async #acceptLoop(listener: Listener): Promise<void> {
    while (this.#closing === undefined) {
      let conn: Conn | null;
      try {
        conn = await listener.accept();
      } catch (err) {
        // EMFILE and friends end `for await` over a Deno listener; this loop survives them.
        if (this.#closing !== undefined) return;
        this.#log.limited("warn", "accept", "accept_failed", {
          address: listener.address,
          reason: (err as Error).message,
        });
        await new Promise((resolve) => setTimeout(resolve, 50 + Math.random() * 50));
        continue;
      }
      if (conn === null) return;
      this.#admit(conn);
    }
  }

  #admit(conn: Conn): void {
    const host = conn.remoteHost;
    if (this.#admission.isRateLimited(host)) {
      this.#counters.countFailure("RATE_LIMITED");
      this.#log.limited("warn", "rate_limited", "rate_limited", { peer: conn.remoteAddress });
      return this.#refuse(conn, AlertCode.RATE_LIMITED, "rate limited");
    }
    if (this.#peers.size >= (this.#options.maxConnections ?? DEFAULT_MAX_CONNECTIONS)) {
      this.#counters.countFailure("BUSY");
      this.#log.limited("warn", "busy", "busy", { reason: "max_connections" });
      return this.#refuse(conn, AlertCode.BUSY, "busy");
    }
    if (!this.#admission.enter(host)) {
      this.#counters.countFailure("BUSY");
      this.#log.limited("warn", "busy", "busy", {
        reason: "preauth_cap",
        peer: conn.remoteAddress,
      });
      return this.#refuse(conn, AlertCode.BUSY, "busy");
    }
    this.#preauth.add(conn);
    this.#handshake(conn).finally(() => {
      this.#preauth.delete(conn);
      this.#admission.leave(host);
    });
  }

  /** An alert in place of M1 (seq 0), best effort, then close. */
  #refuse(conn: Conn, code: number, message: string): void {
    // On TLS the write waits for the TLS handshake: never longer than a second.
    const timer = setTimeout(() => conn.close(), REFUSE_DEADLINE);
    conn.write(encodeAlertFrame(code, message, 0)).catch(() => {}).finally(() => {
      clearTimeout(timer);
      conn.close();
    });
  }

  async #handshake(conn: Conn): Promise<void> {
    const started = performance.now();
    const reader = new FrameReader(conn, PREAUTH_BUFFER);
    const host = conn.remoteHost;
    let result;
    try {
      result = await serverHandshake(conn, reader, {
        psk: this.#psk,
        transport: conn.transport,
        maxFrame: this.#options.limits?.maxFrame ?? DEFAULT_MAX_FRAME,
        instance: this.#instance,
        timeoutMs: this.#options.handshakeTimeout ?? DEFAULT_HANDSHAKE_TIMEOUT,
        prepare: () => conn.handshake(),
        beginProof: () => this.#admission.beginProof(host),
        endProof: (ok) => this.#admission.endProof(host, ok),
        authFailureDelayMs: this.#options.authFailureDelayMs,
        chacha: this.#options.chacha,
        defaultTimeout: DEFAULT_CALL_TIMEOUT,
      });
    } catch (err) {
      conn.close();
      this.#logHandshakeFailure(conn, err);
      return;
    }
    if (this.#closing !== undefined) {
      conn.close();
      return;
    }
    reader.resize(); // adaptive from now on: small while idle, larger under load
    const session: Session = new Session({
      role: "server",
      channel: conn,
      reader,
      handshake: result,
      methods: this.#methods,
      limits: this.#options.limits,
      keyUpdate: this.#options.keyUpdate,
      logger: this.#log,
      slots: this.#slots,
      metrics: this.#counters.calls,
      middleware: this.#options.middleware,
      interceptors: this.#options.interceptors,
      compression: this.#options.compression,
      onEvent: (name, data) => this.#events.dispatch(name, [session.peer as Peer], data),
    });
    // Handlers see the Peer (which wraps the session) as `this.peer`.
    const peer = session.peer = new Peer(session, conn);
    this.#peers.add(peer);
    this.#counters.handshakeOk();
    this.#log.info("handshake_ok", {
      session: peer.id,
      peer: peer.remoteAddress,
      transport: peer.transport,
      ms: (performance.now() - started).toFixed(1),
    });
    session.closed.then((reason) => {
      this.#peers.delete(peer);
      this.#counters.closed(session);
      this.#log.info("disconnected", {
        session: peer.id,
        peer: peer.remoteAddress,
        reason: reason ? (reason as RpcError).code ?? reason.message : "closed",
      });
      this.#hook("onDisconnect", () => this.#options.onDisconnect?.(peer, reason));
    });
    this.#hook("onConnect", () => this.#options.onConnect?.(peer, this));
  }

  /** Runs a user hook: what it throws (or rejects with) is logged, never fatal. */
  #hook(name: string, run: () => unknown): void {
    const failed = (err: unknown) =>
      this.#log.limited("warn", name, "hook_failed", {
        hook: name,
        reason: escapeForLog(err instanceof Error ? err.message : String(err)),
      });
    try {
      const result = run();
      if (result instanceof Promise) result.catch(failed);
    } catch (err) {
      failed(err);
    }
  }

  #logHandshakeFailure(conn: Conn, err: unknown): void {
    const code = err instanceof RpcError ? err.code : "ERROR";
    this.#counters.countFailure(code);
    const fields = {
      session: err instanceof RpcError ? err.sessionId : undefined,
      peer: conn.remoteAddress,
      transport: conn.transport,
      reason: code === "AUTH_FAILED" ? "bad_proof" : code.toLowerCase(),
      detail: err instanceof RpcError ? undefined : escapeForLog(String((err as Error)?.message)),
    };
    if (code === "AUTH_FAILED") this.#log.limited("warn", "auth_failed", "auth_failed", fields);
    else this.#log.limited("debug", `handshake_${code}`, "handshake_failed", fields);
  }
}

/**
 * Starts a server. The secret is checked before any socket is opened.
 *
 * @example
 * ```ts ignore
 * import { serve } from "@trust/rpc";
 * await using server = await serve({ listen: "tcp://127.0.0.1:0", methods: { ping: () => "pong" } });
 * console.log(server.addresses[0]);
 * ```
 * @throws {SecretError} `TRUST_ID` missing, empty, weak or invalid
 * @throws {TransportError} an address cannot be bound
 */
export async function serve(options: ServeOptions = {}): Promise<Server> {
  const psk = await prepareSecret(options.secret, options.insecureAllowShortSecret);
  const log = typeof options.logger === "object"
    ? options.logger
    : createLogger({ level: options.logger ?? "info" });
  createMethodTable(options.methods); // validates names before binding anything
  const wanted = options.listen ?? DEFAULT_LISTEN;
  const items = Array.isArray(wanted) ? wanted : [wanted];
  const listeners: Listener[] = [];
  try {
    for (const item of items) {
      listeners.push(typeof item === "string" ? await listen(item, options.tls) : item);
    }
  } catch (err) {
    for (const l of listeners) l.close();
    throw err;
  }
  const server = new Server(listeners, psk, options, log);
  for (const address of server.addresses) log.info("listening", { address });
  return server;
}

if (import.meta.main) {
  const { serverMain } = await import("./cli/server_main.ts");
  Deno.exit(await serverMain(Deno.args, serve));
}
