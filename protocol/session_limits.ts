/**
 * The limits of one session and their defaults (`limits.ts`).
 *
 * @module
 */

import { checkWindow, DEFAULT_STREAM_WINDOW } from "./flow.ts";
import * as L from "./limits.ts";

/** Limits of a session; every field has a default in `limits.ts`. */
export interface SessionLimits {
  /** Largest record plaintext this side accepts (announced in the handshake). */
  maxFrame?: number;
  /** Largest reassembled message. */
  maxMessageSize?: number;
  /** Bytes of partial messages held at once. */
  maxReassemblyBytes?: number;
  /** Peer requests running here at once before reading stops. */
  maxInFlight?: number;
  /** Calls this side may have waiting for answers. */
  maxPendingCalls?: number;
  /**
   * Outbound backlog (bytes queued behind the message in transit) before new calls fail fast
   * with RESOURCE_EXHAUSTED.
   */
  maxOutboundBytes?: number;
  /** Deadline for a record body once its header arrived (ms). */
  frameBodyTimeout?: number;
  /** A write making no progress this long closes the connection (ms). */
  writeStallTimeout?: number;
  /** Deepest JSON accepted. */
  maxJsonDepth?: number;
  /** PINGs per second accepted from the peer. */
  maxPingsPerSecond?: number;
  /** After the peer's end of stream, how long calls already received may still answer (ms). */
  halfCloseTimeout?: number;
  /**
   * Send a PING after this many ms without inbound traffic; 0 disables heartbeats. Keep it at
   * 200 ms or more: peers refuse more than 10 PINGs a second.
   */
  heartbeatInterval?: number;
  /** Close with PEER_TIMEOUT after this many intervals without inbound traffic. */
  heartbeatMisses?: number;
  /** Streams and channels the peer may have open here at once; more are refused. */
  maxStreams?: number;
  /** Chunks granted to a producer up front and kept in flight (the stream window). */
  streamWindow?: number;
}

/** Every limit, defaults filled in. */
export function resolveLimits(l: SessionLimits = {}): Required<SessionLimits> {
  return {
    maxFrame: l.maxFrame ?? L.DEFAULT_MAX_FRAME,
    maxMessageSize: l.maxMessageSize ?? L.DEFAULT_MAX_MESSAGE_SIZE,
    maxReassemblyBytes: l.maxReassemblyBytes ?? L.DEFAULT_MAX_REASSEMBLY_BYTES,
    maxInFlight: l.maxInFlight ?? L.DEFAULT_MAX_IN_FLIGHT,
    maxPendingCalls: l.maxPendingCalls ?? L.DEFAULT_MAX_PENDING_CALLS,
    maxOutboundBytes: l.maxOutboundBytes ?? L.DEFAULT_MAX_OUTBOUND_BYTES,
    frameBodyTimeout: l.frameBodyTimeout ?? L.DEFAULT_FRAME_BODY_TIMEOUT,
    writeStallTimeout: l.writeStallTimeout ?? L.DEFAULT_WRITE_STALL_TIMEOUT,
    maxJsonDepth: l.maxJsonDepth ?? L.DEFAULT_MAX_JSON_DEPTH,
    maxPingsPerSecond: l.maxPingsPerSecond ?? L.DEFAULT_MAX_PINGS_PER_SECOND,
    halfCloseTimeout: l.halfCloseTimeout ?? L.DEFAULT_HALF_CLOSE_TIMEOUT,
    heartbeatInterval: l.heartbeatInterval ?? L.DEFAULT_HEARTBEAT_INTERVAL,
    heartbeatMisses: l.heartbeatMisses ?? L.DEFAULT_HEARTBEAT_MISSES,
    maxStreams: l.maxStreams ?? L.DEFAULT_MAX_STREAMS,
    streamWindow: checkWindow(l.streamWindow ?? DEFAULT_STREAM_WINDOW, "streamWindow"),
  };
}
