/**
 * A connection pool over one or more endpoints: several members (connections that heal
 * themselves), a balancing policy, and PING health checks. A member whose status is not
 * `connected`, or that failed a health check, is taken out of rotation and probed back in.
 * Web platform only: members come from a factory (`connectTo`), so this file opens no socket.
 *
 * @module
 */

import { backoffDelay } from "./backoff.ts";
import {
  CallTimeoutError,
  CancelledError,
  ConnectionClosedError,
  ResourceExhaustedError,
  RpcError,
  UnavailableError,
} from "./errors.ts";
import { DEFAULT_CALL_TIMEOUT } from "./limits.ts";
import type { RpcStream } from "./rpc_stream.ts";
import type { CallOptions, Params, StreamOptions } from "./session.ts";

/** How the pool picks a connection for each call. */
export type PoolPolicy = "least-in-flight" | "round-robin";

/** An endpoint: an address, or anything with an `address` (a dialer). */
export type PoolEndpoint = string | { readonly address: string };

/** Options of one pooled call. */
export interface PoolCallOptions extends CallOptions {
  /** Safe to run twice: a call cut off in flight is sent again on another connection. */
  idempotent?: boolean;
}

/** A status change of a {@link PoolMember}. */
export interface PoolMemberStatusEvent {
  /** The new status (`connected` is the only one that takes calls). */
  status: string;
  /** Why, when it is a loss. */
  reason?: Error;
}

/**
 * What the pool needs of a connection (a `Client` is one). A member that loses its connection
 * for good reports `closed` and the pool opens a new one; a member that reconnects by itself
 * (back to `connected`) is probed back into rotation.
 */
export interface PoolMember {
  /** `connected` when it takes calls. */
  readonly status: string;
  /** Calls waiting for an answer on the connection. */
  readonly pendingCalls: number;
  /** Calls a method. */
  call<T = unknown>(method: string, params?: Params, options?: PoolCallOptions): Promise<T>;
  /** Sends a notification. */
  notify(method: string, params?: Params, options?: Omit<CallOptions, "timeout">): void;
  /** Calls a streaming method. */
  stream<T = unknown, R = unknown>(
    method: string,
    params?: Params,
    options?: StreamOptions,
  ): RpcStream<T, R>;
  /** Round trip of a PING (ms). */
  ping(options?: { timeout?: number }): Promise<number>;
  /** Closes the connection, letting calls in flight finish. */
  close(options?: { timeout?: number }): Promise<void>;
  /** Subscribes to status changes; returns the function that unsubscribes. */
  onStatus(listener: (event: PoolMemberStatusEvent) => void): () => void;
}

/** Options of a pool. */
export interface PoolOptions<E extends PoolEndpoint = PoolEndpoint> {
  /** The servers to spread calls over (at least one). */
  endpoints: readonly E[];
  /** Connections per endpoint. @default 1 */
  size?: number;
  /** `least-in-flight` (ties taken in turn) or `round-robin`. @default "least-in-flight" */
  policy?: PoolPolicy;
  /** PING every connection this often (ms; 0 = no health checks). Keep it at 200 or more. @default 5000 */
  healthInterval?: number;
  /** A health PING not answered within this fails (ms). @default min(2000, healthInterval) */
  healthTimeout?: number;
  /**
   * The pool is ready once one connection is up; with none within this it fails with the
   * first connect error (ms). @default 10000
   */
  connectTimeout?: number;
  /**
   * Backoff of the background connect attempts (ms): to endpoints not reached at first, and
   * to replace connections that closed. @default { initialDelay: 100, maxDelay: 5000 }
   */
  connectRetry?: { initialDelay?: number; maxDelay?: number };
  /** Default timeout of each call, waiting for a healthy connection included (ms; 0 = none). @default 30000 */
  timeout?: number;
  /** Methods safe to run twice: cut off in flight, they are sent again on another connection. */
  idempotent?: readonly string[];
  /** Calls that may wait for a healthy connection at once; more fail with RESOURCE_EXHAUSTED. @default 1024 */
  maxQueuedCalls?: number;
  /** Aborts waiting for the first connection. */
  signal?: AbortSignal;
}

/** Counters of one endpoint in {@link PoolStats}. */
export interface PoolEndpointStats {
  /** The endpoint's address. */
  endpoint: string;
  /** Connections open now (status `connected`). */
  connections: number;
  /** Connections in rotation now. */
  healthy: number;
  /** Calls the pool has on this endpoint now. */
  inFlight: number;
  /** Calls sent to this endpoint (retries counted again). */
  calls: number;
  /**
   * Failures: calls that ended without an answer from the server (timeouts, dropped
   * connections, refusals), failed connect attempts, failed health checks and lost connections.
   */
  failures: number;
  /** Code of the latest failure. */
  lastError?: string;
}

/** A snapshot of a pool: {@link Pool.stats}. */
export interface PoolStats {
  /** Per endpoint, in the order given. */
  endpoints: PoolEndpointStats[];
  /** Connections open now. */
  connections: number;
  /** Connections in rotation now. */
  healthy: number;
  /** Calls in flight now. */
  inFlight: number;
  /** Calls waiting for a healthy connection now. */
  waiting: number;
  /** Calls sent. */
  calls: number;
  /** Failures (see {@link PoolEndpointStats.failures}). */
  failures: number;
}

interface Endpoint<E> {
  endpoint: E;
  label: string;
  calls: number;
  failures: number;
  lastError?: string;
}

interface Slot<E> {
  endpoint: Endpoint<E>;
  member?: PoolMember;
  unsubscribe?: () => void;
  out: boolean;
  probing: boolean;
  inFlight: number;
}

const DEFAULT_HEALTH_INTERVAL = 5000;
const DEFAULT_POOL_CONNECT_TIMEOUT = 10_000;
const DEFAULT_MAX_QUEUED_CALLS = 1024;

/**
 * Several connections over one or more servers behind one `call()`. Make one with
 * `createPool()` (client.ts) or {@link openPool}; close it with `await pool.close()` or
 * `await using`. `stream()` goes to one healthy connection; channels (`open()`) are not pooled:
 * open them on a `connect()` client.
 */
export class Pool<E extends PoolEndpoint = PoolEndpoint> implements AsyncDisposable {
  #connectTo: (endpoint: E) => Promise<PoolMember>;
  #endpoints: Endpoint<E>[];
  #slots: Slot<E>[] = [];
  #policy: PoolPolicy;
  #healthInterval: number;
  #healthTimeout: number;
  #retry: { initialDelay: number; maxDelay: number };
  #timeout: number;
  #idempotent: ReadonlySet<string>;
  #maxQueued: number;
  #cursor = 0;
  #waiters = new Set<() => void>();
  #timer: ReturnType<typeof setInterval> | undefined;
  #stop = new AbortController();
  #connecting = new Set<Promise<void>>();
  #closing: Promise<void> | undefined;
  #firstUp = Promise.withResolvers<void>();
  #firstError: Error | undefined;

  /** @internal use `createPool()` or {@link openPool} */
  constructor(connectTo: (endpoint: E) => Promise<PoolMember>, options: PoolOptions<E>) {
    const size = options.size ?? 1;
    if (options.endpoints.length === 0) {
      throw new RangeError("Cannot create a pool: no endpoints given");
    }
    if (!Number.isInteger(size) || size < 1) {
      throw new RangeError(`Cannot create a pool: size must be a positive integer, got ${size}`);
    }
    this.#connectTo = connectTo;
    this.#policy = options.policy ?? "least-in-flight";
    if (this.#policy !== "least-in-flight" && this.#policy !== "round-robin") {
      throw new RangeError(`Cannot create a pool: unknown policy '${this.#policy}'`);
    }
    this.#healthInterval = options.healthInterval ?? DEFAULT_HEALTH_INTERVAL;
    this.#healthTimeout = options.healthTimeout ??
      Math.max(50, Math.min(2000, this.#healthInterval || 2000));
    this.#retry = {
      initialDelay: options.connectRetry?.initialDelay ?? 100,
      maxDelay: options.connectRetry?.maxDelay ?? 5000,
    };
    this.#timeout = options.timeout ?? DEFAULT_CALL_TIMEOUT;
    this.#idempotent = new Set(options.idempotent ?? []);
    this.#maxQueued = options.maxQueuedCalls ?? DEFAULT_MAX_QUEUED_CALLS;
    this.#endpoints = options.endpoints.map((endpoint) => ({
      endpoint,
      label: typeof endpoint === "string" ? endpoint : endpoint.address,
      calls: 0,
      failures: 0,
    }));
    // Interleaved (first connection of every endpoint, then the second, …) so that taking
    // connections in turn also takes endpoints in turn.
    for (let i = 0; i < size; i++) {
      for (const endpoint of this.#endpoints) {
        this.#slots.push({ endpoint, out: true, probing: false, inFlight: 0 });
      }
    }
  }

  /** @internal connects every slot; resolves once one is up */
  async start(connectTimeout: number, signal?: AbortSignal): Promise<void> {
    for (const slot of this.#slots) this.#track(this.#connectLoop(slot));
    if (this.#healthInterval > 0) {
      this.#timer = setInterval(() => this.#checkHealth(), this.#healthInterval);
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const onAbort = () =>
      this.#firstUp.reject(
        new CancelledError("Creating the pool was cancelled", { cause: signal?.reason }),
      );
    try {
      signal?.throwIfAborted();
      signal?.addEventListener("abort", onAbort, { once: true });
      if (connectTimeout > 0) {
        timer = setTimeout(() => {
          this.#firstUp.reject(
            this.#firstError ??
              new UnavailableError(`No endpoint of the pool answered within ${connectTimeout} ms`),
          );
        }, connectTimeout);
      }
      await this.#firstUp.promise;
    } catch (err) {
      await this.close({ timeout: 0 });
      throw err;
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    }
  }

  /** The policy in use. */
  get policy(): PoolPolicy {
    return this.#policy;
  }

  /**
   * Calls a method on one healthy connection. With none healthy the call waits for one
   * within its timeout (then `TIMEOUT`). A call refused before it ran (a retryable error), or
   * an idempotent call cut off in flight, is sent again on another connection within its
   * timeout; every other error is the server's or the connection's, unchanged.
   *
   * @throws {CallTimeoutError} no answer, or no healthy connection, within the timeout
   * @throws {ResourceExhaustedError} too many calls already wait for a healthy connection
   * @throws {ConnectionClosedError} the pool is closed, or the connection dropped mid-call
   */
  async call<T = unknown>(
    method: string,
    params?: Params,
    options: PoolCallOptions = {},
  ): Promise<T> {
    const timeout = options.timeout ?? this.#timeout;
    const deadline = timeout > 0 ? Date.now() + timeout : Infinity;
    const idempotent = options.idempotent ?? this.#idempotent.has(method);
    const tried = new Set<Slot<E>>();
    const maxAttempts = this.#slots.length * 2 + 4;
    for (let attempt = 1;; attempt++) {
      let slot = this.#pick(tried);
      if (slot !== undefined && tried.has(slot)) {
        // Every healthy connection refused it already: give them a moment to settle.
        await sleep(Math.min(200, 10 * 2 ** attempt, deadline - Date.now()), options.signal);
        slot = this.#pick(tried);
      }
      while (slot === undefined) {
        await this.#waitHealthy(method, deadline, options.signal);
        slot = this.#pick(tried);
      }
      tried.add(slot);
      slot.inFlight++;
      slot.endpoint.calls++;
      try {
        return await slot.member!.call<T>(method, params, {
          ...options,
          idempotent: false, // the pool resends elsewhere instead of waiting for a reconnect
          timeout: deadline === Infinity ? 0 : Math.max(1, deadline - Date.now()),
        });
      } catch (err) {
        const answered = (err instanceof RpcError && err.remote && !err.retryable) ||
          options.signal?.aborted === true;
        if (!answered && !this.#closing) this.#failure(slot.endpoint, err);
        if (
          err instanceof RpcError && !err.remote &&
          (err.code === "UNAVAILABLE" || err.code === "CONNECTION_CLOSED")
        ) {
          slot.out = true; // gone, going away, or out of call ids: the health check decides
        }
        if (attempt >= maxAttempts || !this.#mayRetry(err, idempotent, deadline)) throw err;
      } finally {
        slot.inFlight--;
      }
    }
  }

  /**
   * Sends a notification on one healthy connection.
   *
   * @throws {UnavailableError} no connection is healthy now
   * @throws {ConnectionClosedError} the pool is closed
   */
  notify(method: string, params?: Params, options?: Omit<CallOptions, "timeout">): void {
    if (this.#closing) {
      throw new ConnectionClosedError(`Cannot notify '${method}': the pool is closed`);
    }
    const slot = this.#pick();
    if (slot === undefined) {
      throw new UnavailableError(`Cannot notify '${method}': no healthy connection`);
    }
    slot.endpoint.calls++;
    slot.member!.notify(method, params, options);
  }

  /**
   * Calls a streaming method on the healthy connection the policy picks (counted in flight
   * until the stream ends). Throws `UNAVAILABLE` when no connection is healthy right now.
   */
  stream<T = unknown, R = unknown>(
    method: string,
    params?: Params,
    options?: StreamOptions,
  ): RpcStream<T, R> {
    if (this.#closing) {
      throw new ConnectionClosedError(`Cannot stream '${method}': the pool is closed`);
    }
    const slot = this.#pick();
    if (slot === undefined) {
      throw new UnavailableError(`Cannot stream '${method}': no healthy connection`, {
        retryable: true,
      });
    }
    slot.inFlight++;
    slot.endpoint.calls++;
    const stream = slot.member!.stream<T, R>(method, params, options);
    const done = () => slot.inFlight--;
    stream.result.then(done, done);
    return stream;
  }

  /**
   * Resolves once at least one connection is healthy (at once when one is).
   *
   * @throws {CallTimeoutError} none within `timeout` ms
   * @throws {ConnectionClosedError} the pool closed
   */
  async waitHealthy(options: { timeout?: number; signal?: AbortSignal } = {}): Promise<void> {
    const deadline = (options.timeout ?? 0) > 0 ? Date.now() + options.timeout! : Infinity;
    while (this.#pick() === undefined) {
      await this.#waitHealthy("waitHealthy", deadline, options.signal);
    }
  }

  /** Counters per endpoint and in total. */
  stats(): PoolStats {
    const endpoints = this.#endpoints.map((e): PoolEndpointStats => {
      const slots = this.#slots.filter((s) => s.endpoint === e);
      const stats: PoolEndpointStats = {
        endpoint: e.label,
        connections: slots.filter((s) => s.member?.status === "connected").length,
        healthy: slots.filter((s) => this.#healthy(s)).length,
        inFlight: slots.reduce((n, s) => n + s.inFlight, 0),
        calls: e.calls,
        failures: e.failures,
      };
      if (e.lastError !== undefined) stats.lastError = e.lastError;
      return stats;
    });
    const sum = (key: "connections" | "healthy" | "inFlight" | "calls" | "failures") =>
      endpoints.reduce((n, e) => n + e[key], 0);
    return {
      endpoints,
      connections: sum("connections"),
      healthy: sum("healthy"),
      inFlight: sum("inFlight"),
      waiting: this.#waiters.size,
      calls: sum("calls"),
      failures: sum("failures"),
    };
  }

  /**
   * Closes every connection (calls in flight may finish within `timeout` ms), fails calls
   * waiting for a healthy connection, stops health checks and connect attempts. Idempotent.
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
    clearInterval(this.#timer);
    this.#stop.abort();
    for (const wake of [...this.#waiters]) wake();
    await Promise.all([...this.#connecting]);
    await Promise.all(this.#slots.map((slot) => {
      slot.unsubscribe?.();
      return slot.member?.close({ timeout }).catch(() => {});
    }));
  }

  #track(work: Promise<void>): void {
    this.#connecting.add(work);
    work.finally(() => this.#connecting.delete(work));
  }

  #healthy(slot: Slot<E>): boolean {
    return slot.member !== undefined && !slot.out && slot.member.status === "connected";
  }

  /** A healthy slot by the policy, preferring those not in `avoid`. */
  #pick(avoid?: ReadonlySet<Slot<E>>): Slot<E> | undefined {
    if (this.#closing) return undefined;
    const n = this.#slots.length;
    let best = -1;
    let fallback = -1;
    for (let i = 0; i < n; i++) {
      const index = (this.#cursor + i) % n;
      const slot = this.#slots[index];
      if (!this.#healthy(slot)) continue;
      if (avoid?.has(slot)) {
        if (fallback < 0) fallback = index;
        continue;
      }
      if (best < 0 || slot.inFlight < this.#slots[best].inFlight) best = index;
      if (this.#policy === "round-robin") break;
    }
    if (best < 0) best = fallback;
    if (best < 0) return undefined;
    this.#cursor = (best + 1) % n;
    return this.#slots[best];
  }

  #mayRetry(err: unknown, idempotent: boolean, deadline: number): boolean {
    if (this.#closing || Date.now() >= deadline || !(err instanceof RpcError)) return false;
    if (err.retryable) return true;
    return idempotent && !err.remote && err.code === "CONNECTION_CLOSED";
  }

  #failure(endpoint: Endpoint<E>, err: unknown): void {
    endpoint.failures++;
    endpoint.lastError = err instanceof RpcError
      ? err.code
      : err instanceof Error
      ? err.name
      : "Error";
  }

  /** Waits until a slot may have become healthy (or the deadline, the signal, close). */
  #waitHealthy(what: string, deadline: number, signal?: AbortSignal): Promise<void> {
    if (this.#closing) {
      return Promise.reject(new ConnectionClosedError(`Cannot call '${what}': the pool is closed`));
    }
    if (Date.now() >= deadline) {
      return Promise.reject(
        new CallTimeoutError(`Call to '${what}' timed out waiting for a healthy connection`),
      );
    }
    if (this.#waiters.size >= this.#maxQueued) {
      return Promise.reject(
        new ResourceExhaustedError(
          `Cannot call '${what}': ${this.#maxQueued} calls are already waiting for a healthy connection`,
          { retryable: true },
        ),
      );
    }
    if (signal?.aborted) {
      return Promise.reject(
        new CancelledError(`Call to '${what}' was cancelled`, { cause: signal.reason }),
      );
    }
    return new Promise<void>((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const settle = (err?: Error) => {
        this.#waiters.delete(wake);
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        if (err) reject(err);
        else if (this.#closing) {
          reject(new ConnectionClosedError(`Cannot call '${what}': the pool is closed`));
        } else resolve();
      };
      const wake = () => settle();
      const onAbort = () =>
        settle(new CancelledError(`Call to '${what}' was cancelled`, { cause: signal?.reason }));
      if (deadline !== Infinity) {
        timer = setTimeout(
          () =>
            settle(
              new CallTimeoutError(`Call to '${what}' timed out waiting for a healthy connection`),
            ),
          Math.max(0, deadline - Date.now()),
        );
      }
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#waiters.add(wake);
    });
  }

  #wakeWaiters(): void {
    for (const wake of [...this.#waiters]) wake();
  }

  /** Connects a slot, retrying with backoff until it is up or the pool closes. */
  async #connectLoop(slot: Slot<E>): Promise<void> {
    for (let attempt = 0; !this.#closing; attempt++) {
      if (attempt > 0) {
        const delay = backoffDelay(attempt - 1, this.#retry.initialDelay, this.#retry.maxDelay);
        await sleep(Math.max(delay, 10), this.#stop.signal);
        if (this.#closing) return;
      }
      let member: PoolMember;
      try {
        member = await this.#connectTo(slot.endpoint.endpoint);
      } catch (err) {
        this.#firstError ??= err instanceof Error ? err : new Error(String(err));
        this.#failure(slot.endpoint, err);
        continue;
      }
      if (this.#closing) {
        await member.close({ timeout: 0 }).catch(() => {});
        return;
      }
      this.#attach(slot, member);
      return;
    }
  }

  #attach(slot: Slot<E>, member: PoolMember): void {
    slot.member = member;
    slot.out = false;
    slot.unsubscribe = member.onStatus((event) => this.#onStatus(slot, member, event));
    if (member.status !== "connected") {
      this.#onStatus(slot, member, { status: member.status }); // lost before we listened
      return;
    }
    this.#firstUp.resolve();
    this.#wakeWaiters();
  }

  #onStatus(slot: Slot<E>, member: PoolMember, event: PoolMemberStatusEvent): void {
    if (slot.member !== member || this.#closing) return;
    if (event.status === "connected") {
      this.#probe(slot);
      return;
    }
    if (!slot.out) {
      slot.out = true;
      this.#failure(slot.endpoint, event.reason ?? new ConnectionClosedError("Disconnected"));
    }
    if (event.status === "closed") {
      // Closed for good (its reconnecting is off): replace it.
      slot.unsubscribe?.();
      slot.member = undefined;
      slot.unsubscribe = undefined;
      this.#track(this.#connectLoop(slot));
    }
  }

  #checkHealth(): void {
    for (const slot of this.#slots) {
      if (slot.member === undefined) continue;
      if (slot.member.status === "closed") {
        this.#onStatus(slot, slot.member, { status: "closed" });
        continue;
      }
      if (slot.member.status !== "connected") {
        if (!slot.out) {
          slot.out = true;
          this.#failure(slot.endpoint, new ConnectionClosedError("Disconnected"));
        }
        continue;
      }
      this.#probe(slot);
    }
  }

  /** PINGs a slot: an answer puts it (back) in rotation, a failure takes it out. */
  async #probe(slot: Slot<E>): Promise<void> {
    const member = slot.member;
    if (member === undefined || slot.probing || this.#closing) return;
    slot.probing = true;
    try {
      await member.ping({ timeout: this.#healthTimeout });
      if (slot.member !== member || this.#closing) return;
      if (member.status === "connected") {
        if (slot.out) {
          slot.out = false;
          this.#wakeWaiters();
        }
      } else if (!slot.out) {
        slot.out = true;
      }
    } catch (err) {
      if (slot.member !== member || this.#closing) return;
      if (!slot.out) slot.out = true;
      this.#failure(slot.endpoint, err);
    } finally {
      slot.probing = false;
    }
  }
}

/**
 * Makes a pool whose members come from `connectTo`, and resolves once one connection is up.
 * Endpoints that cannot be reached are retried in the background and join when they answer.
 *
 * @param connectTo opens one connection to an endpoint (rejects when it cannot)
 * @param options endpoints, size, policy, health checks, timeouts
 * @returns the pool, with at least one connection up
 * @throws {RangeError} no endpoints, or a bad size or policy
 * @throws {RpcError} the first connect error when no connection is up within `connectTimeout`
 * @throws {CancelledError} `signal` aborted first
 */
export async function openPool<E extends PoolEndpoint>(
  connectTo: (endpoint: E) => Promise<PoolMember>,
  options: PoolOptions<E>,
): Promise<Pool<E>> {
  const pool = new Pool(connectTo, options);
  await pool.start(options.connectTimeout ?? DEFAULT_POOL_CONNECT_TIMEOUT, options.signal);
  return pool;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted || ms <= 0) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}
