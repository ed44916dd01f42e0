/**
 * `deno run -A client.ts`: the client's command line — the seed's demo, one-off calls, secret
 * generation and the fingerprint operators compare when AUTH_FAILED appears.
 *
 * @module
 */

import { loadSecret } from "../env/secret_source.ts";
import { fingerprint, generateSecret, stretchSecret } from "../protocol/secret.ts";
import type { LogLevel } from "../protocol/logger.ts";
import type { Params } from "../protocol/session.ts";
import { parseArgs, parseMs } from "./args.ts";
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
  keygen                     print a new random TRUST_ID
  fingerprint                print the fingerprint of this machine's TRUST_ID (compare both sides)

Options:
  --connect URL      tcp://host:port, tls://host:port or unix:///path (default: tcp://127.0.0.1:8888)
  --ca FILE          PEM CA certificate that signs the server's certificate (tls://)
  --timeout MS       per-call timeout in milliseconds (default: 30000)
  --log-level LEVEL  debug, info, warn, error or silent (default: warn)
  -h, --help         show this help

TRUST_ID comes from the environment, or TRUST_ID=… in ./.env when the variable is not set.
Exit codes: 0 ok, 1 the call failed, 2 bad command line, 3 no secret / cannot connect or authenticate.`;

/** The part of a connected client the CLI uses. */
export interface CliClient {
  readonly address: string;
  readonly sessionId: string;
  call<T = unknown>(method: string, params?: Params): Promise<T>;
  close(): Promise<void>;
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
  level: LogLevel;
}

/** Runs the client CLI and resolves with the exit code. */
export async function clientMain(args: string[], connect: ConnectFunction): Promise<number> {
  let command: string;
  let rest: string[];
  let settings: Settings;
  try {
    const parsed = parseArgs(args, {
      string: ["connect", "ca", "timeout", "log-level"],
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
      level: (parsed.strings["log-level"] ?? "warn") as LogLevel,
    };
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
      const [method, ...jsonArgs] = rest;
      if (method === undefined) {
        console.error(`error: call needs a METHOD\n\n${HELP}`);
        return EXIT_USAGE;
      }
      let params: unknown[];
      try {
        params = jsonArgs.map((a) => JSON.parse(a));
      } catch {
        console.error(
          "error: every argument after METHOD must be JSON (quote strings: '\"Alice\"')",
        );
        return EXIT_USAGE;
      }
      return await withClient(connect, settings, (client) => runCall(client, method, params));
    }
    default:
      console.error(`error: Unknown command ${command}\n\n${HELP}`);
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
