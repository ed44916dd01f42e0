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
import { DEFAULT_HANDSHAKE_TIMEOUT, DEFAULT_MAX_FRAME } from "./protocol/limits.ts";
import { createLogger, type Logger, type LogLevel } from "./protocol/logger.ts";
import { createMethodTable, type Methods } from "./protocol/methods.ts";
import {
  CallMetrics,
  MAX_OUTCOMES,
  type MetricFamily,
  OTHER_OUTCOME,
  renderPrometheus,
} from "./protocol/metrics.ts";
import type { KeyUpdatePolicy } from "./protocol/record.ts";
import { Slots } from "./protocol/slots.ts";
import { type CallOptions, type Params, Session, type SessionLimits } from "./protocol/session.ts";
import { prepareSecret } from "./env/prepare_secret.ts";
import { listen } from "./transports/mod.ts";
import type { Conn, Listener } from "./transports/types.ts";

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
  /** Called when a peer has authenticated. */
  onConnect?: (peer: Peer) => void;
  /** Called once when a peer's connection has closed (`reason` undefined: normal close). */
  onDisconnect?: (peer: Peer, reason: Error | undefined) => void;
  /**
   * Count served calls by method and outcome and time them (latency histograms in
   * {@link Server.metricsText}). It costs two `performance.now()` per record received, one per
   * call whose handler returns a promise, and a few `Map` operations per call; `false` skips it, and `stats().calls` then stays empty. Connection, handshake, byte and
   * in-flight figures are kept either way. @default true
   */
  metrics?: boolean;
  /** Test only: accept secrets shorter than 32 characters. */
  insecureAllowShortSecret?: boolean;
  /** Test hook: delay before AUTH_FAILED (ms). */
  authFailureDelayMs?: number;
  /** Test hook: KEY_UPDATE thresholds. */
  keyUpdate?: KeyUpdatePolicy;
}

/** One authenticated client as the server sees it. */
export class Peer {
  /** Session id (32 hex digits), the same on both sides. */
  readonly id: string;
  /** What carries the connection. */
  readonly transport: string;
  /** The client's address (`127.0.0.1:53122`, `unix`). */
  readonly remoteAddress: string;
  /** When it authenticated. */
  readonly connectedAt: Date;
  #session: Session;

  /** @internal */
  constructor(session: Session, conn: Conn) {
    this.#session = session;
    this.id = session.id;
    this.transport = conn.transport;
    this.remoteAddress = conn.remoteAddress;
    this.connectedAt = new Date();
  }

  /** Calls served for this peer right now. */
  get inFlight(): number {
    return this.#session.inFlight;
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

  /** Calls a method the client registered. */
  call<T = unknown>(method: string, params?: Params, options?: CallOptions): Promise<T> {
    return this.#session.call<T>(method, params, options);
  }

  /** Sends the client a notification. */
  notify(method: string, params?: Params): void {
    this.#session.notify(method, params);
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

/** A snapshot of a server's counters: {@link Server.stats}. Counters start at {@link serve}. */
export interface ServerStats {
  /** Authenticated connections open now. */
  connections: number;
  /** Handshakes since start. */
  handshakes: {
    /** Connections that authenticated. */
    ok: number;
    /** Connections that did not (the sum of `failedByReason`). */
    failed: number;
    /**
     * Failures by code: `AUTH_FAILED` (wrong secret), `HANDSHAKE_TIMEOUT`, `PROTOCOL_ERROR`,
     * `CONNECTION_CLOSED` (the client left mid-handshake), `TRANSPORT_MISMATCH`, …, and the
     * connections refused before any handshake: `BUSY` (connection or pre-auth cap) and
     * `RATE_LIMITED` (the address's failure budget is spent).
     */
    failedByReason: Record<string, number>;
  };
  /**
   * Requests and notifications served since start, counted when they finish (empty with
   * `metrics: false`).
   */
  calls: {
    /** Calls finished. */
    total: number;
    /**
     * Calls by outcome: `ok`, or the error code the caller got — `METHOD_NOT_FOUND`,
     * `INVALID_PARAMS`, `APPLICATION_ERROR` (a handler threw a plain Error), a handler's own
     * `RpcError` code, `CANCELLED` / `TIMEOUT` / `CONNECTION_CLOSED` (the handler was aborted;
     * no answer was sent), `UNAVAILABLE` (refused by GOAWAY), `RESOURCE_EXHAUSTED`. Only codes
     * seen appear; past 64 distinct codes the rest count as `OTHER`.
     */
    byOutcome: Record<string, number>;
    /**
     * Calls by method: only methods this server serves appear by name; every other name (and
     * requests refused before their name was read) counts as `unknown`.
     */
    byMethod: Record<string, number>;
  };
  /** Peer calls running (or waiting for a handler slot) now, across all connections. */
  inFlight: number;
  /** Bytes of sealed records received after handshakes, closed connections included. */
  bytesIn: number;
  /** Bytes of sealed records sent after handshakes, closed connections included. */
  bytesOut: number;
  /** Milliseconds since the server started. */
  uptime: number;
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
  #startedAt = performance.now();
  #calls: CallMetrics | undefined;
  #handshakesOk = 0;
  #handshakeFailures = new Map<string, number>();
  /** Bytes of connections already closed (live ones are summed over `#peers`). */
  #closedBytesIn = 0;
  #closedBytesOut = 0;

  /** @internal use {@link serve} */
  constructor(listeners: Listener[], psk: Uint8Array, options: ServeOptions, log: Logger) {
    this.#listeners = listeners;
    this.addresses = listeners.map((l) => l.address);
    this.#psk = psk;
    this.#options = options;
    this.#log = log;
    this.#methods = createMethodTable(options.methods);
    if (options.metrics !== false) this.#calls = new CallMetrics(this.#methods.keys());
    this.#admission = new Admission(options.admission);
    this.#slots = new Slots(options.maxConcurrentHandlers ?? DEFAULT_MAX_CONCURRENT_HANDLERS);
    this.#loops = listeners.map((l) => this.#acceptLoop(l));
  }

  /** The authenticated peers, live. */
  get peers(): Peer[] {
    return [...this.#peers];
  }

  /** A snapshot of the server's counters (a fresh plain object, safe to serialize). */
  stats(): ServerStats {
    let inFlight = 0;
    let bytesIn = this.#closedBytesIn;
    let bytesOut = this.#closedBytesOut;
    for (const peer of this.#peers) {
      inFlight += peer.inFlight;
      bytesIn += peer.bytesIn;
      bytesOut += peer.bytesOut;
    }
    let failed = 0;
    for (const n of this.#handshakeFailures.values()) failed += n;
    return {
      connections: this.#peers.size,
      handshakes: {
        ok: this.#handshakesOk,
        failed,
        failedByReason: Object.fromEntries(this.#handshakeFailures),
      },
      calls: {
        total: this.#calls?.total ?? 0,
        byOutcome: this.#calls?.byOutcome() ?? {},
        byMethod: this.#calls?.byMethod() ?? {},
      },
      inFlight,
      bytesIn,
      bytesOut,
      uptime: performance.now() - this.#startedAt,
    };
  }

  /**
   * The counters of {@link stats} and the per-method latency histograms in the Prometheus
   * text exposition format 0.0.4 (serve it as `text/plain; version=0.0.4`): gauges
   * `trust_rpc_uptime_seconds`, `trust_rpc_connections`, `trust_rpc_calls_in_flight`;
   * counters `trust_rpc_handshakes_total{outcome}` (`ok` or the failure code),
   * `trust_rpc_received_bytes_total`, `trust_rpc_sent_bytes_total`,
   * `trust_rpc_calls_total{method,outcome}`; histogram
   * `trust_rpc_call_duration_seconds{method}` (100 µs to 10 s).
   */
  metricsText(): string {
    const s = this.stats();
    const handshakes = [{ labels: { outcome: "ok" }, value: s.handshakes.ok }];
    for (const [outcome, value] of this.#handshakeFailures) {
      handshakes.push({ labels: { outcome }, value });
    }
    const families: MetricFamily[] = [
      {
        name: "trust_rpc_uptime_seconds",
        help: "Seconds since the server started.",
        type: "gauge",
        samples: [{ value: s.uptime / 1000 }],
      },
      {
        name: "trust_rpc_connections",
        help: "Authenticated connections open now.",
        type: "gauge",
        samples: [{ value: s.connections }],
      },
      {
        name: "trust_rpc_handshakes_total",
        help: "Handshakes by outcome: ok, or why the connection was refused or failed.",
        type: "counter",
        samples: handshakes,
      },
      {
        name: "trust_rpc_calls_in_flight",
        help: "Peer calls running or waiting for a handler slot now.",
        type: "gauge",
        samples: [{ value: s.inFlight }],
      },
      {
        name: "trust_rpc_received_bytes_total",
        help: "Bytes of sealed records received after handshakes.",
        type: "counter",
        samples: [{ value: s.bytesIn }],
      },
      {
        name: "trust_rpc_sent_bytes_total",
        help: "Bytes of sealed records sent after handshakes.",
        type: "counter",
        samples: [{ value: s.bytesOut }],
      },
    ];
    if (this.#calls !== undefined) families.push(...this.#calls.families("trust_rpc_"));
    return renderPrometheus(families);
  }

  #countFailure(code: string): void {
    const map = this.#handshakeFailures;
    if (!map.has(code) && map.size >= MAX_OUTCOMES) code = OTHER_OUTCOME;
    map.set(code, (map.get(code) ?? 0) + 1);
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
      this.#countFailure("RATE_LIMITED");
      this.#log.limited("warn", "rate_limited", "rate_limited", { peer: conn.remoteAddress });
      return this.#refuse(conn, AlertCode.RATE_LIMITED, "rate limited");
    }
    if (this.#peers.size >= (this.#options.maxConnections ?? DEFAULT_MAX_CONNECTIONS)) {
      this.#countFailure("BUSY");
      this.#log.limited("warn", "busy", "busy", { reason: "max_connections" });
      return this.#refuse(conn, AlertCode.BUSY, "busy");
    }
    if (!this.#admission.enter(host)) {
      this.#countFailure("BUSY");
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
    reader.resize(16 * 1024);
    // The handler context exposes the Peer, which itself wraps the session: fill it in below.
    const holder: { peer?: Peer } = {};
    const session = new Session({
      role: "server",
      channel: conn,
      reader,
      handshake: result,
      methods: this.#methods,
      limits: this.#options.limits,
      keyUpdate: this.#options.keyUpdate,
      logger: this.#log,
      slots: this.#slots,
      metrics: this.#calls,
      context: {
        get peer() {
          return holder.peer;
        },
      },
    });
    const peer = new Peer(session, conn);
    holder.peer = peer;
    this.#peers.add(peer);
    this.#handshakesOk++;
    this.#log.info("handshake_ok", {
      session: peer.id,
      peer: peer.remoteAddress,
      transport: peer.transport,
      ms: (performance.now() - started).toFixed(1),
    });
    this.#options.onConnect?.(peer);
    session.closed.then((reason) => {
      this.#peers.delete(peer);
      this.#closedBytesIn += session.bytesIn;
      this.#closedBytesOut += session.bytesOut;
      this.#log.info("disconnected", {
        session: peer.id,
        peer: peer.remoteAddress,
        reason: reason ? (reason as RpcError).code ?? reason.message : "closed",
      });
      this.#options.onDisconnect?.(peer, reason);
    });
  }

  #logHandshakeFailure(conn: Conn, err: unknown): void {
    const code = err instanceof RpcError ? err.code : "ERROR";
    this.#countFailure(code);
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
