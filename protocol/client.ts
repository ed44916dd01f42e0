/**
 * The client object behind `connect()`: one authenticated session at a time, replaced by a
 * fresh handshake whenever it is lost (backoff with full jitter); calls made meanwhile wait
 * within their own timeout. Events, streams, channels and the typed facade go through the
 * current session. This file knows no sockets: `connect()` in the root `client.ts` gives it
 * the function that dials and authenticates.
 *
 * @module
 */

import {
  backoffDelay,
  DEFAULT_AUTH_RETRY_DELAY,
  DEFAULT_RECONNECT_INITIAL_DELAY,
  DEFAULT_RECONNECT_MAX_DELAY,
} from "./backoff.ts";
import {
  AuthenticationError,
  CallTimeoutError,
  CancelledError,
  ConnectionClosedError,
  ResourceExhaustedError,
  RpcError,
} from "./errors.ts";
import { EventHub, type UnhandledEventPolicy } from "./events.ts";
import { DEFAULT_CALL_TIMEOUT } from "./limits.ts";
import type { Logger } from "./logger.ts";
import type { Methods, Params } from "./methods.ts";
import type { RetryHook } from "./pending_calls.ts";
import type { RpcChannel, RpcStream } from "./rpc_stream.ts";
import type { CallOptions, EmitOptions, Session, StreamOptions } from "./session.ts";
import { type Api, createApi } from "./typed_api.ts";

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

/** What a {@link Client} itself needs of the options of `connect()`. */
export interface ClientOptions {
  /** Default timeout of each call, waiting for a connection included (ms; 0 = none). @default 30000 */
  timeout?: number;
  /** Reconnect after a lost connection (`false`: the client closes with it). @default true */
  reconnect?: boolean | ReconnectOptions;
  /**
   * Methods that are safe to run twice: a call to one of them that was in flight when the
   * connection dropped is sent again after reconnecting instead of failing.
   */
  idempotent?: readonly string[];
  /** What to do with events nobody listens to. @default "ignore" */
  unhandledEvents?: UnhandledEventPolicy;
  /**
   * Event listeners in place before the first connection is up, so an event the server sends
   * at once (in its `onConnect`) is never missed: `{ welcome: (data) => … }`.
   */
  on?: Record<string, (data: unknown) => void>;
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
export interface SessionHooks {
  /** The server sent GOAWAY on this session. */
  goAway?: (session: Session) => void;
  /** The server sent an event. */
  event?: (name: string, data: unknown) => void;
  /** Events that arrived before the client existed (delivered when it does). */
  early?: [string, unknown][];
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
  /** What the calls on {@link #session} ask before they fail (see {@link #retryOn}). */
  #retry: RetryHook | undefined;
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
  #events: EventHub<[]>;

  /** @internal use {@link connect} */
  constructor(
    address: string,
    open: () => Promise<Session>,
    first: Session,
    hooks: SessionHooks,
    options: ClientOptions,
    log: Logger,
  ) {
    this.address = address;
    this.#open = open;
    hooks.goAway = (session) => this.#goAway(session);
    this.#log = log;
    this.#events = new EventHub<[]>(options.unhandledEvents, log);
    for (const [name, listener] of Object.entries(options.on ?? {})) {
      this.#events.on(name, listener);
    }
    hooks.event = (name, data) => this.#events.dispatch(name, [], data);
    for (const [name, data] of hooks.early?.splice(0) ?? []) hooks.event(name, data);
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
   * Resolves when the client is closed for good: `undefined` after {@link close} or when the
   * server closed the connection gracefully (with reconnecting off); the error when the
   * connection was lost. The `closed` status event says which side closed.
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
  call<T = unknown>(
    method: string,
    params?: Params,
    options: ClientCallOptions = NO_OPTIONS,
  ): Promise<T> {
    const session = this.#session;
    if (session === undefined || session.isClosed) {
      return this.#callLoop(
        method,
        params,
        options,
        deadlineOf(options.timeout ?? this.#callTimeout),
      );
    }
    // Connected: straight to the session (no async frame, no promise of our own on the hot
    // path); the loop below only takes over when the call may be retried, which the pending
    // call asks #retry before it fails. Without a timeout of its own the call takes the
    // session's default, which is this client's (both come from `options.timeout`).
    return session.call<T>(method, params, options, this.#retry);
  }

  /**
   * The retry hook of the calls made on `session`: one that failed before its answer (the
   * connection went, or the server refused it unrun) goes through {@link #callLoop} again
   * when {@link #mayRetry} allows, within its original deadline. Decided a microtask later,
   * as a rejection handler would be.
   */
  #retryOn(session: Session): RetryHook {
    return (call, err) => {
      if (!(err instanceof RpcError) || err.remote || this.#reconnect === undefined) return;
      return Promise.resolve().then(() => {
        const options = call.options as ClientCallOptions;
        const idempotent = options.idempotent ?? this.#idempotent.has(call.method);
        if (!this.#mayRetry(err, idempotent, call.deadline)) throw err;
        this.#retireIfRefusing(err, session);
        return this.#callLoop(call.method, call.params, options, call.deadline);
      });
    };
  }

  async #callLoop<T>(
    method: string,
    params: Params | undefined,
    options: ClientCallOptions,
    deadline: number,
  ): Promise<T> {
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
        this.#retireIfRefusing(err, session);
      }
    }
  }

  /** A live connection that refuses new calls (ids exhausted) is retired like GOAWAY. */
  #retireIfRefusing(err: unknown, session: Session): void {
    if ((err as RpcError).code === "UNAVAILABLE" && session === this.#session) {
      this.#goAway(session);
    }
  }

  /** Sends a notification: the method runs on the server, nothing is answered. */
  notify(method: string, params?: Params, options?: Omit<CallOptions, "timeout">): void {
    this.#current(`notify '${method}'`).notify(method, params, options);
  }

  /**
   * Listens to an event the server sends (`peer.emit`, `server.broadcast`); `"*"` listens to
   * all (the listener then gets `(name, data)`). Listeners stay across reconnects. Returns a
   * function that removes the listener.
   *
   * @example
   * ```ts ignore
   * const off = client.on("peer_joined", (data) => console.log("joined", data));
   * ```
   */
  on(name: string, listener: (data: unknown) => void): () => void;
  /** Listens to every event: `(name, data)`. */
  on(name: "*", listener: (name: string, data: unknown) => void): () => void;
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
   * Sends the server an event (its `server.on(name, …)` listeners get it). Throws
   * `CONNECTION_CLOSED` (retryable) while the client is not connected.
   */
  emit(name: string, data?: unknown, options?: EmitOptions): void {
    this.#current(`emit '${name}'`).emit(name, data, options);
  }

  /**
   * Calls a streaming method: iterate the result with `for await`; leaving the loop early
   * cancels it on the server. No timeout unless one is given. Fails with
   * `CONNECTION_CLOSED` (retryable) when the client is not connected (see
   * {@link waitConnected}) and when the connection drops mid-stream.
   *
   * @example
   * ```ts ignore
   * for await (const tick of client.stream<{ timestamp: string }>("time", [3, 100])) {
   *   console.log(tick.timestamp);
   * }
   * ```
   */
  stream<T = unknown, R = unknown>(
    method: string,
    params?: Params,
    options?: StreamOptions,
  ): RpcStream<T, R> {
    return this.#current(`stream '${method}'`).stream<T, R>(method, params, options);
  }

  /**
   * Opens a bidirectional channel: `send` values the handler reads as `this.input`, iterate
   * what it streams back, `close` to end your half.
   *
   * @example
   * ```ts ignore
   * await using chat = client.open<string, string>("chat");
   * await chat.send("hello");
   * for await (const reply of chat) console.log(reply);
   * ```
   */
  open<In = unknown, Out = unknown, R = unknown>(
    method: string,
    params?: Params,
    options?: StreamOptions,
  ): RpcChannel<In, Out, R> {
    return this.#current(`open '${method}'`).open<In, Out, R>(method, params, options);
  }

  /**
   * A typed facade over the server's methods, from their type alone (no code generation):
   * params and results are checked by TypeScript; streaming methods come back as async
   * iterables. Calls use the client's default timeout unless `options.timeout` says
   * otherwise (`0` for long-lived streams).
   *
   * @example
   * ```ts ignore
   * import type { methods } from "./server_methods.ts";
   * const api = client.api<typeof methods>();
   * const text: string = await api.greet("Alice");
   * for await (const tick of api.time(3, 100)) console.log(tick);
   * ```
   */
  api<M extends Methods>(options: StreamOptions = {}): Api<M> {
    return createApi<M>(
      (m, p, o) => this.stream(m, p, o),
      { timeout: this.#callTimeout, ...options },
    );
  }

  #current(what: string): Session {
    const session = this.#session;
    if (session === undefined || session.isClosed) {
      throw new ConnectionClosedError(`Cannot ${what}: not connected`, { retryable: true });
    }
    return session;
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
    this.#sleepAbort.abort("closed"); // a reason of our own: no DOMException to build
    if (this.#waiting.size) this.#failWaiters(new ConnectionClosedError("The client is closed"));
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
    this.#retry = this.#retryOn(session);
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

/** The options of a call made without any (shared: a default `{}` is an object per call). */
const NO_OPTIONS: ClientCallOptions = Object.freeze({});

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
