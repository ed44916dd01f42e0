/**
 * The WebSocket listener: `ws://` and `wss://` on `Deno.serve` with `Deno.upgradeWebSocket`,
 * on one path. Every other request goes to an optional HTTP handler (so one port can serve a
 * page and its WebSocket), else 404. The sockets carry the same trust-rpc/1 handshake and
 * records as TCP, one record per binary message.
 *
 * @module
 */

import { TransportError } from "../protocol/errors.ts";
import { formatAddress } from "./address.ts";
import { checkHostname, checkPort, listenError } from "./tcp.ts";
import type { Conn, Listener } from "./types.ts";
import { WebSocketConn } from "./websocket_conn.ts";

export { webSocket, type WebSocketOptions } from "./websocket_client.ts";

/** Options of {@link listenWebSocket}. */
export interface WebSocketListenOptions {
  /** Interface to bind. */
  hostname: string;
  /** Port (0: a free one). */
  port: number;
  /** The path WebSocket clients connect to. @default "/" */
  path?: string;
  /** PEM certificate chain and key: `wss://`. */
  tls?: { cert: string; key: string };
  /** Answers every other HTTP request (a page, its script); default 404. */
  handler?: (request: Request, info: Deno.ServeHandlerInfo) => Response | Promise<Response>;
  /** Accepted sockets not yet taken by `accept()` before new ones are refused (503). @default 1024 */
  backlog?: number;
}

/**
 * Listens for WebSocket connections.
 *
 * @example
 * ```ts ignore
 * const listener = await listenWebSocket({ hostname: "127.0.0.1", port: 0, path: "/rpc" });
 * console.log(listener.address); // ws://127.0.0.1:40211/rpc
 * ```
 * @throws {TransportError} `ADDRESS_IN_USE`, `INVALID_ADDRESS`, or `TLS_ERROR` for a bad key pair
 */
export function listenWebSocket(options: WebSocketListenOptions): Promise<Listener> {
  const hostname = checkHostname(options.hostname);
  const port = checkPort(options.port, true);
  const path = options.path ?? "/";
  const transport = options.tls ? "wss" : "ws";
  const backlog = options.backlog ?? 1024;
  const ready: Conn[] = [];
  let waiter: ((conn: Conn | null) => void) | undefined;
  let closed = false;
  const deliver = (conn: Conn) => {
    if (closed) return conn.close();
    if (waiter) {
      const w = waiter;
      waiter = undefined;
      w(conn);
    } else ready.push(conn);
  };
  const abort = new AbortController();
  const handler = (request: Request, info: Deno.ServeHandlerInfo): Response | Promise<Response> => {
    const url = new URL(request.url);
    if (url.pathname !== path) {
      return options.handler?.(request, info) ?? new Response("Not found", { status: 404 });
    }
    if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      return new Response("This path speaks trust-rpc/1 over WebSocket", {
        status: 426,
        headers: { upgrade: "websocket" },
      });
    }
    if (closed || ready.length >= backlog) {
      return new Response("Busy", { status: 503 });
    }
    // The peer's address must be read before the upgrade (the request is gone after it).
    const remote = info.remoteAddr as Deno.NetAddr;
    const { socket, response } = Deno.upgradeWebSocket(request, { idleTimeout: 0 });
    const host = remote.hostname.includes(":") ? `[${remote.hostname}]` : remote.hostname;
    socket.addEventListener("open", () => {
      deliver(
        new WebSocketConn(socket, {
          transport,
          remoteAddress: `${host}:${remote.port}`,
          remoteHost: remote.hostname,
        }),
      );
    }, { once: true });
    return response;
  };
  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = Deno.serve({
      hostname,
      port,
      signal: abort.signal,
      onListen: () => {},
      onError: () => new Response("Internal error", { status: 500 }),
      ...(options.tls ? { cert: options.tls.cert, key: options.tls.key } : {}),
    }, handler);
  } catch (err) {
    if (options.tls && !(err instanceof Deno.errors.AddrInUse)) {
      return Promise.reject(
        new TransportError("TLS_ERROR", `Cannot listen with this certificate and key: ${err}`),
      );
    }
    return Promise.reject(listenError(`${transport}://${hostname}:${port}`, err));
  }
  const address = formatAddress({
    transport,
    hostname: server.addr.hostname,
    port: server.addr.port,
    path,
  });
  const close = () => {
    if (closed) return;
    closed = true;
    abort.abort();
    server.finished.catch(() => {});
    for (const conn of ready.splice(0)) conn.close();
    const w = waiter;
    waiter = undefined;
    w?.(null);
  };
  return Promise.resolve({
    transport,
    address,
    accept(): Promise<Conn | null> {
      if (ready.length > 0) return Promise.resolve(ready.shift()!);
      if (closed) return Promise.resolve(null);
      if (waiter) return Promise.reject(new TypeError("One accept() at a time"));
      return new Promise((resolve) => waiter = resolve);
    },
    close,
    [Symbol.asyncDispose]() {
      close();
      return Promise.resolve();
    },
  });
}
