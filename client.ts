/**
 * The client side of `@trust/rpc`: {@link connect} dials an address, proves the shared secret
 * in the trust-rpc/1 handshake, checks the server's proof, and returns a {@link Client} whose
 * calls are multiplexed over one sealed connection. When that connection is lost the client
 * reconnects by itself (backoff with full jitter, a fresh handshake each time); calls made
 * meanwhile wait for it within their own timeout.
 *
 * Run it as a program for the demo and a small CLI: `deno run -A client.ts --help`.
 *
 * @example Call the demo server
 * ```ts ignore
 * import { connect } from "@trust/rpc/client";
 * await using client = await connect("tcp://127.0.0.1:8888");
 * console.log(await client.call("greet", ["Alice"])); // "Hello, Alice!"
 * ```
 *
 * @module
 */

import { prepareSecret } from "./env/prepare_secret.ts";
import {
  backoffDelay,
  DEFAULT_AUTH_RETRY_DELAY,
  DEFAULT_RECONNECT_INITIAL_DELAY,
  DEFAULT_RECONNECT_MAX_DELAY,
} from "./protocol/backoff.ts";
import {
  AuthenticationError,
  CallTimeoutError,
  CancelledError,
  ConnectionClosedError,
  ResourceExhaustedError,
  RpcError,
} from "./protocol/errors.ts";
import { FrameReader } from "./protocol/frame_reader.ts";
import { clientHandshake } from "./protocol/handshake.ts";
import { DEFAULT_CALL_TIMEOUT, DEFAULT_MAX_FRAME } from "./protocol/limits.ts";
import { createLogger, type Logger, type LogLevel } from "./protocol/logger.ts";
import { createMethodTable, type Methods } from "./protocol/methods.ts";
import type { KeyUpdatePolicy } from "./protocol/record.ts";
import { type CallOptions, type Params, Session, type SessionLimits } from "./protocol/session.ts";
import { dial } from "./transports/mod.ts";
import type { Dialer } from "./transports/types.ts";

/** Calls that may wait for a connection at once, by default. */
export const DEFAULT_MAX_QUEUED_CALLS = 1024;

/** How the client reconnects after losing its connection. */
export interface ReconnectOptions {
  /** First backoff ceiling (ms). @default 100 */
  initialDelay?: number;
  /** Largest backoff ceiling (ms). @default 30000 */
  maxDelay?: number;
  /** Wait after an authentication failure, a configuration error (ms). @default 30000 */
  authRetryDelay?: number;
  /** Calls that may wait for the connection at once; more fail with RESOURCE_EXHAUSTED. @default 1024 */
  maxQueuedCalls?: number;
}

/** Options of {@link connect}. */
export interface ConnectOptions {
  /** The shared secret. @default the `TRUST_ID` environment variable */
  secret?: string;
  /** Methods the server may call on this client. */
  methods?: Methods;
  /** PEM CA certificates that sign the server's certificate (`tls://`). */
  caCerts?: string[];
  /** `tls://` only, insecure: skip the hostname check of the server certificate. */
  insecureSkipHostnameVerification?: boolean;
  /** Default timeout of each call, waiting for a connection included (ms; 0 = none). @default 30000 */
  timeout?: number;
  /** Deadline for the TCP/TLS/Unix connect (ms). @default 10000 */
  connectTimeout?: number;
  /** Deadline for the trust-rpc handshake (ms). @default 10000 */
  handshakeTimeout?: number;
  /** Aborts the first connection attempt. */
  signal?: AbortSignal;
  /** Reconnect after a lost connection (`false`: the client closes with it). @default true */
  reconnect?: boolean | ReconnectOptions;
  /**
   * Methods that are safe to run twice: a call to one of them that was in flight when the
   * connection dropped is sent again after reconnecting instead of failing.
   */
  idempotent?: readonly string[];
  /** Logger, or a level for the built-in one. @default level "warn" */
  logger?: Logger | LogLevel;
  /** Per-connection limits (heartbeat included). */
  limits?: SessionLimits;
  /** Accept a server that believes it is on another transport (behind a TLS-terminating proxy). */
  allowTransportMismatch?: boolean;
  /** Test only: accept secrets shorter than 32 characters. */
  insecureAllowShortSecret?: boolean;
  /** Test hook: KEY_UPDATE thresholds. */
  keyUpdate?: KeyUpdatePolicy;
}

/** Options of one {@link Client.call}. */
export interface ClientCallOptions extends CallOptions {
  /** Safe to send again if the connection drops while it is in flight. */
  idempotent?: boolean;
}

/** Where the client stands. */
export type ClientStatus = "connecting" | "connected" | "disconnected" | "reconnecting" | "closed";

/** A change of {@link ClientStatus}. */
export interface StatusEvent {
  /** The new status. */
  status: ClientStatus;
  /** Why (disconnected, a failed attempt, closed with an error). */
  reason?: Error;
  /** Reconnect attempt number (from 1), on `reconnecting`. */
  attempt?: number;
  /** Wait before that attempt (ms), on `reconnecting`. */
  delay?: number;
  /** The new session, on `connected`. */
  sessionId?: string;
}

/** Callbacks from sessions to the client that owns them (set once the client exists). */
interface SessionHooks {
  goAway?: (session: Session) => void;
}

interface Waiter {
  resolve: (session: Session) => void;
  reject: (err: Error) => void;
}

/**
 * A connection to a server that survives losing it. Close it with `await client.close()` or
 * `await using`.
 */
export class Client implements AsyncDisposable {
  /** The address dialed. */
  readonly address: string;
  #open: () => Promise<Session>;
  #session: Session | undefined;
  #status: ClientStatus = "connected";
  #listeners = new Set<(event: StatusEvent) => void>();
  #waiting = new Set<Waiter>();
  #reconnect: Required<ReconnectOptions> | undefined;
  #idempotent: ReadonlySet<string>;
  #callTimeout: number;
  #closing: Promise<void> | undefined;
  #reconnecting = false;
  #reconnects = 0;
  #sleepAbort = new AbortController();
  #closed = Promise.withResolvers<Error | undefined>();
  #log: Logger;

  /** @internal use {@link connect} */
  constructor(
    address: string,
    open: () => Promise<Session>,
    first: Session,
    hooks: SessionHooks,
    options: ConnectOptions,
    log: Logger,
  ) {
    this.address = address;
    this.#open = open;
    hooks.goAway = (session) => this.#goAway(session);
    this.#log = log;
    this.#callTimeout = options.timeout ?? DEFAULT_CALL_TIMEOUT;
    this.#idempotent = new Set(options.idempotent ?? []);
    const r = options.reconnect ?? true;
    this.#reconnect = r === false ? undefined : {
      initialDelay: (r === true ? undefined : r.initialDelay) ?? DEFAULT_RECONNECT_INITIAL_DELAY,
      maxDelay: (r === true ? undefined : r.maxDelay) ?? DEFAULT_RECONNECT_MAX_DELAY,
      authRetryDelay: (r === true ? undefined : r.authRetryDelay) ?? DEFAULT_AUTH_RETRY_DELAY,
      maxQueuedCalls: (r === true ? undefined : r.maxQueuedCalls) ?? DEFAULT_MAX_QUEUED_CALLS,
    };
    this.#attach(first);
  }

  /** Session id of the current connection (32 hex digits), the same the server logs. */
  get sessionId(): string {
    return this.#session?.id ?? "";
  }

  /** Where the client stands now. */
  get status(): ClientStatus {
    return this.#status;
  }

  /** Connections made after the first one. */
  get reconnects(): number {
    return this.#reconnects;
  }

  /**
   * Resolves when the client is closed for good: `undefined` after {@link close}, the reason
   * when the connection was lost and reconnecting is off.
   */
  get closed(): Promise<Error | undefined> {
    return this.#closed.promise;
  }

  /** Calls waiting for an answer on the current connection. */
  get pendingCalls(): number {
    return this.#session?.pendingCalls ?? 0;
  }

  /** Subscribes to status changes; returns the function that unsubscribes. */
  onStatus(listener: (event: StatusEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Resolves once connected (at once when already connected).
   *
   * @throws {CallTimeoutError} not connected within `timeout` ms
   * @throws {ConnectionClosedError} the client closed
   */
  async waitConnected(options: { timeout?: number; signal?: AbortSignal } = {}): Promise<void> {
    await this.#sessionFor("waitConnected", deadlineOf(options.timeout ?? 0), options.signal);
  }

  /**
   * Calls a method on the server. Rejects with the server's error rebuilt here (same class,
   * code and message), `TIMEOUT`, `CANCELLED` or `CONNECTION_CLOSED`. While the client is
   * reconnecting the call waits for the connection within its timeout.
   *
   * @example
   * ```ts ignore
   * const result = await client.call<string>("greet", ["Alice"], { timeout: 5000 });
   * ```
   */
  async call<T = unknown>(
    method: string,
    params?: Params,
    options: ClientCallOptions = {},
  ): Promise<T> {
    const timeout = options.timeout ?? this.#callTimeout;
    const deadline = deadlineOf(timeout);
    const retryAfterDrop = options.idempotent ?? this.#idempotent.has(method);
    for (;;) {
      const session = this.#session !== undefined && !this.#session.isClosed
        ? this.#session
        : await this.#sessionFor(method, deadline, options.signal);
      try {
        return await session.call<T>(method, params, {
          ...options,
          timeout: deadline === Infinity ? 0 : Math.max(1, deadline - Date.now()),
        });
      } catch (err) {
        if (!this.#mayRetry(err, retryAfterDrop, deadline)) throw err;
        // A live connection that refuses new calls (ids exhausted) is retired like GOAWAY.
        if ((err as RpcError).code === "UNAVAILABLE" && session === this.#session) {
          this.#goAway(session);
        }
      }
    }
  }

  /** Sends a notification: the method runs on the server, nothing is answered. */
  notify(method: string, params?: Params, options?: Omit<CallOptions, "timeout">): void {
    const session = this.#session;
    if (session === undefined || session.isClosed) {
      throw new ConnectionClosedError(`Cannot notify '${method}': not connected`, {
        retryable: true,
      });
    }
    session.notify(method, params, options);
  }

  /** Measures a round trip with PING/PONG on the current connection (ms). */
  ping(options?: { timeout?: number }): Promise<number> {
    const session = this.#session;
    if (session === undefined) {
      return Promise.reject(new ConnectionClosedError("Cannot ping: not connected"));
    }
    return session.ping(options);
  }

  /**
   * Closes gracefully: stops reconnecting, fails calls waiting for a connection, lets calls
   * in flight finish (up to `timeout` ms), then sends CLOSE. Idempotent.
   */
  close(options: { timeout?: number } = {}): Promise<void> {
    this.#closing ??= this.#shutdown(options.timeout ?? 10_000);
    return this.#closing;
  }

  /** Same as {@link close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #shutdown(timeout: number): Promise<void> {
    this.#sleepAbort.abort();
    this.#failWaiters(new ConnectionClosedError("The client is closed"));
    await this.#session?.drain({ timeout });
    this.#setStatus({ status: "closed" });
    this.#closed.resolve(undefined);
  }

  /** A call failed: retry it when it never ran, or when it may run twice and was cut off. */
  #mayRetry(err: unknown, retryAfterDrop: boolean, deadline: number): boolean {
    if (this.#reconnect === undefined || this.#closing || Date.now() >= deadline) return false;
    if (!(err instanceof RpcError) || err.remote) return false;
    if (err.retryable && (err.code === "UNAVAILABLE" || err.code === "CONNECTION_CLOSED")) {
      return true; // refused before it ran: GOAWAY, or sent to a connection already closed
    }
    return retryAfterDrop && err.code === "CONNECTION_CLOSED";
  }

  #attach(session: Session): void {
    this.#session = session;
    session.closed.then((reason) => this.#lost(session, reason));
  }

  #setStatus(event: StatusEvent): void {
    this.#status = event.status;
    for (const listener of [...this.#listeners]) {
      try {
        listener(event);
      } catch (err) {
        this.#log.warn("status_listener_failed", { reason: String((err as Error)?.message) });
      }
    }
  }

  /** The current session, or one once (re)connected, within `deadline`. */
  #sessionFor(what: string, deadline: number, signal?: AbortSignal): Promise<Session> {
    const session = this.#session;
    if (session !== undefined && !session.isClosed) return Promise.resolve(session);
    if (this.#closing || this.#status === "closed") {
      return Promise.reject(
        new ConnectionClosedError(`Cannot call '${what}': the client is closed`),
      );
    }
    const limit = this.#reconnect?.maxQueuedCalls ?? 0;
    if (this.#waiting.size >= limit) {
      return Promise.reject(
        new ResourceExhaustedError(
          `Cannot call '${what}': ${limit} calls are already waiting for the connection`,
          { retryable: true },
        ),
      );
    }
    if (signal?.aborted) {
      return Promise.reject(
        new CancelledError(`Call to '${what}' was cancelled`, { cause: signal.reason }),
      );
    }
    return new Promise<Session>((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const done = () => {
        this.#waiting.delete(waiter);
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
      };
      const waiter: Waiter = {
        resolve: (s) => (done(), resolve(s)),
        reject: (e) => (done(), reject(e)),
      };
      const onAbort = () =>
        waiter.reject(
          new CancelledError(`Call to '${what}' was cancelled`, { cause: signal?.reason }),
        );
      if (deadline !== Infinity) {
        timer = setTimeout(
          () =>
            waiter.reject(
              new CallTimeoutError(`Call to '${what}' timed out waiting for a connection`),
            ),
          Math.max(0, deadline - Date.now()),
        );
      }
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#waiting.add(waiter);
    });
  }

  #failWaiters(err: Error): void {
    for (const waiter of [...this.#waiting]) waiter.reject(err);
  }

  /**
   * The server is going away: calls in flight finish on the old connection; new calls wait
   * for a new one (with reconnecting off, the client closes along with the old connection).
   */
  #goAway(session: Session): void {
    if (session !== this.#session || this.#closing || this.#reconnect === undefined) return;
    this.#session = undefined;
    const why = new RpcError("UNAVAILABLE", "The server is going away", { retryable: true });
    this.#setStatus({ status: "disconnected", reason: why });
    this.#reconnectLoop(why);
  }

  #lost(session: Session, reason: Error | undefined): void {
    if (session !== this.#session || this.#closing) return;
    this.#session = undefined;
    const why = reason ?? new ConnectionClosedError("The server closed the connection");
    this.#log.info("disconnected", { session: session.id, reason: why.message });
    this.#setStatus({ status: "disconnected", reason: why });
    if (this.#reconnect === undefined) {
      this.#failWaiters(new ConnectionClosedError("The connection is closed", { cause: why }));
      this.#setStatus({ status: "closed", reason: why });
      this.#closed.resolve(reason);
      return;
    }
    this.#reconnectLoop(why);
  }

  async #reconnectLoop(reason: Error): Promise<void> {
    if (this.#reconnecting) return;
    this.#reconnecting = true;
    const policy = this.#reconnect!;
    let failure: Error = reason;
    try {
      for (let attempt = 0; !this.#closing; attempt++) {
        const delay = failure instanceof AuthenticationError
          ? policy.authRetryDelay
          : backoffDelay(attempt, policy.initialDelay, policy.maxDelay);
        this.#setStatus({ status: "reconnecting", reason: failure, attempt: attempt + 1, delay });
        await sleep(delay, this.#sleepAbort.signal);
        if (this.#closing) return;
        this.#setStatus({ status: "connecting" });
        try {
          const session = await this.#open();
          if (this.#closing) {
            session.close();
            return;
          }
          this.#reconnects++;
          this.#attach(session);
          this.#setStatus({ status: "connected", sessionId: session.id });
          for (const waiter of [...this.#waiting]) waiter.resolve(session);
          return;
        } catch (err) {
          failure = err instanceof Error ? err : new Error(String(err));
          this.#log.info("reconnect_failed", { attempt: attempt + 1, reason: failure.message });
        }
      }
    } finally {
      this.#reconnecting = false;
    }
  }
}

function deadlineOf(timeout: number): number {
  return timeout > 0 ? Date.now() + timeout : Infinity;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted || ms <= 0) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}

/**
 * Connects and authenticates. The secret is checked before any socket is opened. The first
 * connection must succeed; after that the client reconnects by itself (see
 * {@link ConnectOptions.reconnect}).
 *
 * @param address `tcp://host:port`, `tls://host:port`, `unix:///path`, or a {@link Dialer}
 * @param options secret, TLS trust, timeouts, reconnect policy, methods the server may call
 * @returns an authenticated client
 * @throws {SecretError} `TRUST_ID` missing, empty, weak or invalid
 * @throws {TransportError} the connection or the TLS handshake failed
 * @throws {AuthenticationError} `AUTH_FAILED` (the secrets differ), `SERVER_AUTH_FAILED`, `RATE_LIMITED`
 * @throws {ProtocolError} not a trust-rpc server, wrong version or transport, handshake timeout
 *
 * @example
 * ```ts ignore
 * import { connect } from "@trust/rpc";
 * await using client = await connect("unix:///tmp/trust-rpc.sock", { timeout: 5000 });
 * await client.call("health");
 * ```
 */
export async function connect(
  address: string | Dialer,
  options: ConnectOptions = {},
): Promise<Client> {
  const psk = await prepareSecret(options.secret, options.insecureAllowShortSecret);
  const methods = createMethodTable(options.methods);
  const log = typeof options.logger === "object"
    ? options.logger
    : createLogger({ level: options.logger ?? "warn" });
  const dialer = typeof address === "string"
    ? dial(address, {
      caCerts: options.caCerts,
      connectTimeout: options.connectTimeout,
      insecureSkipHostnameVerification: options.insecureSkipHostnameVerification,
    })
    : address;
  const instance = crypto.getRandomValues(new Uint8Array(16));
  const hooks: SessionHooks = {};
  const open = async (signal?: AbortSignal): Promise<Session> => {
    signal?.throwIfAborted();
    const conn = await dialer.dial({ signal });
    const abort = () => conn.close();
    signal?.addEventListener("abort", abort, { once: true });
    const reader = new FrameReader(conn);
    let handshake;
    try {
      handshake = await clientHandshake(conn, reader, {
        psk,
        transport: dialer.transport,
        maxFrame: options.limits?.maxFrame ?? DEFAULT_MAX_FRAME,
        instance,
        timeoutMs: options.handshakeTimeout,
        allowTransportMismatch: options.allowTransportMismatch,
      });
    } catch (err) {
      conn.close();
      if (signal?.aborted) {
        throw new CancelledError("Connecting was cancelled", { cause: signal.reason });
      }
      throw err;
    } finally {
      signal?.removeEventListener("abort", abort);
    }
    log.debug("handshake_ok", { session: handshake.sessionIdHex, address: dialer.address });
    const session: Session = new Session({
      role: "client",
      channel: conn,
      reader,
      handshake,
      methods,
      limits: options.limits,
      keyUpdate: options.keyUpdate,
      callTimeout: options.timeout,
      logger: log,
      onGoAway: () => hooks.goAway?.(session),
    });
    return session;
  };
  const first = await open(options.signal);
  return new Client(dialer.address, () => open(), first, hooks, options, log);
}

// ── Connection pool ─────────────────────────────────────────────────────────────────────────

import { openPool, type Pool, type PoolOptions } from "./protocol/pool.ts";

/**
 * Options of {@link createPool}: the pool's own (endpoints, size, policy, health checks) and
 * those of {@link connect}, used for every connection. `timeout`, `connectTimeout` and
 * `idempotent` serve both; `signal` aborts waiting for the first connection.
 */
export type CreatePoolOptions =
  & PoolOptions<string | Dialer>
  & Omit<ConnectOptions, "reconnect" | "signal">;

/**
 * Opens a pool of connections over one or more servers: `size` connections per endpoint,
 * calls balanced by `policy` (least in flight by default, or round robin) over the healthy
 * ones, PING health checks every `healthInterval` ms. A failed endpoint is taken out of
 * rotation and probed back in; one that cannot be reached at first is retried in the
 * background. Resolves once one connection is up.
 *
 * Each connection is a {@link Client} that closes with its server (no reconnect of its own):
 * the pool opens a new one in the background (`connectRetry` backoff) and routes calls to the
 * others meanwhile, so a call refused by a server going away moves to another one at once
 * instead of waiting for that server to come back.
 *
 * @param options endpoints, size, policy, health checks, and the options of {@link connect}
 * @returns the pool: `call()`, `notify()`, `stats()`, `close()`
 * @throws {SecretError} `TRUST_ID` missing, empty, weak or invalid
 * @throws {TransportError} `INVALID_ADDRESS`; `CONNECT_FAILED` when no endpoint was reached
 *   within `connectTimeout` (the first connect error is thrown, whatever its class)
 * @throws {RangeError} no endpoints, or a bad `size` or `policy`
 *
 * @example Three servers, two connections each
 * ```ts ignore
 * import { createPool } from "@trust/rpc";
 * await using pool = await createPool({
 *   endpoints: ["tcp://127.0.0.1:8881", "tcp://127.0.0.1:8882", "unix:///tmp/trust-rpc.sock"],
 *   size: 2,
 *   timeout: 5000,
 * });
 * await pool.call("greet", ["Alice"]);
 * console.log(pool.stats().endpoints.map((e) => [e.endpoint, e.healthy, e.calls]));
 * ```
 */
export async function createPool(options: CreatePoolOptions): Promise<Pool<string | Dialer>> {
  const {
    endpoints,
    size: _size,
    policy: _policy,
    healthInterval: _healthInterval,
    healthTimeout: _healthTimeout,
    connectRetry: _connectRetry,
    maxQueuedCalls: _maxQueuedCalls,
    signal: _signal,
    ...connectOptions
  } = options;
  // Fail fast on what no retry can fix: the secret and the addresses.
  await prepareSecret(options.secret, options.insecureAllowShortSecret);
  for (const endpoint of endpoints) {
    if (typeof endpoint === "string") dial(endpoint, { caCerts: options.caCerts });
  }
  return await openPool(
    (endpoint) => connect(endpoint, { ...connectOptions, reconnect: false }),
    options,
  );
}

if (import.meta.main) {
  const { clientMain } = await import("./cli/client_main.ts");
  Deno.exit(await clientMain(Deno.args, connect));
}
