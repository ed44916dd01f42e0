/**
 * `deno run -A client.ts`: the client's command line — the seed's demo, one-off calls,
 * streams and event listening (JSON lines on stdout), the seed's chat (interactive, or the
 * lines of a file; see chat_client.ts), secret generation and the fingerprint operators
 * compare when AUTH_FAILED appears.
 *
 * @module
 */

import { loadSecret } from "../env/secret_source.ts";
import { fingerprint, generateSecret, stretchSecret } from "../protocol/secret.ts";
import { checkEventName } from "../protocol/events.ts";
import type { LogLevel } from "../protocol/logger.ts";
import type { Params } from "../protocol/session.ts";
import { parseArgs, parseMs, UsageError } from "./args.ts";
import { messagesOf, nameProblem, runChat, runFile } from "./chat_client.ts";
import {
  describeError,
  EXIT_CALL_FAILED,
  EXIT_CONNECT_FAILED,
  EXIT_USAGE,
  reportArgsFailure,
  toJsonLine,
} from "./output.ts";

const HELP = `Usage: deno run -A client.ts [command] [options]

Commands:
  demo                       greet + long_running_task at once, then three failing calls (default)
  call METHOD [JSON ARG…]    call METHOD with the JSON args; prints the JSON result
  stream METHOD [JSON ARG…]  call the streaming METHOD; prints one JSON line per chunk and
                             exits 0 when the stream ends (Ctrl+C cancels it: exit 130)
                             e.g. stream time 3 500
  listen [EVENT…]            print the server's events (all of them when none is named), one
                             line each: {"event": NAME, "data": DATA}; runs until Ctrl+C or
                             SIGTERM (exit 0) or the connection is lost (exit 1)
                             e.g. listen peer_joined peer_left
  chat                       join the demo server's chat room and talk: type a line and Enter
                             to send it; 'exit' or Ctrl+D leaves (exit 0), Ctrl+C quits at
                             once (exit 130). Messages print as "[HH:MM:SS] NAME: TEXT" (yours
                             too, echoed by the server), others coming and going as
                             "* NAME joined" / "* NAME left". On a terminal: a "> " prompt and
                             a small line editor (Backspace, Ctrl+U clears, Ctrl+W deletes a
                             word). With stdin or stdout not a terminal (pipes): no prompt,
                             one message per line read from stdin, so the output holds only
                             the banner and chat lines
  file FILE                  join the chat and send FILE's lines, one message each (blank
                             lines skipped, a line 'exit' stops), print what comes back, and
                             exit 0 once all of them have been echoed (1 if not within
                             --timeout); the banner goes to stderr, chat lines to stdout
  keygen                     print a new random TRUST_ID
  fingerprint                print the fingerprint of this machine's TRUST_ID (compare both sides)

Options:
  --connect URL      tcp://host:port, tls://host:port, unix:///path or ws(s)://host:port/path
                     (default: tcp://127.0.0.1:8888)
                     e.g. --connect unix:///tmp/trust-rpc.sock, the Unix socket we document
                     (server.ts --listen unix:///tmp/trust-rpc.sock)
  --ca FILE          PEM CA certificate that signs the server's certificate (tls://)
  --timeout MS       per-call timeout in milliseconds (default: 30000; streams: none);
                     chat and file: how long to wait for the echo of the messages sent
                     (default: 10000)
  --name NAME        chat and file: the name to join as (1-32 printable characters; the
                     server adds -2, -3… when it is taken); default guest-<4 hex digits>
  --log-level LEVEL  debug, info, warn, error or silent (default: warn)
  -h, --help         show this help

TRUST_ID comes from the environment, or TRUST_ID=… in ./.env when the variable is not set.
Binary values print as {"$bytes": "<base64>"}.
Exit codes: 0 ok, 1 the call failed (or listen / chat lost the connection, or file's messages
were not echoed), 2 bad command line (a bad --name, a missing FILE), 3 no secret / cannot
connect or authenticate, 130 a stream or chat ended with Ctrl+C.`;

/** The part of a connected client the CLI uses. */
export interface CliClient {
  readonly address: string;
  readonly sessionId: string;
  /** Resolves when the connection is gone for good (its reason; `undefined` after close). */
  readonly closed: Promise<Error | undefined>;
  call<T = unknown>(method: string, params?: Params): Promise<T>;
  stream<T = unknown>(
    method: string,
    params?: Params,
    options?: { timeout?: number },
  ): CliStream<T>;
  on(name: string, listener: (data: unknown) => void): () => void;
  on(name: "*", listener: (name: string, data: unknown) => void): () => void;
  /** Sends the server an event. */
  emit(name: string, data?: unknown): void;
  close(): Promise<void>;
}

/** The part of a stream (`RpcStream`) the CLI uses. */
export interface CliStream<T> extends AsyncIterable<T> {
  /** Resolves `false` when the handler answered with a plain value instead of a stream. */
  readonly streaming?: Promise<boolean>;
  /** Cancels the call on the server. */
  cancel(reason?: unknown): void;
}

/** The part of `connect()` the CLI uses. */
export type ConnectFunction = (address: string, options: {
  secret: string;
  caCerts?: string[];
  timeout: number;
  logger: LogLevel;
  reconnect: false;
}) => Promise<CliClient>;

interface Settings {
  address: string;
  caCerts?: string[];
  timeout: number;
  /** `--timeout` when given (streams have no timeout otherwise). */
  streamTimeout?: number;
  /** chat and file: how long to wait for the echo of the messages sent (ms). */
  chatTimeout: number;
  /** chat and file: `--name`. */
  name?: string;
  level: LogLevel;
}

/** Exit code: a stream was cancelled with Ctrl+C (128 + SIGINT). */
const EXIT_INTERRUPTED = 130;

/** Runs the client CLI and resolves with the exit code. */
export async function clientMain(args: string[], connect: ConnectFunction): Promise<number> {
  let command: string;
  let rest: string[];
  let settings: Settings;
  try {
    const parsed = parseArgs(args, {
      string: ["connect", "ca", "timeout", "log-level", "name"],
      boolean: ["help"],
    });
    if (parsed.flags.has("help")) {
      console.log(HELP);
      return 0;
    }
    [command = "demo", ...rest] = parsed._;
    const ca = parsed.strings.ca;
    settings = {
      address: parsed.strings.connect ?? "tcp://127.0.0.1:8888",
      caCerts: ca === undefined ? undefined : [await Deno.readTextFile(ca)],
      timeout: parseMs("timeout", parsed.strings.timeout, 30_000),
      streamTimeout: parsed.strings.timeout === undefined
        ? undefined
        : parseMs("timeout", parsed.strings.timeout, 0),
      chatTimeout: parseMs("timeout", parsed.strings.timeout, 10_000),
      name: parsed.strings.name,
      level: (parsed.strings["log-level"] ?? "warn") as LogLevel,
    };
    if (settings.name !== undefined && command !== "chat" && command !== "file") {
      throw new UsageError("--name goes with chat and file only");
    }
    const problem = nameProblem(settings.name);
    if (problem !== undefined) throw new UsageError(problem);
  } catch (err) {
    return reportArgsFailure(err, HELP);
  }
  switch (command) {
    case "keygen":
      console.log(generateSecret());
      console.error(
        "Put it in the TRUST_ID environment variable (or TRUST_ID=… in .env) on both sides.",
      );
      return 0;
    case "fingerprint":
      return await printFingerprint();
    case "demo":
      return await withClient(connect, settings, runDemo);
    case "call": {
      const call = parseCall(command, rest);
      if (typeof call === "number") return call;
      return await withClient(
        connect,
        settings,
        (client) => runCall(client, call.method, call.params),
      );
    }
    case "stream": {
      const call = parseCall(command, rest);
      if (typeof call === "number") return call;
      const timeout = settings.streamTimeout;
      return await withClient(
        connect,
        settings,
        (client) => runStream(client, call.method, call.params, timeout),
      );
    }
    case "listen": {
      for (const name of rest) {
        if (name === "*") continue;
        try {
          checkEventName(name);
        } catch (err) {
          console.error(`error: ${(err as Error).message}\n\n${HELP}`);
          return EXIT_USAGE;
        }
      }
      return await withClient(connect, settings, (client) => runListen(client, rest));
    }
    case "chat": {
      if (rest.length > 0) {
        console.error(`error: Unexpected argument ${rest[0]}\n\n${HELP}`);
        return EXIT_USAGE;
      }
      const options = { name: settings.name, timeout: settings.chatTimeout };
      return await withClient(connect, settings, (client) => runChat(client, options));
    }
    case "file": {
      const [file, ...extra] = rest;
      if (file === undefined || extra.length > 0) {
        const why = file === undefined ? "file needs a FILE" : `Unexpected argument ${extra[0]}`;
        console.error(`error: ${why}\n\n${HELP}`);
        return EXIT_USAGE;
      }
      let content: string;
      try {
        content = await Deno.readTextFile(file);
      } catch (err) {
        console.error(`error: cannot read ${file}: ${describeError(err)}`);
        return EXIT_USAGE;
      }
      const options = { name: settings.name, timeout: settings.chatTimeout, file };
      return await withClient(
        connect,
        settings,
        (client) => runFile(client, options, messagesOf(content)),
      );
    }
    default:
      console.error(`error: Unknown command ${command}\n\n${HELP}`);
      return EXIT_USAGE;
  }
}

/**
 * METHOD and its JSON args for `call` and `stream`; an exit code (usage, the message printed)
 * when they are missing or not JSON.
 */
function parseCall(
  command: string,
  rest: string[],
): { method: string; params: unknown[] } | number {
  const [method, ...jsonArgs] = rest;
  if (method === undefined) {
    console.error(`error: ${command} needs a METHOD\n\n${HELP}`);
    return EXIT_USAGE;
  }
  try {
    return { method, params: jsonArgs.map((a) => JSON.parse(a)) };
  } catch {
    console.error(
      "error: every argument after METHOD must be JSON (quote strings: '\"Alice\"')",
    );
    return EXIT_USAGE;
  }
}

async function printFingerprint(): Promise<number> {
  try {
    const { secret } = await loadSecret({ dotenv: true });
    console.log(await fingerprint(await stretchSecret(secret)));
    return 0;
  } catch (err) {
    console.error(`error: ${describeError(err)}`);
    return EXIT_CONNECT_FAILED;
  }
}

async function withClient(
  connect: ConnectFunction,
  settings: Settings,
  run: (client: CliClient) => Promise<number>,
): Promise<number> {
  let client: CliClient;
  try {
    const { secret, warnings } = await loadSecret({ dotenv: true });
    for (const w of warnings) console.error(`warning: ${w}`);
    client = await connect(settings.address, {
      secret,
      caCerts: settings.caCerts,
      timeout: settings.timeout,
      logger: settings.level,
      // A one-shot command fails fast rather than waiting for a server to come back.
      reconnect: false,
    });
  } catch (err) {
    console.error(`error: ${describeError(err)}`);
    return EXIT_CONNECT_FAILED;
  }
  try {
    return await run(client);
  } finally {
    await client.close();
  }
}

async function runCall(client: CliClient, method: string, params: unknown[]): Promise<number> {
  try {
    console.log(toJsonLine(await client.call(method, params)));
    return 0;
  } catch (err) {
    console.error(`error: ${describeError(err)}`);
    return EXIT_CALL_FAILED;
  }
}

/**
 * Prints each chunk of the stream as one JSON line (the stream's final value is not printed).
 * Ctrl+C cancels the call on the server and exits 130.
 */
async function runStream(
  client: CliClient,
  method: string,
  params: unknown[],
  timeout: number | undefined,
): Promise<number> {
  let interrupted = false;
  let stream: CliStream<unknown> | undefined;
  const onInterrupt = () => {
    interrupted = true;
    // Sends CANCEL: the handler's signal aborts (a generator's `finally` runs); the loop
    // below ends at once.
    stream?.cancel(new Error("Interrupted"));
  };
  Deno.addSignalListener("SIGINT", onInterrupt);
  try {
    stream = client.stream(method, params, timeout === undefined ? {} : { timeout });
    for await (const chunk of stream) {
      if (interrupted) break;
      console.log(toJsonLine(chunk));
    }
    if (interrupted) return EXIT_INTERRUPTED;
    if (stream.streaming !== undefined && !(await stream.streaming)) {
      console.error(`warning: '${method}' answered with a single value, not a stream: use call`);
    }
    return 0;
  } catch (err) {
    if (interrupted) return EXIT_INTERRUPTED;
    console.error(`error: ${describeError(err)}`);
    return EXIT_CALL_FAILED;
  } finally {
    Deno.removeSignalListener("SIGINT", onInterrupt);
  }
}

/**
 * Prints the named events (all of them when none is named, or with `*`) as
 * `{"event": NAME, "data": DATA}` lines until SIGINT/SIGTERM (0) or the connection is lost (1).
 */
async function runListen(client: CliClient, names: string[]): Promise<number> {
  const print = (event: string, data: unknown) =>
    console.log(toJsonLine({ event, data: data ?? null }));
  const off = names.length === 0 || names.includes("*")
    ? [client.on("*", (name: string, data: unknown) => print(name, data))]
    : [...new Set(names)].map((name) => client.on(name, (data: unknown) => print(name, data)));
  const stop = Promise.withResolvers<void>();
  const onSignal = () => stop.resolve();
  const signals: Deno.Signal[] = ["SIGINT", "SIGTERM"];
  for (const signal of signals) Deno.addSignalListener(signal, onSignal);
  try {
    const lost = await Promise.race([
      stop.promise.then(() => undefined),
      client.closed.then((reason) => ({ reason })),
    ]);
    if (lost === undefined) return 0;
    const why = lost.reason === undefined ? "the server closed it" : describeError(lost.reason);
    console.error(`error: connection lost: ${why}`);
    return EXIT_CALL_FAILED;
  } finally {
    for (const signal of signals) Deno.removeSignalListener(signal, onSignal);
    for (const remove of off) remove();
  }
}

/** The seed's demo: two calls at once, then calls that must fail (missing method, bad params). */
async function runDemo(client: CliClient): Promise<number> {
  console.log(`Connected to ${client.address} (session ${client.sessionId.slice(0, 16)})`);
  const [greeting, task] = await Promise.all([
    client.call<string>("greet", ["Alice"]),
    client.call<string>("long_running_task", [2]),
  ]);
  console.log(`Async 'greet' result: ${greeting}`);
  console.log(`Async 'long_running_task' result: ${task}`);
  let ok = true;
  const failing = [
    ["non_existent_function", []],
    ["greet", [123]],
    ["long_running_task", ["soon"]],
  ] as const;
  for (const [method, params] of failing) {
    try {
      await client.call(method, [...params]);
      console.log(`Error test FAILED: '${method}' did not fail`);
      ok = false;
    } catch (err) {
      console.log(`Error test successful: ${describeError(err)}`);
    }
  }
  return ok ? 0 : EXIT_CALL_FAILED;
}
