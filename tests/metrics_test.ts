/**
 * Observability: `server.stats()`, `server.metricsText()` (parsed as Prometheus text), bounded
 * method labels, `metrics: false`, and the CLI's `--metrics HOST:PORT` endpoint, over real
 * loopback sockets. No assertion depends on how fast the machine is.
 */
import { assert, assertEquals, assertMatch, assertRejects, assertThrows } from "@std/assert";
import { UsageError } from "../cli/args.ts";
import { parseHostPort, serveMetrics } from "../cli/metrics_endpoint.ts";
import {
  AuthenticationError,
  InvalidParamsError,
  MethodNotFoundError,
  RemoteError,
} from "../protocol/errors.ts";
import {
  CallMetrics,
  Histogram,
  LATENCY_BUCKETS,
  MAX_OUTCOMES,
  OTHER_OUTCOME,
  renderPrometheus,
} from "../protocol/metrics.ts";
import type { Server } from "../server.ts";
import { denoCommand, startServer } from "./_helpers.ts";

const ROOT = new URL("../", import.meta.url).pathname;

// ---- a small Prometheus text parser (exposition format 0.0.4) -------------------------------

interface ParsedSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

interface ParsedText {
  types: Map<string, string>;
  help: Map<string, string>;
  samples: ParsedSample[];
}

const SAMPLE_LINE =
  /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*",?)*)\})? (\S+)$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"/g;

function unescapeLabel(value: string): string {
  return value.replace(/\\([\\"n])/g, (_, c) => c === "n" ? "\n" : c);
}

function familyOf(sample: string, types: Map<string, string>): string {
  for (const suffix of ["_bucket", "_sum", "_count"]) {
    const base = sample.slice(0, -suffix.length);
    if (sample.endsWith(suffix) && types.get(base) === "histogram") return base;
  }
  return sample;
}

/** Parses the text strictly: every sample line well formed and after its family's TYPE. */
function parsePrometheus(text: string): ParsedText {
  assert(text.endsWith("\n"), "the text ends with a line feed");
  const out: ParsedText = { types: new Map(), help: new Map(), samples: [] };
  for (const line of text.slice(0, -1).split("\n")) {
    const meta = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (meta) {
      const [, kind, name, rest] = meta;
      const map = kind === "TYPE" ? out.types : out.help;
      assert(!map.has(name), `${kind} of ${name} appears once`);
      if (kind === "TYPE") assertMatch(rest, /^(counter|gauge|histogram|summary|untyped)$/);
      map.set(name, rest);
      continue;
    }
    const m = SAMPLE_LINE.exec(line);
    if (m === null) throw new Error(`malformed sample line: ${JSON.stringify(line)}`);
    const labels: Record<string, string> = {};
    for (const [, k, v] of (m[2] ?? "").matchAll(LABEL)) labels[k] = unescapeLabel(v);
    const value = m[3] === "+Inf" ? Infinity : Number(m[3]);
    assert(!Number.isNaN(value) || m[3] === "NaN", `bad value in ${line}`);
    const family = familyOf(m[1], out.types);
    assert(out.types.has(family), `${m[1]} comes after the TYPE of ${family}`);
    out.samples.push({ name: m[1], labels, value });
  }
  return out;
}

function sampleValue(p: ParsedText, name: string, labels: Record<string, string> = {}): number {
  const found = p.samples.filter((s) =>
    s.name === name && Object.keys(labels).length === Object.keys(s.labels).length &&
    Object.entries(labels).every(([k, v]) => s.labels[k] === v)
  );
  assertEquals(found.length, 1, `one sample ${name}${JSON.stringify(labels)}`);
  return found[0].value;
}

/** Checks every histogram: buckets ascending by `le`, counts monotonic, `+Inf` = `_count`. */
function checkHistograms(p: ParsedText, family: string): Map<string, number> {
  const counts = new Map<string, number>();
  const methods = new Set(
    p.samples.filter((s) => s.name === `${family}_count`).map((s) => s.labels.method),
  );
  for (const method of methods) {
    const buckets = p.samples.filter((s) =>
      s.name === `${family}_bucket` && s.labels.method === method
    );
    assertEquals(buckets.length, LATENCY_BUCKETS.length + 1);
    const les = buckets.map((b) => b.labels.le === "+Inf" ? Infinity : Number(b.labels.le));
    assertEquals(les, [...LATENCY_BUCKETS, Infinity]);
    for (let i = 1; i < buckets.length; i++) {
      assert(buckets[i].value >= buckets[i - 1].value, `${method}: buckets are cumulative`);
    }
    const count = sampleValue(p, `${family}_count`, { method });
    assertEquals(buckets.at(-1)!.value, count, `${method}: le="+Inf" equals _count`);
    assert(sampleValue(p, `${family}_sum`, { method }) >= 0);
    counts.set(method, count);
  }
  return counts;
}

async function until(what: string, check: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

// ---- the registry alone ---------------------------------------------------------------------

Deno.test("metrics: histogram buckets use <= bounds; rendering escapes label values", () => {
  const h = new Histogram([0.1, 1]);
  for (const v of [0.05, 0.1, 0.5, 1, 7]) h.observe(v);
  assertEquals([...h.counts], [2, 2, 1]);
  assertEquals(h.cumulative(), [2, 4, 5]);
  assertEquals(h.count, 5);

  const metrics = new CallMetrics(['we"ird\\na\nme']);
  metrics.callDone('we"ird\\na\nme', "ok", 0.002);
  metrics.callDone("never_registered", "METHOD_NOT_FOUND", 0);
  const text = renderPrometheus([
    { name: "x_total", help: "Help with \\ and\nnewline.", type: "counter", samples: [] },
    ...metrics.families(),
  ]);
  assert(text.includes("# HELP x_total Help with \\\\ and\\nnewline.\n"));
  assert(text.includes('trust_rpc_calls_total{method="we\\"ird\\\\na\\nme",outcome="ok"} 1\n'));
  const parsed = parsePrometheus(text);
  assertEquals(
    checkHistograms(parsed, "trust_rpc_call_duration_seconds"),
    new Map([['we"ird\\na\nme', 1], ["unknown", 1]]),
  );
  assertEquals(metrics.byMethod(), { 'we"ird\\na\nme': 1, unknown: 1 });
  assertThrows(
    () => renderPrometheus([{ name: "bad-name", help: "", type: "gauge", samples: [] }]),
    TypeError,
  );
});

Deno.test("metrics: outcome labels are capped", () => {
  const metrics = new CallMetrics(["m"]);
  for (let i = 0; i < MAX_OUTCOMES + 10; i++) metrics.callDone("m", `CODE_${i}`, 0);
  const byOutcome = metrics.byOutcome();
  assertEquals(Object.keys(byOutcome).length, MAX_OUTCOMES + 1);
  assertEquals(byOutcome[OTHER_OUTCOME], 10);
  assertEquals(metrics.total, MAX_OUTCOMES + 10);
});

// ---- a real server ---------------------------------------------------------------------------

const METHODS = {
  ok: (x: unknown) => x,
  async later(x: unknown) {
    await new Promise((r) => setTimeout(r, 5));
    return x;
  },
  fail: () => {
    throw new Error("planned failure");
  },
  checked: {
    handler: (n: number) => n,
    validate: (params: unknown) => Array.isArray(params) && typeof params[0] === "number",
  },
};

function assertStatsShape(server: Server): void {
  const s = server.stats();
  for (const key of ["connections", "inFlight", "bytesIn", "bytesOut", "uptime"] as const) {
    assert(Number.isFinite(s[key]) && s[key] >= 0, key);
  }
  assertEquals(JSON.parse(JSON.stringify(s)), s, "stats() is a plain object");
}

Deno.test("Server: stats() and metricsText() count handshakes, calls by outcome and bytes", async () => {
  await using ts = await startServer("tcp", { methods: METHODS, authFailureDelayMs: 5 });
  const server = ts.server;
  assertEquals(server.stats().connections, 0);
  assertEquals(server.stats().calls, { total: 0, byOutcome: {}, byMethod: {} });

  await using client = await ts.connect();
  for (let i = 0; i < 3; i++) assertEquals(await client.call("ok", [i]), i);
  assertEquals(await Promise.all([client.call("later", [1]), client.call("later", [2])]), [1, 2]);
  for (let i = 0; i < 2; i++) await assertRejects(() => client.call("fail"), RemoteError);
  await assertRejects(() => client.call("nope"), MethodNotFoundError);
  await assertRejects(() => client.call("checked", ["not a number"]), InvalidParamsError);
  assertEquals(await client.call("checked", [7]), 7);
  // One failed handshake (wrong secret), after the good connection (the failure budget).
  await assertRejects(() => ts.connect({ secret: "x".repeat(40) }), AuthenticationError);
  await until("the failed handshake", () => server.stats().handshakes.failed === 1);
  await until("every call counted", () => server.stats().calls.total === 10);

  const s = server.stats();
  assertEquals(s.connections, 1);
  assertEquals(s.handshakes, { ok: 1, failed: 1, failedByReason: { AUTH_FAILED: 1 } });
  assertEquals(s.calls, {
    total: 10,
    byOutcome: { ok: 6, APPLICATION_ERROR: 2, METHOD_NOT_FOUND: 1, INVALID_PARAMS: 1 },
    byMethod: { ok: 3, later: 2, fail: 2, checked: 2, unknown: 1 },
  });
  assertEquals(s.inFlight, 0);
  assert(s.bytesIn > 0 && s.bytesOut > 0, `bytes ${s.bytesIn} / ${s.bytesOut}`);
  assert(s.uptime >= 0);
  assertStatsShape(server);
  const [peer] = server.peers;
  assertEquals(peer.calls, 10);
  assertEquals([peer.bytesIn, peer.bytesOut], [s.bytesIn, s.bytesOut]);

  const p = parsePrometheus(server.metricsText());
  assertEquals(p.types.get("trust_rpc_calls_total"), "counter");
  assertEquals(p.types.get("trust_rpc_call_duration_seconds"), "histogram");
  assertEquals(p.types.get("trust_rpc_connections"), "gauge");
  for (const name of p.types.keys()) assert(p.help.has(name), `HELP of ${name}`);
  assertEquals(sampleValue(p, "trust_rpc_connections"), 1);
  assertEquals(sampleValue(p, "trust_rpc_calls_in_flight"), 0);
  assertEquals(sampleValue(p, "trust_rpc_handshakes_total", { outcome: "ok" }), 1);
  assertEquals(sampleValue(p, "trust_rpc_handshakes_total", { outcome: "AUTH_FAILED" }), 1);
  assertEquals(sampleValue(p, "trust_rpc_received_bytes_total"), s.bytesIn);
  assert(sampleValue(p, "trust_rpc_sent_bytes_total") >= s.bytesOut);
  assert(sampleValue(p, "trust_rpc_uptime_seconds") >= 0);
  assertEquals(sampleValue(p, "trust_rpc_calls_total", { method: "ok", outcome: "ok" }), 3);
  assertEquals(
    sampleValue(p, "trust_rpc_calls_total", { method: "fail", outcome: "APPLICATION_ERROR" }),
    2,
  );
  assertEquals(
    sampleValue(p, "trust_rpc_calls_total", { method: "unknown", outcome: "METHOD_NOT_FOUND" }),
    1,
  );
  assertEquals(
    sampleValue(p, "trust_rpc_calls_total", { method: "checked", outcome: "INVALID_PARAMS" }),
    1,
  );
  // `_count` per method equals the calls made; every served method has a histogram.
  assertEquals(
    checkHistograms(p, "trust_rpc_call_duration_seconds"),
    new Map([["ok", 3], ["later", 2], ["fail", 2], ["checked", 2], ["unknown", 1]]),
  );
  // The handler of `later` sleeps 5 ms: its sum says so (a lower bound, never an upper one).
  assert(sampleValue(p, "trust_rpc_call_duration_seconds_sum", { method: "later" }) >= 0.006);

  // Bytes of closed connections are kept; the gauge goes back to 0.
  const before = server.stats();
  await client.close();
  await until("the disconnect", () => server.stats().connections === 0);
  const after = server.stats();
  assert(after.bytesIn >= before.bytesIn && after.bytesOut >= before.bytesOut);
  assertEquals(after.handshakes.ok, 1);
});

Deno.test("Server: unknown method names never create a label", async () => {
  await using ts = await startServer("tcp", { methods: { ok: () => 1 } });
  await using client = await ts.connect();
  const names = ["made_up_1", "made_up_2", "toString", "__proto__", "a:b/c-d.e"];
  for (const name of names) await assertRejects(() => client.call(name), MethodNotFoundError);
  client.notify("made_up_notify");
  assertEquals(await client.call("ok"), 1);
  await until("every call counted", () => ts.server.stats().calls.total === names.length + 2);
  const p = parsePrometheus(ts.server.metricsText());
  const labels = new Set(p.samples.map((s) => s.labels.method).filter((m) => m !== undefined));
  assertEquals([...labels].sort(), ["ok", "unknown"]);
  assertEquals(sampleValue(p, "trust_rpc_call_duration_seconds_count", { method: "unknown" }), 6);
  assertEquals(ts.server.stats().calls.byMethod, { ok: 1, unknown: 6 });
});

Deno.test("Server: metrics: false keeps the free counters and skips call timing", async () => {
  await using ts = await startServer("tcp", { methods: { ok: () => 1 }, metrics: false });
  await using client = await ts.connect();
  assertEquals(await client.call("ok"), 1);
  const s = ts.server.stats();
  assertEquals(s.calls, { total: 0, byOutcome: {}, byMethod: {} });
  assertEquals([s.connections, s.handshakes.ok], [1, 1]);
  assert(s.bytesIn > 0 && s.bytesOut > 0);
  assertEquals(ts.server.peers[0].calls, 1);
  const p = parsePrometheus(ts.server.metricsText());
  assert(!p.types.has("trust_rpc_call_duration_seconds"));
  assertEquals(sampleValue(p, "trust_rpc_connections"), 1);
});

Deno.test("Server: a cancelled call counts as CANCELLED and in flight while it runs", async () => {
  let started!: () => void;
  const running = new Promise<void>((r) => started = r);
  await using ts = await startServer("tcp", {
    methods: {
      wait(this: { signal: AbortSignal }) {
        started();
        return new Promise((_, reject) =>
          this.signal.addEventListener("abort", () => reject(this.signal.reason))
        );
      },
    },
  });
  await using client = await ts.connect();
  const controller = new AbortController();
  const call = client.call("wait", [], { signal: controller.signal });
  await running;
  assertEquals(ts.server.stats().inFlight, 1);
  controller.abort();
  await assertRejects(() => call);
  await until("the cancelled call", () => ts.server.stats().calls.total === 1);
  assertEquals(ts.server.stats().calls.byOutcome, { CANCELLED: 1 });
  assertEquals(ts.server.stats().inFlight, 0);
});

Deno.test("Server: a call that waited for a handler slot is counted once, when it ends", async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => release = r);
  await using ts = await startServer("tcp", {
    maxConcurrentHandlers: 1,
    methods: { hold: () => gate.then(() => "held"), quick: () => "quick" },
  });
  await using client = await ts.connect();
  const held = client.call("hold");
  await until("hold running", () => ts.server.stats().inFlight === 1);
  const quick = client.call("quick");
  await until("quick waiting", () => ts.server.stats().inFlight === 2);
  assertEquals(ts.server.stats().calls.total, 0);
  release();
  assertEquals(await Promise.all([held, quick]), ["held", "quick"]);
  await until("both counted", () => ts.server.stats().calls.total === 2);
  assertEquals(ts.server.stats().calls.byMethod, { hold: 1, quick: 1 });
  const p = parsePrometheus(ts.server.metricsText());
  assertEquals(sampleValue(p, "trust_rpc_call_duration_seconds_count", { method: "quick" }), 1);
});

// ---- the endpoint and the CLI ------------------------------------------------------------------

Deno.test("metrics endpoint: GET /metrics, 404 elsewhere, HOST:PORT checked", async () => {
  assertEquals(parseHostPort("127.0.0.1:9464"), { hostname: "127.0.0.1", port: 9464 });
  assertEquals(parseHostPort("[::1]:0"), { hostname: "::1", port: 0 });
  for (const bad of ["9464", "127.0.0.1", "127.0.0.1:99999", "http://x:1", ":80"]) {
    assertThrows(() => parseHostPort(bad), UsageError);
  }
  await using endpoint = serveMetrics("127.0.0.1:0", () => "# TYPE up gauge\nup 1\n");
  assertMatch(endpoint.url, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
  const ok = await fetch(endpoint.url);
  assertEquals(ok.status, 200);
  assertEquals(ok.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  assertEquals(await ok.text(), "# TYPE up gauge\nup 1\n");
  const missing = await fetch(endpoint.url.replace("/metrics", "/other"));
  assertEquals(missing.status, 404);
  await missing.body?.cancel();
  const post = await fetch(endpoint.url, { method: "POST", body: "x" });
  assertEquals(post.status, 405);
  await post.body?.cancel();
});

Deno.test("CLI: server.ts --metrics 127.0.0.1:0 prints its URL and serves the metrics", async () => {
  const child = denoCommand([
    "run",
    "-A",
    `${ROOT}server.ts`,
    "--listen",
    "tcp://127.0.0.1:0",
    "--metrics",
    "127.0.0.1:0",
    "--log-level",
    "warn",
  ], { env: { TRUST_ID: "metrics-cli-test-secret-0123456789-abcdef" } }).spawn();
  const killer = setTimeout(() => child.kill("SIGKILL"), 30_000);
  const stderr = new Response(child.stderr).text();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  try {
    while (!/^Metrics on (\S+)$/m.test(seen)) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`server exited early:\n${seen}\n${await stderr}`);
      seen += value;
    }
    assertMatch(seen, /^Serving on tcp:\/\/127\.0\.0\.1:\d+$/m);
    const url = /^Metrics on (\S+)$/m.exec(seen)![1];
    assertMatch(url, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    const response = await fetch(url);
    assertEquals(response.status, 200);
    const p = parsePrometheus(await response.text());
    assertEquals(sampleValue(p, "trust_rpc_connections"), 0);
    // The demo server's methods each have a histogram, plus `unknown`.
    assertEquals(
      [...checkHistograms(p, "trust_rpc_call_duration_seconds").keys()].sort(),
      ["chat.join", "echo", "greet", "health", "long_running_task", "time", "unknown"],
    );
  } finally {
    child.kill("SIGTERM");
    clearTimeout(killer);
    reader.releaseLock();
  }
  const status = await child.status;
  await child.stdout.cancel().catch(() => {});
  assertEquals(status.code, 0, await stderr);
});

Deno.test("CLI: a malformed --metrics is a usage error", async () => {
  const out = await denoCommand(["run", "-A", `${ROOT}server.ts`, "--metrics", "9464"], {
    signal: AbortSignal.timeout(30_000),
  }).output();
  assertEquals(out.code, 2);
  assertMatch(new TextDecoder().decode(out.stderr), /--metrics needs HOST:PORT/);
});
