/**
 * Plain TCP: {@link tcp} dials, {@link listenTcp} listens. `TCP_NODELAY` is set on every
 * connection, both sides, because the protocol is latency-bound request/response traffic.
 *
 * @module
 */

import { TransportError } from "../protocol/errors.ts";
import { formatAddress, quote } from "./address.ts";
import { SocketConn, SocketListener } from "./conn.ts";
import type { Conn, Dialer, Listener } from "./types.ts";
import { checkTimeout, connectDeadline } from "./deadline.ts";

export { checkTimeout, connectDeadline, DEFAULT_CONNECT_TIMEOUT } from "./deadline.ts";
export type { ConnectDeadline } from "./deadline.ts";

/** Default time allowed to open a connection (TCP connect plus TLS handshake), in ms. */

/** Options of {@link tcp}. */
export interface TcpOptions {
  /** Host name or IP address to dial (IPv6 with or without brackets). */
  hostname: string;
  /** Port, 1 to 65535. */
  port: number;
  /** Milliseconds allowed to connect; default {@link DEFAULT_CONNECT_TIMEOUT}. */
  connectTimeout?: number;
}

/** Options of {@link listenTcp}. */
export interface TcpListenOptions {
  /** Address to bind; default `127.0.0.1` (loopback only). Use `0.0.0.0` or `::` to expose. */
  hostname?: string;
  /** Port, 0 to 65535; 0 picks a free port (see {@link Listener.address}). */
  port: number;
}

/**
 * Checks a host name and removes IPv6 brackets.
 *
 * @param hostname the host as given
 * @returns the host without brackets
 * @throws {TransportError} `INVALID_ADDRESS` when empty or malformed
 */
export function checkHostname(hostname: string): string {
  const host = typeof hostname === "string" ? hostname.replace(/^\[(.*)\]$/, "$1") : "";
  if (host === "" || /[\s/?#@[\]]/.test(host)) {
    throw new TransportError("INVALID_ADDRESS", `Invalid hostname ${quote(String(hostname))}`);
  }
  return host;
}

/**
 * Checks a port number.
 *
 * @param port the port
 * @param allowZero true when listening (0 picks a free port)
 * @returns the port
 * @throws {TransportError} `INVALID_ADDRESS` when out of range
 */
export function checkPort(port: number, allowZero: boolean): number {
  if (!Number.isInteger(port) || port < (allowZero ? 0 : 1) || port > 65535) {
    throw new TransportError(
      "INVALID_ADDRESS",
      `Invalid port ${quote(String(port))}: expected an integer from ${allowZero ? 0 : 1} to 65535`,
    );
  }
  return port;
}

/** Says why a Deno connect failed, in words. */
export function describeConnectError(err: unknown): string {
  if (err instanceof Deno.errors.ConnectionRefused) return "connection refused";
  if (err instanceof Deno.errors.NotFound) return "no such socket file";
  if (err instanceof Deno.errors.PermissionDenied) return "permission denied";
  if (err instanceof Deno.errors.TimedOut) return "timed out";
  if (err instanceof Deno.errors.ConnectionReset) return "connection reset by the peer";
  return err instanceof Error ? err.message : String(err);
}

/**
 * Maps a `Deno.listen` failure to a clear error (`ADDRESS_IN_USE`, `INVALID_ADDRESS`); other
 * errors are returned unchanged.
 *
 * @param address the address being bound, as a URL string
 * @param err what `Deno.listen` threw
 * @returns the error to throw
 */
export function listenError(address: string, err: unknown): unknown {
  if (err instanceof Deno.errors.AddrInUse) {
    return new TransportError("ADDRESS_IN_USE", `Address ${address} is already in use`, {
      cause: err,
    });
  }
  if (err instanceof Deno.errors.AddrNotAvailable) {
    return new TransportError(
      "INVALID_ADDRESS",
      `Cannot listen on ${address}: the address is not available on this machine`,
      { cause: err },
    );
  }
  return err;
}

/** Wraps an accepted or dialed TCP connection, with `TCP_NODELAY` on. */
function wrapTcp(conn: Deno.TcpConn): Conn {
  try {
    conn.setNoDelay(true);
  } catch {
    // the socket is already dead: the first read or write will say so
  }
  return new SocketConn(conn, { transport: "tcp" });
}

/**
 * A dialer for plain TCP. Failures reject with `TransportError("CONNECT_FAILED")`: connection
 * refused, "timed out after N ms", or "aborted" (the caller's signal).
 *
 * @example Dial a server
 * ```ts
 * import { tcp } from "@trust/rpc/transports";
 * const dialer = tcp({ hostname: "127.0.0.1", port: 8888, connectTimeout: 5000 });
 * const conn = await dialer.dial();
 * await conn.write(new TextEncoder().encode("hello"));
 * conn.close();
 * ```
 *
 * @param options where to connect and how long to try
 * @returns the dialer
 */
export function tcp(options: TcpOptions): Dialer {
  const hostname = checkHostname(options.hostname);
  const port = checkPort(options.port, false);
  const timeout = checkTimeout(options.connectTimeout);
  const address = formatAddress({ transport: "tcp", hostname, port });
  return {
    transport: "tcp",
    address,
    async dial(dialOptions = {}) {
      const deadline = connectDeadline(timeout, dialOptions.signal, describeConnectError);
      let conn: Deno.TcpConn;
      try {
        conn = await Deno.connect({ hostname, port, transport: "tcp", signal: deadline.signal });
      } catch (err) {
        throw deadline.error(address, err);
      }
      return wrapTcp(conn);
    },
  };
}

/**
 * Listens for plain TCP connections.
 *
 * @example Accept connections
 * ```ts
 * import { listenTcp } from "@trust/rpc/transports";
 * const listener = listenTcp({ port: 0 });
 * console.log(listener.address); // tcp://127.0.0.1:40123
 * const conn = await listener.accept(); // null once closed
 * conn?.close();
 * listener.close();
 * ```
 *
 * @param options where to bind
 * @returns the listener
 * @throws {TransportError} `ADDRESS_IN_USE` or `INVALID_ADDRESS`
 */
export function listenTcp(options: TcpListenOptions): Listener {
  const hostname = checkHostname(options.hostname ?? "127.0.0.1");
  const port = checkPort(options.port, true);
  let listener: Deno.TcpListener;
  try {
    listener = Deno.listen({ hostname, port, transport: "tcp" });
  } catch (err) {
    throw listenError(formatAddress({ transport: "tcp", hostname, port }), err);
  }
  const { hostname: boundHost, port: boundPort } = listener.addr;
  return new SocketListener(listener, {
    transport: "tcp",
    address: formatAddress({ transport: "tcp", hostname: boundHost, port: boundPort }),
    wrap: (conn) => wrapTcp(conn as Deno.TcpConn),
  });
}
