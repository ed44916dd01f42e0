/**
 * Helpers shared by the end-to-end benchmark (`deno task bench`): address parsing for the bench
 * servers, the "exit with the parent" rule, deadlines and statistics. Child processes are in
 * `procs.ts`.
 *
 * @module
 */

/** Where the TLS fixture certificates live (valid for 127.0.0.1, ::1 and localhost). */
export const FIXTURES = new URL("../tests/fixtures/", import.meta.url);

/** The transports of the raw-socket reference (and of @trust/rpc). */
export type Transport = "tcp" | "unix" | "tls";

/** The transports @trust/rpc is measured on: the raw ones and WebSocket (`ws://`). */
export type RpcTransport = Transport | "ws";

/** An address given to a bench server on its command line. */
export type BenchAddress =
  | { transport: "tcp" | "tls"; hostname: string; port: number }
  | { transport: "unix"; path: string };

/**
 * Parses `tcp://127.0.0.1:0`, `tls://127.0.0.1:0` or `unix:///abs/path`. Only loopback hosts
 * are accepted: the benchmark never touches another address.
 */
export function parseBenchAddress(text: string): BenchAddress {
  if (text.startsWith("unix://")) return { transport: "unix", path: text.slice("unix://".length) };
  const m = /^(tcp|tls):\/\/(127\.0\.0\.1|localhost|\[::1\]):(\d+)$/.exec(text);
  if (!m) throw new TypeError(`Not a loopback bench address: ${text}`);
  return {
    transport: m[1] as "tcp" | "tls",
    hostname: m[2] === "[::1]" ? "::1" : m[2],
    port: Number(m[3]),
  };
}

/** Reads the TLS fixtures. */
export function tlsFixtures(): { cert: string; key: string; ca: string } {
  return {
    cert: Deno.readTextFileSync(new URL("server.pem", FIXTURES)),
    key: Deno.readTextFileSync(new URL("server.key.pem", FIXTURES)),
    ca: Deno.readTextFileSync(new URL("ca.pem", FIXTURES)),
  };
}

/**
 * Server side: exit when the parent goes away (our stdin pipe closes) or on SIGTERM/SIGINT.
 * `cleanup` runs first, bounded to `graceMs`.
 */
export function exitWithParent(cleanup: () => Promise<void> | void, graceMs = 1000): void {
  let exiting = false;
  const exit = (code: number) => {
    if (exiting) return;
    exiting = true;
    const hard = setTimeout(() => Deno.exit(code), graceMs);
    Promise.resolve().then(cleanup).catch(() => {}).finally(() => {
      clearTimeout(hard);
      Deno.exit(code);
    });
  };
  (async () => {
    const buf = new Uint8Array(256);
    try {
      while ((await Deno.stdin.read(buf)) !== null) { /* ignore input */ }
    } catch { /* closed */ }
    exit(0);
  })();
  Deno.addSignalListener("SIGTERM", () => exit(0));
  Deno.addSignalListener("SIGINT", () => exit(0));
}

/** Rejects after `ms` with `message` unless `promise` settles first. */
export async function deadline<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(message)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

// ---- statistics -------------------------------------------------------------------------

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

/** Median of the values. */
export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** p50 and p99 of latencies (µs). */
export function latencyStats(lat: Float64Array): { p50: number; p99: number } {
  const s = lat.slice().sort();
  return { p50: percentile(s, 50), p99: percentile(s, 99) };
}
