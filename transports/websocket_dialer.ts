/**
 * The WebSocket dialer for Deno: `ws://` over {@link tcp}, `wss://` over {@link tls}, both with
 * `TCP_NODELAY`, and the WebSocket framed by {@link WebSocketClientConn}. Browsers use
 * {@link webSocket} (the standard `WebSocket`) instead.
 *
 * @module
 */

import { TransportError } from "../protocol/errors.ts";
import { formatAddress, parseAddress } from "./address.ts";
import { checkTimeout, connectDeadline } from "./deadline.ts";
import { describeConnectError, tcp } from "./tcp.ts";
import { tls } from "./tls.ts";
import type { Conn, Dialer } from "./types.ts";
import { WebSocketClientConn } from "./websocket_client_conn.ts";

/** Options of {@link webSocketDialer}. */
export interface WebSocketDialerOptions {
  /** Milliseconds allowed to connect, including TLS and the upgrade. @default 10000 */
  connectTimeout?: number;
  /** `wss://`: extra trusted CA certificates (PEM), added to the default roots. */
  caCerts?: string[];
  /** `wss://`: INSECURE, skip the hostname check (the chain is still verified). */
  insecureSkipHostnameVerification?: boolean;
}

/**
 * A dialer for `ws://host[:port][/path]` or `wss://…` that frames the WebSocket itself over a
 * Deno TCP or TLS connection. Failures reject with `CONNECT_FAILED` (refused, timed out,
 * aborted, or the server did not upgrade: its status line is in the message) or `TLS_ERROR`.
 *
 * @example
 * ```ts ignore
 * const conn = await webSocketDialer("ws://127.0.0.1:8080/rpc").dial();
 * ```
 * @throws {TransportError} `INVALID_ADDRESS` for anything but a ws:// or wss:// address
 */
export function webSocketDialer(address: string, options: WebSocketDialerOptions = {}): Dialer {
  const parsed = parseAddress(address);
  if (parsed.transport !== "ws" && parsed.transport !== "wss") {
    throw new TransportError("INVALID_ADDRESS", `Not a WebSocket address: ${address}`);
  }
  const transport = parsed.transport;
  const timeout = checkTimeout(options.connectTimeout);
  const url = formatAddress(parsed);
  const { hostname, port, path } = parsed;
  const host = `${hostname.includes(":") ? `[${hostname}]` : hostname}:${port}`;
  // The inner dial gets more time than ours, so that our deadline is the one that reports.
  const inner = transport === "ws" ? tcp({ hostname, port, connectTimeout: timeout + 1000 }) : tls({
    hostname,
    port,
    connectTimeout: timeout + 1000,
    caCerts: options.caCerts,
    insecureSkipHostnameVerification: options.insecureSkipHostnameVerification,
  });
  return {
    transport,
    address: url,
    async dial(dialOptions = {}) {
      const deadline = connectDeadline(timeout, dialOptions.signal, describeConnectError);
      let conn: Conn;
      try {
        conn = await inner.dial({ signal: deadline.signal });
      } catch (err) {
        if (err instanceof TransportError && err.code === "CONNECT_FAILED") {
          throw deadline.error(url, err.cause ?? err);
        }
        throw err; // TLS_ERROR says what is wrong with the certificate
      }
      const onAbort = () => conn.close(); // closing interrupts the upgrade
      deadline.signal.addEventListener("abort", onAbort, { once: true });
      try {
        if (deadline.signal.aborted) onAbort();
        return await WebSocketClientConn.open(conn, { transport, host, path });
      } catch (err) {
        conn.close();
        throw deadline.error(url, err);
      } finally {
        deadline.signal.removeEventListener("abort", onAbort);
      }
    },
  };
}
