/**
 * The client side of the `mem` scenario, in its own process so that its memory stays out of
 * the measurement: it opens idle @trust/rpc connections to a bench server (each one
 * `connect()`s with default options, makes one `echo` call, then idles) and reads the
 * server's VmRSS from `/proc/<pid>/status` once the server has settled, like the peers'
 * `mem_idle.ts`.
 *
 *     TRUST_ID=… deno run -A bench/mem_client.ts --address=tcp://127.0.0.1:PORT --pid=PID \
 *       --levels=1000,5000 --settle-ms=1500 --max-ms=120000
 *
 * With each reading it asks the server for its `Deno.memoryUsage()` (the bench server's
 * `memory` method), so that the V8 heap can be told from the rest.
 *
 * Prints one JSON line, `{"rss0_kib":…,"rss_kib":{"1000":…,"5000":…},"heap_kib":{"0":…},…}`, and
 * exits without closing the connections one by one (the process exit closes them). Needs
 * `ulimit -n` above the largest level; `run.ts` raises it.
 *
 * @module
 */

import { type Client, connect } from "../mod.ts";

function option(name: string, def: string): string {
  const prefix = `--${name}=`;
  return Deno.args.find((a) => a.startsWith(prefix))?.slice(prefix.length) ?? def;
}

const address = option("address", "");
const pid = Number(option("pid", "0"));
const levels = option("levels", "1000,5000").split(",").map(Number);
const settleMs = Number(option("settle-ms", "1500"));
const maxMs = Number(option("max-ms", "120000"));
/** Handshakes at once: under the server's pre-authentication cap per peer (32). */
const CONCURRENCY = 16;
const PAYLOAD = "x".repeat(64);

const hard = setTimeout(() => {
  console.error(`mem_client: time limit of ${maxMs} ms reached`);
  Deno.exit(3);
}, maxMs);
Deno.unrefTimer(hard);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const rssKiB = () =>
  Number(/VmRSS:\s+(\d+)/.exec(Deno.readTextFileSync(`/proc/${pid}/status`))![1]);

/** Waits `settleMs`, then the lowest of three readings 200 ms apart. */
async function settledRss(): Promise<number> {
  await sleep(settleMs);
  const xs: number[] = [];
  for (let i = 0; i < 3; i++) {
    if (i > 0) await sleep(200);
    xs.push(rssKiB());
  }
  return Math.min(...xs);
}

async function openOne(): Promise<Client> {
  for (let attempt = 0;; attempt++) {
    try {
      const c = await connect(address, { logger: "silent" });
      if (await c.call("echo", [PAYLOAD]) !== PAYLOAD) throw new Error("bad echo");
      return c;
    } catch (err) {
      if (attempt >= 3) throw err;
      await sleep(50 * (attempt + 1)); // e.g. BUSY: too many handshakes at once
    }
  }
}

if (!address || !pid) throw new TypeError("--address and --pid are required");
// One connection first so that lazily initialised paths are warm, then close it.
await (await openOne()).close();
const rss0 = await settledRss();
/** The V8 heap at each reading (KiB): reserved (`heapTotal`) and used (`heapUsed`). */
const heap: Record<string, { total: number; used: number }> = {};
async function readHeap(client: Client, level: number): Promise<void> {
  const m = await client.call("memory") as Deno.MemoryUsage;
  heap[level] = { total: m.heapTotal / 1024, used: m.heapUsed / 1024 };
}
// Asked after the baseline RSS, on the first connection of the first level.
const conns: Client[] = [await openOne()];
await readHeap(conns[0], 0);
const rss: Record<string, number> = {};
const t0 = performance.now();
let openMs = 0;
for (const level of levels) {
  const t = performance.now();
  while (conns.length < level) {
    const batch = Math.min(CONCURRENCY, level - conns.length);
    conns.push(...await Promise.all(Array.from({ length: batch }, openOne)));
  }
  openMs += performance.now() - t;
  rss[level] = await settledRss();
  await readHeap(conns[0], level);
}
console.log(JSON.stringify({
  rss0_kib: rss0,
  rss_kib: rss,
  heap_kib: heap,
  open_s: openMs / 1000,
  total_s: (performance.now() - t0) / 1000,
  conns: conns.length,
}));
Deno.exit(0);
