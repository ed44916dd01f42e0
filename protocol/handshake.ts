/**
 * The trust-rpc/1 handshake state machines for both roles (PROTOCOL.md §5–§7, §10): the server
 * speaks first (M1), the client proves first (M2), the server proves second (M3). Both run over
 * a {@link ByteChannel} and a {@link FrameReader}; neither knows what carries the bytes.
 *
 * @module
 */

import { AlertCode, decodeAlertBody, encodeAlertBody, errorFromAlert } from "./alerts.ts";
import { bytesEqual, concatBytes, toHex } from "./bytes.ts";
import { Deadlines } from "./deadlines.ts";
import type { ByteChannel } from "./channel.ts";
import { AuthenticationError, ConnectionClosedError, ProtocolError, RpcError } from "./errors.ts";
import { encodeHeader, type FrameHeader, FrameType, HEADER_SIZE, parseHeader } from "./frame.ts";
import type { FrameReader } from "./frame_reader.ts";
import {
  checkTransport,
  DEFAULT_TIMEOUT_UNIT,
  defaultTimeoutField,
  deriveSessionKeys,
  encodeClientAuth,
  encodeServerAuth,
  encodeServerHello,
  type EphemeralKey,
  FLAG_CHACHA,
  FLAG_DEFAULT_TIMEOUT,
  generateEphemeral,
  M2_SIZE,
  parseClientAuth,
  parseServerHello,
  setClientProof,
  sharedSecret,
  signClientProof,
  signServerProof,
  transcriptHash,
  TRANSPORT_BYTE,
  type TransportLabel,
  transportLabel,
  verifyClientProof,
  verifyServerProof,
} from "./handshake_messages.ts";
import { AUTH_FAILURE_DELAY, DEFAULT_HANDSHAKE_TIMEOUT } from "./limits.ts";

/** What both roles need. */
export interface HandshakeOptions {
  /** The stretched secret (32 bytes, from `stretchSecret`). */
  psk: Uint8Array;
  /** What this side believes carries the bytes. */
  transport: TransportLabel;
  /** Largest record plaintext this side accepts. */
  maxFrame: number;
  /** 16 random bytes naming this client or server object (self-connection check). */
  instance: Uint8Array;
  /** Whole-handshake deadline in ms (default 10 000). */
  timeoutMs?: number;
  /**
   * Offer (server) or take (client) ChaCha20-Poly1305 for small records (protocol/README.md
   * §5.7). Both sides must want it. @default true
   */
  chacha?: boolean;
  /**
   * This side's default call timeout in ms, announced to the peer (protocol/README.md §5.8):
   * the server offers the extension, the client takes it. Undefined: neither (calls then carry
   * their timeouts, as with a peer that does not know it).
   */
  defaultTimeout?: number;
  /** Test hook: source of random bytes. */
  random?: (n: number) => Uint8Array;
  /** Test hook: the ephemeral key to use. */
  ephemeral?: () => Promise<EphemeralKey>;
}

/** Client-only options. */
export interface ClientHandshakeOptions extends HandshakeOptions {
  /** Accept a server that believes in another transport (behind a TLS-terminating proxy). */
  allowTransportMismatch?: boolean;
}

/** Server-only options. */
export interface ServerHandshakeOptions extends HandshakeOptions {
  /** Runs first, under the deadline (the TLS handshake). */
  prepare?: () => Promise<void>;
  /**
   * Takes a proof-check slot for this peer before any X25519 work on its M2; resolves false
   * when the peer is over its failure budget (answered RATE_LIMITED).
   */
  beginProof?: () => Promise<boolean>;
  /** Called exactly once after a slot from {@link beginProof}: whether the proof verified. */
  endProof?: (ok: boolean) => void;
  /** Delay from M2 to the AUTH_FAILED alert (default 500 ms). */
  authFailureDelayMs?: number;
  /** Test hook: the session id to announce. */
  sessionId?: Uint8Array;
}

/** The outcome of a successful handshake, from this side's point of view. */
export interface HandshakeResult {
  /** 16 random bytes chosen by the server. */
  sessionId: Uint8Array;
  /** Session id as 32 hex digits (for logs and errors). */
  sessionIdHex: string;
  /** Key and IV this side seals with. */
  sendKey: Uint8Array;
  /** IV this side seals with. */
  sendIv: Uint8Array;
  /** Key this side opens with. */
  recvKey: Uint8Array;
  /** IV this side opens with. */
  recvIv: Uint8Array;
  /** Largest record plaintext the peer accepts. */
  peerMaxFrame: number;
  /** Both sides agreed to seal small records with ChaCha20-Poly1305. */
  chacha: boolean;
  /**
   * The default call timeout (ms) this side announced, when both sides took the extension
   * (§5.8): its REQUESTs with that timeout may leave it out. 0: send every timeout.
   */
  ownDefaultTimeout: number;
  /** The default call timeout (ms) the peer announced: its REQUESTs without one take it. 0: none. */
  peerDefaultTimeout: number;
}

function randomBytes(n: number): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(n));
}

/** A cleartext ALERT frame as sent before authentication. */
export function encodeAlertFrame(code: number, message: string, seq: number): Uint8Array {
  const body = encodeAlertBody(code, message);
  return concatBytes(encodeHeader(FrameType.ALERT, body.length, seq), body);
}

/** Errors raised by an alert the peer sent: never answered with an alert of our own. */
const fromPeerAlert = new WeakSet<Error>();

/** Best effort: an alert write that fails is ignored (the connection is going away). */
async function sendAlert(
  channel: ByteChannel,
  code: number,
  message: string,
  seq: number,
): Promise<void> {
  try {
    await channel.write(encodeAlertFrame(code, message, seq));
  } catch {
    // The peer is gone; nothing to tell it.
  }
}

/**
 * The deadlines of every handshake in this process, on one timer: a `setTimeout` per
 * handshake cost more than the rest of its timing work.
 */
const HANDSHAKE_DEADLINES = new Deadlines<object>(Date.now, true);

/** Runs `body` under the handshake deadline; closing the channel interrupts pending reads. */
async function withDeadline<T>(
  channel: ByteChannel,
  timeoutMs: number,
  onTimeout: () => Promise<void>,
  timeoutError: () => RpcError,
  body: () => Promise<T>,
): Promise<T> {
  let timedOut = false;
  const key = {};
  const expired = new Promise<never>((_, reject) => {
    HANDSHAKE_DEADLINES.add(key, timeoutMs, () => {
      timedOut = true;
      onTimeout().finally(() => channel.close());
      reject(timeoutError());
    });
  });
  expired.catch(() => {});
  try {
    return await Promise.race([body(), expired]);
  } catch (err) {
    if (timedOut) throw timeoutError();
    throw err;
  } finally {
    HANDSHAKE_DEADLINES.delete(key);
  }
}

/** Reads a handshake frame of `type`; a pre-auth ALERT from the peer becomes its error. */
async function readHandshakeFrame(
  reader: FrameReader,
  type: number,
  seq: number,
  length: number,
  lost: string,
): Promise<Uint8Array> {
  const headerBytes = await reader.readHeader();
  if (headerBytes === null) throw new ConnectionClosedError(lost);
  const header: FrameHeader = parseHeader(headerBytes);
  const copy = headerBytes.slice();
  if (header.type === FrameType.ALERT) {
    if (header.length < 2 || header.length > 130) {
      throw new ProtocolError("PROTOCOL_ERROR", "Malformed alert during the handshake");
    }
    const body = await reader.read(header.length);
    if (body === null) throw new ConnectionClosedError(lost);
    const err = errorFromAlert(decodeAlertBody(body), "handshake");
    fromPeerAlert.add(err);
    throw err;
  }
  if (header.type !== type || header.seq !== seq || header.length !== length) {
    throw new ProtocolError(
      "PROTOCOL_ERROR",
      `Unexpected handshake frame (type ${header.type}, seq ${header.seq}, length ${header.length})`,
    );
  }
  const body = await reader.read(length);
  if (body === null) throw new ConnectionClosedError(lost);
  return concatBytes(copy, body);
}

/** The alert that answers a local protocol failure during the handshake. */
function alertForHandshakeError(err: unknown): { code: number; message: string } | undefined {
  if (!(err instanceof RpcError) || fromPeerAlert.has(err)) return undefined;
  switch (err.code) {
    case "UNSUPPORTED_VERSION":
      return { code: AlertCode.UNSUPPORTED_VERSION, message: "supported versions: 1" };
    case "TRANSPORT_MISMATCH":
      return { code: AlertCode.TRANSPORT_MISMATCH, message: "transport mismatch" };
    case "SELF_CONNECTION":
      return { code: AlertCode.SELF_CONNECTION, message: "self connection" };
    case "PROTOCOL_ERROR":
    case "BAD_SHARE":
      return { code: AlertCode.PROTOCOL_ERROR, message: "protocol error" };
  }
  return undefined;
}

/**
 * Runs the client side: reads M1, sends M2, verifies M3. Rejects with a typed error; on a bad
 * server proof nothing more is sent.
 */
export async function clientHandshake(
  channel: ByteChannel,
  reader: FrameReader,
  options: ClientHandshakeOptions,
): Promise<HandshakeResult> {
  const random = options.random ?? randomBytes;
  const timeoutMs = options.timeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT;
  let phase: "m1" | "m3" = "m1";
  return await withDeadline(
    channel,
    timeoutMs,
    () => Promise.resolve(),
    () =>
      new ProtocolError(
        "HANDSHAKE_TIMEOUT",
        phase === "m1"
          ? `No trust-rpc greeting within ${timeoutMs} ms: wrong port, or a TLS/plain mismatch?`
          : `The server did not finish the handshake within ${timeoutMs} ms`,
      ),
    async () => {
      let m1: Uint8Array;
      let hello;
      try {
        m1 = await readHandshakeFrame(
          reader,
          FrameType.SERVER_HELLO,
          0,
          104,
          "The server closed the connection before its greeting",
        );
        hello = parseServerHello(m1.subarray(HEADER_SIZE));
        checkTransport(hello.transport, options.transport, options.allowTransportMismatch);
        if (bytesEqual(hello.serverInstance, options.instance)) {
          throw new ProtocolError("SELF_CONNECTION", "This client is connected to itself");
        }
      } catch (err) {
        const alert = alertForHandshakeError(err);
        if (alert) await sendAlert(channel, alert.code, alert.message, 1);
        throw err;
      }
      // With the explicit override, the client speaks the server's transport label, so both
      // transcripts agree (behind a TLS-terminating proxy the client dials tls, the server sees tcp).
      const transport = options.allowTransportMismatch
        ? transportLabel(hello.transport) ?? options.transport
        : options.transport;
      const eph = await (options.ephemeral ?? generateEphemeral)();
      let dh: Uint8Array;
      try {
        dh = await sharedSecret(eph.privateKey, hello.serverShare);
      } catch (err) {
        await sendAlert(channel, AlertCode.PROTOCOL_ERROR, "invalid key share", 1);
        throw err;
      }
      const chacha = options.chacha !== false && (hello.flags & FLAG_CHACHA) !== 0;
      const defaults = options.defaultTimeout !== undefined &&
        (hello.flags & FLAG_DEFAULT_TIMEOUT) !== 0;
      const m2 = encodeClientAuth({
        clientRandom: random(32),
        clientShare: eph.share,
        clientInstance: options.instance,
        transport: TRANSPORT_BYTE[transport],
        flags: (chacha ? FLAG_CHACHA : 0) | (defaults ? FLAG_DEFAULT_TIMEOUT : 0),
        defaultTimeout: options.defaultTimeout ?? 0,
        maxFrame: options.maxFrame,
      });
      const th = transcriptHash(transport, m1, m2);
      const keys = deriveSessionKeys(options.psk, dh, th);
      const proof = signClientProof(keys.cpk, th);
      setClientProof(m2, proof);
      await channel.write(m2);
      phase = "m3";
      const m3 = await readHandshakeFrame(
        reader,
        FrameType.SERVER_AUTH,
        2,
        32,
        "The server closed the connection during the handshake",
      );
      if (!verifyServerProof(keys.spk, th, proof, m3.subarray(HEADER_SIZE))) {
        throw new AuthenticationError(
          "SERVER_AUTH_FAILED",
          "The server did not prove knowledge of TRUST_ID: an impostor or a man in the middle",
        );
      }
      return {
        sessionId: hello.sessionId,
        sessionIdHex: toHex(hello.sessionId),
        sendKey: keys.c2sKey,
        sendIv: keys.c2sIv,
        recvKey: keys.s2cKey,
        recvIv: keys.s2cIv,
        peerMaxFrame: hello.maxFrame,
        chacha,
        ownDefaultTimeout: defaults ? announced(options.defaultTimeout) : 0,
        peerDefaultTimeout: defaults ? hello.defaultTimeout : 0,
      };
    },
  );
}

/**
 * Runs the server side: sends M1, checks M2 (public checks first, X25519 last), answers M3.
 * A bad proof is answered after a fixed delay with the same AUTH_FAILED alert whatever the
 * reason. Rejects with a typed error for the server's log.
 */
export async function serverHandshake(
  channel: ByteChannel,
  reader: FrameReader,
  options: ServerHandshakeOptions,
): Promise<HandshakeResult> {
  const random = options.random ?? randomBytes;
  const timeoutMs = options.timeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT;
  let nextSeq = 0;
  return await withDeadline(
    channel,
    timeoutMs,
    () => sendAlert(channel, AlertCode.HANDSHAKE_TIMEOUT, "handshake timeout", nextSeq),
    () =>
      new ProtocolError("HANDSHAKE_TIMEOUT", `The client did not finish within ${timeoutMs} ms`),
    async () => {
      await options.prepare?.();
      const eph = await (options.ephemeral ?? generateEphemeral)();
      const sessionId = options.sessionId ?? random(16);
      const m1 = encodeServerHello({
        serverRandom: random(32),
        serverShare: eph.share,
        sessionId,
        serverInstance: options.instance,
        transport: TRANSPORT_BYTE[options.transport],
        flags: (options.chacha === false ? 0 : FLAG_CHACHA) |
          (options.defaultTimeout === undefined ? 0 : FLAG_DEFAULT_TIMEOUT),
        defaultTimeout: options.defaultTimeout ?? 0,
        maxFrame: options.maxFrame,
      });
      await channel.write(m1);
      nextSeq = 2;
      try {
        return await answerClientAuth(channel, reader, options, eph, sessionId, m1);
      } catch (err) {
        // Everything after M1 belongs to the announced session: logs can correlate it.
        if (err instanceof RpcError && err.sessionId === undefined) {
          err.sessionId = toHex(sessionId);
        }
        throw err;
      }
    },
  );
}

/** The server's side after M1: reads and checks M2, verifies the proof, sends M3. */
async function answerClientAuth(
  channel: ByteChannel,
  reader: FrameReader,
  options: ServerHandshakeOptions,
  eph: EphemeralKey,
  sessionId: Uint8Array,
  m1: Uint8Array,
): Promise<HandshakeResult> {
  let m2: Uint8Array;
  let auth;
  try {
    m2 = await readHandshakeFrame(
      reader,
      FrameType.CLIENT_AUTH,
      1,
      120,
      "The client closed the connection during the handshake",
    );
    auth = parseClientAuth(m2.subarray(HEADER_SIZE));
    checkTransport(auth.transport, options.transport);
    if (bytesEqual(auth.clientInstance, options.instance)) {
      throw new ProtocolError("SELF_CONNECTION", "The server is connected to itself");
    }
    if (bytesEqual(auth.clientShare, eph.share)) {
      throw new ProtocolError("PROTOCOL_ERROR", "The client reflected the server's key share");
    }
    if ((auth.flags & FLAG_CHACHA) !== 0 && options.chacha === false) {
      throw new ProtocolError(
        "PROTOCOL_ERROR",
        "The client took a cipher the server did not offer",
      );
    }
    if ((auth.flags & FLAG_DEFAULT_TIMEOUT) !== 0 && options.defaultTimeout === undefined) {
      throw new ProtocolError(
        "PROTOCOL_ERROR",
        "The client announced a default timeout the server did not offer",
      );
    }
  } catch (err) {
    const alert = alertForHandshakeError(err);
    if (alert) await sendAlert(channel, alert.code, alert.message, 2);
    throw err;
  }
  const receivedAt = Date.now();
  if (options.beginProof && !await options.beginProof()) {
    await sendAlert(channel, AlertCode.RATE_LIMITED, "rate limited", 2);
    throw new AuthenticationError("RATE_LIMITED", "Peer is over its authentication budget");
  }
  let ok = false;
  let keys;
  let th: Uint8Array = new Uint8Array(0);
  try {
    const dh = await sharedSecret(eph.privateKey, auth.clientShare);
    th = transcriptHash(options.transport, m1, m2);
    keys = deriveSessionKeys(options.psk, dh, th);
    ok = verifyClientProof(keys.cpk, th, auth.proof);
  } catch (err) {
    // An invalid share is answered like a bad proof; anything else is unexpected.
    if (!(err instanceof ProtocolError && err.code === "BAD_SHARE")) {
      options.endProof?.(false);
      throw err;
    }
  }
  options.endProof?.(ok);
  if (!ok || keys === undefined) {
    const wait = receivedAt + (options.authFailureDelayMs ?? AUTH_FAILURE_DELAY) - Date.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    await sendAlert(channel, AlertCode.AUTH_FAILED, "authentication failed", 2);
    throw new AuthenticationError("AUTH_FAILED", "The client's proof did not verify");
  }
  await channel.write(encodeServerAuth(signServerProof(keys.spk, th, auth.proof)));
  const defaults = (auth.flags & FLAG_DEFAULT_TIMEOUT) !== 0;
  return {
    sessionId,
    sessionIdHex: toHex(sessionId),
    sendKey: keys.s2cKey,
    sendIv: keys.s2cIv,
    recvKey: keys.c2sKey,
    recvIv: keys.c2sIv,
    peerMaxFrame: auth.maxFrame,
    chacha: (auth.flags & FLAG_CHACHA) !== 0,
    ownDefaultTimeout: defaults ? announced(options.defaultTimeout) : 0,
    peerDefaultTimeout: defaults ? auth.defaultTimeout : 0,
  };
}

/** The default timeout (ms) that M1 or M2 announced for `ms`: 0 when the field cannot carry it. */
function announced(ms: number | undefined): number {
  return defaultTimeoutField(ms) * DEFAULT_TIMEOUT_UNIT;
}

/** Size of the server's pre-authentication read buffer: exactly one M2. */
export const PREAUTH_BUFFER = M2_SIZE;
