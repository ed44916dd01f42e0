/**
 * Two authenticated sessions over an in-memory pair (tier-2 tests): a real handshake, real
 * records, no sockets.
 */
import { FrameReader } from "../protocol/frame_reader.ts";
import { clientHandshake, serverHandshake } from "../protocol/handshake.ts";
import { createMethodTable, type Methods } from "../protocol/methods.ts";
import type { KeyUpdatePolicy } from "../protocol/record.ts";
import { stretchSecret } from "../protocol/secret.ts";
import { Session, type SessionLimits } from "../protocol/session.ts";
import { memoryPair } from "./_memory_pair.ts";

/** A fixed test secret (never used outside tests). */
export const TEST_SECRET = "test-only-secret-0123456789abcdefghijklmnop";

/** Options of {@link sessionPair}. */
export interface PairOptions {
  serverMethods?: Methods;
  clientMethods?: Methods;
  limits?: SessionLimits;
  keyUpdate?: KeyUpdatePolicy;
  callTimeout?: number;
  /** ChaCha20-Poly1305 for small records: offered by the server / taken by the client. */
  serverChaCha?: boolean;
  clientChaCha?: boolean;
  /**
   * Default call timeouts announced in the handshake (protocol/README.md §5.8): the server
   * offers with its own, the client takes with its own (undefined: the side does not).
   */
  serverDefaultTimeout?: number;
  clientDefaultTimeout?: number;
  /** Both ends act as TLS connections would (`ByteChannel.nagle`). */
  nagle?: boolean;
}

/** Runs the handshake over a memory pair and wraps both ends in sessions. */
export async function sessionPair(options: PairOptions = {}) {
  const psk = await stretchSecret(TEST_SECRET);
  const [c, s] = memoryPair();
  c.nagle = s.nagle = options.nagle === true;
  const common = {
    psk,
    transport: "tcp" as const,
    maxFrame: options.limits?.maxFrame ?? 1_048_576,
  };
  const serverReader = new FrameReader(s, 140);
  const clientReader = new FrameReader(c);
  const [sh, ch] = await Promise.all([
    serverHandshake(s, serverReader, {
      ...common,
      instance: new Uint8Array(16).fill(1),
      chacha: options.serverChaCha,
      defaultTimeout: options.serverDefaultTimeout,
    }),
    clientHandshake(c, clientReader, {
      ...common,
      instance: new Uint8Array(16).fill(2),
      chacha: options.clientChaCha,
      defaultTimeout: options.clientDefaultTimeout,
    }),
  ]);
  serverReader.resize(16 * 1024);
  const server = new Session({
    role: "server",
    channel: s,
    reader: serverReader,
    handshake: sh,
    methods: createMethodTable(options.serverMethods),
    limits: options.limits,
    keyUpdate: options.keyUpdate,
  });
  const client = new Session({
    role: "client",
    channel: c,
    reader: clientReader,
    handshake: ch,
    methods: createMethodTable(options.clientMethods),
    limits: options.limits,
    keyUpdate: options.keyUpdate,
    callTimeout: options.callTimeout,
  });
  return {
    client,
    server,
    chacha: sh.chacha && ch.chacha,
    handshakes: { server: sh, client: ch },
    clientEnd: c,
    serverEnd: s,
    async [Symbol.asyncDispose]() {
      client.close();
      server.close();
      await Promise.all([client.closed, server.closed]);
    },
  };
}
