/**
 * The opt-in Prometheus endpoint of the server CLI (`--metrics 127.0.0.1:9464`): a
 * `Deno.serve` HTTP listener where `GET /metrics` (or `HEAD`) returns the text exposition
 * format and every other request gets 404 (405 for other methods on `/metrics`).
 *
 * @module
 */

import { UsageError } from "./args.ts";

/** Content type of the Prometheus text exposition format. */
export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** A running metrics endpoint. */
export interface MetricsEndpoint extends AsyncDisposable {
  /** The URL to scrape, port 0 resolved (`http://127.0.0.1:9464/metrics`). */
  readonly url: string;
  /** Stops listening; resolves once the listener is closed. Idempotent. */
  close(): Promise<void>;
}

/**
 * Parses `HOST:PORT` (`127.0.0.1:9464`, `[::1]:9464`, `localhost:0`).
 *
 * @throws {UsageError} not a host and a port from 0 to 65535
 */
export function parseHostPort(value: string): { hostname: string; port: number } {
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(value);
  const port = match ? Number(match[3]) : NaN;
  if (!match || port > 65535) {
    throw new UsageError(`--metrics needs HOST:PORT (e.g. 127.0.0.1:9464), not ${value}`);
  }
  return { hostname: match[1] ?? match[2], port };
}

/**
 * Serves `render()` at `http://HOST:PORT/metrics`. Metrics are not authenticated: bind it to
 * loopback (or a trusted network) only.
 *
 * @param hostPort `HOST:PORT`; port 0 picks a free port (see {@link MetricsEndpoint.url})
 * @param render produces the metrics text on every scrape
 * @throws {UsageError} a malformed `hostPort`
 * @throws {Deno.errors.AddrInUse} the port is taken (and other listen errors)
 */
export function serveMetrics(hostPort: string, render: () => string): MetricsEndpoint {
  const { hostname, port } = parseHostPort(hostPort);
  const server = Deno.serve({
    hostname,
    port,
    onListen: () => {}, // the CLI prints its own line
    onError: () => new Response("Internal Server Error\n", { status: 500 }),
  }, (request) => {
    const path = new URL(request.url).pathname;
    if (path !== "/metrics") return new Response("Not Found\n", { status: 404 });
    if (request.method !== "GET" && request.method !== "HEAD") {
      return new Response("Method Not Allowed\n", { status: 405, headers: { allow: "GET, HEAD" } });
    }
    return new Response(request.method === "HEAD" ? null : render(), {
      headers: { "content-type": METRICS_CONTENT_TYPE, "cache-control": "no-store" },
    });
  });
  const addr = server.addr;
  const host = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
  let closing: Promise<void> | undefined;
  const close = () => closing ??= server.shutdown();
  return {
    url: `http://${host}:${addr.port}/metrics`,
    close,
    [Symbol.asyncDispose]: close,
  };
}
