/**
 * The client side of `@trust/rpc`: {@link connect} dials an address, proves the shared secret
 * in the trust-rpc/1 handshake, checks the server's proof, and returns a {@link Client} whose
 * calls are multiplexed over one sealed connection.
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
import { CancelledError } from "./protocol/errors.ts";
import { FrameReader } from "./protocol/frame_reader.ts";
import { clientHandshake } from "./protocol/handshake.ts";
import { DEFAULT_MAX_FRAME } from "./protocol/limits.ts";
import { createLogger, type Logger, type LogLevel } from "./protocol/logger.ts";
import { createMethodTable, type Methods } from "./protocol/methods.ts";
import type { KeyUpdatePolicy } from "./protocol/record.ts";
import { type CallOptions, type Params, Session, type SessionLimits } from "./protocol/session.ts";
import { dial } from "./transports/mod.ts";
import type { Dialer } from "./transports/types.ts";

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
  /** Default timeout of each call (ms; 0 = none). @default 30000 */
  timeout?: number;
  /** Deadline for the TCP/TLS/Unix connect (ms). @default 10000 */
  connectTimeout?: number;
  /** Deadline for the trust-rpc handshake (ms). @default 10000 */
  handshakeTimeout?: number;
  /** Aborts connecting. */
  signal?: AbortSignal;
  /** Logger, or a level for the built-in one. @default level "warn" */
  logger?: Logger | LogLevel;
  /** Per-connection limits. */
  limits?: SessionLimits;
  /** Accept a server that believes it is on another transport (behind a TLS-terminating proxy). */
  allowTransportMismatch?: boolean;
  /** Test only: accept secrets shorter than 32 characters. */
  insecureAllowShortSecret?: boolean;
  /** Test hook: KEY_UPDATE thresholds. */
  keyUpdate?: KeyUpdatePolicy;
}

/** An authenticated connection to a server. Close it with `await client.close()` or `await using`. */
export class Client implements AsyncDisposable {
  /** The address dialed. */
  readonly address: string;
  #session: Session;

  /** @internal use {@link connect} */
  constructor(address: string, session: Session) {
    this.address = address;
    this.#session = session;
  }

  /** Session id (32 hex digits), the same the server logs. */
  get sessionId(): string {
    return this.#session.id;
  }

  /** Resolves when the connection has closed (`undefined` for a normal close). */
  get closed(): Promise<Error | undefined> {
    return this.#session.closed;
  }

  /** Calls waiting for an answer. */
  get pendingCalls(): number {
    return this.#session.pendingCalls;
  }

  /**
   * Calls a method on the server. Rejects with the server's error rebuilt here (same class,
   * code and message), `TIMEOUT`, `CANCELLED` or `CONNECTION_CLOSED`.
   *
   * @example
   * ```ts ignore
   * const result = await client.call<string>("greet", ["Alice"], { timeout: 5000 });
   * ```
   */
  call<T = unknown>(method: string, params?: Params, options?: CallOptions): Promise<T> {
    return this.#session.call<T>(method, params, options);
  }

  /** Sends a notification: the method runs on the server, nothing is answered. */
  notify(method: string, params?: Params, options?: Omit<CallOptions, "timeout">): void {
    this.#session.notify(method, params, options);
  }

  /** Measures a round trip with PING/PONG (ms). */
  ping(options?: { timeout?: number }): Promise<number> {
    return this.#session.ping(options);
  }

  /**
   * Closes gracefully: no new calls, calls in flight finish (up to `timeout` ms), then CLOSE.
   * Idempotent.
   */
  close(options: { timeout?: number } = {}): Promise<void> {
    return this.#session.drain({ timeout: options.timeout ?? 10_000 });
  }

  /** Same as {@link close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * Connects and authenticates. The secret is checked before any socket is opened.
 *
 * @param address `tcp://host:port`, `tls://host:port`, `unix:///path`, or a {@link Dialer}
 * @param options secret, TLS trust, timeouts, methods the server may call back
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
  options.signal?.throwIfAborted();
  const conn = await dialer.dial({ signal: options.signal });
  const abort = () => conn.close();
  options.signal?.addEventListener("abort", abort, { once: true });
  const reader = new FrameReader(conn);
  const maxFrame = options.limits?.maxFrame ?? DEFAULT_MAX_FRAME;
  let handshake;
  try {
    handshake = await clientHandshake(conn, reader, {
      psk,
      transport: dialer.transport,
      maxFrame,
      instance: crypto.getRandomValues(new Uint8Array(16)),
      timeoutMs: options.handshakeTimeout,
      allowTransportMismatch: options.allowTransportMismatch,
    });
  } catch (err) {
    conn.close();
    if (options.signal?.aborted) {
      throw new CancelledError("Connecting was cancelled", { cause: options.signal.reason });
    }
    throw err;
  } finally {
    options.signal?.removeEventListener("abort", abort);
  }
  log.debug("handshake_ok", { session: handshake.sessionIdHex, address: dialer.address });
  const session = new Session({
    role: "client",
    channel: conn,
    reader,
    handshake,
    methods,
    limits: options.limits,
    keyUpdate: options.keyUpdate,
    callTimeout: options.timeout,
    logger: log,
  });
  return new Client(dialer.address, session);
}

if (import.meta.main) {
  const { clientMain } = await import("./cli/client_main.ts");
  Deno.exit(await clientMain(Deno.args, connect));
}
