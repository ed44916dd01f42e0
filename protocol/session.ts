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
import { type ByteChannel, writeHeadAndBody } from "./channel.ts";
import { decodeValue, type EncodedValue, encodeValue, parseJsonText } from "./codec.ts";
import { inflateRaw } from "./compression.ts";
import {
  ConnectionClosedError,
  errorFromWire,
  errorToWire,
  InvalidParamsError,
  ProtocolError,
  ResourceExhaustedError,
  RpcError,
  UnavailableError,
} from "./errors.ts";
import { Deadlines } from "./deadlines.ts";
import { checkEventName } from "./events.ts";
import { FrameType, HEADER_SIZE, TAG_SIZE } from "./frame.ts";
import { Heartbeat, type HeartbeatHost } from "./heartbeat.ts";
import { IncomingCalls, type IncomingHost, outcomeOf } from "./incoming_calls.ts";
import * as L from "./limits.ts";
import { type Logger, silentLogger } from "./logger.ts";
import {
  checkMessages,
  Flag,
  Kind,
  type Message,
  MESSAGE_HEADER_SIZE,
  readU32,
} from "./messages.ts";
import { RecordTiming } from "./record_timing.ts";
import type { MethodTable, Params } from "./methods.ts";
import type { SessionMetrics } from "./metrics.ts";
import type { Middleware } from "./middleware.ts";
import { Outbox } from "./outbox.ts";
import {
  type CallOptions,
  creditOf,
  OutgoingCalls,
  type OutgoingSettings,
  type StreamOptions,
} from "./outgoing_calls.ts";
import type { RetryHook } from "./pending_calls.ts";
import { Reassembler } from "./reassembly.ts";
import { RecordOpener, RecordSealer } from "./record.ts";
import { RecordReader } from "./record_reader.ts";
import { RecordText } from "./record_text.ts";
import { parseRequest } from "./request.ts";
import type { RpcChannel, RpcStream } from "./rpc_stream.ts";
import { SendQueue } from "./send_queue.ts";
import type { Slots } from "./slots.ts";
import { resolveLimits, type SessionLimits } from "./session_limits.ts";
import type { EmitOptions, SessionOptions } from "./session_options.ts";

export type { SessionLimits } from "./session_limits.ts";
export type { CallOptions, StreamOptions } from "./outgoing_calls.ts";

export type { Params } from "./methods.ts";
export type { EmitOptions, SessionOptions } from "./session_options.ts";

const closedNormally = Symbol("closed normally");

/** How long a closing session waits for its last records to leave, on one timer for all. */
const CLOSING_DEADLINES = new Deadlines<Session>(Date.now, true);

/** What stops the send queue of a session closed normally (a flag: never thrown). */
const QUEUE_CLOSED = new ConnectionClosedError("Connection closed");

/**
 * The payload handed to `#dispatch` for a message that is still in its record: its bytes are
 * `#record[#at, #at + #length)` until `#dispatch` returns. Decoding reads them there (small
 * ASCII text is cut from the record's one decode) and makes a view only when it needs one.
 */
const IN_RECORD = new Uint8Array(0);
/** No record is being dispatched (none is kept alive by the session). */
const NO_RECORD = new Uint8Array(0);

/** One authenticated, multiplexed connection. */
export class Session {
  /** Session id (32 hex digits). */
  readonly id: string;
  /** Resolves when the session has closed: `undefined` for a normal close, else the reason. */
  readonly closed: Promise<Error | undefined>;

  #channel: ByteChannel;
  #records: RecordReader;
  #queue: SendQueue;
  #outbox: Outbox;
  #methods: MethodTable;
  #limits: Required<SessionLimits>;
  #log: Logger;
  #onGoAway?: (lastId: number) => void;
  #onEvent?: (name: string, data: unknown) => void;
  /** Calls this side makes: built for the first one (many server sessions never call out). */
  #outgoing: OutgoingCalls | undefined;
  #outgoingSettings: OutgoingSettings;
  #incoming: IncomingCalls;
  #reassembler: Reassembler;
  #heartbeat: Heartbeat;
  #ownParity: number;
  #highestPeerId = 0;
  /** The default call timeout the peer announced (§5.8), for its requests without one. */
  #peerDefaultTimeout: number;
  #goAwaySent: number | undefined;
  #goAwayReceived: number | undefined;
  #draining = false;
  #closeReason: Error | typeof closedNormally | undefined;
  #resolveClosed!: (reason: Error | undefined) => void;
  #slotWaiter: (() => void) | undefined;
  #idleWaiters: (() => void)[] = [];
  /** True while the read loop waits on our own backpressure (silence is then ours). */
  #paused = false;
  /** The text of the small ASCII payloads of the record being dispatched. */
  #recordText: RecordText | undefined;
  /** The plaintext of the record being dispatched, while a message of it is ({@link IN_RECORD}). */
  #record: Uint8Array = NO_RECORD;
  /** Where that message's payload is in it. */
  #at = 0;
  #length = 0;
  /** Times the calls of each record (only with metrics). */
  #timing: RecordTiming | undefined;
  #bytesIn = 0;
  #bytesOut = 0;
  /** What handlers see as `this.peer`: on the server, the `Peer` wrapping this session. */
  peer: unknown;
  #requests = 0;

  /**
   * The session's side of its parts: the channel its send queue writes to (counting the sealed
   * bytes, one add per record), its incoming calls and its heartbeat. One object with methods
   * instead of a closure per callback: an idle connection holds a dozen fewer objects.
   */
  static #Ports = class Ports implements ByteChannel, IncomingHost, HeartbeatHost {
    readonly sessionId: string;
    readonly middleware: readonly Middleware[] | undefined;
    readonly maxStreams: number;
    readonly slots: Slots | undefined;
    readonly metrics: SessionMetrics | undefined;
    #s: Session;

    constructor(session: Session, options: SessionOptions) {
      this.#s = session;
      this.sessionId = session.id;
      this.middleware = options.middleware?.length ? options.middleware : undefined;
      this.maxStreams = session.#limits.maxStreams;
      this.slots = options.slots;
      this.metrics = options.metrics;
    }

    get peer(): unknown {
      return this.#s.peer;
    }

    get nagle(): boolean {
      return this.#s.#channel.nagle === true;
    }

    // ByteChannel
    read(buffer: Uint8Array): Promise<number | null> {
      return this.#s.#channel.read(buffer);
    }
    write(data: Uint8Array): Promise<void> {
      this.#s.#bytesOut += data.length;
      return this.#s.#channel.write(data);
    }
    writeParts(head: Uint8Array, body: Uint8Array): Promise<void> {
      this.#s.#bytesOut += head.length + body.length;
      return writeHeadAndBody(this.#s.#channel, head, body);
    }
    close(): void {
      this.#s.#channel.close();
    }

    // IncomingHost
    call(method: string, params?: Params): Promise<unknown> {
      return this.#s.call(method, params);
    }
    notify(method: string, params?: Params): void {
      this.#s.notify(method, params);
    }
    emit(name: string, data?: unknown): void {
      this.#s.emit(name, data);
    }
    reply(id: number, value: unknown, compress: boolean): void {
      if (!this.#s.isClosed) this.#s.#outbox.answer(Kind.RESPONSE, id, value, compress);
    }
    replyError(id: number, err: unknown): void {
      if (!this.#s.isClosed) this.#s.#outbox.answer(Kind.ERROR, id, errorToWire(err));
    }
    streamData(id: number, value: unknown, compress: boolean): void {
      if (!this.#s.isClosed) {
        this.#s.#outbox.value(Kind.STREAM_DATA, id, value, compress, "chunk");
      }
    }
    streamEnd(id: number, result: unknown, compress: boolean): void {
      if (!this.#s.isClosed) this.#s.#outbox.answer(Kind.STREAM_END, id, { result }, compress);
    }
    grant(id: number, n: number): void {
      if (!this.#s.isClosed) this.#s.#outbox.value(Kind.CREDIT, id, { credit: n });
    }
    callEnded(method: string, outcome: string): void {
      this.#s.#callDone(method, outcome);
    }
    settled(): void {
      const s = this.#s;
      const waiter = s.#slotWaiter;
      s.#slotWaiter = undefined;
      waiter?.();
      s.#checkIdle();
    }

    // HeartbeatHost
    send(kind: number, payload: Uint8Array): void {
      this.#s.#queue.push(kind, 0, 0, payload);
    }
    dead(err: ProtocolError): void {
      this.#s.#fail(err, true);
    }
    paused(): boolean {
      return this.#s.#paused;
    }
  };

  /** @param options channel, handshake result, methods and limits */
  constructor(options: SessionOptions) {
    const hs = options.handshake;
    this.id = hs.sessionIdHex;
    this.#channel = options.channel;
    this.#methods = options.methods;
    this.#log = options.logger ?? silentLogger;
    this.#onGoAway = options.onGoAway;
    this.#onEvent = options.onEvent;
    if (options.metrics) this.#timing = new RecordTiming(options.metrics);
    this.#limits = resolveLimits(options.limits);
    this.#ownParity = options.role === "client" ? 1 : 0;
    this.#records = new RecordReader(
      this.#channel,
      options.reader,
      new RecordOpener(hs.recvKey, hs.recvIv, hs.chacha),
      this.#limits,
    );
    const ports = new Session.#Ports(this, options);
    this.#queue = new SendQueue(
      ports,
      new RecordSealer(hs.sendKey, hs.sendIv, options.keyUpdate, hs.chacha),
      hs.peerMaxFrame,
      {
        writeStallTimeout: this.#limits.writeStallTimeout,
        onError: (err) => this.#fail(err, false),
      },
    );
    this.#outbox = new Outbox(this.#queue, this.#limits.maxMessageSize, options.compression);
    this.#reassembler = new Reassembler(
      this.#limits.maxMessageSize,
      this.#limits.maxReassemblyBytes,
    );
    this.#incoming = new IncomingCalls(ports);
    this.#peerDefaultTimeout = hs.peerDefaultTimeout;
    this.#outgoingSettings = {
      role: options.role,
      callTimeout: options.callTimeout ?? L.DEFAULT_CALL_TIMEOUT,
      announcedTimeout: hs.ownDefaultTimeout,
      maxPendingCalls: this.#limits.maxPendingCalls,
      streamWindow: this.#limits.streamWindow,
      interceptors: options.interceptors,
    };
    this.closed = new Promise((resolve) => this.#resolveClosed = resolve);
    this.#heartbeat = new Heartbeat(ports, this.#limits);
    this.#readLoop();
  }

  /** The outgoing calls, built on first use. */
  #out(): OutgoingCalls {
    return this.#outgoing ??= new OutgoingCalls({
      sessionId: this.id,
      outbox: this.#outbox,
      checkOpen: () => this.#checkOpen(),
      settled: () => this.#checkIdle(),
      nagle: this.#channel.nagle === true,
    }, this.#outgoingSettings);
  }

  /** True once the session is closed or closing. */
  get isClosed(): boolean {
    return this.#closeReason !== undefined;
  }

  /** Calls (and streams) this side sent that await their end. */
  get pendingCalls(): number {
    return this.#outgoing?.size ?? 0;
  }

  /** Peer requests running here (open streams are counted by {@link openStreams}). */
  get inFlight(): number {
    return this.#incoming.size;
  }

  /** Streams and channels open on this connection, both directions. */
  get openStreams(): number {
    return this.#incoming.streams + (this.#outgoing?.streams ?? 0);
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
   * @param retry asked before the call fails for any reason but its timeout or signal
   */
  call<T = unknown>(
    method: string,
    params: Params = [],
    options: CallOptions = {},
    retry?: RetryHook,
  ): Promise<T> {
    return this.#out().call(method, params, options, retry);
  }

  /** Sends a notification (a request without an answer). Throws when it cannot be queued. */
  notify(method: string, params: Params = [], options: Omit<CallOptions, "timeout"> = {}): void {
    this.#out().notify(method, params, options);
  }

  /**
   * Calls a streaming method (a handler that returns an async iterable). No timeout unless
   * one is given; `signal`, `cancel()` or leaving `for await` cancel it on the peer.
   */
  stream<T = unknown, R = unknown>(
    method: string,
    params: Params = [],
    options: StreamOptions = {},
  ): RpcStream<T, R> {
    return this.#out().stream(method, params, options);
  }

  /** Opens a bidirectional channel: the handler reads `this.input` and may stream back. */
  open<In = unknown, Out = unknown, R = unknown>(
    method: string,
    params: Params = [],
    options: StreamOptions = {},
  ): RpcChannel<In, Out, R> {
    return this.#out().open(method, params, options);
  }

  /**
   * Sends the peer an event (one-way, named). Throws when the session is closed, the name
   * breaks the name rule, or the data cannot be encoded.
   */
  emit(name: string, data?: unknown, options: EmitOptions = {}): void {
    checkEventName(name);
    this.#emitEncoded(encodeEvent(name, data), options.compress === true);
  }

  /** Sends an event encoded once with {@link encodeEvent} (broadcasts). */
  emitEncoded(event: EncodedValue, options: EmitOptions = {}): void {
    this.#emitEncoded(event, options.compress === true);
  }

  #emitEncoded(event: EncodedValue, compress: boolean): void {
    if (this.isClosed) throw this.#closedError();
    if (event.bytes.length > this.#limits.maxMessageSize) {
      throw new ResourceExhaustedError(
        `The event of ${event.bytes.length} bytes exceeds the message limit`,
      );
    }
    this.#outbox.bytes(Kind.EVENT, event.binary ? Flag.BINARY : 0, 0, event.bytes, compress);
  }

  /** Sends a PING and resolves with the round-trip time in ms. */
  ping(options: { timeout?: number } = {}): Promise<number> {
    if (this.isClosed) return Promise.reject(this.#closedError());
    return this.#heartbeat.ping(options.timeout);
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
   * Closes gracefully: no new calls; calls and streams in both directions finish (up to
   * `timeout` ms), then a CLOSE (or SHUTDOWN) alert is sent and the connection closed.
   * Idempotent.
   */
  async drain(options: { timeout?: number; shutdown?: boolean } = {}): Promise<void> {
    if (this.#draining || this.isClosed) {
      await this.closed;
      return;
    }
    this.#draining = true;
    if (!this.#isIdle() || !this.#outbox.isDrained) {
      const deadline = options.timeout ?? 10_000;
      let timer: Timer | undefined;
      await Promise.race([
        this.#whenIdle(),
        new Promise<void>((resolve) => timer = setTimeout(resolve, deadline)),
        this.closed,
      ]);
      clearTimeout(timer);
    }
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

  /** Throws when no new call may start now. */
  #checkOpen(): void {
    if (this.isClosed) throw this.#closedError();
    if (this.#draining) throw new UnavailableError("The session is closing: no new calls");
    if (this.#goAwayReceived !== undefined) {
      throw new UnavailableError("The peer is going away: reconnect and retry", {
        retryable: true,
        sessionId: this.id,
      });
    }
    if (this.#queue.backlogBytes > this.#limits.maxOutboundBytes) {
      throw new ResourceExhaustedError("The send queue is full: the peer is not reading", {
        retryable: true,
      });
    }
  }

  // ---- receiving -----------------------------------------------------------------------

  // The loop an idle connection stays suspended in: kept small (a suspended async function
  // holds all its registers), the work on a record is done by the methods below.
  async #readLoop(): Promise<void> {
    try {
      while (!this.isClosed) {
        const room = this.#waitForRoom();
        if (room !== undefined) {
          await room;
          this.#paused = false;
          continue;
        }
        const record = this.#records.nextBuffered() ?? await this.#records.next();
        this.#heartbeat.touch();
        if (record === null) return this.#peerEnded();
        this.#bytesIn += HEADER_SIZE + TAG_SIZE + record.plaintext.length;
        if (record.type === FrameType.ALERT) return this.#onAlert(record.plaintext);
        const inflating = this.#onRecord(record.plaintext);
        if (inflating !== undefined) await inflating;
      }
    } catch (err) {
      if (!this.isClosed) this.#fail(err instanceof Error ? err : new Error(String(err)), true);
    }
  }

  /** Backpressure: what to wait for before reading on, if anything. */
  #waitForRoom(): Promise<void> | undefined {
    if (this.#incoming.size >= this.#limits.maxInFlight) {
      // Stop reading until one of the peer's calls finishes here.
      this.#paused = true;
      return new Promise<void>((resolve) => this.#slotWaiter = resolve);
    }
    if (this.#queue.backlogBytes > this.#limits.maxOutboundBytes) {
      // The peer is not reading our answers: stop reading its requests until they leave
      // (a peer that never reads is closed by the write-stall timeout).
      this.#paused = true;
      return this.#queue.drained();
    }
    return undefined;
  }

  /** Dispatches the messages of one record; a promise while one of them is being inflated. */
  #onRecord(plaintext: Uint8Array): Promise<void> | undefined {
    this.#timing?.start();
    // Every header is checked before any message is dispatched (one bad message rejects the
    // record); one decode of the whole record pays off from two messages up.
    if (checkMessages(plaintext) > 1) this.#recordText = new RecordText(plaintext);
    return this.#onMessages(plaintext, 0);
  }

  /** Dispatches the messages of a checked record from `offset`, in order. */
  #onMessages(plaintext: Uint8Array, offset: number): Promise<void> | undefined {
    while (offset < plaintext.length) {
      const start = offset + MESSAGE_HEADER_SIZE;
      const length = readU32(plaintext, offset + 6);
      const inflating = this.#onMessage(
        plaintext[offset],
        plaintext[offset + 1],
        readU32(plaintext, offset + 2),
        plaintext,
        start,
        length,
      );
      offset = start + length;
      // A compressed message is inflated before the next one is dispatched: order is kept.
      if (inflating !== undefined) {
        const next = offset;
        return inflating.then(() => this.isClosed ? undefined : this.#onMessages(plaintext, next));
      }
      if (this.isClosed) return undefined;
    }
    this.#recordText = undefined;
    this.#timing?.flush();
    return undefined;
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

  /**
   * Reassembles and dispatches the message whose payload is `plaintext[start, start +
   * length)`; returns a promise while inflating it. A whole, uncompressed one (nearly all) is
   * dispatched where it lies ({@link IN_RECORD}): no view or object made for it.
   */
  #onMessage(
    kind: number,
    flags: number,
    id: number,
    plaintext: Uint8Array,
    start: number,
    length: number,
  ): Promise<void> | undefined {
    if ((flags & Flag.COMPRESSED) === 0 && this.#reassembler.isWhole(kind, flags, id, length)) {
      this.#record = plaintext;
      this.#at = start;
      this.#length = length;
      this.#dispatch(kind, id, IN_RECORD, flags);
      this.#record = NO_RECORD;
      return;
    }
    const m: Message = { kind, flags, id, payload: plaintext.subarray(start, start + length) };
    const assembled = this.#reassembler.add(m);
    if (assembled.state === "partial" || assembled.state === "dropped") return;
    if (assembled.state === "too-large") {
      this.#onTooLarge(m, assembled.size);
      return;
    }
    // The whole message's flags are its last piece's (without MORE).
    const payload = assembled.payload, whole = assembled.flags;
    if ((whole & Flag.COMPRESSED) === 0) {
      this.#dispatch(kind, id, payload, whole);
      return;
    }
    return inflateRaw(payload, this.#limits.maxMessageSize).then(
      (inflated) => this.#dispatch(kind, id, inflated, whole),
      (err) => this.#dispatch(kind, id, err, whole),
    );
  }

  /** Routes a whole message; `payload` is an Error when inflating it failed. */
  #dispatch(kind: number, id: number, payload: Uint8Array | Error, flags: number): void {
    switch (kind) {
      case Kind.REQUEST:
      case Kind.NOTIFY:
        return this.#onRequest(id, kind === Kind.REQUEST, payload, flags);
      case Kind.RESPONSE:
      case Kind.ERROR:
        return this.#onAnswer(id, kind === Kind.ERROR, payload, flags);
      case Kind.CANCEL:
        return this.#incoming.cancel(id);
      case Kind.PING:
        return this.#heartbeat.onPing(this.#raw(payload));
      case Kind.PONG:
        return this.#heartbeat.onPong(this.#raw(payload));
      case Kind.GOAWAY:
        return this.#onGoAwayMessage(this.#raw(payload));
      case Kind.EVENT:
        return this.#onEventMessage(payload, flags);
      case Kind.STREAM_DATA:
      case Kind.STREAM_END:
      case Kind.CREDIT:
        return this.#onStreamMessage(kind, id, payload, flags);
    }
  }

  #raw(payload: Uint8Array | Error): Uint8Array {
    if (payload instanceof Error) throw new ProtocolError("PROTOCOL_ERROR", payload.message);
    return payload === IN_RECORD ? this.#inRecord() : payload;
  }

  /** The payload of the message dispatched {@link IN_RECORD}, as a view. */
  #inRecord(): Uint8Array {
    return this.#record.subarray(this.#at, this.#at + this.#length);
  }

  #onTooLarge(m: Message, size: number): void {
    const err = new ResourceExhaustedError(
      `Message of ${size}+ bytes exceeds the ${this.#limits.maxMessageSize}-byte limit`,
    );
    if (m.kind === Kind.REQUEST) {
      this.#checkRequestId(m.id);
      this.#requests++;
      this.#outbox.answer(Kind.ERROR, m.id, errorToWire(err));
      this.#callDone("", err.code);
    } else if (this.#isAnswer(m.kind, m.id)) this.#out().reject(m.id, err);
    else if (m.kind === Kind.STREAM_DATA && m.id % 2 !== this.#ownParity) {
      this.#incoming.cancel(m.id);
    }
  }

  #isAnswer(kind: number, id: number): boolean {
    return kind === Kind.RESPONSE || kind === Kind.ERROR ||
      (kind === Kind.STREAM_END && id % 2 === this.#ownParity);
  }

  #decode(payload: Uint8Array | Error, flags: number): unknown {
    if (payload instanceof Error) throw payload;
    const binary = (flags & Flag.BINARY) !== 0;
    if (payload === IN_RECORD) {
      const text = binary ? undefined : this.#recordText?.ascii(this.#at, this.#length);
      if (text !== undefined) return parseJsonText(text, this.#limits.maxJsonDepth);
      payload = this.#inRecord();
    }
    return decodeValue(payload, binary, { maxDepth: this.#limits.maxJsonDepth });
  }

  #onAnswer(id: number, isError: boolean, payload: Uint8Array | Error, flags: number): void {
    let value: unknown;
    try {
      value = this.#decode(payload, flags);
    } catch (err) {
      this.#out().reject(id, err as Error);
      return;
    }
    if (isError) this.#out().reject(id, errorFromWire(value, this.id));
    else this.#out().resolve(id, value);
  }

  /**
   * STREAM_DATA, STREAM_END and CREDIT. On an id of this side's parity they belong to a
   * stream this side opened (chunks, its end, credit for its input); on the peer's parity to
   * a call running here (input chunks, the input's end, credit for the stream sent).
   */
  #onStreamMessage(kind: number, id: number, payload: Uint8Array | Error, flags: number): void {
    const mine = id % 2 === this.#ownParity;
    // Late messages of a stream that has ended (or ids never used) are ignored unread.
    if (!(mine ? this.#outgoing?.hasStream(id) : this.#incoming.has(id))) return;
    let value: unknown;
    try {
      value = this.#decode(payload, flags);
    } catch (err) {
      if (kind === Kind.CREDIT) throw err;
      if (mine) this.#out().reject(id, err as Error);
      else this.#incoming.cancel(id, err as Error);
      return;
    }
    if (kind === Kind.CREDIT) {
      if (mine) this.#out().credit(id, creditOf(value));
      else this.#incoming.credit(id, creditOf(value));
    } else if (kind === Kind.STREAM_DATA) {
      if (mine) this.#out().chunk(id, value);
      else this.#incoming.inputChunk(id, value);
    } else if (mine) {
      this.#out().resolve(id, (value as { result?: unknown } | null)?.result, true);
    } else this.#incoming.inputEnd(id);
  }

  #onEventMessage(payload: Uint8Array | Error, flags: number): void {
    let name = "";
    try {
      const event = this.#decode(payload, flags) as { name?: unknown; data?: unknown } | null;
      if (typeof event?.name !== "string") throw new InvalidParamsError("Malformed event");
      name = event.name;
      checkEventName(name);
      if (this.#onEvent === undefined) {
        this.#log.debug("event_ignored", { session: this.id, event: escapeForLog(name) });
      } else this.#onEvent(name, event.data);
    } catch (err) {
      this.#log.debug("event_dropped", {
        session: this.id,
        event: escapeForLog(name),
        reason: escapeForLog((err as Error).message),
      });
    }
  }

  /** A request id must be non-zero, of the peer's parity, and not in flight (D.6). */
  #checkRequestId(id: number): void {
    if (id === 0 || id % 2 === this.#ownParity || this.#incoming.has(id)) {
      throw new ProtocolError("PROTOCOL_ERROR", `Request id ${id} is invalid or already in flight`);
    }
  }

  /** A call ended during the current record (timed with it; no-op without metrics). */
  #callDone(method: string, outcome: string): void {
    this.#timing?.ended(method, outcome);
  }

  /**
   * A request's handler deadline in ms from now (0: none): its `meta.timeout` when it has one
   * (a positive number; anything else is none), else the peer's announced default for a plain
   * call (§5.8) — not for a NOTIFY, a stream or a channel — which the handler then reads in
   * its `meta` as if it had travelled (`meta` is the request's own object).
   */
  #deadlineOf(meta: Record<string, unknown>, plainCall: boolean): number {
    const timeout = meta.timeout;
    if (timeout === undefined) {
      if (!plainCall || this.#peerDefaultTimeout === 0) return 0;
      return meta.timeout = this.#peerDefaultTimeout;
    }
    return typeof timeout === "number" && timeout > 0 ? timeout : 0;
  }

  #onRequest(id: number, reply: boolean, payload: Uint8Array | Error, flags: number): void {
    this.#checkRequestId(id);
    this.#requests++;
    if (this.#goAwaySent !== undefined && id > this.#goAwaySent) {
      if (reply) {
        this.#outbox.answer(
          Kind.ERROR,
          id,
          errorToWire(new UnavailableError("The server is going away: retry elsewhere")),
        );
      } else this.#log.debug("notify_dropped", { session: this.id, reason: "goaway", id });
      this.#callDone("", "UNAVAILABLE");
      return;
    }
    if (id > this.#highestPeerId) this.#highestPeerId = id;
    let method = "";
    try {
      const request = parseRequest(this.#decode(payload, flags), this.#methods, (name) => {
        method = name;
      });
      this.#incoming.run(
        id,
        reply,
        method,
        request.def.handler,
        request.args,
        request.meta,
        this.#deadlineOf(request.meta, reply && request.credit === undefined),
        this.#timing?.arrived ?? 0,
        request.credit === undefined || !reply ? undefined : {
          credit: request.credit,
          input: request.input ? this.#limits.streamWindow : undefined,
        },
        (flags & Flag.COMPRESSED) !== 0,
      );
    } catch (err) {
      if (err instanceof RpcError && err.code === "METHOD_NOT_FOUND") {
        this.#log.debug("method_not_found", { session: this.id, method: escapeForLog(method) });
      }
      if (reply) this.#outbox.answer(Kind.ERROR, id, errorToWire(err));
      else this.#log.debug("notify_failed", { session: this.id, method: escapeForLog(method) });
      this.#callDone(method, outcomeOf(err));
    }
  }

  #onGoAwayMessage(payload: Uint8Array): void {
    const value = this.#decode(payload, 0) as { lastId?: unknown } | null;
    const lastId = typeof value?.lastId === "number" ? value.lastId : 0;
    this.#goAwayReceived = lastId;
    this.#log.debug("goaway_received", { session: this.id, lastId });
    this.#outgoing?.refuseAfter(lastId, this.id);
    this.#onGoAway?.(lastId);
  }

  #peerEnded(): void {
    // Half-close (PROTOCOL.md D.10): answers to requests already received are still sent.
    this.#outgoing?.failAll("the peer closed the connection", this.id);
    const lost = () => {
      if (this.isClosed) return;
      this.#fail(
        new ConnectionClosedError("The peer closed the connection without CLOSE", {
          sessionId: this.id,
        }),
        false,
      );
    };
    this.#checkIdle();
    if (this.#isIdle() && this.#outbox.isDrained) return lost();
    let timer: Timer | undefined;
    Promise.race([
      this.#whenIdle(),
      new Promise((resolve) => timer = setTimeout(resolve, this.#limits.halfCloseTimeout)),
    ]).then(() => {
      clearTimeout(timer);
      lost();
    });
  }

  // ---- closing -------------------------------------------------------------------------

  #isIdle(): boolean {
    return this.#incoming.idle && (this.#outgoing?.size ?? 0) === 0;
  }

  #whenIdle(): Promise<void> {
    if (this.#isIdle()) return this.#outbox.drained();
    return new Promise<void>((resolve) => this.#idleWaiters.push(resolve)).then(() =>
      this.#outbox.drained()
    );
  }

  #checkIdle(): void {
    if (!this.#isIdle()) return;
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
    this.#outgoing?.failAll(message, this.id, cause);
    this.#incoming.abortAll(() => new ConnectionClosedError(message, { sessionId: this.id }));
    this.#heartbeat.stop(message, this.id);
    this.#reassembler.clear();
    this.#records.close();
    this.#slotWaiter?.();
    this.#checkIdle();
    // Let the last records (answers, the alert) leave, but never wait on a stuck peer.
    if (!this.#queue.isDrained) {
      await new Promise<void>((resolve) => {
        CLOSING_DEADLINES.add(this, 1000, resolve);
        this.#queue.drained().then(resolve);
      });
      CLOSING_DEADLINES.delete(this);
    }
    this.#queue.fail(cause ?? QUEUE_CLOSED);
    this.#channel.close();
    this.#resolveClosed(reason instanceof Error ? reason : undefined);
  }
}

/** Encodes an event once, e.g. to send it to many peers with {@link Session.emitEncoded}. */
export function encodeEvent(name: string, data?: unknown): EncodedValue {
  checkEventName(name);
  return encodeValue(data === undefined ? { name } : { name, data });
}
