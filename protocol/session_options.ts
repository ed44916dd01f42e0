/**
 * The options of a `Session` and of its `emit()`.
 *
 * @module
 */

import type { ByteChannel } from "./channel.ts";
import type { FrameReader } from "./frame_reader.ts";
import type { HandshakeResult } from "./handshake.ts";
import type { SessionMetrics } from "./metrics.ts";
import type { MethodTable } from "./methods.ts";
import type { Interceptor, Middleware } from "./middleware.ts";
import type { CompressionOption } from "./outbox.ts";
import type { KeyUpdatePolicy } from "./record.ts";
import type { SessionLimits } from "./session_limits.ts";
import type { Logger } from "./logger.ts";
import type { Slots } from "./slots.ts";

/** Options of a `Session`. */
export interface SessionOptions {
  /** Which side this is (decides call-id parity). */
  role: "client" | "server";
  /** The byte pipe, already authenticated. */
  channel: ByteChannel;
  /** The reader that ran the handshake (it may hold bytes already). */
  reader: FrameReader;
  /** The handshake's keys and parameters. */
  handshake: HandshakeResult;
  /** The methods this side serves. */
  methods: MethodTable;
  /** Limits. */
  limits?: SessionLimits;
  /** Test hook: KEY_UPDATE thresholds. */
  keyUpdate?: KeyUpdatePolicy;
  /** Default timeout of outgoing calls (ms; 0 = none). */
  callTimeout?: number;
  /** Logger. */
  logger?: Logger;
  /** Handler slots shared with other sessions (a server-wide cap on handlers running). */
  slots?: Slots;
  /** Called with the last id the peer will process when it sends GOAWAY. */
  onGoAway?: (lastId: number) => void;
  /**
   * Told the method, outcome and duration of every request and notification served here
   * (undefined: no timing cost). Requests refused before their method name was read (GOAWAY,
   * too large) are reported with the method `""`.
   */
  metrics?: SessionMetrics;
  /** Told every EVENT the peer sends (name checked, data decoded). */
  onEvent?: (name: string, data: unknown) => void;
  /** Middleware around the handlers this side serves. */
  middleware?: readonly Middleware[];
  /** Interceptors around the calls this side makes. */
  interceptors?: readonly Interceptor[];
  /** Compress every payload this side sends at or above a threshold. @default false */
  compression?: CompressionOption;
}

/** Options of `Session.emit()`. */
export interface EmitOptions {
  /** Compress the event when it is at least the threshold (1 KiB). */
  compress?: boolean;
}
