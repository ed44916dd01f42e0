/**
 * The browser's WebSocket dialer: `ws://` and `wss://` with the standard `WebSocket`. No `Deno.*`
 * here. From Deno, `dial()` uses `webSocketDialer` (websocket_dialer.ts) instead, which frames the
 * WebSocket itself on a socket with `TCP_NODELAY`.
 *
 * @module
 */

import { TransportError } from "../protocol/errors.ts";
import { formatAddress, parseAddress } from "./address.ts";
import { checkTimeout, connectDeadline } from "./deadline.ts";
import type { Dialer } from "./types.ts";
import { openWebSocket, WebSocketConn } from "./websocket_conn.ts";

/** Options of {@link webSocket}. */
export interface WebSocketOptions {
  /** Milliseconds allowed to open the socket. @default 10000 */
  connectTimeout?: number;
  /** Makes the socket; default `new WebSocket(url)`. */
  createWebSocket?: (url: string) => WebSocket;
}

/**
 * A dialer for `ws://host[:port][/path]` or `wss://…`.
 *
 * @example
 * ```ts ignore
 * const dialer = webSocket("ws://127.0.0.1:8080/rpc");
 * const conn = await dialer.dial();
 * ```
 * @throws {TransportError} `INVALID_ADDRESS` for anything but a ws:// or wss:// address
 */
export function webSocket(address: string, options: WebSocketOptions = {}): Dialer {
  const parsed = parseAddress(address);
  if (parsed.transport !== "ws" && parsed.transport !== "wss") {
    throw new TransportError("INVALID_ADDRESS", `Not a WebSocket address: ${address}`);
  }
  const timeout = checkTimeout(options.connectTimeout);
  const create = options.createWebSocket ?? ((url: string) => new WebSocket(url));
  const url = formatAddress(parsed);
  const host = parsed.hostname.includes(":") ? `[${parsed.hostname}]` : parsed.hostname;
  return {
    transport: parsed.transport,
    address: url,
    async dial(dialOptions = {}) {
      const deadline = connectDeadline(timeout, dialOptions.signal);
      let socket: WebSocket;
      try {
        socket = await openWebSocket(url, create, deadline.signal);
      } catch (err) {
        throw deadline.error(url, err);
      }
      return new WebSocketConn(socket, {
        transport: parsed.transport,
        remoteAddress: `${host}:${parsed.port}`,
        remoteHost: parsed.hostname,
      });
    },
  };
}
