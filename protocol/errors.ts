/**
 * The error family of `@trust/rpc`: every error the library raises is an {@link RpcError}
 * with a stable string `code`. Errors that cross the wire (a handler that threw, an unknown
 * method, bad params, …) are rebuilt on the caller's side with the same class and message
 * through an allowlist; a remote stack trace never travels.
 *
 * This file is a leaf: it imports nothing, so every layer (protocol, transports, client,
 * server) may use it.
 *
 * @module
 */

/** Every code the library itself uses. Handlers may also use codes of their own. */
export type RpcErrorCode =
  // call outcomes (travel on the wire)
  | "METHOD_NOT_FOUND"
  | "INVALID_PARAMS"
  | "APPLICATION_ERROR"
  | "INTERNAL"
  | "TIMEOUT"
  | "CANCELLED"
  | "UNAVAILABLE"
  | "RESOURCE_EXHAUSTED"
  | "CONNECTION_CLOSED"
  // authentication
  | "AUTH_FAILED"
  | "SERVER_AUTH_FAILED"
  | "RATE_LIMITED"
  // protocol and connection
  | "PROTOCOL_ERROR"
  | "UNSUPPORTED_VERSION"
  | "FRAME_TOO_LARGE"
  | "BAD_RECORD"
  | "SEQUENCE"
  | "TRANSPORT_MISMATCH"
  | "SELF_CONNECTION"
  | "BAD_SHARE"
  | "HANDSHAKE_TIMEOUT"
  | "PEER_TIMEOUT"
  | "BUSY"
  | "SHUTDOWN"
  | "TOO_DEEP"
  | "BAD_UTF8"
  // transports
  | "CONNECT_FAILED"
  | "TLS_ERROR"
  | "INVALID_ADDRESS"
  | "ADDRESS_IN_USE"
  | "PATH_TOO_LONG"
  | "UNSAFE_PATH"
  // secret and configuration
  | "SECRET_MISSING"
  | "SECRET_EMPTY"
  | "SECRET_WEAK"
  | "SECRET_INVALID"
  | "PERMISSION_DENIED";

/** Options common to every {@link RpcError}. */
export interface RpcErrorOptions extends ErrorOptions {
  /** Extra JSON data that travels with the error (never a stack). */
  data?: unknown;
  /** True when the same request may safely be sent again (it was never executed). */
  retryable?: boolean;
  /** The session the error belongs to, as 32 hex digits, for log correlation. */
  sessionId?: string;
}

/**
 * The base class of every error `@trust/rpc` raises.
 *
 * @example Branch on the code
 * ```ts
 * import { RpcError } from "@trust/rpc";
 * try {
 *   // await client.call("greet", [42]);
 * } catch (err) {
 *   if (err instanceof RpcError && err.code === "METHOD_NOT_FOUND") {
 *     // …
 *   }
 * }
 * ```
 */
export class RpcError extends Error {
  /** Stable, machine-readable code (e.g. `METHOD_NOT_FOUND`). */
  readonly code: string;
  /** JSON data attached by the thrower, if any. */
  readonly data?: unknown;
  /** True when the request was never executed and may be sent again. */
  readonly retryable: boolean;
  /** True when the error was raised by the peer and rebuilt here. */
  remote = false;
  /** The session id (hex) this error happened on, when known. */
  sessionId?: string;

  /**
   * @param code stable code, upper snake case
   * @param message human-readable message (std style: sentence case, no trailing period)
   * @param options data, retryable, sessionId and cause
   */
  constructor(
    code: RpcErrorCode | (string & Record<never, never>),
    message: string,
    options: RpcErrorOptions = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    if (options.data !== undefined) this.data = options.data;
    this.retryable = options.retryable ?? false;
    if (options.sessionId !== undefined) this.sessionId = options.sessionId;
  }
}

/** The method is not registered on the peer (`METHOD_NOT_FOUND`). */
export class MethodNotFoundError extends RpcError {
  /** @param message what was not found */
  constructor(message: string, options?: RpcErrorOptions) {
    super("METHOD_NOT_FOUND", message, options);
  }
}

/** The params do not fit the method (`INVALID_PARAMS`); `data` may list the issues. */
export class InvalidParamsError extends RpcError {
  /** @param message what is wrong with the params */
  constructor(message: string, options?: RpcErrorOptions) {
    super("INVALID_PARAMS", message, options);
  }
}

/** The call did not complete within its timeout (`TIMEOUT`). */
export class CallTimeoutError extends RpcError {
  /** @param message what timed out */
  constructor(message: string, options?: RpcErrorOptions) {
    super("TIMEOUT", message, options);
  }
}

/** The call was cancelled by its caller (`CANCELLED`); `cause` holds the abort reason. */
export class CancelledError extends RpcError {
  /** @param message what was cancelled */
  constructor(message: string, options?: RpcErrorOptions) {
    super("CANCELLED", message, options);
  }
}

/** The connection closed while the call was pending (`CONNECTION_CLOSED`). */
export class ConnectionClosedError extends RpcError {
  /** @param message why the connection closed */
  constructor(message: string, options?: RpcErrorOptions) {
    super("CONNECTION_CLOSED", message, options);
  }
}

/** The peer will not take the call now; it was never executed (`UNAVAILABLE`, retryable). */
export class UnavailableError extends RpcError {
  /** @param message why the peer is unavailable */
  constructor(message: string, options?: RpcErrorOptions) {
    super("UNAVAILABLE", message, { retryable: true, ...options });
  }
}

/** A limit was reached: message size, calls in flight, queue (`RESOURCE_EXHAUSTED`). */
export class ResourceExhaustedError extends RpcError {
  /** @param message which limit was reached */
  constructor(message: string, options?: RpcErrorOptions) {
    super("RESOURCE_EXHAUSTED", message, options);
  }
}

/**
 * Authentication failed: the peers hold different secrets (`AUTH_FAILED`), the server could
 * not prove the secret (`SERVER_AUTH_FAILED`), or too many failures (`RATE_LIMITED`).
 */
export class AuthenticationError extends RpcError {}

/** The peer broke the wire protocol, or the connection could not be trusted. */
export class ProtocolError extends RpcError {}

/** Dialing, listening or TLS failed (`CONNECT_FAILED`, `TLS_ERROR`, `ADDRESS_IN_USE`, …). */
export class TransportError extends RpcError {}

/** `TRUST_ID` is missing, empty, weak or invalid, or cannot be read. */
export class SecretError extends RpcError {}

/**
 * An error the peer's handler raised that has no class of its own here. `name` is the
 * remote class name (e.g. `TypeError`), `code` the remote code (`APPLICATION_ERROR` for a
 * plain `Error` thrown by a handler).
 */
export class RemoteError extends RpcError {
  /**
   * @param code the remote code
   * @param name the remote error's class name
   * @param message the remote message
   */
  constructor(code: string, name: string, message: string, options?: RpcErrorOptions) {
    super(code, message, options);
    this.name = name;
  }
}

/** The shape of an ERROR message payload (PROTOCOL.md D.1). */
export interface WireError {
  /** Stable code. */
  code: string;
  /** Class name of the error on the side that raised it. */
  name: string;
  /** Message. */
  message: string;
  /** Optional JSON data. */
  data?: unknown;
}

const CODE_PATTERN = /^[A-Z][A-Z0-9_]{0,63}$/;
const NAME_PATTERN = /^[A-Za-z_$][A-Za-z0-9_$]{0,63}$/;
/** Longest error message kept from the wire (characters). */
export const MAX_WIRE_ERROR_MESSAGE = 8192;

/**
 * Turns anything a handler threw into the ERROR payload. Stacks are never included.
 *
 * @param err what was thrown
 * @returns the wire form
 */
export function errorToWire(err: unknown): WireError {
  if (err instanceof RpcError) {
    const wire: WireError = { code: err.code, name: err.name, message: err.message };
    if (err.data !== undefined) wire.data = err.data;
    return wire;
  }
  if (err instanceof Error) {
    return {
      code: "APPLICATION_ERROR",
      name: NAME_PATTERN.test(err.name) ? err.name : "Error",
      message: String(err.message),
    };
  }
  return { code: "APPLICATION_ERROR", name: "Error", message: String(err) };
}

type CodeClass = new (message: string, options?: RpcErrorOptions) => RpcError;

/** Codes rebuilt as their own class (a null-prototype allowlist: no inherited keys). */
const CLASS_BY_CODE: Record<string, CodeClass | undefined> = Object.assign(
  Object.create(null),
  {
    METHOD_NOT_FOUND: MethodNotFoundError,
    INVALID_PARAMS: InvalidParamsError,
    TIMEOUT: CallTimeoutError,
    CANCELLED: CancelledError,
    CONNECTION_CLOSED: ConnectionClosedError,
    UNAVAILABLE: UnavailableError,
    RESOURCE_EXHAUSTED: ResourceExhaustedError,
  },
);

/**
 * Rebuilds an error received in an ERROR message. Unknown codes become {@link RemoteError};
 * malformed payloads become a `PROTOCOL_ERROR` remote error rather than throwing.
 *
 * @param value the decoded ERROR payload
 * @param sessionId the session it arrived on
 * @returns the error to reject the call with
 */
export function errorFromWire(value: unknown, sessionId?: string): RpcError {
  const obj = (typeof value === "object" && value !== null ? value : {}) as Record<
    string,
    unknown
  >;
  const code = typeof obj.code === "string" && CODE_PATTERN.test(obj.code) ? obj.code : "INTERNAL";
  const name = typeof obj.name === "string" && NAME_PATTERN.test(obj.name) ? obj.name : "Error";
  const message = typeof obj.message === "string"
    ? obj.message.slice(0, MAX_WIRE_ERROR_MESSAGE)
    : "Remote error without a message";
  const options: RpcErrorOptions = { sessionId };
  if (Object.hasOwn(obj, "data")) options.data = obj.data;
  const Class = CLASS_BY_CODE[code];
  const err = Class ? new Class(message, options) : new RemoteError(code, name, message, options);
  err.remote = true;
  return err;
}
