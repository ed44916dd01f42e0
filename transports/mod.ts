/**
 * Transports of `@trust/rpc`: byte pipes over TCP, TLS, Unix domain sockets and WebSocket, chosen
 * by an address string. They know nothing of messages, authentication or sessions.
 *
 * | Address                  | Dialer                  | Listener                |
 * | ------------------------ | ----------------------- | ----------------------- |
 * | `tcp://127.0.0.1:8888`   | {@link tcp}             | {@link listenTcp}       |
 * | `tls://localhost:8443`   | {@link tls}             | {@link listenTls}       |
 * | `unix:///run/app/x.sock` | {@link unix}            | {@link listenUnix}      |
 * | `ws://host:8080/rpc`     | {@link webSocketDialer} | {@link listenWebSocket} |
 *
 * @example Echo over a Unix socket
 * ```ts
 * import { dial, listen } from "@trust/rpc/transports";
 *
 * const dir = await Deno.makeTempDir();
 * const listener = await listen(`unix://${dir}/rpc.sock`);
 * const conn = await dial(listener.address).dial();
 * const peer = (await listener.accept())!;
 * await conn.write(new TextEncoder().encode("ping"));
 * const buffer = new Uint8Array(4);
 * await peer.read(buffer);
 * conn.close();
 * peer.close();
 * listener.close();
 * ```
 *
 * @module
 */

import { parseAddress } from "./address.ts";
import { listenTcp, tcp } from "./tcp.ts";
import { listenTls, tls } from "./tls.ts";
import { listenUnix, unix } from "./unix.ts";
import type { Dialer, Listener } from "./types.ts";
import { listenWebSocket } from "./websocket.ts";
import { webSocketDialer } from "./websocket_dialer.ts";

export type { Conn, Dialer, Listener, TransportKind } from "./types.ts";
export { type Address, formatAddress, parseAddress } from "./address.ts";
export {
  DEFAULT_CONNECT_TIMEOUT,
  listenTcp,
  tcp,
  type TcpListenOptions,
  type TcpOptions,
} from "./tcp.ts";
export { listenTls, tls, type TlsListenOptions, type TlsOptions } from "./tls.ts";
export {
  listenWebSocket,
  webSocket,
  type WebSocketListenOptions,
  type WebSocketOptions,
} from "./websocket.ts";
export { WebSocketConn } from "./websocket_conn.ts";
export { webSocketDialer, type WebSocketDialerOptions } from "./websocket_dialer.ts";
export { WebSocketClientConn } from "./websocket_client_conn.ts";
export {
  listenUnix,
  MAX_UNIX_PATH_BYTES,
  unix,
  type UnixListenOptions,
  type UnixOptions,
} from "./unix.ts";

/** Options of {@link dial} and {@link listen}; each transport uses the ones that apply. */
export interface TransportOptions {
  /** Dialing: milliseconds allowed to connect (TLS: including the handshake). */
  connectTimeout?: number;
  /** Dialing `tls://` and `wss://`: extra trusted CA certificates (PEM). Ignored by others. */
  caCerts?: string[];
  /** Dialing `tls://` and `wss://`: INSECURE, skip the hostname check (the chain is verified). */
  insecureSkipHostnameVerification?: boolean;
  /** Listening on `tls://`: the certificate chain (PEM). Required there. */
  cert?: string;
  /** Listening on `tls://`: the private key (PEM). Required there. */
  key?: string;
  /** Listening on `ws://` / `wss://`: answers the HTTP requests that are not the WebSocket path. */
  httpHandler?: (request: Request, info: Deno.ServeHandlerInfo) => Response | Promise<Response>;
}

/**
 * Makes the dialer for an address string.
 *
 * @example Dial a TLS server
 * ```ts
 * import { dial } from "@trust/rpc/transports";
 * const dialer = dial("tls://localhost:8443", { caCerts: [await Deno.readTextFile("ca.pem")] });
 * const conn = await dialer.dial();
 * conn.close();
 * ```
 *
 * @param address `tcp://host:port`, `tls://host:port` or `unix:///absolute/path`
 * @param options connect timeout and TLS trust
 * @returns the dialer
 * @throws {TransportError} `INVALID_ADDRESS`, `PATH_TOO_LONG`
 */
export function dial(address: string, options: TransportOptions = {}): Dialer {
  const parsed = parseAddress(address);
  const { connectTimeout } = options;
  switch (parsed.transport) {
    case "tcp":
      return tcp({ hostname: parsed.hostname, port: parsed.port, connectTimeout });
    case "tls":
      return tls({
        hostname: parsed.hostname,
        port: parsed.port,
        connectTimeout,
        caCerts: options.caCerts,
        insecureSkipHostnameVerification: options.insecureSkipHostnameVerification,
      });
    case "unix":
      return unix({ path: parsed.path, connectTimeout });
    case "ws":
    case "wss":
      return webSocketDialer(address, {
        connectTimeout,
        caCerts: options.caCerts,
        insecureSkipHostnameVerification: options.insecureSkipHostnameVerification,
      });
  }
}

/**
 * Listens on an address string.
 *
 * @example Listen on a free TCP port
 * ```ts
 * import { listen } from "@trust/rpc/transports";
 * const listener = await listen("tcp://127.0.0.1:0");
 * console.log(listener.address); // tcp://127.0.0.1:40123
 * listener.close();
 * ```
 *
 * @param address `tcp://host:port`, `tls://host:port` or `unix:///absolute/path`
 * @param options `cert` and `key` for TLS
 * @returns the listener (a promise, because a Unix listener first probes the path)
 * @throws {TypeError} for `tls://` without `cert` and `key`
 * @throws {TransportError} `INVALID_ADDRESS`, `ADDRESS_IN_USE`, `UNSAFE_PATH`, `PATH_TOO_LONG`,
 *   `TLS_ERROR`
 */
export async function listen(address: string, options: TransportOptions = {}): Promise<Listener> {
  const parsed = parseAddress(address);
  switch (parsed.transport) {
    case "tcp":
      return listenTcp({ hostname: parsed.hostname, port: parsed.port });
    case "tls":
      if (options.cert === undefined || options.key === undefined) {
        throw new TypeError(
          `Cannot listen on ${address}: a tls:// address needs options.cert and options.key (PEM)`,
        );
      }
      return listenTls({
        hostname: parsed.hostname,
        port: parsed.port,
        cert: options.cert,
        key: options.key,
      });
    case "unix":
      return await listenUnix({ path: parsed.path });
    case "ws":
    case "wss":
      if (parsed.transport === "wss" && (options.cert === undefined || options.key === undefined)) {
        throw new TypeError(
          `Cannot listen on ${address}: a wss:// address needs options.cert and options.key (PEM)`,
        );
      }
      return await listenWebSocket({
        hostname: parsed.hostname,
        port: parsed.port,
        path: parsed.path,
        tls: parsed.transport === "wss" ? { cert: options.cert!, key: options.key! } : undefined,
        handler: options.httpHandler,
      });
  }
}
