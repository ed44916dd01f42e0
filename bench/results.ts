/**
 * Every measured value of a bench run (one per rep, metric and side), the notes printed under
 * the table, and their summaries (median, min, max).
 *
 * @module
 */

import { median } from "./common.ts";

/**
 * Who produced a value: @trust/rpc, the in-repo raw echo (`raw1`: one write per frame), the
 * Web Crypto bound, the handshake floor (`hs_floor.ts`), or a peer from the peer harness (`json1`: one write per call;
 * `rawpeer*`: the harness' own raw client, a cross-check of ours).
 */
export type Side =
  | "rpc"
  | "raw"
  | "raw1"
  | "crypto"
  | "floor"
  | "json"
  | "json1"
  | "grpc"
  | "capnweb"
  | "rawpeer"
  | "rawpeer1";

/** One measured value of one rep. */
export interface Sample {
  scenario: string;
  transport: string;
  side: Side;
  metric: string;
  value: number;
  /** The rep ended at its time limit before its count (the rate is over what completed). */
  limited: boolean;
}

/** Median, min and max of a cell. */
export interface Summary {
  median: number;
  min: number;
  max: number;
  n: number;
  limited: boolean;
}

/** The values of a run. */
export class Results {
  /** Every value, in the order measured. */
  readonly samples: Sample[] = [];
  /** Lines printed under the table (skipped steps, experiments, cross-checks). */
  readonly notes: string[] = [];
  /** The peers' JSON lines as they wrote them. */
  readonly peerLines: unknown[] = [];

  /** Records the values of one rep and logs them on stderr. */
  record(
    scenario: string,
    transport: string,
    side: Side,
    values: Record<string, number>,
    limited: boolean,
    quiet = false,
  ): void {
    for (const [metric, value] of Object.entries(values)) {
      this.samples.push({ scenario, transport, side, metric, value, limited });
    }
    if (quiet) return;
    const text = Object.entries(values).map(([k, v]) => `${k}=${fmt(v)}`).join(" ");
    console.error(
      `  ${scenario} ${transport} ${side.padEnd(7)} ${text}${limited ? " (time limit)" : ""}`,
    );
  }

  /** Adds a note (also logged at once). */
  note(text: string): void {
    this.notes.push(text);
    console.error(`bench: ${text}`);
  }

  /** The summary of a cell, or undefined when nothing was measured. */
  get(scenario: string, transport: string, side: Side, metric: string): Summary | undefined {
    const s = this.samples.filter((x) =>
      x.scenario === scenario && x.transport === transport && x.side === side &&
      x.metric === metric
    );
    if (s.length === 0) return undefined;
    const v = s.map((x) => x.value);
    return {
      median: median(v),
      min: Math.min(...v),
      max: Math.max(...v),
      n: v.length,
      limited: s.some((x) => x.limited),
    };
  }
}

/** 1,234 / 12.3 / 1.23 M. */
export function fmt(v: number): string {
  if (!Number.isFinite(v)) return "–";
  if (Math.abs(v) >= 1e6) return `${(v / 1e6).toFixed(2)} M`;
  if (Math.abs(v) >= 100) return Math.round(v).toLocaleString("en-US");
  if (Math.abs(v) >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

/** `**median** (min–max)` with † when a rep hit its time limit. */
export function fmtSummary(s: Summary | undefined): string {
  if (!s) return "";
  const range = s.n > 1 ? ` (${fmt(s.min)}–${fmt(s.max)})` : "";
  return `**${fmt(s.median)}**${range}${s.limited ? " †" : ""}`;
}
