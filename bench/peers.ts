/**
 * The peers, run in the same sitting from the peer harness (`../shared/bench/peers` from the
 * repo root, or `--peers-dir=`): the naive JSON-RPC (`rpc_json_client.ts`, Deno), gRPC-js
 * (`grpc_client.mjs`, Node ↔ Node, h2c) and capnweb (`capnweb_client.mjs --server=node`,
 * WebSocket, Node ↔ Node), plus, in a full run, the harness' own raw client
 * (`raw_client.ts`, a cross-check of ours) and its idle-memory floor (`mem_idle.ts
 * --readbuf=4096`, Deno raw echo). Each client spawns its own server as a separate process
 * and appends one JSON line per mode to `$ANCHORS_RESULTS` (median/min/max and every rep);
 * those lines are mapped here onto this bench's scenario names.
 *
 * gRPC-js and capnweb need the pinned npm packages, installed like `run.sh` does into
 * `${ANCHORS_DIR:-/tmp/anchors}`: a full run installs them (skipped with a message when npm
 * fails, e.g. offline), a quick run uses them only when already there (or `--install-peers`).
 *
 * @module
 */

import type { Options } from "./options.ts";
import { runCommand } from "./procs.ts";
import type { Results, Side } from "./results.ts";

/** The npm packages `run.sh` pins. */
export const PINNED = [
  "deno@2.9.6",
  "@grpc/grpc-js@1.14.7",
  "@grpc/proto-loader@0.8.1",
  "capnweb@0.12.0",
  "ws@8.23.0",
];

/** What `runPeers` needs from `run.ts`. */
export interface PeersContext {
  options: Options;
  results: Results;
  /** A private temporary directory of this run. */
  tmpDir: string;
  remainingMs(): number;
}

/** One peer client run. */
export interface Step {
  label: string;
  cmd: string;
  args: string[];
  /** Expected duration (ms), for the budget. */
  costMs: number;
  nofile?: number;
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** True when every pinned package is in `dir/node_modules` at its pinned version. */
function installed(dir: string): boolean {
  return PINNED.every((spec) => {
    const at = spec.lastIndexOf("@");
    const name = spec.slice(0, at);
    try {
      const pkg = JSON.parse(Deno.readTextFileSync(`${dir}/node_modules/${name}/package.json`));
      return pkg.version === spec.slice(at + 1);
    } catch {
      return false;
    }
  });
}

async function install(ctx: PeersContext): Promise<string | undefined> {
  const dir = ctx.options.anchorsDir;
  await Deno.mkdir(dir, { recursive: true });
  const budget = Math.min(300_000, ctx.remainingMs() - (ctx.options.quick ? 30_000 : 300_000));
  if (budget < 20_000) return "no time left in the budget to install them";
  if (!exists(`${dir}/package.json`)) {
    const init = await runCommand("npm", ["init", "-y"], { cwd: dir, timeoutMs: 30_000 });
    if (init.code !== 0) return `npm init failed: ${init.stderr.trim().split("\n").pop()}`;
  }
  console.error(`bench: installing the pinned peers into ${dir} (npm install ${PINNED.join(" ")})`);
  const r = await runCommand(
    "npm",
    ["install", "--no-audit", "--no-fund", "--loglevel=error", ...PINNED],
    { cwd: dir, timeoutMs: budget },
  );
  if (r.code !== 0 || !installed(dir)) {
    const why = r.timedOut ? "timed out" : r.stderr.trim().split("\n").slice(-2).join(" | ");
    return `npm install failed (offline?): ${why || `exit ${r.code}`}`;
  }
  return undefined;
}

/** Maps one peer JSON line onto (scenario, transport, side, our metric ← their metric). */
function mapLine(
  l: Record<string, unknown>,
): { scenario: string; transport: string; side: Side; metrics: Record<string, string> }[] {
  const mode = String(l.mode);
  const t = String(l.transport);
  const seqMetrics = { calls_s: "calls_s", p50: "p50", p99: "p99" };
  switch (l.scenario) {
    case "2-json-rpc-deno":
      if (mode === "seq") {
        return [{ scenario: "seq", transport: t, side: "json", metrics: seqMetrics }];
      }
      if (mode === "c100") {
        return [{
          scenario: "pipe100",
          transport: t,
          side: "json",
          metrics: { calls_s: "calls_s" },
        }];
      }
      if (mode === "c1000") {
        return [{
          scenario: "pipe1000",
          transport: t,
          side: "json",
          metrics: { calls_s: "calls_s" },
        }];
      }
      if (mode === "c1000-nocoalesce") {
        return [{
          scenario: "pipe1000",
          transport: t,
          side: "json1",
          metrics: { calls_s: "calls_s" },
        }];
      }
      return [];
    case "4-grpc":
    case "5-capnweb": {
      if (l.client !== "node" || l.server !== "node") return [];
      const side: Side = l.scenario === "4-grpc" ? "grpc" : "capnweb";
      if (mode === "seq") return [{ scenario: "seq", transport: "tcp", side, metrics: seqMetrics }];
      if (mode === "c100" || mode === "c1000") {
        const scenario = mode === "c100" ? "pipe100" : "pipe1000";
        return [{ scenario, transport: "tcp", side, metrics: { calls_s: "calls_s" } }];
      }
      if (mode === "stream") {
        return [{ scenario: "stream", transport: "tcp", side, metrics: { msgs_s: "msgs_s" } }];
      }
      return [];
    }
    case "1-raw-deno":
      if (mode === "pingpong") {
        return [{
          scenario: "seq",
          transport: t,
          side: "rawpeer",
          metrics: { calls_s: "ops_s", p50: "p50", p99: "p99" },
        }];
      }
      if (mode === "pipeline1") {
        return [{
          scenario: "pipe1000",
          transport: t,
          side: "rawpeer1",
          metrics: { calls_s: "msgs_s" },
        }];
      }
      if (mode === "pipeline") {
        return [{
          scenario: "pipe1000",
          transport: t,
          side: "rawpeer",
          metrics: { calls_s: "msgs_s" },
        }];
      }
      if (mode === "bulk") {
        return [{ scenario: "bulk", transport: t, side: "rawpeer", metrics: { MB_s: "MB_s" } }];
      }
      return [];
    case "7-mem-idle": {
      const metrics: Record<string, string> = { rss0_MiB: "rss0_MiB" };
      for (const k of Object.keys((l.metrics ?? {}) as object)) {
        const m = /^KiB_per_conn@(\d+)$/.exec(k) ?? /^rss(\d+)_MiB$/.exec(k);
        if (m) metrics[k.startsWith("KiB") ? `kib@${m[1]}` : `rss@${m[1]}_MiB`] = k;
      }
      return [{ scenario: "mem", transport: "tcp", side: "raw", metrics }];
    }
  }
  return [];
}

/** Reads the peers' result lines into `results`. */
function collect(ctx: PeersContext, file: string): void {
  let text = "";
  try {
    text = Deno.readTextFileSync(file);
  } catch {
    return;
  }
  for (const raw of text.split("\n")) {
    if (!raw.trim()) continue;
    let l: Record<string, unknown>;
    try {
      l = JSON.parse(raw);
    } catch {
      continue;
    }
    ctx.results.peerLines.push(l);
    const metrics = l.metrics as Record<string, { reps: number[] }>;
    for (const m of mapLine(l)) {
      const reps = Math.max(
        0,
        ...Object.values(m.metrics).map((k) => metrics[k]?.reps.length ?? 0),
      );
      for (let i = 0; i < reps; i++) {
        const values: Record<string, number> = {};
        for (const [ours, theirs] of Object.entries(m.metrics)) {
          const v = metrics[theirs]?.reps[i];
          if (v !== undefined) values[ours] = v;
        }
        ctx.results.record(m.scenario, m.transport, m.side, values, false, true);
      }
    }
  }
}

/** The peer runs planned for this sitting (after the install, before any measurement). */
export interface PeerPlan {
  steps: Step[];
  env: Record<string, string>;
  /** Why nothing will run, when that is the case. */
  skipped?: string;
}

/**
 * Finds the harness, makes the TLS certificates and installs the pinned npm packages when
 * needed (at the start of the run, so the install is not charged to the peers' time), and
 * plans the peer runs that the selected scenarios compare with.
 */
export async function preparePeers(ctx: PeersContext): Promise<PeerPlan> {
  const { options: o, results } = ctx;
  if (o.peers === "no") {
    results.note(
      "peers skipped (--no-peers): the naive JSON, gRPC-js and capnweb columns are empty",
    );
    return { steps: [], env: {}, skipped: "skipped (--no-peers)" };
  }
  const dir = o.peersDir;
  if (!exists(`${dir}/rpc_json_client.ts`)) {
    results.note(
      `peers skipped: no peer harness at ${dir} (rpc_json_client.ts not found; give ` +
        "--peers-dir=DIR)",
    );
    return { steps: [], env: {}, skipped: `skipped (no harness at ${dir})` };
  }
  const has = (s: string) => o.scenarios.includes(s as never);
  const reps = o.reps;
  const A = o.anchorsDir;
  const certDir = `${A}/certs`;
  const env = {
    ANCHORS_RESULTS: `${ctx.tmpDir}/peers.jsonl`,
    ANCHORS_NODE_MODULES: `${A}/node_modules`,
    ANCHORS_CERT_DIR: certDir,
    DENO: Deno.execPath(),
    NO_COLOR: "1",
    DENO_NO_UPDATE_CHECK: "1",
  };
  const deno = Deno.execPath();
  const steps: Step[] = [];

  // Naive JSON-RPC (Deno only, no npm).
  // (Its counts are fixed: 20,000 sequential, 200,000 concurrent calls per rep. A quick run
  // keeps the two modes the targets refer to.)
  const jsonModes = [
    ...(has("seq") ? ["seq"] : []),
    ...(has("pipe100") && !o.quick ? ["c100"] : []),
    ...(has("pipe1000") || has("pipe0") ? ["c1000"] : []),
    ...((has("pipe1000") || has("pipe0")) && !o.quick ? ["c1000-nocoalesce"] : []),
  ];
  if (o.quick && has("pipe100")) {
    results.note("naive JSON at 100 in flight and with one write per call: skipped in --quick");
  }
  let jsonTransports = o.transports.filter((t) => t !== "ws");
  if (o.quick) jsonTransports = jsonTransports.filter((t) => t === "tcp");
  if (jsonTransports.includes("tls")) {
    await Deno.mkdir(A, { recursive: true }).catch(() => {});
    const certs = await runCommand("bash", [`${dir}/make_certs.sh`], {
      env: { ANCHORS_CERT_DIR: certDir },
      timeoutMs: 30_000,
    });
    if (certs.code !== 0) {
      results.note(`naive JSON over TLS skipped: make_certs.sh failed (${certs.stderr.trim()})`);
      jsonTransports = jsonTransports.filter((t) => t !== "tls");
    }
  }
  for (const t of jsonTransports) {
    // Unix and TLS: the modes the targets refer to (TCP has them all).
    const modes = t === "tcp" ? jsonModes : jsonModes.filter((m) => m === "seq" || m === "c1000");
    if (!modes.length) continue;
    steps.push({
      label: `naive JSON-RPC ${t}`,
      cmd: deno,
      args: [
        "run",
        "-A",
        "rpc_json_client.ts",
        `--transport=${t}`,
        `--mode=${modes.join(",")}`,
        `--reps=${reps}`,
      ],
      costMs: (o.quick ? 5000 : 2000) + modes.length * (reps + 1) * 1300,
    });
  }

  // gRPC-js and capnweb (Node, pinned npm packages).
  const grpcModes = [
    ...(has("seq") ? ["seq"] : []),
    ...(has("pipe100") ? ["c100"] : []),
    ...(has("pipe1000") ? ["c1000"] : []),
    ...(has("stream") ? ["stream"] : []),
  ];
  const capnModes = grpcModes.filter((m) => m !== "stream");
  const wantNode = o.transports.includes("tcp") && (grpcModes.length > 0);
  let nodeOk = false;
  if (wantNode) {
    const node = await runCommand("node", ["--version"], { timeoutMs: 10_000 });
    if (node.code !== 0) {
      results.note("gRPC-js and capnweb skipped: `node` is not installed");
    } else if (installed(A)) {
      nodeOk = true;
    } else if (o.quick && o.peers !== "install") {
      results.note(
        `gRPC-js and capnweb skipped in --quick: not installed in ${A} (a full run installs ` +
          "them with npm; or add --install-peers)",
      );
    } else {
      const why = await install(ctx);
      if (why) results.note(`gRPC-js and capnweb skipped: ${why}`);
      else nodeOk = true;
    }
  }
  if (nodeOk) {
    const sizes = o.quick
      ? ["--nseq=1000", "--nconc=5000", "--nstream=10000"]
      : ["--nseq=5000", "--nconc=30000", "--nstream=10000"];
    steps.push({
      label: "gRPC-js (Node ↔ Node)",
      cmd: "node",
      args: ["grpc_client.mjs", `--mode=${grpcModes.join(",")}`, `--reps=${reps}`, ...sizes],
      costMs: 2500 + (reps + 1) * grpcModes.length * (o.quick ? 700 : 4000),
    });
    if (capnModes.length) {
      steps.push({
        label: "capnweb (Node ws ↔ Node ws)",
        cmd: "node",
        args: [
          "capnweb_client.mjs",
          "--server=node",
          `--mode=${capnModes.join(",")}`,
          `--reps=${reps}`,
          ...(o.quick ? ["--nseq=1000", "--nconc=5000"] : ["--nseq=10000", "--nconc=50000"]),
        ],
        costMs: 2000 + (reps + 1) * capnModes.length * (o.quick ? 400 : 1200),
      });
    }
  }

  // The harness' raw client (a cross-check of ours) and its idle-memory floor: full runs only.
  const rawModes = [...(has("seq") ? ["pingpong"] : []), ...(has("bulk") ? ["bulk"] : [])];
  if (!o.quick && rawModes.length && o.transports.includes("tcp")) {
    steps.push({
      label: "raw_client.ts tcp (cross-check)",
      cmd: deno,
      args: [
        "run",
        "-A",
        "raw_client.ts",
        "--transport=tcp",
        `--mode=${rawModes.join(",")}`,
        `--reps=${reps}`,
      ],
      costMs: 2000 + rawModes.length * (reps + 1) * 1200,
    });
  }
  if (has("mem")) {
    if (o.quick) {
      results.note("mem raw reference (peers' mem_idle.ts) skipped in --quick");
    } else {
      const max = Math.max(...o.memLevels);
      steps.push({
        label: "mem_idle.ts --readbuf=4096",
        cmd: deno,
        args: [
          "run",
          "-A",
          "mem_idle.ts",
          "--readbuf=4096",
          `--reps=${reps}`,
          `--levels=${o.memLevels.join(",")}`,
        ],
        costMs: reps * (2000 + (o.memLevels.length + 1) * 2000 + max / 2),
        nofile: 2 * max + 512,
      });
    }
  }

  return { steps, env };
}

/** Runs the planned peer steps that fit the budget and collects their figures. */
export async function runPeers(ctx: PeersContext, plan: PeerPlan): Promise<string> {
  if (plan.skipped) return plan.skipped;
  const { results } = ctx;
  const status: string[] = [];
  for (const step of plan.steps) {
    const left = ctx.remainingMs();
    if (left < step.costMs + 2000) {
      results.note(`peer step skipped, the time budget is spent: ${step.label}`);
      status.push(`${step.label}: skipped (time)`);
      continue;
    }
    const timeoutMs = Math.min(left - 3000, step.costMs * 3 + 10_000);
    const maxtime = Math.max(5, Math.floor(timeoutMs / 1000) - 2);
    console.error(`bench: peer ${step.label}: ${step.cmd} ${step.args.join(" ")}`);
    const r = await runCommand(step.cmd, [...step.args, `--maxtime=${maxtime}`], {
      cwd: ctx.options.peersDir,
      env: plan.env,
      timeoutMs,
      nofile: step.nofile,
    });
    const secs = (r.ms / 1000).toFixed(1);
    if (r.code !== 0) {
      const why = r.timedOut
        ? "time limit"
        : `exit ${r.code}: ${r.stderr.trim().split("\n").slice(-2).join(" | ")}`;
      results.note(`peer ${step.label} failed (${why}); what it measured before is kept`);
      status.push(`${step.label}: failed`);
    } else {
      status.push(`${step.label}: ${secs} s`);
    }
  }
  collect(ctx, plan.env.ANCHORS_RESULTS);
  return status.join("; ") || "none needed";
}
