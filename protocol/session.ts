/**
 * One authenticated connection, the same for both sides (ARCHITECTURE.md "The one object in
 * the middle"): either side can call, notify and answer. Client and server differ only in who
 * dialed and in their call ids (client odd, server even).
 *
 * The read loop opens records in order, dispatches their messages, and stops reading while
 * the peer has `maxInFlight` requests running here (TCP backpressure instead of buffering).
 * All output goes through one {@link SendQueue}.
 *
 * @module
 */

import {
  AlertCode,
  alertFor,
  decodeAlertBody,
  encodeAlertBody,
  errorFromAlert,
  escapeForLog,
} from "./alerts.ts";
import type { Timer } from "./bytes.ts";
import type { ByteChannel } from "./channel.ts";
import { decodeValue, encodeValue } from "./codec.ts";
import {
  ConnectionClosedError,
  errorFromWire,
  errorToWire,
  InvalidParamsError,
  MethodNotFoundError,
  ProtocolError,
  ResourceExhaustedError,
  RpcError,
  UnavailableError,
} from "./errors.ts";
import { IncomingCalls, outcomeOf } from "./incoming_calls.ts";
import { FrameType, HEADER_SIZE, TAG_SIZE } from "./frame.ts";
import { RecordReader } from "./record_reader.ts";
import type { Slots } from "./slots.ts";
import type { FrameReader } from "./frame_reader.ts";
import type { HandshakeResult } from "./handshake.ts";
import * as L from "./limits.ts";
import { type Logger, silentLogger } from "./logger.ts";
import { decodeMessages, Flag, Kind, type Message } from "./messages.ts";
import type { SessionMetrics } from "./metrics.ts";
import { type MethodTable, type Params, validateParams } from "./methods.ts";
import { PendingCalls } from "./pending_calls.ts";
import { Reassembler } from "./reassembly.ts";
import { type KeyUpdatePolicy, RecordOpener, RecordSealer } from "./record.ts";
import { SendQueue } from "./send_queue.ts";

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
}

/** Options of a {@link Session}. */
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
  /** Extra properties copied onto every handler context (e.g. `peer`). */
  context?: Record<string, unknown>;
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
}

/** Options of one outgoing call. */
export interface CallOptions {
  /** Milliseconds before the call fails with `TIMEOUT` (0 = none). */
  timeout?: number;
  /** Aborting fails the call with `CANCELLED` and cancels the handler on the peer. */
  signal?: AbortSignal;
  /** Metadata (headers) the handler reads as `this.meta`. */
  meta?: Record<string, unknown>;
}

export type { Params } from "./methods.ts";

const closedNormally = Symbol("closed normally");

/** One authenticated, multiplexed connection. */
export class Session {
  /** Session id (32 hex digits). */
  readonly id: string;
  /** Resolves when the session has closed: `undefined` for a normal close, else the reason. */
  readonly closed: Promise<Error | undefined>;

  #channel: ByteChannel;
  #records: RecordReader;
  #queue: SendQueue;
  #methods: MethodTable;
  #limits: Required<SessionLimits>;
  #log: Logger;
  #callTimeout: number;
  #onGoAway?: (lastId: number) => void;
  #pending: PendingCalls;
  #incoming: IncomingCalls;
  #reassembler: Reassembler;
  #nextId: number;
  #peerParity: number;
  #highestPeerId = 0;
  #goAwaySent: number | undefined;
  #goAwayReceived: number | undefined;
  #draining = false;
  #closeReason: Error | typeof closedNormally | undefined;
  #resolveClosed!: (reason: Error | undefined) => void;
  #slotWaiter: (() => void) | undefined;
  #idleWaiters: (() => void)[] = [];
  /** PINGs awaiting their PONG: settle with the round trip, or fail when the session closes. */
  #pings = new Map<string, (err?: Error) => void>();
  #pingWindow = { start: 0, count: 0 };
  #lastInbound = Date.now();
  /** True while the read loop waits on our own backpressure (silence is then ours). */
  #paused = false;
  #lastPingSent = 0;
  #heartbeat: Timer | undefined;
  #metrics: SessionMetrics | undefined;
  /** `performance.now()` when the record being dispatched arrived (only with metrics). */
  #arrived = 0;
  /** Calls that ended while the current record was dispatched (reused, never shrunk). */
  #endedMethods: string[] = [];
  #endedOutcomes: string[] = [];
  #endedCount = 0;
  #bytesIn = 0;
  #bytesOut = 0;
  #requests = 0;

  /** @param options channel, handshake result, methods and limits */
  constructor(options: SessionOptions) {
    const hs = options.handshake;
    this.id = hs.sessionIdHex;
    this.#channel = options.channel;
    this.#methods = options.methods;
    this.#log = options.logger ?? silentLogger;
    this.#callTimeout = options.callTimeout ?? L.DEFAULT_CALL_TIMEOUT;
    this.#onGoAway = options.onGoAway;
    this.#metrics = options.metrics;
    const l = options.limits ?? {};
    this.#limits = {
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
    };
    this.#nextId = options.role === "client" ? 1 : 2;
    this.#peerParity = options.role === "client" ? 0 : 1;
    this.#records = new RecordReader(
      this.#channel,
      options.reader,
      new RecordOpener(hs.recvKey, hs.recvIv),
      this.#limits,
    );
    const channel = this.#channel;
    // Counts the sealed bytes handed to the transport (one add per record, not per message).
    const counted: ByteChannel = {
      read: (buffer) => channel.read(buffer),
      write: (data) => {
        this.#bytesOut += data.length;
        return channel.write(data);
      },
      close: () => channel.close(),
    };
    this.#queue = new SendQueue(
      counted,
      new RecordSealer(hs.sendKey, hs.sendIv, options.keyUpdate),
      hs.peerMaxFrame,
      {
        writeStallTimeout: this.#limits.writeStallTimeout,
        onError: (err) => this.#fail(err, false),
      },
    );
    this.#reassembler = new Reassembler(
      this.#limits.maxMessageSize,
      this.#limits.maxReassemblyBytes,
    );
    this.#incoming = new IncomingCalls({
      sessionId: this.id,
      context: options.context ?? {},
      call: (m, p) => this.call(m, p),
      notify: (m, p) => this.notify(m, p),
      reply: (id, value) => this.#reply(id, Kind.RESPONSE, value),
      replyError: (id, err) => this.#replyError(id, err),
      slots: options.slots,
      metrics: options.metrics,
      callEnded: (method, outcome) => this.#callDone(method, outcome),
      settled: () => {
        const waiter = this.#slotWaiter;
        this.#slotWaiter = undefined;
        waiter?.();
        this.#checkIdle();
      },
    });
    this.#pending = new PendingCalls((id) => {
      this.#sendCancel(id);
      this.#checkIdle();
    });
    this.closed = new Promise((resolve) => this.#resolveClosed = resolve);
    this.#startHeartbeat();
    this.#readLoop();
  }

  /** True once the session is closed or closing. */
  get isClosed(): boolean {
    return this.#closeReason !== undefined;
  }

  /** Calls this side sent that await an answer. */
  get pendingCalls(): number {
    return this.#pending.size;
  }

  /** Peer requests running here. */
  get inFlight(): number {
    return this.#incoming.size;
  }

  /**
   * Bytes of the MESSAGES and ALERT records received after the handshake (header, sealed
   * body and tag; the empty KEY_UPDATE records are not counted).
   */
  get bytesIn(): number {
    return this.#bytesIn;
  }

  /** Bytes of sealed records handed to the transport after the handshake. */
  get bytesOut(): number {
    return this.#bytesOut;
  }

  /** Requests and notifications received from the peer (answered, refused or failed). */
  get requestsReceived(): number {
    return this.#requests;
  }

  /**
   * Calls `method` on the peer.
   *
   * @throws {ConnectionClosedError} the session is closed (as a rejection)
   * @throws {UnavailableError} the peer sent GOAWAY for this id: never executed, retryable
   */
  call<T = unknown>(method: string, params: Params = [], options: CallOptions = {}): Promise<T> {
    try {
      const timeout = options.timeout ?? this.#callTimeout;
      const id = this.#send(Kind.REQUEST, method, params, options.meta, timeout, options.signal);
      return this.#pending.add(id, method, {
        timeoutMs: timeout,
        signal: options.signal,
      }) as Promise<T>;
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** Sends a notification (a request without an answer). Throws when it cannot be queued. */
  notify(method: string, params: Params = [], options: Omit<CallOptions, "timeout"> = {}): void {
    this.#send(Kind.NOTIFY, method, params, options.meta, 0, options.signal);
  }

  /** Sends a PING and resolves with the round-trip time in ms. */
  ping(options: { timeout?: number } = {}): Promise<number> {
    if (this.isClosed) return Promise.reject(this.#closedError());
    const token = crypto.getRandomValues(new Uint8Array(8));
    const key = token.join(",");
    const started = performance.now();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pings.delete(key);
        reject(new ProtocolError("PEER_TIMEOUT", "No PONG within the timeout"));
      }, options.timeout ?? 10_000);
      this.#pings.set(key, (err) => {
        clearTimeout(timer);
        if (err) reject(err);
        else resolve(performance.now() - started);
      });
      this.#queue.push(Kind.PING, 0, 0, token);
    });
  }

  /**
   * Announces GOAWAY: requests the peer sent so far are still processed; later ones are
   * answered `UNAVAILABLE` and never executed. Returns the last id that will be processed.
   */
  goAway(): number {
    if (this.#goAwaySent === undefined && !this.isClosed) {
      this.#goAwaySent = this.#highestPeerId;
      const payload = encodeValue({ lastId: this.#goAwaySent }).bytes;
      this.#queue.push(Kind.GOAWAY, 0, 0, payload);
    }
    return this.#goAwaySent ?? this.#highestPeerId;
  }

  /**
   * Closes gracefully: no new calls; calls in both directions finish (up to `timeout` ms),
   * then a CLOSE (or SHUTDOWN) alert is sent and the connection closed. Idempotent.
   */
  async drain(options: { timeout?: number; shutdown?: boolean } = {}): Promise<void> {
    if (this.#draining || this.isClosed) {
      await this.closed;
      return;
    }
    this.#draining = true;
    const deadline = options.timeout ?? 10_000;
    let timer: Timer | undefined;
    await Promise.race([
      this.#whenIdle(),
      new Promise<void>((resolve) => timer = setTimeout(resolve, deadline)),
      this.closed,
    ]);
    clearTimeout(timer);
    if (this.isClosed) return;
    const code = options.shutdown ? AlertCode.SHUTDOWN : AlertCode.CLOSE;
    this.#queue.pushRecord(FrameType.ALERT, encodeAlertBody(code, "closed"));
    await this.#finish(closedNormally, "Connection closed");
  }

  /** Closes at once: pending calls reject with `CONNECTION_CLOSED`, handlers are aborted. */
  close(reason?: Error): void {
    if (this.isClosed) return;
    if (reason === undefined) {
      this.#queue.pushRecord(FrameType.ALERT, encodeAlertBody(AlertCode.CLOSE, "closed"));
      this.#finish(closedNormally, "Connection closed");
    } else {
      this.#fail(reason, true);
    }
  }

  // ---- sending -------------------------------------------------------------------------

  #send(
    kind: number,
    method: string,
    params: Params,
    meta: Record<string, unknown> | undefined,
    timeout: number,
    signal: AbortSignal | undefined,
  ): number {
    if (this.isClosed) throw this.#closedError();
    if (this.#draining) throw new UnavailableError("The session is closing: no new calls");
    if (this.#goAwayReceived !== undefined) {
      throw new UnavailableError("The peer is going away: reconnect and retry", {
        sessionId: this.id,
      });
    }
    if (typeof method !== "string") throw new TypeError("Method name must be a string");
    if (typeof params !== "object" || params === null) {
      throw new TypeError("Params must be an array or an object");
    }
    if (signal?.aborted) {
      throw new RpcError("CANCELLED", `Call to '${method}' was cancelled`, {
        cause: signal.reason,
      });
    }
    if (kind === Kind.REQUEST && this.#pending.size >= this.#limits.maxPendingCalls) {
      throw new ResourceExhaustedError(
        `Too many calls waiting for answers (${this.#limits.maxPendingCalls})`,
        { retryable: true },
      );
    }
    if (this.#queue.backlogBytes > this.#limits.maxOutboundBytes) {
      throw new ResourceExhaustedError("The send queue is full: the peer is not reading", {
        retryable: true,
      });
    }
    if (this.#nextId > 0xFFFF_FFFF) {
      throw new UnavailableError("Call ids are exhausted on this connection: reconnect");
    }
    let headers = meta;
    if (timeout > 0) headers = { ...meta, timeout };
    const body: Record<string, unknown> = { method, params };
    if (headers !== undefined) body.meta = headers;
    const encoded = encodeValue(body);
    if (encoded.bytes.length > this.#limits.maxMessageSize) {
      throw new ResourceExhaustedError(
        `Request of ${encoded.bytes.length} bytes exceeds the ${this.#limits.maxMessageSize}-byte message limit`,
      );
    }
    const id = this.#nextId;
    this.#nextId += 2;
    this.#queue.push(kind, encoded.binary ? Flag.BINARY : 0, id, encoded.bytes);
    return id;
  }

  #sendCancel(id: number): void {
    if (!this.isClosed) this.#queue.push(Kind.CANCEL, 0, id, new Uint8Array(0));
  }

  /** Queues an answer. Never throws: what cannot be encoded is answered with INTERNAL. */
  #reply(id: number, kind: number, value: unknown): void {
    if (this.isClosed) return;
    const what = kind === Kind.ERROR ? "error" : "result";
    let encoded;
    try {
      encoded = encodeValue(value);
      if (encoded.bytes.length > this.#limits.maxMessageSize) {
        throw new ResourceExhaustedError(
          `The ${what} of ${encoded.bytes.length} bytes exceeds the message limit`,
        );
      }
    } catch (err) {
      const wire = err instanceof ResourceExhaustedError ? errorToWire(err) : {
        code: "INTERNAL",
        name: "RpcError",
        message: `The ${what} could not be encoded: ${err instanceof Error ? err.message : err}`,
      };
      encoded = encodeValue({ code: wire.code, name: wire.name, message: wire.message });
      kind = Kind.ERROR;
    }
    this.#queue.push(kind, encoded.binary ? Flag.BINARY : 0, id, encoded.bytes);
  }

  #replyError(id: number, err: unknown): void {
    this.#reply(id, Kind.ERROR, errorToWire(err));
  }

  // ---- receiving -----------------------------------------------------------------------

  async #readLoop(): Promise<void> {
    try {
      while (!this.isClosed) {
        if (this.#incoming.size >= this.#limits.maxInFlight) {
          // Backpressure: stop reading until one of the peer's calls finishes here.
          this.#paused = true;
          await new Promise<void>((resolve) => this.#slotWaiter = resolve);
          this.#paused = false;
          if (this.isClosed) return;
        }
        if (this.#queue.backlogBytes > this.#limits.maxOutboundBytes) {
          // The peer is not reading our answers: stop reading its requests until they leave
          // (a peer that never reads is closed by the write-stall timeout).
          this.#paused = true;
          await this.#queue.drained();
          this.#paused = false;
          if (this.isClosed) return;
        }
        const record = await this.#records.next();
        this.#lastInbound = Date.now();
        if (record === null) return this.#peerEnded();
        this.#bytesIn += HEADER_SIZE + TAG_SIZE + record.plaintext.length;
        if (this.#metrics !== undefined) this.#arrived = performance.now();
        if (record.type === FrameType.ALERT) return this.#onAlert(record.plaintext);
        for (const m of decodeMessages(record.plaintext)) this.#onMessage(m);
        if (this.#endedCount > 0) this.#reportEnded();
      }
    } catch (err) {
      if (!this.isClosed) this.#fail(err instanceof Error ? err : new Error(String(err)), true);
    }
  }

  #onAlert(plaintext: Uint8Array): void {
    const alert = decodeAlertBody(plaintext);
    if (alert.code === AlertCode.CLOSE || alert.code === AlertCode.SHUTDOWN) {
      this.#log.debug("peer_closed", { session: this.id, alert: alert.name });
      this.#finish(closedNormally, `Connection closed by the peer (${alert.name})`);
    } else {
      this.#fail(errorFromAlert(alert, "session", this.id), false);
    }
  }

  #onMessage(m: Message): void {
    const assembled = this.#reassembler.add(m);
    if (assembled.state === "partial" || assembled.state === "dropped") return;
    if (assembled.state === "too-large") {
      const err = new ResourceExhaustedError(
        `Message of ${assembled.size}+ bytes exceeds the ${this.#limits.maxMessageSize}-byte limit`,
      );
      if (m.kind === Kind.REQUEST) {
        this.#checkRequestId(m.id);
        this.#requests++;
        this.#replyError(m.id, err);
        this.#callDone("", err.code);
      } else if (m.kind === Kind.RESPONSE || m.kind === Kind.ERROR) this.#pending.reject(m.id, err);
      return;
    }
    const { payload, flags } = assembled;
    switch (m.kind) {
      case Kind.REQUEST:
      case Kind.NOTIFY:
        return this.#onRequest(m.id, m.kind === Kind.REQUEST, payload, flags);
      case Kind.RESPONSE:
      case Kind.ERROR:
        return this.#onAnswer(m.id, m.kind === Kind.ERROR, payload, flags);
      case Kind.CANCEL:
        return this.#onCancel(m.id);
      case Kind.PING:
        return this.#onPing(payload);
      case Kind.PONG:
        this.#pings.get(payload.join(","))?.();
        this.#pings.delete(payload.join(","));
        return;
      case Kind.GOAWAY:
        return this.#onGoAwayMessage(payload);
      default:
        // EVENT, STREAM_DATA, STREAM_END, CREDIT: for ids and names this side does not know,
        // ignored (PROTOCOL.md: unknown events never crash the receiver).
        this.#log.debug("message_ignored", { session: this.id, kind: m.kind });
    }
  }

  #decode(payload: Uint8Array, flags: number): unknown {
    if (flags & Flag.COMPRESSED) {
      throw new InvalidParamsError("Compressed payloads are not accepted by this peer");
    }
    return decodeValue(payload, (flags & Flag.BINARY) !== 0, {
      maxDepth: this.#limits.maxJsonDepth,
    });
  }

  #onAnswer(id: number, isError: boolean, payload: Uint8Array, flags: number): void {
    let value: unknown;
    try {
      value = this.#decode(payload, flags);
    } catch (err) {
      this.#pending.reject(id, err as Error);
      this.#checkIdle();
      return;
    }
    if (isError) this.#pending.reject(id, errorFromWire(value, this.id));
    else this.#pending.resolve(id, value);
    this.#checkIdle();
  }

  /** A request id must be non-zero, of the peer's parity, and not in flight (D.6). */
  #checkRequestId(id: number): void {
    if (id === 0 || id % 2 !== this.#peerParity || this.#incoming.has(id)) {
      throw new ProtocolError("PROTOCOL_ERROR", `Request id ${id} is invalid or already in flight`);
    }
  }

  /**
   * Notes a call that ended while its record is being dispatched (refused, or a synchronous
   * handler): reported once the record is done, all with one clock read. No-op without metrics.
   */
  #callDone(method: string, outcome: string): void {
    if (this.#metrics === undefined) return;
    const n = this.#endedCount++;
    this.#endedMethods[n] = method;
    this.#endedOutcomes[n] = outcome;
  }

  #reportEnded(): void {
    const metrics = this.#metrics!;
    const seconds = (performance.now() - this.#arrived) / 1000;
    const count = this.#endedCount;
    this.#endedCount = 0;
    for (let i = 0; i < count; i++) {
      metrics.callDone(this.#endedMethods[i], this.#endedOutcomes[i], seconds);
      this.#endedMethods[i] = "";
    }
  }

  #onRequest(id: number, reply: boolean, payload: Uint8Array, flags: number): void {
    this.#checkRequestId(id);
    this.#requests++;
    if (this.#goAwaySent !== undefined && id > this.#goAwaySent) {
      if (reply) {
        this.#replyError(id, new UnavailableError("The server is going away: retry elsewhere"));
      } else this.#log.debug("notify_dropped", { session: this.id, reason: "goaway", id });
      this.#callDone("", "UNAVAILABLE");
      return;
    }
    if (id > this.#highestPeerId) this.#highestPeerId = id;
    let method = "";
    try {
      const request = this.#decode(payload, flags) as Record<string, unknown> | null;
      if (typeof request !== "object" || request === null || typeof request.method !== "string") {
        throw new InvalidParamsError("Malformed request: a method name is required");
      }
      method = request.method;
      const def = L.METHOD_NAME_PATTERN.test(method) ? this.#methods.get(method) : undefined;
      if (def === undefined) {
        this.#log.debug("method_not_found", { session: this.id, method: escapeForLog(method) });
        throw new MethodNotFoundError(`Method '${escapeForLog(method)}' not found`);
      }
      const params = request.params ?? [];
      if (typeof params !== "object" || params === null) {
        throw new InvalidParamsError(`Params of '${method}' must be an array or an object`);
      }
      const meta = request.meta;
      if (
        meta !== undefined && (typeof meta !== "object" || meta === null || Array.isArray(meta))
      ) {
        throw new InvalidParamsError("Request metadata must be an object");
      }
      validateParams(method, def, params as Params);
      const args = Array.isArray(params) ? params : [params];
      this.#incoming.run(
        id,
        reply,
        method,
        def.handler,
        args,
        (meta ?? {}) as Record<string, unknown>,
        this.#arrived,
      );
    } catch (err) {
      if (reply) this.#replyError(id, err);
      else this.#log.debug("notify_failed", { session: this.id, method: escapeForLog(method) });
      this.#callDone(method, outcomeOf(err));
    }
  }

  #onCancel(id: number): void {
    this.#incoming.cancel(id);
  }

  /**
   * Heartbeat (PROTOCOL.md §11): a PING after `interval` ms of inbound silence; after
   * `misses` intervals the peer is presumed dead (frozen, or a path that dropped it without a
   * FIN). Ticks at a quarter interval (at most 1 s), so detection stays within misses ×
   * interval + 1 s.
   */
  #startHeartbeat(): void {
    const interval = this.#limits.heartbeatInterval;
    if (!(interval > 0)) return;
    const deadAfter = interval * this.#limits.heartbeatMisses;
    this.#heartbeat = setInterval(() => {
      const now = Date.now();
      if (this.#paused) this.#lastInbound = now;
      const idle = now - this.#lastInbound;
      if (idle >= deadAfter) {
        this.#fail(
          new ProtocolError(
            "PEER_TIMEOUT",
            `The peer sent nothing for ${idle} ms: connection presumed dead`,
          ),
          true,
        );
      } else if (idle >= interval && now - this.#lastPingSent >= interval) {
        this.#lastPingSent = now;
        this.#queue.push(Kind.PING, 0, 0, crypto.getRandomValues(new Uint8Array(8)));
      }
    }, Math.max(10, Math.min(interval / 4, 1000)));
  }

  #onPing(payload: Uint8Array): void {
    const now = Date.now();
    if (now - this.#pingWindow.start >= 1000) this.#pingWindow = { start: now, count: 0 };
    if (++this.#pingWindow.count > this.#limits.maxPingsPerSecond) {
      throw new ProtocolError("RATE_LIMITED", "Too many PINGs from the peer");
    }
    this.#queue.push(Kind.PONG, 0, 0, payload.slice());
  }

  #onGoAwayMessage(payload: Uint8Array): void {
    const value = this.#decode(payload, 0) as { lastId?: unknown } | null;
    const lastId = typeof value?.lastId === "number" ? value.lastId : 0;
    this.#goAwayReceived = lastId;
    this.#log.debug("goaway_received", { session: this.id, lastId });
    this.#pending.rejectWhere(
      (id) => id > lastId,
      (method) =>
        new UnavailableError(`Call to '${method}' was not processed: the peer is going away`, {
          sessionId: this.id,
        }),
    );
    this.#onGoAway?.(lastId);
  }

  #peerEnded(): void {
    // Half-close (PROTOCOL.md D.10): answers to requests already received are still sent.
    this.#pending.rejectWhere(
      () => true,
      (method) =>
        new ConnectionClosedError(`Call to '${method}' failed: the peer closed the connection`, {
          sessionId: this.id,
        }),
    );
    const lost = new ConnectionClosedError("The peer closed the connection without CLOSE", {
      sessionId: this.id,
    });
    this.#checkIdle();
    let timer: Timer | undefined;
    Promise.race([
      this.#whenIdle(),
      new Promise((resolve) => timer = setTimeout(resolve, this.#limits.halfCloseTimeout)),
    ]).then(() => {
      clearTimeout(timer);
      this.#fail(lost, false);
    });
  }

  // ---- closing -------------------------------------------------------------------------

  #whenIdle(): Promise<void> {
    if (this.#incoming.size === 0 && this.#pending.size === 0) return this.#queue.drained();
    return new Promise<void>((resolve) => this.#idleWaiters.push(resolve)).then(() =>
      this.#queue.drained()
    );
  }

  #checkIdle(): void {
    if (this.#incoming.size !== 0 || this.#pending.size !== 0) return;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const w of waiters) w();
  }

  /** The error for a call refused because the session is closed: never sent, so retryable. */
  #closedError(): ConnectionClosedError {
    const reason = this.#closeReason;
    const detail = reason instanceof Error ? `: ${reason.message}` : "";
    return new ConnectionClosedError(`Connection closed${detail}`, {
      sessionId: this.id,
      cause: reason instanceof Error ? reason : undefined,
      retryable: true,
    });
  }

  /** Closes because of `err`; `tellPeer` sends a sealed alert first (best effort). */
  #fail(err: Error, tellPeer: boolean): void {
    if (this.isClosed) return;
    if (err instanceof RpcError && err.sessionId === undefined) err.sessionId = this.id;
    this.#log.debug("session_failed", {
      session: this.id,
      code: (err as RpcError).code,
      reason: err.message,
    });
    if (tellPeer && !this.#queue.failed) {
      const alert = alertFor(err);
      // Details of record failures are never sent (PROTOCOL.md §8).
      this.#queue.pushRecord(FrameType.ALERT, encodeAlertBody(alert.code, alert.message));
    }
    this.#finish(err, `Connection closed: ${err.message}`);
  }

  async #finish(reason: Error | typeof closedNormally, message: string): Promise<void> {
    if (this.isClosed) return;
    this.#closeReason = reason;
    const cause = reason instanceof Error ? reason : undefined;
    this.#pending.rejectWhere(
      () => true,
      (method) =>
        new ConnectionClosedError(`Call to '${method}' failed: ${message}`, {
          sessionId: this.id,
          cause,
        }),
    );
    this.#incoming.abortAll(new ConnectionClosedError(message, { sessionId: this.id }));
    for (const settle of this.#pings.values()) {
      settle(new ConnectionClosedError(`Ping failed: ${message}`, { sessionId: this.id }));
    }
    this.#pings.clear();
    this.#reassembler.clear();
    this.#records.close();
    clearInterval(this.#heartbeat);
    this.#slotWaiter?.();
    this.#checkIdle();
    // Let the last records (answers, the alert) leave, but never wait on a stuck peer.
    let timer: Timer | undefined;
    await Promise.race([
      this.#queue.drained(),
      new Promise((resolve) => timer = setTimeout(resolve, 1000)),
    ]);
    clearTimeout(timer);
    this.#queue.fail(new ConnectionClosedError(message));
    this.#channel.close();
    this.#resolveClosed(reason instanceof Error ? reason : undefined);
  }
}
