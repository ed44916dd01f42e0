/**
 * Command-line options of `deno task bench` (`bench/run.ts`).
 *
 * @module
 */

import type { RpcTransport } from "./common.ts";

/** Every scenario, in the order they run. `pipe0` is opt-in. */
export const ALL_SCENARIOS = [
  "seq",
  "pipe100",
  "pipe1000",
  "pipe0",
  "stream",
  "bulk",
  "mem",
  "hs",
] as const;
/** A scenario name. */
export type Scenario = typeof ALL_SCENARIOS[number];

const DEFAULT_SCENARIOS: Scenario[] = [
  "seq",
  "pipe100",
  "pipe1000",
  "stream",
  "bulk",
  "mem",
  "hs",
];

/** How the peers are handled. */
export type PeersMode = "auto" | "install" | "no";

/** The parsed options. */
export interface Options {
  /** Smoke run: small counts, 1 rep, peers only when already installed. */
  quick: boolean;
  /** Reps per cell (after one warm-up). */
  reps: number;
  /** Transports measured (`ws` only for `seq`). */
  transports: RpcTransport[];
  /** Scenarios measured. */
  scenarios: Scenario[];
  /** Write every rep here as JSON. */
  json?: string;
  /** Hard limit of the whole run (s). */
  maxSeconds: number;
  /** auto: full run installs the peers, quick run uses them when installed; no: skip. */
  peers: PeersMode;
  /** The peer harness (`run.sh`, `*_client.*`). */
  peersDir: string;
  /** Where the peers are installed from npm (`ANCHORS_DIR`). */
  anchorsDir: string;
  /** Idle connection counts of `mem`. */
  memLevels: number[];
  /** Settling time before each RSS reading of `mem` (ms). */
  memSettleMs: number;
  /** The arguments as given. */
  argv: string[];
}

export const USAGE = `deno task bench [options]          (= deno run -A bench/run.ts)

  --quick               smoke run (< 60 s): small counts, 1 rep; the peers run only if
                        already installed (see --install-peers)
  --reps=N              reps per cell after a warm-up (default 5, quick 1)
  --transports=LIST     tcp,unix,tls,ws (default all; ws is measured by seq only; mem and
                        hs run over tcp)
  --scenarios=LIST      seq,pipe100,pipe1000,stream,bulk,mem,hs (default all; opt-in:
                        pipe0 = 1000 in flight with the client's timeout: 0; "pipe" =
                        pipe100,pipe1000)
  --json=FILE           write every rep's value (and the peers' raw lines) to FILE
  --max-seconds=N       hard limit of the whole run (default 900, quick 60); steps that
                        would not fit are skipped and said so
  --no-peers            skip the peers (naive JSON-RPC, gRPC-js, capnweb)
  --install-peers       install the pinned peers from npm even in a quick run
  --peers-dir=DIR       the peer harness (default ../shared/bench/peers from the repo root)
  --mem-levels=LIST     idle connections of mem (default 1000,5000; quick 50,200)
  --mem-settle-ms=N     settling time before each RSS reading (default 1500; quick 500)
  --help                this text

Environment: ANCHORS_DIR (default /tmp/anchors) is where the peers are installed.`;

/**
 * Parses the arguments.
 *
 * @throws {TypeError} an unknown option or a bad value (the message says which)
 */
export function parseOptions(args: string[], repoRoot: URL): Options {
  const known = new Set([
    "quick",
    "reps",
    "transports",
    "scenarios",
    "json",
    "max-seconds",
    "no-peers",
    "install-peers",
    "peers-dir",
    "mem-levels",
    "mem-settle-ms",
    "help",
  ]);
  const values = new Map<string, string>();
  for (const a of args) {
    const m = /^--([a-z0-9-]+)(?:=(.*))?$/.exec(a);
    if (!m || !known.has(m[1])) throw new TypeError(`Unknown option ${a}`);
    values.set(m[1], m[2] ?? "");
  }
  const quick = values.has("quick");
  const num = (name: string, def: number, min: number): number => {
    const v = values.get(name);
    if (v === undefined) return def;
    const n = Number(v);
    if (!Number.isFinite(n) || n < min) throw new TypeError(`--${name} must be a number ≥ ${min}`);
    return n;
  };
  const list = <T extends string>(name: string, def: T[], allowed?: readonly string[]): T[] => {
    const v = values.get(name);
    if (v === undefined) return def;
    const out = v.split(",").map((x) => x.trim()).filter(Boolean);
    for (const x of out) {
      if (allowed && !allowed.includes(x)) {
        throw new TypeError(`--${name}: unknown ${x} (use ${allowed.join(", ")})`);
      }
    }
    return [...new Set(out)] as T[];
  };
  const scenarioNames = list<Scenario | "pipe">("scenarios", DEFAULT_SCENARIOS, [
    ...ALL_SCENARIOS,
    "pipe",
  ]).flatMap((s): Scenario[] => s === "pipe" ? ["pipe100", "pipe1000"] : [s]);
  const scenarios = ALL_SCENARIOS.filter((s) => scenarioNames.includes(s));
  const memLevels = list<string>("mem-levels", quick ? ["50", "200"] : ["1000", "5000"])
    .map(Number);
  if (memLevels.some((n) => !Number.isInteger(n) || n < 1 || n > 20_000)) {
    throw new TypeError("--mem-levels must be integers from 1 to 20000");
  }
  memLevels.sort((a, b) => a - b);
  const peers: PeersMode = values.has("no-peers")
    ? "no"
    : values.has("install-peers")
    ? "install"
    : "auto";
  return {
    quick,
    reps: Math.floor(num("reps", quick ? 1 : 5, 1)),
    transports: list<RpcTransport>("transports", ["tcp", "unix", "tls", "ws"], [
      "tcp",
      "unix",
      "tls",
      "ws",
    ]),
    scenarios,
    json: values.get("json") || undefined,
    maxSeconds: num("max-seconds", quick ? 60 : 900, 10),
    peers,
    peersDir: values.get("peers-dir") ||
      new URL("../shared/bench/peers", repoRoot).pathname.replace(/\/$/, ""),
    anchorsDir: Deno.env.get("ANCHORS_DIR") || "/tmp/anchors",
    memLevels,
    memSettleMs: num("mem-settle-ms", quick ? 500 : 1500, 0),
    argv: args,
  };
}
