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
import type { Client } from "./protocol/client.ts";
import { createLogger, type Logger, type LogLevel } from "./protocol/logger.ts";
import { createMethodTable } from "./protocol/methods.ts";
import { openClient, type OpenClientOptions } from "./protocol/open_client.ts";
import { dial } from "./transports/mod.ts";
import type { Dialer } from "./transports/types.ts";

export { Client, DEFAULT_MAX_QUEUED_CALLS } from "./protocol/client.ts";
export type {
  ClientCallOptions,
  ClientOptions,
  ClientStatus,
  ReconnectOptions,
  StatusEvent,
} from "./protocol/client.ts";

/** Options of {@link connect}. */
export interface ConnectOptions extends OpenClientOptions {
  /** The shared secret. @default the `TRUST_ID` environment variable */
  secret?: string;
  /** PEM CA certificates that sign the server's certificate (`tls://`, `wss://`). */
  caCerts?: string[];
  /** `tls://` only, insecure: skip the hostname check of the server certificate. */
  insecureSkipHostnameVerification?: boolean;
  /** Deadline for the TCP/TLS/Unix/WebSocket connect (ms). @default 10000 */
  connectTimeout?: number;
  /** Logger, or a level for the built-in one. @default level "warn" */
  logger?: Logger | LogLevel;
  /** Test only: accept secrets shorter than 32 characters. */
  insecureAllowShortSecret?: boolean;
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
  createMethodTable(options.methods); // checks the names before any socket work
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
  return await openClient(dialer, psk, options, log);
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
