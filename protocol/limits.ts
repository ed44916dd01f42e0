/**
 * Default limits and timeouts of trust-rpc/1, in one place (PROTOCOL.md §10, §11, M.4).
 * Every one of them can be overridden through the options of `serve()` / `connect()`.
 *
 * @module
 */

/** Largest record plaintext this side accepts, advertised as `max_frame` (1 MiB). */
export const DEFAULT_MAX_FRAME = 1_048_576;
/** Hard cap on `max_frame` (16 MiB). */
export const MAX_FRAME_HARD_CAP = 16 * 1_048_576;
/** Smallest `max_frame` a peer may advertise. */
export const MIN_FRAME = 1024;
/**
 * Largest reassembled message payload: 16 MiB of user data plus 64 KiB for its envelope
 * (method name, JSON around the bytes), so a 16 MiB `Uint8Array` fits.
 */
export const DEFAULT_MAX_MESSAGE_SIZE = 16 * 1_048_576 + 65_536;
/** Bytes of partly received (MORE) messages one connection may hold at once. */
export const DEFAULT_MAX_REASSEMBLY_BYTES = 2 * DEFAULT_MAX_MESSAGE_SIZE;
/** The whole handshake must finish within this many ms of accept / dial. */
export const DEFAULT_HANDSHAKE_TIMEOUT = 10_000;
/** Delay before a bad proof is answered with AUTH_FAILED, counted from M2 (ms). */
export const AUTH_FAILURE_DELAY = 500;
/** Failed proofs per peer address within the window before RATE_LIMITED. */
export const DEFAULT_AUTH_FAILURE_BUDGET = 10;
/** Window (and lockout) of the per-peer failure budget (ms). */
export const DEFAULT_AUTH_FAILURE_WINDOW = 60_000;
/** Connections not yet authenticated, in total. */
export const DEFAULT_MAX_PREAUTH = 256;
/** Connections not yet authenticated, per peer address. */
export const DEFAULT_MAX_PREAUTH_PER_PEER = 32;
/** Once a record header has arrived, its body must follow within this many ms. */
export const DEFAULT_FRAME_BODY_TIMEOUT = 30_000;
/**
 * After the peer's end of stream (a half-close), how long calls already received may still
 * run and answer before the connection closes and their signals abort (ms).
 */
export const DEFAULT_HALF_CLOSE_TIMEOUT = 5_000;
/** Requests a peer may have in flight on one connection before reading stops. */
export const DEFAULT_MAX_IN_FLIGHT = 256;
/** Streams and channels a peer may have open on one connection; more are refused. */
export const DEFAULT_MAX_STREAMS = 1024;
/** Calls this side may have pending on one connection before new ones fail fast. */
export const DEFAULT_MAX_PENDING_CALLS = 65_536;
/** Bytes queued for sending before the connection is considered stuck. */
export const DEFAULT_MAX_OUTBOUND_BYTES = 8 * 1_048_576;
/** A write that makes no progress for this long closes the connection (ms). */
export const DEFAULT_WRITE_STALL_TIMEOUT = 30_000;
/** Deepest JSON nesting accepted in a payload. */
export const DEFAULT_MAX_JSON_DEPTH = 64;
/** A PING is sent after this many ms without inbound traffic (0 disables heartbeats). */
export const DEFAULT_HEARTBEAT_INTERVAL = 5_000;
/** The peer is presumed dead after this many heartbeat intervals without inbound traffic. */
export const DEFAULT_HEARTBEAT_MISSES = 3;
/** PINGs per second accepted from a peer before RATE_LIMITED. */
export const DEFAULT_MAX_PINGS_PER_SECOND = 10;
/** Records sealed under one key before KEY_UPDATE (2^24). */
export const KEY_UPDATE_RECORDS = 2 ** 24;
/** Plaintext bytes sealed under one key before KEY_UPDATE (2^36). */
export const KEY_UPDATE_BYTES = 2 ** 36;
/** Default per-call timeout on the caller's side (ms); 0 disables it. */
export const DEFAULT_CALL_TIMEOUT = 30_000;
/** Method names: identifiers and routes such as `/stream/time`. */
export const METHOD_NAME_PATTERN = /^[A-Za-z_/][A-Za-z0-9_./:-]{0,127}$/;
