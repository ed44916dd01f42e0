/**
 * The trust-rpc/1 protocol as a library: handshake, record layer, messages, codec and the
 * symmetric {@link Session}, all on Web platform APIs (no `Deno.*`, no sockets), so the same
 * core runs in Deno and in a browser. The wire format is specified in `protocol/README.md`.
 *
 * Most users want `connect()` / `serve()` from the package root instead.
 *
 * @example Encode and decode a value with raw bytes inside
 * ```ts
 * import { decodeValue, encodeValue } from "@trust/rpc/protocol";
 * const { bytes, binary } = encodeValue({ name: "logo.png", data: new Uint8Array([1, 2, 3]) });
 * const value = decodeValue(bytes, binary) as { data: Uint8Array };
 * console.log(value.data.length); // 3
 * ```
 *
 * @module
 */

export * from "./errors.ts";
export * from "./codec.ts";
export * from "./secret.ts";
export * from "./limits.ts";
export { AlertCode } from "./alerts.ts";
export { FrameType, HEADER_SIZE, PROTOCOL_VERSION } from "./frame.ts";
export { Flag, Kind } from "./messages.ts";
export type { Message } from "./messages.ts";
export { FrameReader } from "./frame_reader.ts";
export type { ByteChannel } from "./channel.ts";
export { clientHandshake, serverHandshake } from "./handshake.ts";
export type {
  ClientHandshakeOptions,
  HandshakeOptions,
  HandshakeResult,
  ServerHandshakeOptions,
} from "./handshake.ts";
export { RecordOpener, RecordSealer } from "./record.ts";
export type { KeyUpdatePolicy } from "./record.ts";
export { encodeEvent, Session } from "./session.ts";
export type {
  CallOptions,
  EmitOptions,
  Params,
  SessionLimits,
  SessionOptions,
  StreamOptions,
} from "./session.ts";
export { RpcChannel, RpcStream } from "./rpc_stream.ts";
export {
  ChunkBuffer,
  DEFAULT_STREAM_WINDOW,
  isStreamSource,
  MAX_STREAM_WINDOW,
  SendCredit,
} from "./flow.ts";
export { ANY_EVENT, EventHub } from "./events.ts";
export type { UnhandledEventPolicy } from "./events.ts";
export { runInterceptors, runMiddleware } from "./middleware.ts";
export type { Interceptor, Middleware, MiddlewareContext, OutgoingCall } from "./middleware.ts";
export { createApi } from "./typed_api.ts";
export type { Api, ApiMethod, ApiResult, ApiStream } from "./typed_api.ts";
export * from "./standard_schema.ts";
export { DEFAULT_COMPRESSION_THRESHOLD, deflateRaw, inflateRaw } from "./compression.ts";
export type { CompressionOption } from "./outbox.ts";
export { Client } from "./client.ts";
export { Peer } from "./peer.ts";
export { createMethodTable } from "./methods.ts";
export type {
  CallContext,
  MethodDefinition,
  MethodHandler,
  Methods,
  MethodTable,
} from "./methods.ts";
export { createLogger, silentLogger } from "./logger.ts";
export type { LogFields, Logger, LoggerOptions, LogLevel, LogSink } from "./logger.ts";
