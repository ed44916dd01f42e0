/**
 * Shared helpers for end-to-end tests over real loopback sockets: a canary secret, TLS
 * fixtures, a log capture, and `startServer()` for each transport of the matrix.
 */
import { connect, type ConnectOptions } from "../client.ts";
import type { LogLevel } from "../protocol/logger.ts";
import { createLogger, type Logger } from "../protocol/logger.ts";
import { serve, type ServeOptions, type Server } from "../server.ts";

/** A canary secret: it must never show up in any log, error or wire capture. */
export const CANARY_SECRET = `canary-${crypto.randomUUID()}-do-not-leak`;

const fixtures = new URL("./fixtures/", import.meta.url);

/** PEM files of the test CA (see tests/fixtures/README.md). */
export const TLS = {
  ca: Deno.readTextFileSync(new URL("ca.pem", fixtures)),
  cert: Deno.readTextFileSync(new URL("server.pem", fixtures)),
  key: Deno.readTextFileSync(new URL("server.key.pem", fixtures)),
};

/** Transports of the end-to-end matrix. */
export type MatrixTransport = "tcp" | "tcp6" | "tls" | "unix" | "ws" | "wss";

/** True when IPv6 loopback can be bound on this machine. */
export const HAS_IPV6 = (() => {
  try {
    Deno.listen({ hostname: "::1", port: 0 }).close();
    return true;
  } catch {
    return false;
  }
})();

/** The matrix for this machine (`tcp6` only when IPv6 loopback works). */
export const MATRIX: MatrixTransport[] = HAS_IPV6
  ? ["tcp", "tcp6", "tls", "unix", "ws", "wss"]
  : ["tcp", "tls", "unix", "ws", "wss"];

/** A logger that keeps every line (for canary and log-count checks). */
export function captureLogger(level: LogLevel = "debug"): Logger & { lines: string[] } {
  const lines: string[] = [];
  const logger = createLogger({ level, sink: (_, line) => lines.push(line) });
  return Object.assign(logger, { lines });
}

/** A listen address on port 0 (or a fresh temp-dir socket) for `transport`. */
export async function listenAddress(transport: MatrixTransport): Promise<string> {
  switch (transport) {
    case "tcp":
      return "tcp://127.0.0.1:0";
    case "tcp6":
      return "tcp://[::1]:0";
    case "tls":
      return "tls://127.0.0.1:0";
    case "unix": {
      const dir = await Deno.makeTempDir({ prefix: "trust-rpc-" });
      return `unix://${dir}/s.sock`;
    }
    case "ws":
      return "ws://127.0.0.1:0/rpc";
    case "wss":
      return "wss://127.0.0.1:0/rpc";
  }
}

/** A started server plus `connect()` preconfigured for it; disposing closes both. */
export interface TestServer extends AsyncDisposable {
  server: Server;
  address: string;
  logs: string[];
  connect(options?: ConnectOptions): ReturnType<typeof connect>;
}

/** Starts a server for `transport` with the canary secret and a captured log. */
export async function startServer(
  transport: MatrixTransport,
  options: Omit<ServeOptions, "listen"> = {},
): Promise<TestServer> {
  const logger = captureLogger();
  const server = await serve({
    secret: CANARY_SECRET,
    logger,
    tls: { cert: TLS.cert, key: TLS.key },
    ...options,
    listen: await listenAddress(transport),
  });
  const address = server.addresses[0];
  return {
    server,
    address,
    logs: logger.lines,
    connect: (o = {}) =>
      connect(address, { secret: CANARY_SECRET, caCerts: [TLS.ca], logger: "silent", ...o }),
    async [Symbol.asyncDispose]() {
      await server.close({ timeout: 1000 });
      if (address.startsWith("unix://")) {
        await Deno.remove(address.slice("unix://".length).replace(/\/[^/]+$/, ""), {
          recursive: true,
        }).catch(() => {});
      }
    },
  };
}

/** Options of {@link denoCommand}. */
export interface DenoCommandOptions {
  /** Extra environment (the rest is cleared unless `inheritEnv`). */
  env?: Record<string, string>;
  /** Keep this process's environment (e.g. for `deno check`, which needs the cache). */
  inheritEnv?: boolean;
  /** Working directory. */
  cwd?: string;
  /** Kills the child when it aborts (bound every child). */
  signal?: AbortSignal;
  /** `"piped"` to write to the child's stdin; closed (`"null"`) by default. */
  stdin?: "null" | "piped";
}

/**
 * A `deno …args` child with a clean environment plus `NO_COLOR`, output piped, and stdin closed
 * unless `stdin: "piped"`.
 */
export function denoCommand(args: string[], options: DenoCommandOptions = {}): Deno.Command {
  return new Deno.Command(Deno.execPath(), {
    args,
    env: { NO_COLOR: "1", ...options.env },
    clearEnv: !options.inheritEnv,
    cwd: options.cwd,
    stdin: options.stdin ?? "null",
    stdout: "piped",
    stderr: "piped",
    signal: options.signal,
  });
}
