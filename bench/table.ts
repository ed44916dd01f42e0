/**
 * The one table of a bench run: a row per scenario, transport and metric; a column per
 * contender (@trust/rpc, raw socket, naive JSON-RPC, gRPC-js, capnweb), each other cell with
 * @trust/rpc's ratio to it; the ratio to the best peer library; the issue's target; met?
 *
 * @module
 */

import { STREAM_WINDOW } from "./scenarios/stream.ts";
import type { Options } from "./options.ts";
import { vcpus } from "./cpu.ts";
import { fmtSummary, type Results, type Side, type Summary } from "./results.ts";

type Column = "raw" | "json" | "grpc" | "capnweb";

interface Ref {
  scenario: string;
  transport: string;
  side: Side;
  metric: string;
}

interface Row {
  label: string;
  transport: string;
  rpc: Ref;
  lowerBetter?: boolean;
  cols: Partial<Record<Column, Ref>>;
  /** The issue's target: its text and whether the medians meet it (undefined: unknown). */
  target?: (
    get: (r: Ref) => Summary | undefined,
  ) => { text: string; met?: boolean; detail?: string };
}

const NAMES: Record<string, string> = { tcp: "TCP", unix: "Unix", tls: "TLS", ws: "WebSocket" };

/** How much better @trust/rpc is than `other` (> 1: better), by medians. */
function advantage(rpc: Summary | undefined, other: Summary | undefined, lowerBetter = false) {
  if (!rpc || !other || !(rpc.median > 0) || !(other.median > 0)) return NaN;
  return lowerBetter ? other.median / rpc.median : rpc.median / other.median;
}

function fmtRatio(r: number): string {
  if (!Number.isFinite(r)) return "";
  return (r >= 10 ? r.toFixed(0) : r < 0.1 ? r.toFixed(3) : r.toFixed(2)) + "×";
}

function pct(r: number): string {
  return Number.isFinite(r) ? `${(r * 100).toFixed(0)}%` : "?";
}

function rowsFor(o: Options): Row[] {
  const rows: Row[] = [];
  const has = (s: string) => o.scenarios.includes(s as never);
  const ref = (scenario: string, transport: string, side: Side, metric: string): Ref => ({
    scenario,
    transport,
    side,
    metric,
  });
  const socketTransports = o.transports.filter((t) => t !== "ws");
  const peerCols = (scenario: string, t: string, metric: string) =>
    t === "tcp" || t === "ws"
      ? {
        grpc: ref(scenario, "tcp", "grpc", metric),
        capnweb: ref(scenario, "tcp", "capnweb", metric),
      }
      : {};
  if (has("seq")) {
    for (const t of o.transports) {
      const base = (metric: string) => ({
        raw: ref("seq", t, "raw", metric),
        json: ref("seq", t, "json", metric),
        ...peerCols("seq", t, metric),
      });
      rows.push({
        label: "seq: sequential echo, calls/s",
        transport: t,
        rpc: ref("seq", t, "rpc", "calls_s"),
        cols: base("calls_s"),
        target: t === "tcp" || t === "ws"
          ? (get) => {
            const r = advantage(
              get(ref("seq", t, "rpc", "calls_s")),
              get(ref("seq", "tcp", "capnweb", "calls_s")),
            );
            return { text: "≥ capnweb (≥ 1.0×)", met: Number.isFinite(r) ? r >= 1 : undefined };
          }
          : undefined,
      });
      rows.push({
        label: "seq: p50 µs",
        transport: t,
        rpc: ref("seq", t, "rpc", "p50"),
        lowerBetter: true,
        cols: base("p50"),
      });
      rows.push({
        label: "seq: p99 µs",
        transport: t,
        rpc: ref("seq", t, "rpc", "p99"),
        lowerBetter: true,
        cols: base("p99"),
        target: (get) => {
          const p50 = get(ref("seq", t, "rpc", "p50"));
          const p99 = get(ref("seq", t, "rpc", "p99"));
          const ok = p50 && p99 ? p99.median <= 2 * p50.median : undefined;
          return {
            text: "p99 ≤ 2 × p50",
            met: ok,
            detail: p50 && p99 ? `${(p99.median / p50.median).toFixed(1)} × p50` : undefined,
          };
        },
      });
    }
  }
  for (const [scenario, n] of [["pipe100", 100], ["pipe1000", 1000]] as const) {
    if (!has(scenario)) continue;
    for (const t of socketTransports) {
      rows.push({
        label: `${scenario}: ${n} in flight, calls/s`,
        transport: t,
        rpc: ref(scenario, t, "rpc", "calls_s"),
        cols: {
          raw: ref(scenario, t, "raw", "calls_s"),
          json: ref(scenario, t, "json", "calls_s"),
          ...peerCols(scenario, t, "calls_s"),
        },
        target: n === 1000
          ? (get) => {
            const rpc = get(ref(scenario, t, "rpc", "calls_s"));
            const json = advantage(rpc, get(ref(scenario, t, "json", "calls_s")));
            const abs = t === "tcp" ? (rpc ? rpc.median >= 250_000 : undefined) : true;
            const rel = Number.isFinite(json) ? json >= 0.7 : undefined;
            return {
              text: t === "tcp" ? "≥ 250k/s and ≥ 70% of naive JSON" : "≥ 70% of naive JSON",
              met: abs === false || rel === false ? false : abs && rel ? true : undefined,
              detail: Number.isFinite(json) ? `${pct(json)} of naive JSON` : undefined,
            };
          }
          : undefined,
      });
      if (n === 1000) {
        rows.push({
          label: "pipe1000, references with one write per message",
          transport: t,
          rpc: ref(scenario, t, "rpc", "calls_s"),
          cols: {
            raw: ref(scenario, t, "raw1", "calls_s"),
            json: ref(scenario, t, "json1", "calls_s"),
          },
        });
      }
    }
  }
  if (has("pipe0")) {
    for (const t of socketTransports) {
      rows.push({
        label: "pipe0: 1000 in flight, client timeout: 0, calls/s",
        transport: t,
        rpc: ref("pipe0", t, "rpc", "calls_s"),
        cols: {
          raw: ref("pipe1000", t, "raw", "calls_s"),
          json: ref("pipe1000", t, "json", "calls_s"),
        },
      });
    }
  }
  if (has("stream")) {
    for (const t of socketTransports) {
      rows.push({
        label: `stream: 64 B items, default window (${STREAM_WINDOW}), msgs/s`,
        transport: t,
        rpc: ref("stream", t, "rpc", "msgs_s"),
        cols: t === "tcp" ? { grpc: ref("stream", "tcp", "grpc", "msgs_s") } : {},
        target: t === "tcp"
          ? (get) => {
            const rpc = get(ref("stream", t, "rpc", "msgs_s"));
            const g = advantage(rpc, get(ref("stream", "tcp", "grpc", "msgs_s")));
            const abs = rpc ? rpc.median >= 500_000 : undefined;
            const rel = Number.isFinite(g) ? g >= 2.5 : undefined;
            return {
              text: "≥ 500k/s and ≥ 2.5 × gRPC-js",
              met: abs === false || rel === false ? false : abs && rel ? true : undefined,
            };
          }
          : undefined,
      });
    }
  }
  if (has("bulk")) {
    for (const t of socketTransports) {
      rows.push({
        label: "bulk: 1 MiB echo, 4 in flight, MB/s",
        transport: t,
        rpc: ref("bulk", t, "rpc", "MB_s"),
        cols: { raw: ref("bulk", t, "raw", "MB_s") },
        target: (get) => {
          const rpc = get(ref("bulk", t, "rpc", "MB_s"));
          const raw = get(ref("bulk", t, "raw", "MB_s"));
          const bound = get(ref("bulk", t, "crypto", "MB_s"));
          const ofBound = advantage(rpc, bound);
          const ofRaw = advantage(rpc, raw);
          const detail = `${pct(ofBound)} of crypto bound, ${pct(ofRaw)} of raw`;
          if (!bound || !raw || !rpc) {
            return { text: "≥ 70% of crypto bound / ≥ 50% of raw", detail };
          }
          return bound.median < raw.median
            ? { text: "≥ 70% of crypto bound (the bound here)", met: ofBound >= 0.7, detail }
            : { text: "≥ 50% of raw (crypto is not the bound here)", met: ofRaw >= 0.5, detail };
        },
      });
      rows.push({
        label: "bulk: crypto bound, AES-256-GCM seal+open 1 MiB (Web Crypto), MB/s",
        transport: t,
        rpc: ref("bulk", t, "crypto", "MB_s"),
        cols: {},
      });
      for (const [side, what] of [["rpc", "the echo (client + server)"], ["crypto", "the bound"]]) {
        rows.push({
          label: `bulk: CPU cores busy (of ${vcpus()}), ${what}, all threads`,
          transport: t,
          rpc: ref("bulk", t, side as Side, "cores"),
          cols: {},
        });
      }
    }
  }
  if (has("mem") && o.transports.includes("tcp")) {
    for (const level of o.memLevels) {
      rows.push({
        label: `mem: server KiB per idle connection at ${level.toLocaleString("en-US")}`,
        transport: "tcp",
        rpc: ref("mem", "tcp", "rpc", `kib@${level}`),
        lowerBetter: true,
        cols: { raw: ref("mem", "tcp", "raw", `kib@${level}`) },
        target: (get) => {
          const s = get(ref("mem", "tcp", "rpc", `kib@${level}`));
          return { text: "≤ 16 KiB", met: s ? s.median <= 16 : undefined };
        },
      });
    }
    const top = Math.max(...o.memLevels);
    for (
      const [metric, what] of [["heap", "reserved (heapTotal)"], ["heapused", "used (heapUsed)"]]
    ) {
      rows.push({
        label: `mem: of which V8 heap ${what}, KiB per connection at ${
          top.toLocaleString("en-US")
        }`,
        transport: "tcp",
        rpc: ref("mem", "tcp", "rpc", `${metric}_kib@${top}`),
        lowerBetter: true,
        cols: {},
      });
    }
    rows.push({
      label: `mem: server RSS MiB at ${top.toLocaleString("en-US")} idle connections`,
      transport: "tcp",
      rpc: ref("mem", "tcp", "rpc", `rss@${top}_MiB`),
      lowerBetter: true,
      cols: { raw: ref("mem", "tcp", "raw", `rss@${top}_MiB`) },
    });
  }
  if (has("hs") && o.transports.includes("tcp")) {
    for (const [metric, label] of [["hs_s", "one at a time"], ["hs8_s", "8 at once"]]) {
      rows.push({
        label: `hs: handshakes/s, ${label}`,
        transport: "tcp",
        rpc: ref("hs", "tcp", "rpc", metric),
        cols: { raw: ref("hs", "tcp", "raw", metric) },
        target: (get) => {
          const s = get(ref("hs", "tcp", "rpc", metric));
          const floor = get(ref("hs", "tcp", "floor", metric));
          const detail = floor ? `${pct(advantage(s, floor))} of the floor` : undefined;
          return { text: "≥ 1,500/s", met: s ? s.median >= 1500 : undefined, detail };
        },
      });
      rows.push({
        label: `hs: floor (TCP + X25519 by Web Crypto, same messages, nothing else), ${label}`,
        transport: "tcp",
        rpc: ref("hs", "tcp", "floor", metric),
        cols: {},
      });
    }
  }
  return rows;
}

/** The markdown table. */
export function renderTable(o: Options, results: Results): string {
  const get = (r: Ref) => results.get(r.scenario, r.transport, r.side, r.metric);
  const lines = [
    "| scenario | transport | @trust/rpc | raw socket | naive JSON | gRPC-js | capnweb | ratio vs best peer | target | met? |",
    "|---|---|---|---|---|---|---|---|---|---|",
  ];
  for (const row of rowsFor(o)) {
    const rpc = get(row.rpc);
    const cells: string[] = [];
    for (const c of ["raw", "json", "grpc", "capnweb"] as Column[]) {
      const r = row.cols[c];
      const s = r ? get(r) : undefined;
      if (!s) {
        cells.push("");
        continue;
      }
      const adv = advantage(rpc, s, row.lowerBetter);
      cells.push(`${fmtSummary(s)}${Number.isFinite(adv) ? ` · ${fmtRatio(adv)}` : ""}`);
    }
    let best = "";
    let bestAdv = NaN;
    for (const c of ["grpc", "capnweb"] as Column[]) {
      const r = row.cols[c];
      const adv = r ? advantage(rpc, get(r), row.lowerBetter) : NaN;
      if (Number.isFinite(adv) && !(adv >= bestAdv)) {
        bestAdv = adv;
        best = c === "grpc" ? "gRPC-js" : "capnweb";
      }
    }
    const target = row.target?.(get);
    const met = target
      ? (target.met === undefined ? "n/a" : target.met ? "yes" : "**NO**") +
        (target.detail ? ` (${target.detail})` : "")
      : "";
    lines.push(
      `| ${row.label} | ${NAMES[row.transport] ?? row.transport} | ${fmtSummary(rpc)} | ` +
        `${cells.join(" | ")} | ${best ? `${fmtRatio(bestAdv)} (${best})` : ""} | ` +
        `${target?.text ?? ""} | ${met} |`,
    );
  }
  return lines.join("\n");
}

/** The explanation printed under the table. */
export const LEGEND = [
  "Cells: **median** (min–max) over the reps; † = a rep stopped at its time limit before its",
  "count (the rate is over what completed). `· r×` after a figure = how @trust/rpc compares to",
  "it, > 1 meaning @trust/rpc is better (throughput: rpc ÷ it; latency and memory: it ÷ rpc).",
  "Ratio vs best peer: against the better of gRPC-js and capnweb (the peer libraries).",
  "@trust/rpc: public API (`serve`/`connect`, `client.call`, `client.stream`), default options,",
  "every record sealed (ChaCha20-Poly1305 up to 1 KiB, AES-256-GCM above); 64-character",
  "string / 1 MiB Uint8Array; client and",
  "server in separate processes, unpinned, loopback. raw socket: the in-repo echo (4-byte length",
  "prefix, no RPC, no crypto): 64 B ping-pong; 100 B frames with the same window written",
  "coalesced (`raw1`: one write per frame); 1 MiB frames 4 in flight; hs: a TLS handshake",
  "(rustls) + close, and the floor (`hs_floor.ts`: trust-rpc's messages with nothing but the",
  "X25519 exchange by Web Crypto on each side); mem: the peers' `mem_idle.ts`, Deno raw echo",
  "with a 4 KiB buffer (the floor).",
  "Peers from the peer harness, same sitting: naive JSON-RPC = `rpc_json_client.ts` (Deno,",
  "coalesced writes; `json1`: one write per call); gRPC-js 1.14.7 (Node ↔ Node, h2c over TCP,",
  "stream = 10,000 × 64 B per call); capnweb 0.12.0 (Node `ws` ↔ Node, WebSocket over TCP);",
  "gRPC-js and capnweb are shown on the TCP and WebSocket rows. MB/s = 10^6 payload bytes/s one",
  "direction. Targets are the issue's; nothing here is asserted (the bench only reports).",
];

/** Lines for the notes: the cross-check of the raw reference and the memory baselines. */
export function summaryNotes(results: Results): string[] {
  const out: string[] = [];
  const pair = (scenario: string, metric: string, unit: string) => {
    const ours = results.get(scenario, "tcp", "raw", metric);
    const theirs = results.get(scenario, "tcp", "rawpeer", metric);
    return theirs
      ? `${fmtSummary(theirs)} ${unit} (in-repo raw echo: ${fmtSummary(ours) || "not run"})`
      : undefined;
  };
  const checks = [
    ["ping-pong", pair("seq", "calls_s", "rt/s")],
    ["ping-pong p50", pair("seq", "p50", "µs")],
    ["1 MiB bulk", pair("bulk", "MB_s", "MB/s")],
  ].filter(([, v]) => v).map(([k, v]) => `${k} ${v}`);
  if (checks.length) {
    out.push(
      `cross-check of the raw reference, the peer harness' raw_client.ts over TCP in this ` +
        `sitting: ${checks.join("; ")}`,
    );
  }
  const rss0 = results.get("mem", "tcp", "rpc", "rss0_MiB");
  if (rss0) {
    const raw0 = results.get("mem", "tcp", "raw", "rss0_MiB");
    out.push(
      `mem: server RSS with no connection ${fmtSummary(rss0)} MiB` +
        (raw0 ? ` (Deno raw echo: ${fmtSummary(raw0)} MiB)` : "") +
        "; @trust/rpc connections made with connect() defaults (heartbeats on), one echo each",
    );
  }
  return out;
}
