/**
 * The part of `connect()` that needs no `Deno.*`: dial through a {@link ClientDialer},
 * run the client handshake, start a session, and wrap it in a reconnecting {@link Client}.
 * The Deno entry (`client.ts`) and the browser entry (`browser.ts`) both end here; they differ
 * only in where the secret and the dialer come from.
 *
 * @module
 */

import type { ByteChannel } from "./channel.ts";
import { Client, type ClientOptions, type SessionHooks } from "./client.ts";
import { CancelledError } from "./errors.ts";
import { FrameReader } from "./frame_reader.ts";
import { clientHandshake } from "./handshake.ts";
import type { TransportLabel } from "./handshake_messages.ts";
import { DEFAULT_CALL_TIMEOUT, DEFAULT_MAX_FRAME } from "./limits.ts";
import type { Logger } from "./logger.ts";
import { createMethodTable, type Methods } from "./methods.ts";
import type { Interceptor, Middleware } from "./middleware.ts";
import type { CompressionOption } from "./outbox.ts";
import type { KeyUpdatePolicy } from "./record.ts";
import { Session } from "./session.ts";
import type { SessionLimits } from "./session_limits.ts";

/** What the client dials with: any transport's dialer fits (`transports/types.ts`). */
export interface ClientDialer {
  /** The transport label bound into the handshake (`tcp`, `tls`, `unix`, `ws`, `wss`). */
  readonly transport: string;
  /** The address, for messages and `client.address`. */
  readonly address: string;
  /** Opens one connection. */
  dial(options?: { signal?: AbortSignal }): Promise<ByteChannel>;
}

/** Options of {@link openClient}: everything of `connect()` but the secret and the address. */
export interface OpenClientOptions extends ClientOptions {
  /** Methods the server may call on this client. */
  methods?: Methods;
  /** Deadline for the trust-rpc handshake (ms). @default 10000 */
  handshakeTimeout?: number;
  /** Aborts the first connection attempt. */
  signal?: AbortSignal;
  /** Per-connection limits (heartbeat included). */
  limits?: SessionLimits;
  /** Accept a server that believes it is on another transport (behind a TLS-terminating proxy). */
  allowTransportMismatch?: boolean;
  /** Middleware around the handlers this client serves (`methods`), outermost first. */
  middleware?: Middleware[];
  /** Interceptors around the calls this client makes, outermost first. */
  interceptors?: Interceptor[];
  /** Compress every payload the client sends at or above a threshold (deflate-raw). */
  compression?: CompressionOption;
  /**
   * Take ChaCha20-Poly1305 for small records when the server offers it (a synchronous AEAD:
   * no Web Crypto dispatch on small calls). `false` seals everything with AES-256-GCM.
   * @default true
   */
  chacha?: boolean;
  /** Test hook: KEY_UPDATE thresholds. */
  keyUpdate?: KeyUpdatePolicy;
}

/**
 * Connects through `dialer` with the stretched secret `psk` and returns the client once the
 * first connection is authenticated; later connections are made the same way on reconnect.
 */
export async function openClient(
  dialer: ClientDialer,
  psk: Uint8Array,
  options: OpenClientOptions,
  log: Logger,
): Promise<Client> {
  const methods = createMethodTable(options.methods);
  const instance = crypto.getRandomValues(new Uint8Array(16));
  const hooks: SessionHooks = {};
  const open = async (signal?: AbortSignal): Promise<Session> => {
    signal?.throwIfAborted();
    const conn = await dialer.dial({ signal });
    const abort = () => conn.close();
    signal?.addEventListener("abort", abort, { once: true });
    const reader = new FrameReader(conn);
    let handshake;
    try {
      handshake = await clientHandshake(conn, reader, {
        psk,
        transport: dialer.transport as TransportLabel,
        maxFrame: options.limits?.maxFrame ?? DEFAULT_MAX_FRAME,
        instance,
        timeoutMs: options.handshakeTimeout,
        allowTransportMismatch: options.allowTransportMismatch,
        chacha: options.chacha,
        defaultTimeout: options.timeout ?? DEFAULT_CALL_TIMEOUT,
      });
    } catch (err) {
      conn.close();
      if (signal?.aborted) {
        throw new CancelledError("Connecting was cancelled", { cause: signal.reason });
      }
      throw err;
    } finally {
      signal?.removeEventListener("abort", abort);
    }
    log.debug("handshake_ok", { session: handshake.sessionIdHex, address: dialer.address });
    const session: Session = new Session({
      role: "client",
      channel: conn,
      reader,
      handshake,
      methods,
      limits: options.limits,
      keyUpdate: options.keyUpdate,
      callTimeout: options.timeout,
      logger: log,
      onGoAway: () => hooks.goAway?.(session),
      onEvent: (name, data) => {
        if (hooks.event) hooks.event(name, data);
        else if ((hooks.early ??= []).length < 64) hooks.early.push([name, data]);
      },
      middleware: options.middleware,
      interceptors: options.interceptors,
      compression: options.compression,
    });
    return session;
  };
  const first = await open(options.signal);
  return new Client(dialer.address, () => open(), first, hooks, options, log);
}
