/**
 * End-to-end benchmark of @trust/rpc against the raw-socket reference, in one sitting:
 *
 *     deno task bench                 # full run (~3 min): 5 reps per scenario, medians
 *     deno task bench --quick         # smoke run (~10 s): small counts, 1 rep
 *     deno task bench --transports=tcp,unix --scenarios=seq,pipe --reps=3 --json=out.json
 *
 * Options: `--quick`, `--reps=N` (default 5, quick 1), `--transports=tcp,unix,tls`,
 * `--scenarios=seq,pipe,bulk` (add `pipe0`: pipelined with the client's `timeout: 0`),
 * `--json=FILE` (every rep's value), `--max-seconds=N` (hard limit, default 480, quick 60).
 *
 * It generates a random TRUST_ID, spawns `bench/server.ts` (@trust/rpc, `echo(x) → x`) and
 * `bench/raw_echo.ts` (4-byte length-prefixed echo) as separate processes listening on
 * loopback TCP, a Unix socket and TLS, and measures per transport:
 *
 * - seq:  sequential `echo` of a 64-character string → calls/s, p50/p99 µs;
 *         raw: 64-byte frame ping-pong.
 * - pipe: `echo` of the same string with 1000 calls in flight (refilled as they complete) →
 *         calls/s; raw: 100-byte frames with 1000 in flight, written coalesced (everything the
 *         window allows in one write) and, as a second reference, one write per frame.
 * - bulk: `echo` of a 1 MiB Uint8Array (raw bytes on the wire), 4 in flight → MB/s
 *         (10^6 bytes/s, one direction); raw: 1 MiB frames, 4 in flight.
 *
 * Each rep of a scenario runs on a fresh connection; the reps of @trust/rpc and raw alternate
 * so both see the same machine weather. Every loop stops at its count or its time limit,
 * whichever comes first (a cell marked † hit the time limit), and the whole run has a hard
 * limit. The servers are stopped at the end, on error too, and exit by themselves when this
 * process goes away.
 *
 * @module
 */

import { connect, generateSecret } from "../mod.ts";
import type { Client } from "../client.ts";
import {
  deadline,
  latencyStats,
  median,
  parseBenchAddress,
  type ServerProcess,
  spawnServer,
  tlsFixtures,
  type Transport,
} from "./common.ts";
import { rawConnect, rawPingPong, rawPipeline } from "./raw.ts";

// ---- options --------------------------------------------------------------------------

function option(name: string): string | undefined {
  const prefix = `--${name}=`;
  return Deno.args.find((a) => a.startsWith(prefix))?.slice(prefix.length);
}

const QUICK = Deno.args.includes("--quick");
const REPS = Number(option("reps") ?? (QUICK ? 1 : 5));
const TRANSPORTS = (option("transports") ?? "tcp,unix,tls").split(",") as Transport[];
const SCENARIOS = (option("scenarios") ?? "seq,pipe,bulk").split(",");
const JSON_OUT = option("json");
/** Hard limit of the whole run (ms). */
const HARD_LIMIT_MS = Number(option("max-seconds") ?? (QUICK ? 60 : 480)) * 1000;

/** Count and time limit of one rep. */
interface Bound {
  n: number;
  ms: number;
}
const B = (n: number, ms: number): Bound => ({ n, ms });
/** [warm-up, measured] bounds per scenario and side. */
const PLAN = QUICK
  ? {
    seq: { rpc: [B(500, 1000), B(2_000, 2000)], raw: [B(500, 1000), B(2_000, 2000)] },
    pipe: { rpc: [B(5_000, 1000), B(20_000, 2000)], raw: [B(20_000, 1000), B(200_000, 1000)] },
    pipe1: { raw: [B(5_000, 1000), B(20_000, 1000)] },
    bulk: { rpc: [B(8, 1000), B(32, 2000)], raw: [B(16, 1000), B(128, 1000)] },
  }
  : {
    seq: { rpc: [B(3_000, 2000), B(10_000, 4000)], raw: [B(3_000, 2000), B(20_000, 3000)] },
    pipe: {
      rpc: [B(30_000, 2000), B(150_000, 4000)],
      raw: [B(100_000, 1000), B(2_000_000, 2000)],
    },
    pipe1: { raw: [B(20_000, 1000), B(150_000, 2500)] },
    bulk: { rpc: [B(16, 2000), B(128, 3000)], raw: [B(64, 1000), B(1_024, 2000)] },
  };

const PAYLOAD = "x".repeat(64);
const MIB = 1024 * 1024;
const IN_FLIGHT = 1000;
const BULK_IN_FLIGHT = 4;
/** Extra time a rep may take to collect calls in flight after its time limit (ms). */
const DRAIN_MS = 15_000;

// ---- results --------------------------------------------------------------------------

/** One measured value of one rep. */
interface Sample {
  transport: Transport;
  metric: string;
  side: "rpc" | "raw" | "raw1";
  value: number;
  timeLimited: boolean;
}
const samples: Sample[] = [];

function record(
  transport: Transport,
  side: Sample["side"],
  values: Record<string, number>,
  timeLimited: boolean,
): void {
  for (const [metric, value] of Object.entries(values)) {
    samples.push({ transport, metric, side, value, timeLimited });
  }
  const text = Object.entries(values).map(([k, v]) => `${k}=${fmt(v)}`).join(" ");
  console.error(`  ${transport} ${side.padEnd(4)} ${text}${timeLimited ? " (time limit)" : ""}`);
}

function fmt(v: number): string {
  if (!Number.isFinite(v)) return "–";
  if (v >= 1e6) return `${(v / 1e6).toFixed(2)} M`;
  if (v >= 100) return Math.round(v).toLocaleString("en-US");
  return v.toFixed(1);
}

// ---- @trust/rpc side ------------------------------------------------------------------

let secret = "";
let caCert = "";

async function rpcClient(address: string, timeout?: number): Promise<Client> {
  return await deadline(
    connect(address, { secret, caCerts: [caCert], logger: "silent", timeout }),
    15_000,
    `connect to ${address} timed out`,
  );
}

/** Runs `body` on a fresh client, bounded by `limitMs + DRAIN_MS`; closes it afterwards. */
async function withClient<T>(
  address: string,
  limitMs: number,
  timeout: number | undefined,
  body: (c: Client) => Promise<T>,
): Promise<T> {
  const client = await rpcClient(address, timeout);
  try {
    return await deadline(body(client), limitMs + DRAIN_MS, `rep on ${address} timed out`);
  } finally {
    await deadline(client.close({ timeout: 1000 }), 5000, "close timed out").catch(() => {});
  }
}

async function rpcSequential(address: string, b: Bound) {
  return await withClient(address, b.ms, undefined, async (client) => {
    const lat = new Float64Array(b.n);
    const start = performance.now();
    const stopAt = start + b.ms;
    let i = 0;
    for (; i < b.n; i++) {
      const t0 = performance.now();
      if (t0 > stopAt) break;
      const r = await client.call("echo", [PAYLOAD]);
      lat[i] = (performance.now() - t0) * 1000;
      if (r !== PAYLOAD) throw new Error("echo returned something else");
    }
    const secs = (performance.now() - start) / 1000;
    const { p50, p99 } = latencyStats(lat.subarray(0, i));
    return { values: { seq_calls_s: i / secs, p50, p99 }, limited: i < b.n };
  });
}

/** `inFlight` callers each issue calls until `b.n` were issued or `b.ms` passed. */
async function rpcConcurrent(
  address: string,
  b: Bound,
  inFlight: number,
  param: unknown,
  check: (r: unknown) => boolean,
  timeout?: number,
) {
  return await withClient(address, b.ms, timeout, async (client) => {
    let issued = 0;
    let done = 0;
    let limited = false;
    const start = performance.now();
    const stopAt = start + b.ms;
    const worker = async () => {
      while (issued < b.n) {
        if ((issued & 63) === 0 && performance.now() > stopAt) {
          limited = true;
          return;
        }
        issued++;
        const r = await client.call("echo", [param]);
        if (!check(r)) throw new Error("echo returned something else");
        done++;
      }
    };
    await Promise.all(Array.from({ length: Math.min(inFlight, b.n) }, worker));
    const secs = (performance.now() - start) / 1000;
    return { done, secs, limited };
  });
}

async function rpcPipelined(address: string, b: Bound) {
  const r = await rpcConcurrent(address, b, IN_FLIGHT, PAYLOAD, (x) => x === PAYLOAD);
  return { values: { pipe_calls_s: r.done / r.secs }, limited: r.limited };
}

/** Opt-in (`--scenarios=pipe0`): the same with `timeout: 0` (no per-call timer, no meta). */
async function rpcPipelinedNoTimeout(address: string, b: Bound) {
  const r = await rpcConcurrent(address, b, IN_FLIGHT, PAYLOAD, (x) => x === PAYLOAD, 0);
  return { values: { pipe0_calls_s: r.done / r.secs }, limited: r.limited };
}

const bulkPayload = new Uint8Array(MIB).map((_, i) => (i * 131) >>> 3);
function bulkOk(x: unknown): boolean {
  return x instanceof Uint8Array && x.length === MIB && x[0] === bulkPayload[0] &&
    x[MIB >> 1] === bulkPayload[MIB >> 1] && x[MIB - 1] === bulkPayload[MIB - 1];
}

async function rpcBulk(address: string, b: Bound) {
  const r = await rpcConcurrent(address, b, BULK_IN_FLIGHT, bulkPayload, bulkOk);
  return { values: { MB_s: r.done * MIB / r.secs / 1e6 }, limited: r.limited };
}

// ---- raw side -------------------------------------------------------------------------

async function withRaw<T>(address: string, limitMs: number, body: (c: Deno.Conn) => Promise<T>) {
  const conn = await deadline(rawConnect(parseBenchAddress(address)), 15_000, "raw connect");
  try {
    return await deadline(body(conn), limitMs + DRAIN_MS, `raw rep on ${address} timed out`);
  } finally {
    try {
      conn.close();
    } catch { /* closed */ }
  }
}

async function rawSequential(address: string, b: Bound) {
  const r = await withRaw(address, b.ms, (c) => rawPingPong(c, b.n, 64, b.ms));
  return { values: { seq_calls_s: r.perSecond, p50: r.p50, p99: r.p99 }, limited: r.timeLimited };
}

async function rawPipelined(address: string, b: Bound, maxBatch = IN_FLIGHT) {
  const r = await withRaw(
    address,
    b.ms,
    (c) => rawPipeline(c, b.n, 100, IN_FLIGHT, b.ms, maxBatch),
  );
  return { values: { pipe_calls_s: r.perSecond }, limited: r.timeLimited };
}

async function rawBulk(address: string, b: Bound) {
  const r = await withRaw(address, b.ms, (c) => rawPipeline(c, b.n, MIB, BULK_IN_FLIGHT, b.ms));
  return { values: { MB_s: r.mbPerSecond }, limited: r.timeLimited };
}

// ---- the run --------------------------------------------------------------------------

type Runner = (
  address: string,
  b: Bound,
) => Promise<{ values: Record<string, number>; limited: boolean }>;

interface Side {
  side: Sample["side"];
  server: "rpc" | "raw";
  bounds: Bound[];
  run: Runner;
}

function sidesOf(scenario: string): Side[] {
  switch (scenario) {
    case "seq":
      return [
        { side: "rpc", server: "rpc", bounds: PLAN.seq.rpc, run: rpcSequential },
        { side: "raw", server: "raw", bounds: PLAN.seq.raw, run: rawSequential },
      ];
    case "pipe":
      return [
        { side: "rpc", server: "rpc", bounds: PLAN.pipe.rpc, run: rpcPipelined },
        { side: "raw", server: "raw", bounds: PLAN.pipe.raw, run: (a, b) => rawPipelined(a, b) },
        {
          side: "raw1",
          server: "raw",
          bounds: PLAN.pipe1.raw,
          run: (a, b) => rawPipelined(a, b, 1),
        },
      ];
    case "pipe0": // compared with the raw figures of "pipe"
      return [{ side: "rpc", server: "rpc", bounds: PLAN.pipe.rpc, run: rpcPipelinedNoTimeout }];
    case "bulk":
      return [
        { side: "rpc", server: "rpc", bounds: PLAN.bulk.rpc, run: rpcBulk },
        { side: "raw", server: "raw", bounds: PLAN.bulk.raw, run: rawBulk },
      ];
    default:
      throw new TypeError(`Unknown scenario ${scenario} (use seq, pipe, bulk, pipe0)`);
  }
}

function machineFacts(): Record<string, string> {
  let cpu = "?";
  try {
    cpu = /model name\s*:\s*(.*)/.exec(Deno.readTextFileSync("/proc/cpuinfo"))?.[1] ?? "?";
  } catch { /* not Linux */ }
  let nproc = String(navigator.hardwareConcurrency);
  try {
    nproc = new TextDecoder().decode(new Deno.Command("nproc").outputSync().stdout).trim();
  } catch { /* no nproc */ }
  return {
    nproc,
    cpu,
    deno: `${Deno.version.deno} (V8 ${Deno.version.v8}, TypeScript ${Deno.version.typescript})`,
    kernel: Deno.osRelease(),
  };
}

function loadAverage(): string {
  try {
    return Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
  } catch {
    return "?";
  }
}

function cell(transport: Transport, metric: string, side: Sample["side"]): {
  median: number;
  text: string;
} {
  const s = samples.filter((x) =>
    x.transport === transport && x.metric === metric && x.side === side
  );
  if (s.length === 0) return { median: NaN, text: "" };
  const v = s.map((x) => x.value);
  const m = median(v);
  const range = s.length > 1 ? ` (${fmt(Math.min(...v))}–${fmt(Math.max(...v))})` : "";
  const limited = s.some((x) => x.timeLimited) ? " †" : "";
  return { median: m, text: `**${fmt(m)}**${range}${limited}` };
}

function table(): string {
  // [scenario, label, metric, raw side, raw metric]
  const rows: [string, string, string, Sample["side"], string][] = [
    ["seq", "sequential echo, calls/s", "seq_calls_s", "raw", "seq_calls_s"],
    ["seq", "sequential echo, p50 µs", "p50", "raw", "p50"],
    ["seq", "sequential echo, p99 µs", "p99", "raw", "p99"],
    [
      "pipe",
      "1000 in flight, calls/s (raw: coalesced writes)",
      "pipe_calls_s",
      "raw",
      "pipe_calls_s",
    ],
    [
      "pipe",
      "1000 in flight, calls/s (raw: 1 write per frame)",
      "pipe_calls_s",
      "raw1",
      "pipe_calls_s",
    ],
    [
      "pipe0",
      "1000 in flight, client `timeout: 0`, calls/s (raw: coalesced)",
      "pipe0_calls_s",
      "raw",
      "pipe_calls_s",
    ],
    ["bulk", "1 MiB echo, 4 in flight, MB/s", "MB_s", "raw", "MB_s"],
  ];
  const names: Record<Transport, string> = { tcp: "TCP", unix: "Unix", tls: "TLS" };
  const lines = [
    "| scenario | transport | @trust/rpc | raw socket | ratio rpc ÷ raw |",
    "|---|---|---|---|---|",
  ];
  for (const [scenario, label, metric, rawSide, rawMetric] of rows) {
    if (!SCENARIOS.includes(scenario)) continue;
    for (const t of TRANSPORTS) {
      const ours = cell(t, metric, "rpc");
      const raw = cell(t, rawMetric, rawSide);
      const ratio = ours.median / raw.median;
      const r = Number.isFinite(ratio)
        ? (ratio >= 10 ? ratio.toFixed(0) : ratio < 0.1 ? ratio.toFixed(3) : ratio.toFixed(2)) + "×"
        : "";
      lines.push(`| ${label} | ${names[t]} | ${ours.text} | ${raw.text} | ${r} |`);
    }
  }
  return lines.join("\n");
}

async function main(): Promise<void> {
  const startedAt = new Date();
  const t0 = performance.now();
  const loadBefore = loadAverage();
  const loads: string[] = [];
  secret = generateSecret();
  caCert = tlsFixtures().ca;
  const dir = await Deno.makeTempDir({ prefix: "trust-rpc-bench-" }); // mode 0700
  const addresses = (name: string) =>
    TRANSPORTS.map((t) => t === "unix" ? `unix://${dir}/${name}.sock` : `${t}://127.0.0.1:0`);
  const env = { TRUST_ID: secret };
  const servers: ServerProcess[] = [];
  const stopAll = () => Promise.all(servers.map((s) => s.stop()));
  const hard = setTimeout(() => {
    // Synchronous on purpose: nothing in flight may get a turn to fail loudly first.
    console.error(`bench: hard time limit of ${HARD_LIMIT_MS / 1000} s reached, stopping`);
    for (const s of servers) s.kill();
    try {
      Deno.removeSync(dir, { recursive: true });
    } catch { /* gone */ }
    Deno.exit(3);
  }, HARD_LIMIT_MS);
  try {
    const rpcServer = await spawnServer(
      new URL("./server.ts", import.meta.url),
      addresses("rpc"),
      env,
    );
    servers.push(rpcServer);
    const rawServer = await spawnServer(
      new URL("./raw_echo.ts", import.meta.url),
      addresses("raw"),
      env,
    );
    servers.push(rawServer);
    console.error(
      `bench: ${QUICK ? "quick" : "full"} run, ${REPS} rep(s); rpc server pid ${rpcServer.pid}, ` +
        `raw server pid ${rawServer.pid}`,
    );
    for (let ti = 0; ti < TRANSPORTS.length; ti++) {
      const t = TRANSPORTS[ti];
      const addr = { rpc: rpcServer.addresses[ti], raw: rawServer.addresses[ti] };
      loads.push(`${t} ${loadAverage().split(" ")[0]}`);
      for (const scenario of SCENARIOS) {
        console.error(`bench: ${t} ${scenario}`);
        const sides = sidesOf(scenario);
        for (const s of sides) await s.run(addr[s.server], s.bounds[0]); // warm-up, not recorded
        for (let r = 0; r < REPS; r++) {
          // Alternate the order so neither side always runs first.
          const order = r % 2 === 0 ? sides : [...sides].reverse();
          for (const s of order) {
            const res = await s.run(addr[s.server], s.bounds[1]);
            record(t, s.side, res.values, res.limited);
          }
        }
      }
    }
  } finally {
    clearTimeout(hard);
    await stopAll();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  const secs = (performance.now() - t0) / 1000;
  const facts = machineFacts();
  const out = [
    "",
    `## @trust/rpc vs raw sockets — ${startedAt.toISOString()}`,
    "",
    `- machine: nproc ${facts.nproc}, ${facts.cpu}, kernel ${facts.kernel}`,
    `- deno ${facts.deno}`,
    `- run: ${QUICK ? "--quick" : "full"}, ${REPS} rep(s) per cell after a warm-up, ` +
    `${secs.toFixed(0)} s; load average ${loadBefore} → ${loadAverage()}`,
    `- 1-min load average when each transport started: ${loads.join(", ")} (2 vCPUs: above ~2 ` +
    "means other work shared the CPUs)",
    "- client and servers are separate processes, unpinned, loopback only",
    "",
    table(),
    "",
    "Median (min–max) over the reps. Ratio = @trust/rpc median ÷ raw median (for latency, >1",
    "means slower). MB/s = 10^6 payload bytes/s one direction. † = at least one rep ended at its",
    "time limit before its count (the rate is over the operations completed).",
    "rpc: `echo(64-char string)` / `echo(1 MiB Uint8Array)` with default client options",
    "(30 s call timeout). raw: 64 B ping-pong, 100 B frames, 1 MiB frames, 4-byte length prefix.",
  ];
  console.log(out.join("\n"));
  if (JSON_OUT) {
    await Deno.writeTextFile(
      JSON_OUT,
      JSON.stringify(
        { startedAt, quick: QUICK, reps: REPS, facts, seconds: secs, samples },
        null,
        1,
      ),
    );
  }
}

await main();
