/**
 * `deno run -A server.ts`: the demo server's command line. Loads `TRUST_ID` (environment, then
 * `./.env`), serves the demo methods, presence events and chat room (chat_room.ts) on every
 * listener, prints one `Serving on <address>` line per listener (and
 * `Metrics on <url>` with `--metrics HOST:PORT`), and shuts down gracefully on Ctrl+C or
 * SIGTERM (a second signal forces the exit).
 *
 * @module
 */

import { loadSecret } from "../env/secret_source.ts";
import { createLogger, type LogLevel } from "../protocol/logger.ts";
import type { Methods } from "../protocol/methods.ts";
import { parseArgs, UsageError } from "./args.ts";
import { type ChatServer, createChatRoom } from "./chat_room.ts";
import { demoServices, presenceEvents, type PresencePeer } from "./demo_services.ts";
import { type MetricsEndpoint, parseHostPort, serveMetrics } from "./metrics_endpoint.ts";
import { describeError, EXIT_CONNECT_FAILED, reportArgsFailure } from "./output.ts";

const HELP = `Usage: deno run -A server.ts [options]

Starts the @trust/rpc demo server.
Clients must hold the same TRUST_ID (environment variable, or TRUST_ID=… in ./.env).

Methods:
  greet(name)                    "Hello, <name>!"
  long_running_task(seconds=2)   waits, then reports how long (cancellable)
  time(count=5, interval_ms=1000)
                                 stream: count ticks {"timestamp": ISO 8601}, one per interval
                                 (client.ts stream time 3 500)
  echo(value)                    returns value unchanged
  health()                       {"status": "ok", "uptime_s": …}

Events (to the other peers; client.ts listen):
  peer_joined  {"id", "transport", "peers"}   a peer authenticated
  peer_left    {"id", "reason", "peers"}      a peer left (reason: error code or "closed")

Chat room (on every listener; client.ts chat / client.ts file):
  chat.join(name?)               joins as name (1-32 printable characters, made unique:
                                 alice-2 when alice is taken) or guest-<4 hex of the session>;
                                 returns {"name", "peers": [the other members' names]}
  event chat {"text"}            from a member (a non-member joins as its guest name): at most
                                 4096 bytes of UTF-8, else dropped and logged; control
                                 characters are replaced by U+FFFD
  event chat {"from", "text", "at"}
                                 to every member, the sender included (at: ISO 8601)
  event chat_joined / chat_left {"name"}
                                 to the other members when one joins or leaves

Options:
  --listen URL       tcp://host:port, tls://host:port, unix:///path, ws://host:port/path or
                     wss://host:port/path (repeatable)
                     default: tcp://127.0.0.1:8888
                     e.g. --listen tcp://127.0.0.1:8888 --listen unix:///tmp/trust-rpc.sock
  --tls-cert FILE    PEM certificate chain for tls:// and wss:// listeners
  --tls-key FILE     PEM private key for tls:// and wss:// listeners
  --log-level LEVEL  debug, info, warn, error or silent (default: info)
  --metrics HOST:PORT
                     serve Prometheus metrics at http://HOST:PORT/metrics
                     (unauthenticated: keep it on loopback, e.g. 127.0.0.1:9464)
  -h, --help         show this help

Generate a secret with: deno run -A client.ts keygen`;

/** The part of `serve()` the CLI uses. */
export type ServeFunction = (options: {
  listen: string[];
  secret: string;
  methods: Methods;
  tls?: { cert: string; key: string };
  logger: LogLevel;
  onConnect?: (peer: PresencePeer) => void;
  onDisconnect?: (peer: PresencePeer, reason: Error | undefined) => void;
}) => Promise<
  ChatServer & {
    readonly addresses: readonly string[];
    readonly peers: readonly unknown[];
    close(): Promise<void>;
    metricsText?(): string;
  }
>;

const LEVELS = ["debug", "info", "warn", "error", "silent"];

/** Runs the server CLI; resolves with the exit code once the server has stopped. */
export async function serverMain(args: string[], serve: ServeFunction): Promise<number> {
  let listen: string[];
  let level: LogLevel;
  let tls: { cert: string; key: string } | undefined;
  let metricsAt: string | undefined;
  try {
    const parsed = parseArgs(args, {
      collect: ["listen"],
      string: ["tls-cert", "tls-key", "log-level", "metrics"],
      boolean: ["help"],
    });
    if (parsed.flags.has("help")) {
      console.log(HELP);
      return 0;
    }
    if (parsed._.length > 0) throw new UsageError(`Unexpected argument ${parsed._[0]}`);
    listen = parsed.lists.listen.length > 0 ? parsed.lists.listen : ["tcp://127.0.0.1:8888"];
    level = (parsed.strings["log-level"] ?? "info") as LogLevel;
    if (!LEVELS.includes(level)) throw new UsageError(`Unknown log level ${level}`);
    const cert = parsed.strings["tls-cert"];
    const key = parsed.strings["tls-key"];
    if ((cert === undefined) !== (key === undefined)) {
      throw new UsageError("--tls-cert and --tls-key go together");
    }
    if (listen.some((a) => a.startsWith("tls:")) && cert === undefined) {
      throw new UsageError("A tls:// listener needs --tls-cert and --tls-key");
    }
    metricsAt = parsed.strings.metrics;
    if (metricsAt !== undefined) parseHostPort(metricsAt);
    if (cert !== undefined && key !== undefined) {
      tls = { cert: await Deno.readTextFile(cert), key: await Deno.readTextFile(key) };
    }
  } catch (err) {
    return reportArgsFailure(err, HELP);
  }
  let server;
  try {
    const { secret, warnings } = await loadSecret({ dotenv: true });
    for (const w of warnings) console.error(`warning: ${w}`);
    const presence = presenceEvents();
    const room = createChatRoom(createLogger({ level }));
    server = await serve({
      listen,
      secret,
      methods: { ...demoServices(), ...room.methods },
      tls,
      logger: level,
      onConnect: presence.onConnect,
      onDisconnect: presence.onDisconnect,
    });
    presence.attach(server);
    room.attach(server);
  } catch (err) {
    console.error(`error: ${describeError(err)}`);
    return EXIT_CONNECT_FAILED;
  }
  let metrics: MetricsEndpoint | undefined;
  if (metricsAt !== undefined) {
    const running = server;
    try {
      metrics = serveMetrics(metricsAt, () => running.metricsText?.() ?? "");
    } catch (err) {
      console.error(`error: cannot serve metrics on ${metricsAt}: ${describeError(err)}`);
      await server.close();
      return EXIT_CONNECT_FAILED;
    }
  }
  for (const address of server.addresses) console.log(`Serving on ${address}`);
  if (metrics !== undefined) console.log(`Metrics on ${metrics.url}`);
  const stopping = Promise.withResolvers<void>();
  let signals = 0;
  const onSignal = () => {
    if (++signals > 1) Deno.exit(130);
    stopping.resolve();
  };
  const names: Deno.Signal[] = ["SIGINT", "SIGTERM"];
  for (const name of names) Deno.addSignalListener(name, onSignal);
  await stopping.promise;
  await server.close();
  await metrics?.close();
  for (const name of names) Deno.removeSignalListener(name, onSignal);
  return 0;
}
