/**
 * The three handshake frames of trust-rpc/1 (M1 SERVER_HELLO, M2 CLIENT_AUTH, M3 SERVER_AUTH),
 * the transcript hash and the key schedule (PROTOCOL.md §5, §6). Pure Web Crypto.
 *
 * @module
 */

import { bufferSource as bs, bytesEqual, concatBytes, labelBytes, utf8 } from "./bytes.ts";
import { ProtocolError } from "./errors.ts";
import { hkdf } from "./hkdf.ts";
import { hmacSha256, sha256Concat, timingSafeEqual } from "./sha256.ts";
import { encodeHeader, FrameType, HEADER_SIZE } from "./frame.ts";
import { MAX_FRAME_HARD_CAP, MIN_FRAME } from "./limits.ts";

/** Transport labels bound into the transcript. */
export type TransportLabel = "tcp" | "tls" | "unix" | "ws" | "wss";

/** Wire numbers of the transport labels. */
export const TRANSPORT_BYTE: Record<TransportLabel, number> = {
  tcp: 1,
  tls: 2,
  unix: 3,
  ws: 4,
  wss: 5,
};
const LABEL_BY_BYTE: Record<number, TransportLabel | undefined> = {
  1: "tcp",
  2: "tls",
  3: "unix",
  4: "ws",
  5: "wss",
};

/**
 * Flag bit of M1 (the server offers) and M2 (the client takes): small MESSAGES records may be
 * sealed with ChaCha20-Poly1305 (`chacha.ts`). Both flags are in the transcript.
 */
export const FLAG_CHACHA = 0x01;

/**
 * Flag bit of M1 (the server offers) and M2 (the client takes): each side announces its
 * default call timeout in the reserved field, and a REQUEST that takes it carries none of its
 * own (protocol/README.md §5.8). Both flags and both fields are in the transcript.
 */
export const FLAG_DEFAULT_TIMEOUT = 0x02;

const KNOWN_FLAGS = FLAG_CHACHA | FLAG_DEFAULT_TIMEOUT;

/** The unit of an announced default timeout (ms): the field counts tenths of a second. */
export const DEFAULT_TIMEOUT_UNIT = 100;

/**
 * The reserved-field value that announces `ms` as a default call timeout: 0 (none announced)
 * for no timeout, or one the 16-bit field cannot carry exactly (not a whole number of tenths of
 * a second, or above 6,553.5 s).
 */
export function defaultTimeoutField(ms: number | undefined): number {
  if (ms === undefined || !(ms > 0) || ms % DEFAULT_TIMEOUT_UNIT !== 0) return 0;
  const units = ms / DEFAULT_TIMEOUT_UNIT;
  return units <= 0xFFFF ? units : 0;
}

/** Whole frame sizes (header included). */
export const M1_SIZE = HEADER_SIZE + 104;
/** Size of M2 including header; the server's pre-authentication buffer. */
export const M2_SIZE = HEADER_SIZE + 120;
/** Size of M3 including header. */
export const M3_SIZE = HEADER_SIZE + 32;

/** Fields of M1. */
export interface ServerHello {
  serverRandom: Uint8Array;
  serverShare: Uint8Array;
  sessionId: Uint8Array;
  serverInstance: Uint8Array;
  transport: number;
  /** {@link FLAG_CHACHA} and {@link FLAG_DEFAULT_TIMEOUT}, or 0. */
  flags: number;
  /** The server's default call timeout in ms; 0: none announced (see {@link defaultTimeoutField}). */
  defaultTimeout: number;
  maxFrame: number;
}

/** Fields of M2 (the proof is kept apart: the transcript covers M2 without it). */
export interface ClientAuth {
  clientRandom: Uint8Array;
  clientShare: Uint8Array;
  clientInstance: Uint8Array;
  transport: number;
  /** {@link FLAG_CHACHA} and {@link FLAG_DEFAULT_TIMEOUT}, or 0. */
  flags: number;
  /** The client's default call timeout in ms; 0: none announced. */
  defaultTimeout: number;
  maxFrame: number;
  proof: Uint8Array;
}

/** Builds M1 (124 bytes). */
export function encodeServerHello(f: ServerHello): Uint8Array {
  const frame = new Uint8Array(M1_SIZE);
  frame.set(encodeHeader(FrameType.SERVER_HELLO, 104, 0));
  const body = frame.subarray(HEADER_SIZE);
  body.set(f.serverRandom, 0);
  body.set(f.serverShare, 32);
  body.set(f.sessionId, 64);
  body.set(f.serverInstance, 80);
  body[96] = f.transport;
  body[97] = f.flags;
  const view = new DataView(body.buffer, body.byteOffset);
  view.setUint16(98, f.flags & FLAG_DEFAULT_TIMEOUT ? defaultTimeoutField(f.defaultTimeout) : 0);
  view.setUint32(100, f.maxFrame);
  return frame;
}

/** Builds M2 (140 bytes) with the proof slot zeroed; fill it with {@link setClientProof}. */
export function encodeClientAuth(f: Omit<ClientAuth, "proof">): Uint8Array {
  const frame = new Uint8Array(M2_SIZE);
  frame.set(encodeHeader(FrameType.CLIENT_AUTH, 120, 1));
  const body = frame.subarray(HEADER_SIZE);
  body.set(f.clientRandom, 0);
  body.set(f.clientShare, 32);
  body.set(f.clientInstance, 64);
  body[80] = f.transport;
  body[81] = f.flags;
  const view = new DataView(body.buffer, body.byteOffset);
  view.setUint16(82, f.flags & FLAG_DEFAULT_TIMEOUT ? defaultTimeoutField(f.defaultTimeout) : 0);
  view.setUint32(84, f.maxFrame);
  return frame;
}

/** Writes the client proof into an M2 frame. */
export function setClientProof(m2: Uint8Array, proof: Uint8Array): void {
  m2.set(proof, HEADER_SIZE + 88);
}

/** Builds M3 (52 bytes). */
export function encodeServerAuth(proof: Uint8Array): Uint8Array {
  const frame = new Uint8Array(M3_SIZE);
  frame.set(encodeHeader(FrameType.SERVER_AUTH, 32, 2));
  frame.set(proof, HEADER_SIZE);
  return frame;
}

function checkMaxFrame(maxFrame: number): void {
  if (maxFrame < MIN_FRAME || maxFrame > MAX_FRAME_HARD_CAP) {
    throw new ProtocolError("PROTOCOL_ERROR", `Peer advertised max_frame ${maxFrame} out of range`);
  }
}

/**
 * Reads the reserved field of M1 or M2 at `at`: the announced default timeout in ms, which
 * only {@link FLAG_DEFAULT_TIMEOUT} allows (strict: otherwise it must be zero).
 */
function announcedTimeout(body: Uint8Array, at: number, flags: number, what: string): number {
  const units = (body[at] << 8) | body[at + 1];
  if ((flags & ~KNOWN_FLAGS) !== 0 || (units !== 0 && (flags & FLAG_DEFAULT_TIMEOUT) === 0)) {
    throw new ProtocolError("PROTOCOL_ERROR", `${what} has non-zero flags or reserved bytes`);
  }
  return units * DEFAULT_TIMEOUT_UNIT;
}

/** Parses the body of M1 (strict: unknown flags and unused reserved bytes must be zero). */
export function parseServerHello(body: Uint8Array): ServerHello {
  const defaultTimeout = announcedTimeout(body, 98, body[97], "SERVER_HELLO");
  const maxFrame = new DataView(body.buffer, body.byteOffset).getUint32(100);
  checkMaxFrame(maxFrame);
  return {
    serverRandom: body.slice(0, 32),
    serverShare: body.slice(32, 64),
    sessionId: body.slice(64, 80),
    serverInstance: body.slice(80, 96),
    transport: body[96],
    flags: body[97],
    defaultTimeout,
    maxFrame,
  };
}

/** Parses the body of M2 (strict: unknown flags and unused reserved bytes must be zero). */
export function parseClientAuth(body: Uint8Array): ClientAuth {
  const defaultTimeout = announcedTimeout(body, 82, body[81], "CLIENT_AUTH");
  const maxFrame = new DataView(body.buffer, body.byteOffset).getUint32(84);
  checkMaxFrame(maxFrame);
  return {
    clientRandom: body.slice(0, 32),
    clientShare: body.slice(32, 64),
    clientInstance: body.slice(64, 80),
    transport: body[80],
    flags: body[81],
    defaultTimeout,
    maxFrame,
    proof: body.slice(88, 120),
  };
}

/** The label of a transport byte, if it is one. */
export function transportLabel(byte: number): TransportLabel | undefined {
  return LABEL_BY_BYTE[byte];
}

/** Checks a transport byte against the label this side believes in. */
export function checkTransport(peerByte: number, own: TransportLabel, allowMismatch = false): void {
  if (peerByte === TRANSPORT_BYTE[own] || allowMismatch) return;
  const peer = LABEL_BY_BYTE[peerByte];
  if (peer === undefined) throw new ProtocolError("PROTOCOL_ERROR", "Unknown transport byte");
  throw new ProtocolError(
    "TRANSPORT_MISMATCH",
    `Transport mismatch: the peer believes it is on ${peer}, this side on ${own} ` +
      "(a TLS-terminating proxy in between?)",
  );
}

/** The handshake's derived secrets. Raw bytes; callers import them as keys. */
export interface SessionKeys {
  cpk: Uint8Array;
  spk: Uint8Array;
  c2sKey: Uint8Array;
  s2cKey: Uint8Array;
  c2sIv: Uint8Array;
  s2cIv: Uint8Array;
}

/** SHA-256(context ‖ M1 ‖ M2 without its proof). */
export function transcriptHash(
  transport: TransportLabel,
  m1: Uint8Array,
  m2: Uint8Array,
): Uint8Array {
  const context = labelBytes(`trust-rpc/1\0${transport}\0`);
  return sha256Concat([context, m1.subarray(0, M1_SIZE), m2.subarray(0, M2_SIZE - 32)]);
}

/** HKDF-SHA256(psk ‖ dh, salt = TH, info = "trust-rpc/1 keys", 152 bytes), sliced. */
export function deriveSessionKeys(
  psk: Uint8Array,
  dh: Uint8Array,
  th: Uint8Array,
): SessionKeys {
  const okm = hkdf(concatBytes(psk, dh), th, "trust-rpc/1 keys", 152);
  return {
    cpk: okm.slice(0, 32),
    spk: okm.slice(32, 64),
    c2sKey: okm.slice(64, 96),
    s2cKey: okm.slice(96, 128),
    c2sIv: okm.slice(128, 140),
    s2cIv: okm.slice(140, 152),
  };
}

const CLIENT_FINISHED = utf8("trust-rpc/1 client finished");
const SERVER_FINISHED = utf8("trust-rpc/1 server finished");

/** HMAC-SHA256(cpk, "trust-rpc/1 client finished" ‖ TH). */
export function signClientProof(cpk: Uint8Array, th: Uint8Array): Uint8Array {
  return hmacSha256(cpk, CLIENT_FINISHED, th);
}

/** Constant-time check of a client proof. */
export function verifyClientProof(cpk: Uint8Array, th: Uint8Array, proof: Uint8Array): boolean {
  return timingSafeEqual(signClientProof(cpk, th), proof);
}

/** HMAC-SHA256(spk, "trust-rpc/1 server finished" ‖ TH ‖ client_proof). */
export function signServerProof(
  spk: Uint8Array,
  th: Uint8Array,
  clientProof: Uint8Array,
): Uint8Array {
  return hmacSha256(spk, SERVER_FINISHED, th, clientProof);
}

/** Constant-time check of a server proof. */
export function verifyServerProof(
  spk: Uint8Array,
  th: Uint8Array,
  clientProof: Uint8Array,
  proof: Uint8Array,
): boolean {
  return timingSafeEqual(signServerProof(spk, th, clientProof), proof);
}

/** An ephemeral X25519 key pair with its raw public share. */
export interface EphemeralKey {
  privateKey: CryptoKey;
  share: Uint8Array;
}

/** Generates a fresh X25519 ephemeral. */
export async function generateEphemeral(): Promise<EphemeralKey> {
  // Not extractable: the private key never leaves Web Crypto (the public half always can).
  const pair = await crypto.subtle.generateKey({ name: "X25519" }, false, [
    "deriveBits",
  ]) as CryptoKeyPair;
  const share = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
  return { privateKey: pair.privateKey, share };
}

const PKCS8_X25519_PREFIX = Uint8Array.from([
  0x30,
  0x2e,
  0x02,
  0x01,
  0x00,
  0x30,
  0x05,
  0x06,
  0x03,
  0x2b,
  0x65,
  0x6e,
  0x04,
  0x22,
  0x04,
  0x20,
]);

/** An ephemeral from fixed private bytes (test vectors only). */
export async function ephemeralFromPrivate(priv: Uint8Array): Promise<EphemeralKey> {
  const privateKey = await crypto.subtle.importKey(
    "pkcs8",
    bs(concatBytes(PKCS8_X25519_PREFIX, priv)),
    { name: "X25519" },
    true,
    ["deriveBits"],
  );
  const jwk = await crypto.subtle.exportKey("jwk", privateKey);
  const b64 = jwk.x!.replace(/-/g, "+").replace(/_/g, "/");
  const share = Uint8Array.from(
    atob(b64 + "=".repeat((4 - b64.length % 4) % 4)),
    (c) => c.charCodeAt(0),
  );
  return { privateKey, share };
}

/**
 * X25519(own private, peer share). A share Web Crypto refuses, or an all-zero result
 * (RFC 7748 §6.1), is `BAD_SHARE`.
 */
export async function sharedSecret(own: CryptoKey, peerShare: Uint8Array): Promise<Uint8Array> {
  let dh: Uint8Array;
  try {
    const pub = await crypto.subtle.importKey("raw", bs(peerShare), { name: "X25519" }, false, []);
    dh = new Uint8Array(
      await crypto.subtle.deriveBits({ name: "X25519", public: pub } as Algorithm, own, 256),
    );
  } catch {
    throw new ProtocolError("BAD_SHARE", "The peer's key share is invalid");
  }
  if (bytesEqual(dh, new Uint8Array(32))) {
    throw new ProtocolError("BAD_SHARE", "The peer's key share is invalid");
  }
  return dh;
}
