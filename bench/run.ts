/**
 * End-to-end benchmark of @trust/rpc, in one sitting, against the raw-socket echo (the
 * physical reference) and the peers of `../shared/bench/peers` (naive JSON-RPC, gRPC-js,
 * capnweb), on the same scenarios and sizes; prints ONE table with the ratios and the
 * issue's targets.
 *
 *     deno task bench                 # full run (≤ 15 min): 5 reps, medians (min–max)
 *     deno task bench --quick         # smoke run (< 60 s): small counts, 1 rep
 *     deno task bench --scenarios=seq,pipe1000 --transports=tcp --reps=3 --json=out.json
 *
 * Scenarios (see `scenarios/*.ts`): seq (sequential 64-char echo: calls/s, p50, p99; TCP,
 * Unix, TLS, WebSocket), pipe100 / pipe1000 (calls in flight), stream (server stream of 64 B
 * items), bulk (1 MiB echo, 4 in flight, with the AES-256-GCM bound), mem (server RSS per
 * idle connection at 1,000 and 5,000), hs (handshakes/s). Options: `--help` (`options.ts`).
 *
 * It spawns `bench/server.ts` (@trust/rpc) and `bench/raw_echo.ts` as separate processes;
 * the reps of @trust/rpc and raw alternate so both see the same machine weather; the peers
 * run after (`peers.ts`), each client with its own server. Every loop stops at its count or
 * its time limit; steps that would not fit the run's budget are skipped and said so; a hard
 * limit (`--max-seconds`) stops everything. Every child process is stopped at the end, on
 * error too. Nothing is asserted: the bench reports.
 *
 * @module
 */

import { generateSecret } from "../mod.ts";
import { type RpcTransport, tlsFixtures, type Transport } from "./common.ts";
import { commandLine, loadAverage, machineFacts } from "./machine.ts";
import { type Options, parseOptions, USAGE } from "./options.ts";
import { preparePeers, runPeers } from "./peers.ts";
import { FULL, QUICK } from "./plan.ts";
import { killAllNow, type ServerProcess, spawnServer, stopAll } from "./procs.ts";
import { Results } from "./results.ts";
import { bulkSides } from "./scenarios/bulk.ts";
import { type Context, runSides, sidesCostMs, type SideSpec } from "./scenarios/context.ts";
import { hsSides } from "./scenarios/hs.ts";
import { memRepCostMs, runMem } from "./scenarios/mem.ts";
import { pipeSides } from "./scenarios/pipe.ts";
import { seqSides } from "./scenarios/seq.ts";
import { streamSides, windowExperiment } from "./scenarios/stream.ts";
import { LEGEND, renderTable, summaryNotes } from "./table.ts";

const REPO = new URL("../", import.meta.url);
const RPC_TRANSPORTS: RpcTransport[] = ["tcp", "unix", "tls", "ws"];
const RAW_TRANSPORTS: Transport[] = ["tcp", "unix", "tls"];

interface RunState {
  options: Options;
  results: Results;
  startedAt: Date;
  t0: number;
  loadBefore: string;
  loads: string[];
  peers: string;
  failures: number;
}

function report(s: RunState, ended: string): string {
  const o = s.options;
  const f = machineFacts();
  const secs = (performance.now() - s.t0) / 1000;
  const out = [
    "",
    `## @trust/rpc vs raw sockets and peers — ${s.startedAt.toISOString()}`,
    "",
    `- command: \`${commandLine(o.argv)}\` (\`deno task bench${
      o.argv.length ? " " + o.argv.join(" ") : ""
    }\`)`,
    `- run: ${o.quick ? "quick" : "full"}, ${o.reps} rep(s) per cell after a warm-up, ` +
    `${secs.toFixed(0)} s (hard limit ${o.maxSeconds} s)${ended}`,
    `- machine: nproc ${f.nproc}, ${f.cpu}, ${f.memory} RAM, kernel ${f.kernel}, ulimit -n ${f.nofile}`,
    `- deno ${f.deno}; node ${f.node}`,
    `- load average (1/5/15 min): before ${s.loadBefore} → after ${loadAverage()}; 1-min at ` +
    `each step: ${s.loads.join(", ")} (nproc ${f.nproc}: above it, other work shared the CPUs)`,
    `- peers (${o.peersDir}): ${s.peers}`,
    "",
    renderTable(o, s.results),
    "",
    ...LEGEND,
  ];
  const notes = [...summaryNotes(s.results), ...s.results.notes];
  if (notes.length) out.push("", "Notes:", ...notes.map((n) => `- ${n}`));
  return out.join("\n");
}

async function main(): Promise<number> {
  let options: Options;
  try {
    options = parseOptions(Deno.args, REPO);
  } catch (err) {
    console.error(`bench: ${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (Deno.args.includes("--help")) {
    console.log(USAGE);
    return 0;
  }
  const state: RunState = {
    options,
    results: new Results(),
    startedAt: new Date(),
    t0: performance.now(),
    loadBefore: loadAverage(),
    loads: [],
    peers: "not run",
    failures: 0,
  };
  const { results } = state;
  const plan = options.quick ? QUICK : FULL;
  const hardMs = options.maxSeconds * 1000;
  // The soft budget leaves time to stop the servers and print.
  const softEnd = state.t0 + hardMs - Math.min(20_000, hardMs * 0.1);
  const remainingMs = () => softEnd - performance.now();
  const elapsed = () => ((performance.now() - state.t0) / 1000).toFixed(0);
  const dir = await Deno.makeTempDir({ prefix: "trust-rpc-bench-" }); // mode 0700
  const hard = setTimeout(() => {
    // Synchronous on purpose: nothing in flight may get a turn first.
    killAllNow();
    try {
      Deno.removeSync(dir, { recursive: true });
    } catch { /* gone */ }
    console.log(report(state, ` — STOPPED at the hard limit; partial results`));
    console.error(`bench: hard time limit of ${options.maxSeconds} s reached, stopped`);
    Deno.exit(3);
  }, hardMs);
  // Interrupted: stop the children at once (servers would exit with us anyway; the peers'
  // clients stop at their own --maxtime otherwise).
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, () => {
      killAllNow();
      try {
        Deno.removeSync(dir, { recursive: true });
      } catch { /* gone */ }
      console.error(`bench: ${signal}, stopped`);
      Deno.exit(130);
    });
  }

  const secret = generateSecret();
  const servers: ServerProcess[] = [];
  const peersCtx = { options, results, tmpDir: dir, remainingMs };
  try {
    const peerPlan = await preparePeers(peersCtx);
    const rpcServer = await spawnServer(
      new URL("./server.ts", import.meta.url),
      RPC_TRANSPORTS.map((t) => t === "unix" ? `unix://${dir}/rpc.sock` : `${t}://127.0.0.1:0`),
      { env: { TRUST_ID: secret } },
    );
    servers.push(rpcServer);
    const rawServer = await spawnServer(
      new URL("./raw_echo.ts", import.meta.url),
      RAW_TRANSPORTS.map((t) => t === "unix" ? `unix://${dir}/raw.sock` : `${t}://127.0.0.1:0`),
    );
    servers.push(rawServer);
    const floorServer = options.scenarios.includes("hs")
      ? await spawnServer(new URL("./hs_floor.ts", import.meta.url), ["tcp://127.0.0.1:0"])
      : undefined;
    if (floorServer) servers.push(floorServer);
    const ctx: Context = {
      options,
      plan,
      results,
      secret,
      caCert: tlsFixtures().ca,
      rpcAddress: (t) => rpcServer.addresses[RPC_TRANSPORTS.indexOf(t)],
      rpcPid: rpcServer.pid,
      rawAddress: (t) => rawServer.addresses[RAW_TRANSPORTS.indexOf(t)],
      floorAddress: floorServer?.addresses[0],
      remainingMs,
    };
    console.error(
      `bench: ${options.quick ? "quick" : "full"} run, ${options.reps} rep(s), scenarios ` +
        `${options.scenarios.join(",")}; rpc server pid ${rpcServer.pid}, raw server pid ` +
        `${rawServer.pid}`,
    );
    // Time kept for the peers (they come last). A quick run keeps none: the peers are
    // optional there and run in whatever time is left.
    const peerReserve = options.quick ? 0 : peerPlan.steps.reduce((a, s) => a + s.costMs + 2000, 0);
    const step = async (name: string, transport: string, sides: SideSpec[], extra = 0) => {
      const cost = sidesCostMs(ctx, sides) + extra;
      if (remainingMs() - peerReserve < cost) {
        results.note(`${name} ${transport} skipped: the time budget is spent`);
        return false;
      }
      state.loads.push(`${name}/${transport} ${loadAverage().split(" ")[0]}`);
      console.error(`bench: [${elapsed()} s] ${name} ${transport}`);
      try {
        await runSides(ctx, name, transport, sides);
        return true;
      } catch (err) {
        state.failures++;
        results.note(`${name} ${transport} FAILED: ${(err as Error).message}`);
        return false;
      }
    };
    const sockets = options.transports.filter((t): t is Transport => t !== "ws");
    for (const scenario of options.scenarios) {
      switch (scenario) {
        case "seq":
          for (const t of options.transports) await step("seq", t, seqSides(ctx, t));
          break;
        case "pipe100":
        case "pipe1000":
          for (const t of sockets) {
            await step(scenario, t, pipeSides(ctx, t, scenario === "pipe100" ? 100 : 1000));
          }
          break;
        case "pipe0":
          for (const t of sockets) await step("pipe0", t, pipeSides(ctx, t, 1000, true));
          break;
        case "stream":
          for (const t of sockets) {
            const extra = t === sockets[0] ? 3 * (plan.stream.window.ms + 500) : 0;
            if (await step("stream", t, streamSides(ctx, t), extra) && t === sockets[0]) {
              await windowExperiment(ctx, t).catch((err) => {
                state.failures++;
                results.note(`stream window experiment FAILED: ${(err as Error).message}`);
              });
            }
          }
          break;
        case "bulk":
          for (const t of sockets) await step("bulk", t, bulkSides(ctx, t));
          break;
        case "hs":
          if (sockets.includes("tcp")) await step("hs", "tcp", hsSides(ctx));
          else results.note("hs skipped: it runs over tcp (not in --transports)");
          break;
        case "mem":
          if (!sockets.includes("tcp")) {
            results.note("mem skipped: it runs over tcp (not in --transports)");
          } else if (remainingMs() - peerReserve < memRepCostMs(ctx)) {
            results.note("mem skipped: the time budget is spent");
          } else {
            state.loads.push(`mem/tcp ${loadAverage().split(" ")[0]}`);
            console.error(`bench: [${elapsed()} s] mem tcp`);
            await runMem(ctx).catch((err) => {
              state.failures++;
              results.note(`mem FAILED: ${(err as Error).message}`);
            });
          }
          break;
      }
    }
    // Our servers are idle from here on; stop them so the peers have the machine.
    await Promise.all(servers.map((s) => s.stop()));
    state.loads.push(`peers ${loadAverage().split(" ")[0]}`);
    state.peers = await runPeers(peersCtx, peerPlan).catch((err) => {
      state.failures++;
      results.note(`peers FAILED: ${(err as Error).message}`);
      return "failed";
    });
  } catch (err) {
    state.failures++;
    results.note(`run FAILED: ${(err as Error).stack ?? err}`);
  } finally {
    clearTimeout(hard);
    await stopAll();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  console.log(report(state, state.failures ? ` — ${state.failures} step(s) FAILED` : ""));
  if (options.json) {
    await Deno.writeTextFile(
      options.json,
      JSON.stringify(
        {
          startedAt: state.startedAt,
          command: commandLine(options.argv),
          options,
          facts: machineFacts(),
          seconds: (performance.now() - state.t0) / 1000,
          loadBefore: state.loadBefore,
          loadAfter: loadAverage(),
          loads: state.loads,
          peers: state.peers,
          notes: results.notes,
          samples: results.samples,
          peerLines: results.peerLines,
        },
        null,
        1,
      ),
    );
    console.error(`bench: every rep written to ${options.json}`);
  }
  return state.failures ? 1 : 0;
}

Deno.exit(await main());
