/**
 * mem: the server's resident memory per idle authenticated connection, like the peers'
 * `mem_idle.ts`. Each rep starts a fresh bench server (TCP only, default options and limits:
 * heartbeats on) and a separate client process (`mem_client.ts`) that opens the connections
 * (one `echo` call each, then idle), lets the server settle and reads its VmRSS from
 * `/proc/<pid>/status`: KiB/conn = (RSS_N − RSS_0) / N. With each reading the server's
 * `Deno.memoryUsage()` gives the part of that which is V8's heap: reserved (`heapTotal`, what
 * V8 has committed: the young generation grows with what survives its collections) and used
 * (`heapUsed`, live objects and garbage not yet collected). Both processes get `ulimit -n`
 * raised (up to the hard limit) in the shell that starts them.
 *
 * @module
 */

import { effectiveNofile, runCommand, spawnServer } from "../procs.ts";
import type { Context } from "./context.ts";

const SERVER = new URL("../server.ts", import.meta.url);
const CLIENT = new URL("../mem_client.ts", import.meta.url).pathname;

/** Rough upper bound of one rep (ms), for the budget: ~150 handshakes/s at worst. */
export function memRepCostMs(ctx: Context, levels = ctx.options.memLevels): number {
  const max = Math.max(0, ...levels);
  return 3000 + max / 150 * 1000 + (levels.length + 1) * (ctx.options.memSettleMs + 600);
}

/** Runs the reps of mem (as many as fit in the budget) and records them. */
export async function runMem(ctx: Context): Promise<void> {
  if (!Deno.build.os.startsWith("linux")) {
    ctx.results.note("mem skipped: it reads /proc/<pid>/status (Linux only)");
    return;
  }
  let levels = ctx.options.memLevels;
  const want = Math.max(...levels) + 512;
  const nofile = effectiveNofile(want);
  if (nofile < want) {
    const fit = levels.filter((l) => l + 256 <= nofile);
    ctx.results.note(
      `mem: ulimit -n can only be raised to ${nofile} here (hard limit); ` +
        (fit.length
          ? `measuring ${fit.join(", ")} connections only. Raise the hard limit (e.g. ` +
            "`ulimit -Hn 20000` as root) for the rest."
          : "mem skipped. Raise the hard limit (e.g. `ulimit -Hn 20000` as root)."),
    );
    levels = fit;
    if (!levels.length) return;
  }
  for (let rep = 0; rep < ctx.options.reps; rep++) {
    const cost = memRepCostMs(ctx, levels);
    if (ctx.remainingMs() < cost) {
      ctx.results.note(`mem: stopped after ${rep} rep(s), the time budget is spent`);
      return;
    }
    const server = await spawnServer(SERVER, ["tcp://127.0.0.1:0"], {
      env: { TRUST_ID: ctx.secret },
      nofile: want,
    });
    try {
      const out = await runCommand(Deno.execPath(), [
        "run",
        "-A",
        CLIENT,
        `--address=${server.addresses[0]}`,
        `--pid=${server.pid}`,
        `--levels=${levels.join(",")}`,
        `--settle-ms=${ctx.options.memSettleMs}`,
        `--max-ms=${Math.round(cost * 3)}`,
      ], { env: { TRUST_ID: ctx.secret }, nofile: want, timeoutMs: Math.round(cost * 3) + 5000 });
      const line = out.stdout.trim().split("\n").pop() ?? "";
      if (out.code !== 0 || !line.startsWith("{")) {
        throw new Error(
          `mem_client failed (exit ${out.code}${out.timedOut ? ", time limit" : ""}): ` +
            out.stderr.trim().split("\n").slice(-3).join(" | "),
        );
      }
      const r = JSON.parse(line) as {
        rss0_kib: number;
        rss_kib: Record<string, number>;
        heap_kib: Record<string, { total: number; used: number }>;
      };
      const values: Record<string, number> = { rss0_MiB: r.rss0_kib / 1024 };
      const heap0 = r.heap_kib[0];
      for (const l of levels) {
        values[`rss@${l}_MiB`] = r.rss_kib[l] / 1024;
        values[`kib@${l}`] = (r.rss_kib[l] - r.rss0_kib) / l;
        values[`heap_kib@${l}`] = (r.heap_kib[l].total - heap0.total) / l;
        values[`heapused_kib@${l}`] = (r.heap_kib[l].used - heap0.used) / l;
      }
      ctx.results.record("mem", "tcp", "rpc", values, false);
    } finally {
      await server.stop();
    }
  }
}
