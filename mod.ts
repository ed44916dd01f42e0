/**
 * # @trust/rpc
 *
 * Trusted socket communication and RPC for Deno. Two programs that share a secret
 * (`TRUST_ID`) prove it to each other in a handshake (mutual, with forward secrecy; the secret
 * never crosses the wire), then talk over one multiplexed connection where every record is
 * sealed with AES-256-GCM: concurrent calls both ways, notifications, cancellation and
 * timeouts, typed errors, raw binary values up to 16 MiB — over TCP, TLS and Unix sockets.
 *
 * @example A server and a client in one script
 * ```ts ignore
 * import { connect, serve } from "@trust/rpc";
 *
 * const secret = Deno.env.get("TRUST_ID"); // the same on both sides, 32+ printable characters
 * await using server = await serve({
 *   listen: "tcp://127.0.0.1:0",
 *   secret,
 *   methods: { greet: (name: string) => `Hello, ${name}!` },
 * });
 * await using client = await connect(server.addresses[0], { secret });
 * console.log(await client.call("greet", ["Alice"])); // Hello, Alice!
 * ```
 *
 * @module
 */

export { Client, connect } from "./client.ts";
export type {
  ClientCallOptions,
  ClientStatus,
  ConnectOptions,
  ReconnectOptions,
  StatusEvent,
} from "./client.ts";
export { createPool } from "./client.ts";
export type { CreatePoolOptions } from "./client.ts";
export { Pool } from "./protocol/pool.ts";
export type {
  PoolCallOptions,
  PoolEndpoint,
  PoolEndpointStats,
  PoolMember,
  PoolMemberStatusEvent,
  PoolOptions,
  PoolPolicy,
  PoolStats,
} from "./protocol/pool.ts";
export { DEFAULT_LISTEN, Peer, serve, Server } from "./server.ts";
export type {
  BroadcastCallOptions,
  BroadcastOptions,
  ServeOptions,
  ServerStats,
} from "./server.ts";
export { RpcChannel, RpcStream } from "./protocol/rpc_stream.ts";
export type { Api, ApiMethod, ApiResult, ApiStream } from "./protocol/typed_api.ts";
export type {
  Interceptor,
  Middleware,
  MiddlewareContext,
  OutgoingCall,
} from "./protocol/middleware.ts";
export type { UnhandledEventPolicy } from "./protocol/events.ts";
export type { CompressionOption } from "./protocol/outbox.ts";
export type { SchemaIssue, StandardSchemaV1 } from "./protocol/standard_schema.ts";
export { CallMetrics, Histogram, LATENCY_BUCKETS, renderPrometheus } from "./protocol/metrics.ts";
export type { HistogramSample, MetricFamily, Sample, SessionMetrics } from "./protocol/metrics.ts";
export {
  AuthenticationError,
  CallTimeoutError,
  CancelledError,
  ConnectionClosedError,
  InvalidParamsError,
  MethodNotFoundError,
  ProtocolError,
  RemoteError,
  ResourceExhaustedError,
  RpcError,
  SecretError,
  TransportError,
  UnavailableError,
} from "./protocol/errors.ts";
export type { RpcErrorCode, RpcErrorOptions } from "./protocol/errors.ts";
export type { CallContext, MethodDefinition, MethodHandler, Methods } from "./protocol/methods.ts";
export type {
  CallOptions,
  EmitOptions,
  Params,
  SessionLimits,
  StreamOptions,
} from "./protocol/session.ts";
export { createLogger } from "./protocol/logger.ts";
export type { Logger, LogLevel } from "./protocol/logger.ts";
export { fingerprint, generateSecret, normalizeSecret, stretchSecret } from "./protocol/secret.ts";
export { loadSecret } from "./env/secret_source.ts";
export type { LoadedSecret, LoadSecretOptions } from "./env/secret_source.ts";
