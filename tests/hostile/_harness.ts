/**
 * The hostile-test harness (HOSTILE-TESTS.md §3.0): a programmable MITM TCP proxy that works
 * frame by frame, a raw client that speaks bytes (and, holding the psk, can authenticate and
 * then seal whatever records it likes), a scriptable fake server, sanity round trips, and the
 * secret-canary scanner that every test feeds with what it saw.
 *
 * Everything listens on 127.0.0.1 port 0 (or a private temp dir) and talks to loopback only.
 * Every wait is bounded by a timer, and every resource is closed, so Deno's sanitizers stay on.
 */
import { assert, assertEquals } from "@std/assert";
import { connect, type ConnectOptions } from "../../client.ts";
import { serve, type ServeOptions, type Server } from "../../server.ts";
import { decodeAlertBody } from "../../protocol/alerts.ts";
import { concatBytes, crc32, toHex } from "../../protocol/bytes.ts";
import { decodeValue, encodeValue } from "../../protocol/codec.ts";
import { RpcError } from "../../protocol/errors.ts";
import { FrameType, HEADER_SIZE } from "../../protocol/frame.ts";
import { FrameReader } from "../../protocol/frame_reader.ts";
import {
  deriveSessionKeys,
  encodeClientAuth,
  encodeServerHello,
  type EphemeralKey,
  generateEphemeral,
  parseServerHello,
  type ServerHello,
  type SessionKeys,
  setClientProof,
  sharedSecret,
  signClientProof,
  transcriptHash,
  type TransportLabel,
} from "../../protocol/handshake_messages.ts";
import {
  decodeMessages,
  encodeMessages,
  Flag,
  Kind,
  type Message,
} from "../../protocol/messages.ts";
import { RecordOpener, RecordSealer } from "../../protocol/record.ts";
import { stretchSecret } from "../../protocol/secret.ts";
import { SocketConn } from "../../transports/conn.ts";
import type { Conn, Dialer } from "../../transports/types.ts";
import { CANARY_SECRET, captureLogger, TLS } from "../_helpers.ts";

export { CANARY_SECRET };

// ---- evidence for the secret canary (case 8) -------------------------------------------

/**
 * Everything the suite saw: log lines, errors, alert texts and wire bytes. Tests push into it
 * (the harness does so on its own for what it creates); the canary test of each file scans it.
 */
export const evidence = {
  /** Arrays of log lines (kept by reference: lines added later are scanned too). */
  logs: [] as string[][],
  /** Every error a test caught. */
  errors: [] as unknown[],
  /** Decoded ALERT texts (pre- and post-authentication). */
  alerts: [] as string[],
  /** Arrays of wire chunks (kept by reference). */
  wire: [] as Uint8Array[][],
  /** Session key material (hex) that must never appear anywhere. */
  keys: new Set<string>(),
};

/** Records an error as evidence and returns it. */
export function recordError<T>(err: T): T {
  evidence.errors.push(err);
  return err;
}

/** A captured logger whose lines join the evidence. */
export function evidenceLogger(): ReturnType<typeof captureLogger> {
  const logger = captureLogger("debug");
  evidence.logs.push(logger.lines);
  return logger;
}

// ---- small helpers ------------------------------------------------------------------------

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A copy of `bytes` with bit `bit` flipped (byte `bit >> 3`, mask `1 << (bit & 7)`). */
export function flipBit(bytes: Uint8Array, bit: number): Uint8Array {
  const out = bytes.slice();
  out[bit >> 3] ^= 1 << (bit & 7);
  return out;
}

/** Recomputes the header CRC of a frame in place (an attacker can always do this). */
export function fixCrc(frame: Uint8Array): Uint8Array {
  new DataView(frame.buffer, frame.byteOffset).setUint32(16, crc32(frame, 0, 16));
  return frame;
}

/** A raw 20-byte header with any values (valid CRC, version 1 unless patched). */
export function rawHeader(type: number, length: number, seq: number, version = 1): Uint8Array {
  const h = new Uint8Array(HEADER_SIZE);
  const view = new DataView(h.buffer);
  h[0] = 0x54;
  h[1] = 0x52;
  h[2] = version;
  h[3] = type;
  view.setUint32(4, length >>> 0);
  view.setUint32(8, Math.floor(seq / 0x1_0000_0000));
  view.setUint32(12, seq >>> 0);
  return fixCrc(h);
}

/** Random bytes. */
export function randomBytes(n: number): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(n));
}

/** The psk of the canary secret (PBKDF2, cached by the library). */
export function canaryPsk(): Promise<Uint8Array> {
  return stretchSecret(CANARY_SECRET);
}

/**
 * Awaits a promise that must reject with an {@link RpcError} whose code is one of `codes`;
 * records the error as evidence and returns it.
 */
export async function expectRpcError(
  promise: Promise<unknown>,
  codes: string | readonly string[],
  context = "",
): Promise<RpcError> {
  const allowed = typeof codes === "string" ? [codes] : codes;
  let err: unknown;
  try {
    const value = await promise;
    throw new Error(
      `${context}expected a rejection with ${allowed.join("|")}, got ${String(value)}`,
    );
  } catch (e) {
    err = e;
  }
  recordError(err);
  if (!(err instanceof RpcError)) {
    throw new Error(
      `${context}expected an RpcError (${allowed.join("|")}), got ${
        err instanceof Error ? `${err.name}: ${err.message}` : String(err)
      }`,
      { cause: err },
    );
  }
  assert(
    allowed.includes(err.code),
    `${context}expected code ${allowed.join("|")}, got ${err.code}: ${err.message}`,
  );
  return err;
}

/** Races `promise` against a liveness guard (a hang is a failure, never a speed claim). */
export async function within<T>(ms: number, promise: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const guard = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: still pending after ${ms} ms (hang)`)), ms);
  });
  try {
    return await Promise.race([promise, guard]);
  } finally {
    clearTimeout(timer);
  }
}

function closeQuietly(resource: { close(): void }): void {
  try {
    resource.close();
  } catch {
    // already closed
  }
}

async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < data.length) offset += await conn.write(data.subarray(offset));
}

/** The port of a `tcp://host:port` address. */
export function portOf(address: string): number {
  const m = /:(\d+)$/.exec(address);
  if (!m) throw new Error(`no port in ${address}`);
  return Number(m[1]);
}

// ---- raw connections ---------------------------------------------------------------------

/** One frame as read off the wire (no checks beyond the length bound). */
export interface RawFrame {
  header: Uint8Array;
  body: Uint8Array;
  version: number;
  type: number;
  length: number;
  seq: number;
  /** header ‖ body */
  bytes: Uint8Array;
}

/** Frames longer than this are never read by the harness (it is not the system under test). */
const HARNESS_MAX_BODY = 17 * 1024 * 1024;

/**
 * A raw TCP connection that records every byte both ways and reads whole frames. It is the
 * {@link ByteChannel} the library's handshake functions accept, too.
 */
export class RawConn {
  readonly conn: Deno.Conn;
  readonly sent: Uint8Array[] = [];
  readonly received: Uint8Array[] = [];
  readonly reader: FrameReader;
  #closed = false;
  #eof = false;

  constructor(conn: Deno.Conn) {
    this.conn = conn;
    this.reader = new FrameReader(this, 16 * 1024);
    evidence.wire.push(this.sent, this.received);
  }

  /** Dials 127.0.0.1:`port` (or a `tcp://` address). */
  static async dial(target: number | string): Promise<RawConn> {
    const port = typeof target === "number" ? target : portOf(target);
    return new RawConn(await Deno.connect({ hostname: "127.0.0.1", port }));
  }

  /** The local port (identifies this connection in a proxy or a server log). */
  get localPort(): number {
    return (this.conn.localAddr as Deno.NetAddr).port;
  }

  /** True once the peer ended the stream (or we closed). */
  get ended(): boolean {
    return this.#eof || this.#closed;
  }

  async read(buffer: Uint8Array): Promise<number | null> {
    if (this.#closed) return null;
    try {
      const n = await this.conn.read(buffer);
      if (n === null) {
        this.#eof = true;
        return null;
      }
      this.received.push(buffer.slice(0, n));
      return n;
    } catch {
      this.#eof = true;
      return null;
    }
  }

  async write(data: Uint8Array): Promise<void> {
    this.sent.push(data.slice());
    await writeAll(this.conn, data);
  }

  /** Writes, ignoring a peer that is already gone. Returns false when the write failed. */
  async tryWrite(data: Uint8Array): Promise<boolean> {
    try {
      await this.write(data);
      return true;
    } catch {
      return false;
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    closeQuietly(this.conn);
  }

  /** Runs `fn` under a deadline that closes the connection; throws on timeout. */
  async timed<T>(ms: number, fn: () => Promise<T>): Promise<T> {
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      this.close();
    }, ms);
    try {
      const result = await fn();
      if (timedOut) throw new Error(`raw read timed out after ${ms} ms`);
      return result;
    } catch (err) {
      if (timedOut) throw new Error(`raw read timed out after ${ms} ms`);
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Reads one frame; `null` on a clean end of stream. */
  readFrame(timeoutMs = 5000): Promise<RawFrame | null> {
    return this.timed(timeoutMs, async () => {
      const h = await this.reader.read(HEADER_SIZE);
      if (h === null) return null;
      const header = h.slice();
      const view = new DataView(header.buffer);
      const length = view.getUint32(4);
      if (length > HARNESS_MAX_BODY) throw new Error(`peer announced a ${length}-byte frame`);
      const b = length === 0 ? new Uint8Array(0) : await this.reader.read(length);
      if (b === null) throw new Error("end of stream inside a frame");
      const body = b.slice();
      return {
        header,
        body,
        version: header[2],
        type: header[3],
        length,
        seq: view.getUint32(8) * 0x1_0000_0000 + view.getUint32(12),
        bytes: concatBytes(header, body),
      };
    });
  }

  /** Reads and discards until the peer closes; resolves with the bytes seen. */
  readToEnd(timeoutMs = 5000): Promise<Uint8Array> {
    return this.timed(timeoutMs, async () => {
      const parts: Uint8Array[] = [];
      for (;;) {
        const chunk = await this.reader.read(1);
        if (chunk === null) break;
        parts.push(chunk.slice());
      }
      return concatBytes(...parts);
    });
  }
}

/** A pre-authentication (cleartext) ALERT frame, decoded; its text joins the evidence. */
export function decodeCleartextAlert(
  frame: RawFrame | null,
): { code: number; name: string; message: string; seq: number } {
  if (frame === null) throw new Error("expected an ALERT, got end of stream");
  assertEquals(frame.type, FrameType.ALERT, `expected an ALERT frame, got type ${frame.type}`);
  const alert = decodeAlertBody(frame.body);
  evidence.alerts.push(alert.message);
  return { ...alert, seq: frame.seq };
}

// ---- handshake pieces built by hand -------------------------------------------------------

/** What a hand-built M2 may change. */
export interface M2Options {
  /** The psk to prove with (default: the canary's). */
  psk?: Uint8Array;
  /** Own ephemeral (default: fresh). */
  ephemeral?: EphemeralKey;
  /** Share written into M2 (default: the ephemeral's). */
  share?: Uint8Array;
  /** dh used for the keys (default: X25519(own, server share)). */
  dh?: Uint8Array;
  clientRandom?: Uint8Array;
  instance?: Uint8Array;
  /** Transport byte (default 1 = tcp). */
  transport?: number;
  /** Transport label of the transcript context (default "tcp"). */
  label?: TransportLabel;
  maxFrame?: number;
  /** Proof written into M2 (default: the real HMAC). */
  proof?: Uint8Array;
}

/** A hand-built M2 and the secrets derived for it. */
export interface BuiltM2 {
  m2: Uint8Array;
  hello: ServerHello;
  keys: SessionKeys;
  th: Uint8Array;
}

/** Builds M2 for `m1` (whole frame) as an attacker who holds `options.psk` would. */
export async function buildM2(m1: Uint8Array, options: M2Options = {}): Promise<BuiltM2> {
  const hello = parseServerHello(m1.subarray(HEADER_SIZE));
  const psk = options.psk ?? await canaryPsk();
  const eph = options.ephemeral ?? await generateEphemeral();
  const m2 = encodeClientAuth({
    clientRandom: options.clientRandom ?? randomBytes(32),
    clientShare: options.share ?? eph.share,
    clientInstance: options.instance ?? randomBytes(16),
    transport: options.transport ?? 1,
    flags: 0, // AES-GCM records only: the harness seals with AES; every timeout sent
    defaultTimeout: 0,
    maxFrame: options.maxFrame ?? 1_048_576,
  });
  const dh = options.dh ?? await sharedSecret(eph.privateKey, hello.serverShare);
  const th = await transcriptHash(options.label ?? "tcp", m1, m2);
  const keys = await deriveSessionKeys(psk, dh, th);
  for (const k of [keys.cpk, keys.spk, keys.c2sKey, keys.s2cKey]) evidence.keys.add(toHex(k));
  setClientProof(m2, options.proof ?? await signClientProof(keys.cpk, th));
  return { m2, hello, keys, th };
}

/** Options of a hand-built M1 (fake servers). */
export interface M1Options {
  version?: number;
  transport?: number;
  share?: Uint8Array;
  instance?: Uint8Array;
  sessionId?: Uint8Array;
  maxFrame?: number;
  /** Body byte 97 (flags). */
  flags?: number;
}

/** Builds an M1 frame; returns its ephemeral too. */
export async function buildM1(
  options: M1Options = {},
): Promise<{ m1: Uint8Array; eph: EphemeralKey }> {
  const eph = await generateEphemeral();
  const m1 = encodeServerHello({
    serverRandom: randomBytes(32),
    serverShare: options.share ?? eph.share,
    sessionId: options.sessionId ?? randomBytes(16),
    serverInstance: options.instance ?? randomBytes(16),
    transport: options.transport ?? 1,
    flags: 0,
    defaultTimeout: 0,
    maxFrame: options.maxFrame ?? 1_048_576,
  });
  if (options.flags !== undefined) m1[HEADER_SIZE + 97] = options.flags;
  if (options.version !== undefined) {
    m1[2] = options.version;
    fixCrc(m1);
  }
  return { m1, eph };
}

// ---- the authenticated raw peer --------------------------------------------------------------

/** A decoded, reassembled message from the server. */
export interface PeerMessage {
  kind: number;
  flags: number;
  id: number;
  payload: Uint8Array;
}

/**
 * A client that holds the psk and runs the real handshake by hand over a raw socket, then
 * sends whatever it likes: sealed records of any type with its own seq counter, raw bytes,
 * replayed records. It opens the server's sealed records (to read its final ALERT).
 */
export class AuthedPeer {
  readonly raw: RawConn;
  readonly m1: Uint8Array;
  readonly m2: Uint8Array;
  readonly m3: Uint8Array;
  readonly keys: SessionKeys;
  readonly sealer: RecordSealer;
  readonly opener: RecordOpener;
  readonly peerMaxFrame: number;
  #nextId = 1;
  #partial = new Map<string, Uint8Array[]>();
  /** Messages read but not yet claimed by {@link response}. */
  readonly inbox: PeerMessage[] = [];

  private constructor(raw: RawConn, m1: Uint8Array, built: BuiltM2, m3: Uint8Array) {
    this.raw = raw;
    this.m1 = m1;
    this.m2 = built.m2;
    this.m3 = m3;
    this.keys = built.keys;
    this.peerMaxFrame = built.hello.maxFrame;
    this.sealer = new RecordSealer(built.keys.c2sKey, built.keys.c2sIv);
    this.opener = new RecordOpener(built.keys.s2cKey, built.keys.s2cIv);
  }

  /** Dials and authenticates with the canary psk (or `options.psk`). */
  static async connect(target: number | string, options: M2Options = {}): Promise<AuthedPeer> {
    const raw = await RawConn.dial(target);
    try {
      const f1 = await raw.readFrame();
      if (f1 === null || f1.type !== FrameType.SERVER_HELLO) throw new Error("expected M1");
      const built = await buildM2(f1.bytes, options);
      await raw.write(built.m2);
      const f3 = await raw.readFrame();
      if (f3 === null) throw new Error("expected M3, got end of stream");
      if (f3.type === FrameType.ALERT) {
        const alert = decodeCleartextAlert(f3);
        throw new Error(`handshake refused: ${alert.name} ${alert.message}`);
      }
      assertEquals(f3.type, FrameType.SERVER_AUTH, "expected M3");
      return new AuthedPeer(raw, f1.bytes, built, f3.bytes);
    } catch (err) {
      raw.close();
      throw err;
    }
  }

  /** Writes raw bytes. */
  sendRaw(bytes: Uint8Array): Promise<void> {
    return this.raw.write(bytes);
  }

  /** Seals one record with the session key and this peer's own seq counter (not sent). */
  sealRecord(type: number, plaintext: Uint8Array): Promise<Uint8Array> {
    return this.sealer.seal(type, plaintext);
  }

  /** Seals and sends one record. */
  async send(type: number, plaintext: Uint8Array): Promise<Uint8Array> {
    const frame = await this.sealRecord(type, plaintext);
    await this.raw.write(frame);
    return frame;
  }

  /** Sends messages in one MESSAGES record. */
  sendMessages(messages: Message[]): Promise<Uint8Array> {
    return this.send(FrameType.MESSAGES, encodeMessages(messages));
  }

  /** Sends one message, cut into MORE pieces that fit the server's max_frame. */
  async sendMessage(kind: number, id: number, payload: Uint8Array, flags = 0): Promise<void> {
    const room = this.peerMaxFrame - 10;
    if (payload.length <= room) {
      await this.sendMessages([{ kind, flags, id, payload }]);
      return;
    }
    for (let offset = 0; offset < payload.length; offset += room) {
      const end = Math.min(payload.length, offset + room);
      const more = end < payload.length ? Flag.MORE : 0;
      await this.sendMessages([{
        kind,
        flags: flags | more,
        id,
        payload: payload.subarray(offset, end),
      }]);
    }
  }

  /** A fresh client call id (odd). */
  nextId(): number {
    const id = this.#nextId;
    this.#nextId += 2;
    return id;
  }

  /** Sends a REQUEST whose payload is exactly `json` (any text, valid or not). */
  async requestText(json: string, options: { id?: number; kind?: number; flags?: number } = {}) {
    const id = options.id ?? this.nextId();
    await this.sendMessage(
      options.kind ?? Kind.REQUEST,
      id,
      new TextEncoder().encode(json),
      options.flags,
    );
    return id;
  }

  /** Sends a REQUEST built with the library's own codec. */
  async request(method: string, params: unknown = [], meta?: Record<string, unknown>) {
    const id = this.nextId();
    const body: Record<string, unknown> = { method, params };
    if (meta !== undefined) body.meta = meta;
    const encoded = encodeValue(body);
    await this.sendMessage(Kind.REQUEST, id, encoded.bytes, encoded.binary ? Flag.BINARY : 0);
    return id;
  }

  /** Reads and opens one record from the server; `null` at end of stream. */
  async readRecord(
    timeoutMs = 5000,
  ): Promise<{ type: number; seq: number; plaintext: Uint8Array } | null> {
    const f = await this.raw.readFrame(timeoutMs);
    if (f === null) return null;
    this.opener.accept(f.seq);
    const plaintext = await this.opener.open(f.seq, f.header, f.body);
    if (f.type === FrameType.KEY_UPDATE) await this.opener.rotate();
    if (f.type === FrameType.ALERT) evidence.alerts.push(decodeAlertBody(plaintext).message);
    return { type: f.type, seq: f.seq, plaintext };
  }

  /**
   * Waits for the RESPONSE or ERROR of call `id` and decodes it. Throws if the server closes
   * (or alerts) first.
   */
  async response(id: number, timeoutMs = 5000): Promise<{ kind: number; value: unknown }> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.inbox.findIndex((m) =>
        m.id === id && (m.kind === Kind.RESPONSE || m.kind === Kind.ERROR)
      );
      if (i >= 0) {
        const m = this.inbox.splice(i, 1)[0];
        return {
          kind: m.kind,
          value: decodeValue(m.payload, (m.flags & Flag.BINARY) !== 0, { maxDepth: 1000 }),
        };
      }
      const record = await this.readRecord(Math.max(1, deadline - Date.now()));
      if (record === null) throw new Error(`connection ended before the answer to ${id}`);
      if (record.type === FrameType.ALERT) {
        const a = decodeAlertBody(record.plaintext);
        throw new Error(`server alert ${a.name} before the answer to ${id}: ${a.message}`);
      }
      if (record.type !== FrameType.MESSAGES) continue;
      for (const m of decodeMessages(record.plaintext)) {
        const key = `${m.kind}:${m.id}`;
        const parts = this.#partial.get(key) ?? [];
        parts.push(m.payload.slice());
        if (m.flags & Flag.MORE) {
          this.#partial.set(key, parts);
          continue;
        }
        this.#partial.delete(key);
        this.inbox.push({ kind: m.kind, flags: m.flags, id: m.id, payload: concatBytes(...parts) });
      }
    }
  }

  /**
   * Reads until the server closes. Returns the last sealed ALERT (if any) and whether the
   * stream ended. Records that fail to open end the loop with `openError`.
   */
  async readUntilClose(timeoutMs = 5000): Promise<{
    alert?: { code: number; name: string; message: string };
    types: number[];
    openError?: unknown;
  }> {
    const deadline = Date.now() + timeoutMs;
    const types: number[] = [];
    let alert: { code: number; name: string; message: string } | undefined;
    for (;;) {
      let record;
      try {
        record = await this.readRecord(Math.max(1, deadline - Date.now()));
      } catch (err) {
        return { alert, types, openError: recordError(err) };
      }
      if (record === null) return { alert, types };
      types.push(record.type);
      if (record.type === FrameType.ALERT) alert = decodeAlertBody(record.plaintext);
    }
  }

  close(): void {
    this.raw.close();
  }
}

// ---- the MITM proxy ---------------------------------------------------------------------------

/** Direction of a proxied frame. */
export type Dir = "c2s" | "s2c";

/** One frame seen by the proxy (before any tampering). */
export interface ProxyFrame {
  /** Connection number in accept order. */
  conn: number;
  /** The client's source port (identifies the connection from the client's side). */
  clientPort: number;
  dir: Dir;
  /** Frame number in this direction of this connection. */
  index: number;
  type: number;
  length: number;
  seq: number;
  bytes: Uint8Array;
}

/**
 * What to do with a frame: `pass`; `drop`; `duplicate`; `hold` (released right after the next
 * frame that goes out in that direction: a swap); `blackhole` (this and everything after it in
 * that direction vanish, the connection stays open); `{delay}` ms; `{flip}` one bit;
 * `{replace}` with other bytes (inject by replacing with `injected ‖ frame`).
 */
export type FrameAction =
  | "pass"
  | "drop"
  | "duplicate"
  | "hold"
  | "blackhole"
  | { delay: number }
  | { flip: number }
  | { replace: Uint8Array };

/** Decides per frame; may be async. Return nothing to pass. */
export type FrameHook = (frame: ProxyFrame) => FrameAction | void | Promise<FrameAction | void>;

/** Raw bytes seen by the proxy. */
export interface WireChunk {
  conn: number;
  dir: Dir;
  bytes: Uint8Array;
}

/** Frames announced longer than this switch the direction to raw pass-through. */
const PROXY_RAW_THRESHOLD = 17 * 1024 * 1024;

/**
 * A programmable man in the middle on 127.0.0.1:0 in front of a TCP target. It cuts each
 * direction into frames (headers are cleartext), asks {@link onFrame} what to do with each,
 * and records every byte per direction. Bytes that are not frames (bad magic, absurd length)
 * pass through raw. An end of stream is forwarded as a half-close.
 */
export class MitmProxy {
  readonly port: number;
  readonly address: string;
  readonly frames: ProxyFrame[] = [];
  readonly wire: WireChunk[] = [];
  onFrame: FrameHook | undefined;
  #targetPort: number;
  #listener: Deno.TcpListener;
  #conns = new Set<Deno.Conn>();
  #tasks = new Set<Promise<void>>();
  #accepting: Promise<void>;
  #count = 0;
  #wireBytes: Uint8Array[] = [];
  #stopping = Promise.withResolvers<void>();

  constructor(target: number | string, onFrame?: FrameHook) {
    this.#targetPort = typeof target === "number" ? target : portOf(target);
    this.onFrame = onFrame;
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.port = (this.#listener.addr as Deno.NetAddr).port;
    this.address = `tcp://127.0.0.1:${this.port}`;
    evidence.wire.push(this.#wireBytes);
    this.#accepting = this.#acceptLoop();
  }

  /** Connections accepted so far. */
  get connections(): number {
    return this.#count;
  }

  /** Frames of one connection and direction, in order. */
  framesOf(conn: number, dir: Dir): ProxyFrame[] {
    return this.frames.filter((f) => f.conn === conn && f.dir === dir);
  }

  /** All bytes of one direction of one connection, as received by the proxy. */
  bytesOf(conn: number, dir: Dir): Uint8Array {
    return concatBytes(
      ...this.wire.filter((c) => c.conn === conn && c.dir === dir).map((c) => c.bytes),
    );
  }

  /** Stops accepting, closes every connection and waits for the pumps. Idempotent. */
  async close(): Promise<void> {
    this.#stopping.resolve();
    closeQuietly(this.#listener);
    await this.#accepting;
    for (const c of this.#conns) closeQuietly(c);
    await Promise.all([...this.#tasks]);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #acceptLoop(): Promise<void> {
    for (;;) {
      let client: Deno.Conn;
      try {
        client = await this.#listener.accept();
      } catch {
        return;
      }
      const task = this.#handle(this.#count++, client);
      this.#tasks.add(task);
      task.finally(() => this.#tasks.delete(task));
    }
  }

  async #handle(id: number, client: Deno.Conn): Promise<void> {
    this.#conns.add(client);
    let server: Deno.Conn;
    try {
      server = await Deno.connect({ hostname: "127.0.0.1", port: this.#targetPort });
    } catch {
      closeQuietly(client);
      this.#conns.delete(client);
      return;
    }
    this.#conns.add(server);
    const clientPort = (client.remoteAddr as Deno.NetAddr).port;
    const blackholed = await Promise.all([
      this.#pump(id, clientPort, "c2s", client, server),
      this.#pump(id, clientPort, "s2c", server, client),
    ]);
    // A frozen path forwards nothing, not even the end: keep both sockets open until the
    // proxy itself closes.
    if (blackholed.includes(true)) await this.#stopping.promise;
    closeQuietly(client);
    closeQuietly(server);
    this.#conns.delete(client);
    this.#conns.delete(server);
  }

  /** Forwards one direction; resolves true when it was blackholed. */
  async #pump(
    id: number,
    clientPort: number,
    dir: Dir,
    src: Deno.Conn,
    dst: Deno.Conn,
  ): Promise<boolean> {
    const buf = new Uint8Array(64 * 1024);
    let pending: Uint8Array = new Uint8Array(0);
    let raw = false;
    let blackholed = false;
    let dstDead = false;
    let index = 0;
    let held: Uint8Array | undefined;
    const emit = async (bytes: Uint8Array) => {
      if (dstDead || blackholed) return;
      try {
        await writeAll(dst, bytes);
      } catch {
        dstDead = true;
      }
    };
    for (;;) {
      let n: number | null;
      try {
        n = await src.read(buf);
      } catch {
        n = null;
      }
      if (n === null) break;
      const chunk = buf.slice(0, n);
      this.wire.push({ conn: id, dir, bytes: chunk });
      this.#wireBytes.push(chunk);
      if (blackholed) continue;
      if (raw) {
        await emit(chunk);
        continue;
      }
      pending = concatBytes(pending, chunk);
      while (!raw && !blackholed && pending.length >= HEADER_SIZE) {
        if (pending[0] !== 0x54 || pending[1] !== 0x52) {
          raw = true;
          break;
        }
        const view = new DataView(pending.buffer, pending.byteOffset);
        const length = view.getUint32(4);
        if (length > PROXY_RAW_THRESHOLD) {
          raw = true;
          break;
        }
        if (pending.length < HEADER_SIZE + length) break;
        const bytes = pending.slice(0, HEADER_SIZE + length);
        pending = pending.slice(HEADER_SIZE + length);
        const frame: ProxyFrame = {
          conn: id,
          clientPort,
          dir,
          index: index++,
          type: bytes[3],
          length,
          seq: view.getUint32(8) * 0x1_0000_0000 + view.getUint32(12),
          bytes,
        };
        this.frames.push(frame);
        let action: FrameAction | void = "pass";
        try {
          action = (await this.onFrame?.(frame)) ?? "pass";
        } catch (err) {
          recordError(err);
        }
        let out: Uint8Array[] = [];
        if (action === "pass") out = [bytes];
        else if (action === "drop") out = [];
        else if (action === "duplicate") out = [bytes, bytes];
        else if (action === "hold") {
          held = bytes;
          continue;
        } else if (action === "blackhole") {
          blackholed = true;
          break;
        } else if ("delay" in action) {
          await sleep(action.delay);
          out = [bytes];
        } else if ("flip" in action) out = [flipBit(bytes, action.flip)];
        else out = [action.replace];
        for (const o of out) await emit(o);
        if (held !== undefined && out.length > 0) {
          await emit(held);
          held = undefined;
        }
      }
      if (raw && pending.length > 0) {
        await emit(pending);
        pending = new Uint8Array(0);
      }
    }
    if (pending.length > 0) await emit(pending);
    if (blackholed) return true;
    try {
      await dst.closeWrite();
    } catch {
      // already closed
    }
    return false;
  }
}

// ---- the fake server ------------------------------------------------------------------------

/** What a fake server does with one accepted connection. */
export type FakeScript = (conn: RawConn, index: number) => Promise<void>;

/**
 * A scriptable server on 127.0.0.1:0: each accepted connection is handed to `script` (send M1
 * bytes, M3 bytes, alerts, or nothing). Errors thrown by scripts are collected in `errors`.
 */
export class FakeServer {
  readonly port: number;
  readonly address: string;
  readonly conns: RawConn[] = [];
  readonly errors: unknown[] = [];
  #listener: Deno.TcpListener;
  #tasks: Promise<void>[] = [];
  #accepting: Promise<void>;

  constructor(script: FakeScript) {
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.port = (this.#listener.addr as Deno.NetAddr).port;
    this.address = `tcp://127.0.0.1:${this.port}`;
    this.#accepting = this.#acceptLoop(this.#listener, script);
  }

  async #acceptLoop(listener: Deno.TcpListener, script: FakeScript): Promise<void> {
    for (;;) {
      let c: Deno.Conn;
      try {
        c = await listener.accept();
      } catch {
        return;
      }
      const raw = new RawConn(c);
      const index = this.conns.length;
      this.conns.push(raw);
      this.#tasks.push(
        script(raw, index).catch((err) => {
          this.errors.push(err);
        }),
      );
    }
  }

  /** Waits for the scripts that are running (bounded by their own reads' deadlines). */
  async settled(): Promise<void> {
    await Promise.all(this.#tasks);
  }

  /** Bytes the client sent on connection `i`. */
  receivedFrom(i: number): Uint8Array {
    return concatBytes(...this.conns[i].received);
  }

  async close(): Promise<void> {
    closeQuietly(this.#listener);
    await this.#accepting;
    for (const c of this.conns) c.close();
    await Promise.all(this.#tasks);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** Splits bytes into frames by their headers (for captures); stops at anything else. */
export function splitFrames(
  bytes: Uint8Array,
): { type: number; length: number; seq: number; bytes: Uint8Array }[] {
  const out = [];
  let offset = 0;
  while (
    bytes.length - offset >= HEADER_SIZE && bytes[offset] === 0x54 && bytes[offset + 1] === 0x52
  ) {
    const view = new DataView(bytes.buffer, bytes.byteOffset + offset);
    const length = view.getUint32(4);
    const end = offset + HEADER_SIZE + length;
    if (end > bytes.length) break;
    out.push({
      type: bytes[offset + 3],
      length,
      seq: view.getUint32(8) * 0x1_0000_0000 + view.getUint32(12),
      bytes: bytes.slice(offset, end),
    });
    offset = end;
  }
  return out;
}

// ---- a tapped dialer (see what the real client writes, and when) -------------------------------

/** A write or read seen on a tapped connection. */
export interface TapEvent {
  at: number;
  bytes: Uint8Array;
}

/** What a {@link tapDialer} saw. */
export interface Tap {
  writes: TapEvent[];
  reads: TapEvent[];
  localPort: number;
}

/**
 * A dialer for the real `connect()` over plain TCP that records every write and read with a
 * timestamp. `transport` is the label the client is told (e.g. "tls" behind a terminating
 * proxy); the bytes always travel over plain TCP.
 */
export function tapDialer(
  target: number | string,
  transport: "tcp" | "tls" | "unix" = "tcp",
  onDial?: (tap: Tap) => void | Promise<void>,
): Dialer & { taps: Tap[] } {
  const port = typeof target === "number" ? target : portOf(target);
  const taps: Tap[] = [];
  return {
    transport,
    address: `${transport}://127.0.0.1:${port}`,
    taps,
    async dial() {
      const c = await Deno.connect({ hostname: "127.0.0.1", port });
      const tap: Tap = { writes: [], reads: [], localPort: (c.localAddr as Deno.NetAddr).port };
      taps.push(tap);
      const sent: Uint8Array[] = [];
      const received: Uint8Array[] = [];
      evidence.wire.push(sent, received);
      await onDial?.(tap);
      const inner = new SocketConn(c, { transport });
      const conn: Conn = {
        transport,
        remoteAddress: inner.remoteAddress,
        remoteHost: inner.remoteHost,
        handshake: () => inner.handshake(),
        async read(buffer) {
          const n = await inner.read(buffer);
          if (n !== null) {
            const bytes = buffer.slice(0, n);
            tap.reads.push({ at: performance.now(), bytes });
            received.push(bytes);
          }
          return n;
        },
        async write(data) {
          const bytes = data.slice();
          tap.writes.push({ at: performance.now(), bytes });
          sent.push(bytes);
          await inner.write(data);
        },
        closeWrite: () => inner.closeWrite(),
        close: () => inner.close(),
      };
      return conn;
    },
  };
}

/** Concatenation of what a tap saw written. */
export function tapWritten(tap: Tap): Uint8Array {
  return concatBytes(...tap.writes.map((w) => w.bytes));
}

// ---- servers and sanity -----------------------------------------------------------------------

/** Counters the standard hostile-test methods keep. */
export interface Calls {
  /** `count` invocations. */
  count: number;
  /** Every method invocation by name. */
  invoked: string[];
}

/** A running server for hostile tests, with its captured log and method counters. */
export interface HostileServer extends AsyncDisposable {
  server: Server;
  /** The first (TCP) address. */
  address: string;
  port: number;
  logs: string[];
  calls: Calls;
  /** A legitimate round trip on `address` (default: the first address). */
  sanity(address?: string): Promise<void>;
  close(): Promise<void>;
}

/**
 * Starts a server with the canary secret on 127.0.0.1:0 (or `options.listen`), a captured
 * debug log, scaled-down thresholds, and the methods `echo` and `count` (plus any given).
 */
export async function hostileServer(options: Partial<ServeOptions> = {}): Promise<HostileServer> {
  const logger = evidenceLogger();
  const calls: Calls = { count: 0, invoked: [] };
  const server = await serve({
    secret: CANARY_SECRET,
    logger,
    listen: "tcp://127.0.0.1:0",
    handshakeTimeout: 2000,
    authFailureDelayMs: 20,
    ...options,
    methods: {
      echo(value: unknown) {
        calls.invoked.push("echo");
        return value;
      },
      count() {
        calls.invoked.push("count");
        return ++calls.count;
      },
      ...options.methods,
    },
  });
  const address = server.addresses[0];
  let closed: Promise<void> | undefined;
  const close = () => closed ??= server.close({ timeout: 1000 });
  return {
    server,
    address,
    port: address.startsWith("tcp://") ? portOf(address) : 0,
    logs: logger.lines,
    calls,
    sanity: (a?: string) => sanity(a ?? address),
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** Connects with the canary secret and a captured client log (joins the evidence). */
export function legitConnect(address: string | Dialer, options: ConnectOptions = {}) {
  return connect(address, {
    // Each hostile case watches one connection's fate: no reconnecting behind its back.
    reconnect: false,
    secret: CANARY_SECRET,
    logger: evidenceLogger(),
    handshakeTimeout: 5000,
    caCerts: [TLS.ca],
    ...options,
  });
}

/**
 * "Serves others": a legitimate client connects, completes an `echo` round trip with a fresh
 * token, and closes.
 */
export async function sanity(address: string, options: ConnectOptions = {}): Promise<void> {
  const token = `sanity-${crypto.randomUUID()}`;
  const client = await within(10_000, legitConnect(address, options), `sanity connect ${address}`);
  try {
    assertEquals(await client.call("echo", [token], { timeout: 5000 }), token, "sanity round trip");
  } finally {
    await client.close({ timeout: 1000 });
  }
}

// ---- the canary scanner (case 8) --------------------------------------------------------------

function b64(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

function b64url(text: string): string {
  return text.replaceAll("+", "-").replaceAll("/", "_");
}

/**
 * The base64 text of `bytes` as it would appear inside any longer base64 stream, at each of
 * the three alignments (characters that mix in neighbouring bytes are cut off).
 */
function base64Cores(bytes: Uint8Array): string[] {
  const out: string[] = [];
  for (let k = 0; k < 3; k++) {
    const shifted = concatBytes(new Uint8Array(k), bytes);
    const text = b64(shifted).replace(/=+$/, "");
    const start = k === 0 ? 0 : 4;
    out.push(text.slice(start, text.length - 4));
  }
  return out;
}

/** A needle searched for in every piece of evidence. */
export interface Needle {
  name: string;
  text: string;
  /** Compare case-insensitively (hex). */
  fold?: boolean;
  /** Compare against the text with all whitespace removed (decimal byte lists). */
  squeeze?: boolean;
}

/** Every encoding of the canary, the psk and the session keys that must never show up. */
export async function leakNeedles(): Promise<
  { text: Needle[]; bytes: { name: string; bytes: Uint8Array }[] }
> {
  const canary = new TextEncoder().encode(CANARY_SECRET);
  const psk = await canaryPsk();
  const text: Needle[] = [
    { name: "canary (raw)", text: CANARY_SECRET },
    { name: "canary (hex)", text: toHex(canary), fold: true },
    { name: "psk (hex)", text: toHex(psk), fold: true },
    { name: "psk (decimal bytes)", text: Array.from(psk).join(","), squeeze: true },
  ];
  base64Cores(canary).forEach((core, i) => {
    text.push({ name: `canary (base64 @${i})`, text: core });
    text.push({ name: `canary (base64url @${i})`, text: b64url(core) });
  });
  base64Cores(psk).forEach((core, i) => {
    text.push({ name: `psk (base64 @${i})`, text: core });
    text.push({ name: `psk (base64url @${i})`, text: b64url(core) });
  });
  for (const key of evidence.keys) {
    text.push({ name: `session key ${key.slice(0, 8)}… (hex)`, text: key, fold: true });
  }
  return {
    text,
    bytes: [{ name: "canary (raw bytes)", bytes: canary }, { name: "psk (raw bytes)", bytes: psk }],
  };
}

/** Index of `needle` in `hay`, or -1. */
export function indexOfBytes(hay: Uint8Array, needle: Uint8Array): number {
  if (needle.length === 0) return 0;
  const first = needle[0];
  for (
    let i = hay.indexOf(first);
    i >= 0 && i <= hay.length - needle.length;
    i = hay.indexOf(first, i + 1)
  ) {
    let j = 1;
    while (j < needle.length && hay[i + j] === needle[j]) j++;
    if (j === needle.length) return i;
  }
  return -1;
}

/** Returns the names of the needles found in `text`. */
export function findInText(text: string, needles: Needle[]): string[] {
  const lower = text.toLowerCase();
  let squeezed: string | undefined;
  const hits: string[] = [];
  for (const n of needles) {
    let found: boolean;
    if (n.squeeze) {
      squeezed ??= text.replace(/\s+/g, "");
      found = squeezed.includes(n.text);
    } else found = n.fold ? lower.includes(n.text.toLowerCase()) : text.includes(n.text);
    if (found) hits.push(n.name);
  }
  return hits;
}

function latin1(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 8192) {
    s += String.fromCharCode(...bytes.subarray(i, i + 8192));
  }
  return s;
}

/** Everything an error shows: message, stack, inspect output, JSON, through its causes. */
export function errorText(err: unknown): string {
  const parts: string[] = [];
  let e: unknown = err;
  for (let depth = 0; depth < 8 && e !== undefined && e !== null; depth++) {
    if (e instanceof Error) {
      parts.push(e.message, String(e.stack));
    } else parts.push(String(e));
    try {
      parts.push(JSON.stringify(e) ?? "");
    } catch {
      // cyclic
    }
    parts.push(Deno.inspect(e, { depth: 8, colors: false }));
    e = e instanceof Error ? e.cause : undefined;
  }
  return parts.join("\n");
}

/**
 * Scans every piece of evidence collected so far and returns a list of findings
 * (`"<needle> in <where>"`); empty when nothing leaked. Also returns how much was scanned.
 */
export async function scanEvidence(): Promise<
  { findings: string[]; scanned: Record<string, number> }
> {
  const needles = await leakNeedles();
  const findings: string[] = [];
  let logLines = 0;
  for (const lines of evidence.logs) {
    for (const line of lines) {
      logLines++;
      for (const hit of findInText(line, needles.text)) {
        findings.push(`${hit} in log line ${JSON.stringify(line.slice(0, 200))}`);
      }
    }
  }
  for (const err of evidence.errors) {
    for (const hit of findInText(errorText(err), needles.text)) {
      findings.push(`${hit} in error ${String((err as Error)?.message).slice(0, 200)}`);
    }
  }
  for (const alert of evidence.alerts) {
    for (const hit of findInText(alert, needles.text)) {
      findings.push(`${hit} in alert ${JSON.stringify(alert)}`);
    }
  }
  let wireBytes = 0;
  for (const chunks of evidence.wire) {
    if (chunks.length === 0) continue;
    const all = concatBytes(...chunks);
    wireBytes += all.length;
    for (const b of needles.bytes) {
      if (indexOfBytes(all, b.bytes) >= 0) findings.push(`${b.name} on the wire`);
    }
    for (const hit of findInText(latin1(all), needles.text)) findings.push(`${hit} on the wire`);
  }
  return {
    findings,
    scanned: {
      logLines,
      errors: evidence.errors.length,
      alerts: evidence.alerts.length,
      wireBytes,
      keys: evidence.keys.size,
    },
  };
}

/** Asserts that nothing in the evidence holds the canary, the psk or a session key. */
export async function assertNoLeaks(): Promise<Record<string, number>> {
  const { findings, scanned } = await scanEvidence();
  assertEquals(findings, [], `secret material leaked (scanned ${JSON.stringify(scanned)})`);
  return scanned;
}

/** Every control character (C0 including CR/LF/TAB, DEL, C1) a log line must not hold raw. */
// deno-lint-ignore no-control-regex
export const RAW_CONTROL = /[\x00-\x1f\x7f-\x9f]/;

/** Message kinds and flags re-exported for tests. */
export { Flag, FrameType, Kind };
