/**
 * TLS over TCP: {@link tls} dials (with the handshake done under the connect timeout),
 * {@link listenTls} listens and hands out connections before their handshake. Hostname
 * verification is on unless the caller explicitly asks for the insecure option; there is never
 * a fallback to plaintext.
 *
 * Deno 2.9.6 limits, measured:
 * - Connections accepted by `Deno.listenTls` cannot get `TCP_NODELAY` (a `TlsConn` has no
 *   `setNoDelay`); only the dialing side has it. Write each message in one call.
 * - Closing a `TlsConn` before its handshake completes rejects the pending `handshake()` at once,
 *   but Deno's background handshake task keeps the socket (and its file descriptor) open until
 *   the peer sends something or disconnects. A silent client therefore holds a descriptor after
 *   the server gave up on it: cap pre-handshake connections per peer and in total.
 *
 * @module
 */

import { TransportError } from "../protocol/errors.ts";
import { formatAddress } from "./address.ts";
import { SocketConn, SocketListener } from "./conn.ts";
import {
  checkHostname,
  checkPort,
  checkTimeout,
  connectDeadline,
  describeConnectError,
  listenError,
  type TcpListenOptions,
  type TcpOptions,
} from "./tcp.ts";
import type { Dialer, Listener } from "./types.ts";

/** Options of {@link tls}. */
export interface TlsOptions extends TcpOptions {
  /** Extra trusted CA certificates (PEM), added to the default roots. */
  caCerts?: string[];
  /**
   * INSECURE: accept a certificate that is not valid for `hostname` (the chain is still
   * verified). Only for tests and known servers.
   */
  insecureSkipHostnameVerification?: boolean;
}

/** Options of {@link listenTls}. */
export interface TlsListenOptions extends TcpListenOptions {
  /** Certificate chain (PEM). */
  cert: string;
  /** Private key (PEM: PKCS#8, RSA or EC). */
  key: string;
}

/**
 * Turns a TLS handshake failure into a `TransportError("TLS_ERROR")` with a clear message.
 *
 * @param err what Deno's `handshake()` rejected with
 * @param side `client` when we verified the peer's certificate, `server` otherwise
 * @param peer the peer, for the message (`tls://localhost:8443` or `127.0.0.1:40122`)
 * @param hostname the name the certificate was checked against (client side)
 * @returns the error to throw
 */
export function tlsError(
  err: unknown,
  side: "client" | "server",
  peer: string,
  hostname = "",
): TransportError {
  const text = err instanceof Error ? err.message : String(err);
  let why: string;
  if (/UnknownIssuer/.test(text)) {
    why = "certificate is signed by an unknown CA: pass the CA with --ca / caCerts";
  } else if (/not valid for name/.test(text)) {
    why = `certificate is not valid for hostname "${hostname}"`;
  } else if (/certificate expired|\bExpired\b/.test(text)) {
    why = "certificate has expired";
  } else if (/NotValidYet|not valid before/.test(text)) {
    why = "certificate is not valid yet (check the clock)";
  } else if (/InvalidContentType|corrupt message/.test(text)) {
    why = side === "client"
      ? "the server does not speak TLS (is it a tcp:// address?)"
      : "the client does not speak TLS";
  } else if (/received fatal alert/.test(text)) {
    why = side === "client"
      ? `the server refused the handshake (${text})`
      : `the client rejected the handshake (${text})`;
  } else if (
    err instanceof Deno.errors.UnexpectedEof || err instanceof Deno.errors.ConnectionReset
  ) {
    why = `the ${side === "client" ? "server" : "client"} closed the connection`;
  } else {
    why = text;
  }
  const message = side === "client"
    ? `TLS handshake with ${peer} failed: ${why}`
    : `TLS handshake with client ${peer} failed: ${why}`;
  return new TransportError("TLS_ERROR", message, { cause: err });
}

/** Wraps a TLS connection; `peer` names the server (client side) or defaults to the client. */
function wrapTls(conn: Deno.TlsConn, side: "client" | "server", peer?: string, hostname = "") {
  const wrapped: SocketConn = new SocketConn(conn, {
    transport: "tls",
    handshake: () =>
      conn.handshake().then(
        () => {},
        (err) => {
          throw tlsError(err, side, peer ?? wrapped.remoteAddress, hostname);
        },
      ),
  });
  return wrapped;
}

/**
 * A dialer for TLS. `dial()` connects and completes the TLS handshake under the connect
 * timeout. Network failures, the timeout and aborts reject with `CONNECT_FAILED`; certificate
 * problems reject with `TLS_ERROR` (unknown CA, wrong hostname, expired: distinct messages).
 *
 * @example Dial with a private CA
 * ```ts
 * import { tls } from "@trust/rpc/transports";
 * const dialer = tls({
 *   hostname: "localhost",
 *   port: 8443,
 *   caCerts: [await Deno.readTextFile("ca.pem")],
 * });
 * const conn = await dialer.dial(); // handshake done
 * conn.close();
 * ```
 *
 * @param options where to connect, what to trust, how long to try
 * @returns the dialer
 */
export function tls(options: TlsOptions): Dialer {
  const hostname = checkHostname(options.hostname);
  const port = checkPort(options.port, false);
  const timeout = checkTimeout(options.connectTimeout);
  const address = formatAddress({ transport: "tls", hostname, port });
  const startOptions: Deno.StartTlsOptions = { hostname };
  if (options.caCerts !== undefined) startOptions.caCerts = [...options.caCerts];
  if (options.insecureSkipHostnameVerification === true) {
    startOptions.unsafelyDisableHostnameVerification = true;
  }
  return {
    transport: "tls",
    address,
    async dial(dialOptions = {}) {
      const deadline = connectDeadline(timeout, dialOptions.signal, describeConnectError);
      let tcpConn: Deno.TcpConn;
      try {
        tcpConn = await Deno.connect({ hostname, port, transport: "tcp", signal: deadline.signal });
      } catch (err) {
        throw deadline.error(address, err);
      }
      // connect + startTls rather than connectTls: only a TcpConn has setNoDelay.
      let tlsConn: Deno.TlsConn;
      try {
        tcpConn.setNoDelay(true);
        tlsConn = await Deno.startTls(tcpConn, startOptions);
      } catch (err) {
        try {
          tcpConn.close();
        } catch { /* consumed by startTls */ }
        throw tlsError(err, "client", address, hostname);
      }
      const conn = wrapTls(tlsConn, "client", address, hostname);
      const onAbort = () => conn.close(); // closing interrupts the handshake
      deadline.signal.addEventListener("abort", onAbort, { once: true });
      try {
        if (deadline.signal.aborted) onAbort();
        await conn.handshake();
      } catch (err) {
        conn.close();
        throw deadline.signal.aborted ? deadline.error(address, err) : err;
      } finally {
        deadline.signal.removeEventListener("abort", onAbort);
      }
      return conn;
    },
  };
}

/**
 * Listens for TLS connections. `accept()` returns each connection before its TLS handshake:
 * call `conn.handshake()` under a deadline (closing the connection interrupts it), so a client
 * that connects and sends nothing cannot stall the server (its socket may linger: see the module
 * doc). A failed handshake rejects with `TLS_ERROR` and closes the connection.
 *
 * @example Serve TLS
 * ```ts
 * import { listenTls } from "@trust/rpc/transports";
 * const listener = listenTls({
 *   port: 8443,
 *   cert: await Deno.readTextFile("server.pem"),
 *   key: await Deno.readTextFile("server.key.pem"),
 * });
 * const conn = await listener.accept();
 * if (conn) {
 *   const timer = setTimeout(() => conn.close(), 5000);
 *   await conn.handshake().finally(() => clearTimeout(timer));
 * }
 * listener.close();
 * ```
 *
 * @param options where to bind, and the certificate chain and key (PEM)
 * @returns the listener
 * @throws {TransportError} `TLS_ERROR` for an unusable cert or key, `ADDRESS_IN_USE`,
 *   `INVALID_ADDRESS`
 */
export function listenTls(options: TlsListenOptions): Listener {
  const hostname = checkHostname(options.hostname ?? "127.0.0.1");
  const port = checkPort(options.port, true);
  const address = formatAddress({ transport: "tls", hostname, port });
  if (typeof options.cert !== "string" || typeof options.key !== "string") {
    throw new TypeError(`Cannot listen on ${address}: cert and key (PEM strings) are required`);
  }
  let listener: Deno.TlsListener;
  try {
    listener = Deno.listenTls({
      hostname,
      port,
      transport: "tcp",
      cert: options.cert,
      key: options.key,
    });
  } catch (err) {
    const text = err instanceof Error ? err.message : String(err);
    if (!(err instanceof Deno.errors.InvalidData) && !/cert|key/i.test(text)) {
      throw listenError(address, err);
    }
    throw new TransportError("TLS_ERROR", `Cannot use the TLS certificate or key: ${text}`, {
      cause: err,
    });
  }
  const { hostname: boundHost, port: boundPort } = listener.addr;
  return new SocketListener(listener, {
    transport: "tls",
    address: formatAddress({ transport: "tls", hostname: boundHost, port: boundPort }),
    wrap: (conn) => wrapTls(conn as Deno.TlsConn, "server"),
  });
}
