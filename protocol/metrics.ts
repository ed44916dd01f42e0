/**
 * Call metrics and the Prometheus text exposition format (version 0.0.4), on Web platform APIs
 * only. A {@link CallMetrics} registry counts served calls by method and outcome and keeps a
 * latency histogram per method; {@link renderPrometheus} writes metric families as text.
 *
 * The per-call cost is one `Map` lookup and a scan of 16 bucket bounds (two more lookups for
 * an outcome other than `ok`): nothing is allocated per call. Method labels exist only for the methods the
 * registry was built with, plus {@link UNKNOWN_METHOD}, so a peer calling made-up names cannot
 * grow the label set; outcomes are capped the same way ({@link OTHER_OUTCOME}).
 *
 * @example
 * ```ts
 * import { CallMetrics, renderPrometheus } from "./metrics.ts";
 * const metrics = new CallMetrics(["greet"]);
 * metrics.callDone("greet", "ok", 0.0004);
 * metrics.callDone("nope", "METHOD_NOT_FOUND", 0.00001);
 * console.log(renderPrometheus(metrics.families()));
 * ```
 *
 * @module
 */

/** Latency histogram upper bounds in seconds, 100 µs to 10 s (`+Inf` is implicit). */
export const LATENCY_BUCKETS: readonly number[] = Object.freeze([
  0.0001,
  0.00025,
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
]);

/** The method label of calls to names the server does not serve. */
export const UNKNOWN_METHOD = "unknown";
/** The outcome label once {@link MAX_OUTCOMES} distinct outcomes have been seen. */
export const OTHER_OUTCOME = "OTHER";
/** Distinct outcome labels kept (error codes are chosen by handlers: keep them bounded). */
export const MAX_OUTCOMES = 64;

/** What a session reports about the calls it serves (the hook of `SessionOptions.metrics`). */
export interface SessionMetrics {
  /**
   * A request or notification from the peer has finished here.
   *
   * @param method the method name as received (possibly one the server does not serve)
   * @param outcome `"ok"` or the error code sent (or that would have been sent) to the caller,
   *   e.g. `METHOD_NOT_FOUND`, `INVALID_PARAMS`, `APPLICATION_ERROR`, `CANCELLED`
   * @param seconds time from the arrival of the record that carried the request to the end of
   *   its handler; a call that ends while its record is dispatched (a synchronous handler, a
   *   refusal) is timed at the end of that record, when its answer is ready to leave
   */
  callDone(method: string, outcome: string, seconds: number): void;
}

/** A fixed-bucket histogram (Prometheus semantics: a bucket counts values `<=` its bound). */
export class Histogram {
  /** Upper bounds, ascending, without `+Inf`. */
  readonly bounds: readonly number[];
  /** Observations per bucket, not cumulative; the last slot is `+Inf`. */
  readonly counts: Float64Array;
  /** Sum of all observed values. */
  sum = 0;
  /** Number of observations. */
  count = 0;

  /** @param bounds ascending upper bounds */
  constructor(bounds: readonly number[] = LATENCY_BUCKETS) {
    this.bounds = bounds;
    this.counts = new Float64Array(bounds.length + 1);
  }

  /** Records one value. */
  observe(value: number): void {
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]) i++;
    this.counts[i]++;
    this.sum += value;
    this.count++;
  }

  /** Cumulative counts per bound, `+Inf` last (what `_bucket` lines show). */
  cumulative(): number[] {
    const out: number[] = [];
    let running = 0;
    for (const c of this.counts) out.push(running += c);
    return out;
  }
}

/** One sample of a counter or gauge family. */
export interface Sample {
  /** Label names and values (values are escaped when rendered). */
  labels?: Record<string, string>;
  /** The value. */
  value: number;
}

/** A histogram sample of a histogram family. */
export interface HistogramSample {
  /** Label names and values (`le` is added per bucket). */
  labels?: Record<string, string>;
  /** The histogram. */
  histogram: Histogram;
}

/** A metric family: one `# HELP` / `# TYPE` block. */
export type MetricFamily =
  | { name: string; help: string; type: "counter" | "gauge"; samples: Sample[] }
  | { name: string; help: string; type: "histogram"; samples: HistogramSample[] };

interface MethodEntry {
  histogram: Histogram;
  /** Calls with the outcome `ok` (the common case skips the maps). */
  ok: number;
  /** Every other outcome. */
  outcomes: Map<string, number>;
}

/** Served calls by method and outcome, with a latency histogram per method. */
export class CallMetrics implements SessionMetrics {
  #methods = new Map<string, MethodEntry>();
  #unknown: MethodEntry;
  #outcomes = new Map<string, number>();
  #ok = 0;
  #total = 0;
  #bounds: readonly number[];

  /**
   * @param methods the method names served (each gets its own label)
   * @param bounds latency bucket bounds in seconds
   */
  constructor(methods: Iterable<string>, bounds: readonly number[] = LATENCY_BUCKETS) {
    this.#bounds = bounds;
    for (const name of methods) this.#methods.set(name, this.#entry());
    this.#unknown = this.#methods.get(UNKNOWN_METHOD) ?? this.#entry();
    this.#methods.set(UNKNOWN_METHOD, this.#unknown);
  }

  /** Counts a finished call (hot path: no allocation once an outcome has been seen). */
  callDone(method: string, outcome: string, seconds: number): void {
    const entry = this.#methods.get(method) ?? this.#unknown;
    entry.histogram.observe(seconds);
    this.#total++;
    if (outcome === "ok") {
      this.#ok++;
      entry.ok++;
      return;
    }
    const seen = this.#outcomes.get(outcome);
    if (seen !== undefined) this.#outcomes.set(outcome, seen + 1);
    else {
      if (this.#outcomes.size >= MAX_OUTCOMES) outcome = OTHER_OUTCOME;
      this.#outcomes.set(outcome, (this.#outcomes.get(outcome) ?? 0) + 1);
    }
    entry.outcomes.set(outcome, (entry.outcomes.get(outcome) ?? 0) + 1);
  }

  /** Calls counted. */
  get total(): number {
    return this.#total;
  }

  /** Calls by outcome (`ok`, `METHOD_NOT_FOUND`, …), a fresh object. */
  byOutcome(): Record<string, number> {
    const out: Record<string, number> = this.#ok > 0 ? { ok: this.#ok } : {};
    for (const [outcome, n] of this.#outcomes) out[outcome] = n;
    return out;
  }

  /** Calls by method label (methods never called are left out), a fresh object. */
  byMethod(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [name, entry] of this.#methods) {
      if (entry.histogram.count > 0) out[name] = entry.histogram.count;
    }
    return out;
  }

  /** The latency histogram of a method label (`unknown` included), if it exists. */
  histogram(method: string): Histogram | undefined {
    return this.#methods.get(method)?.histogram;
  }

  /**
   * Metric families `<prefix>calls_total{method,outcome}` and
   * `<prefix>call_duration_seconds{method}` (every served method, called or not).
   */
  families(prefix = "trust_rpc_"): MetricFamily[] {
    const calls: Sample[] = [];
    const durations: HistogramSample[] = [];
    for (const [method, entry] of this.#methods) {
      if (entry.ok > 0) calls.push({ labels: { method, outcome: "ok" }, value: entry.ok });
      for (const [outcome, value] of entry.outcomes) {
        calls.push({ labels: { method, outcome }, value });
      }
      durations.push({ labels: { method }, histogram: entry.histogram });
    }
    return [
      {
        name: `${prefix}calls_total`,
        help: "Requests and notifications served, by method and outcome (ok or the error code).",
        type: "counter",
        samples: calls,
      },
      {
        name: `${prefix}call_duration_seconds`,
        help: "Time from the arrival of a request to the end of its handler, by method.",
        type: "histogram",
        samples: durations,
      },
    ];
  }

  #entry(): MethodEntry {
    return { histogram: new Histogram(this.#bounds), ok: 0, outcomes: new Map() };
  }
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** Escapes a label value: backslash, double quote and line feed. */
export function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

function escapeHelp(text: string): string {
  return text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

/** A sample value as Prometheus writes it (`+Inf`, `-Inf`, `NaN`, else a JS number). */
export function formatValue(value: number): string {
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  if (Number.isNaN(value)) return "NaN";
  return String(value);
}

function formatLabels(labels: Record<string, string> | undefined, le?: string): string {
  const parts: string[] = [];
  if (labels !== undefined) {
    for (const [name, value] of Object.entries(labels)) {
      if (!LABEL_NAME.test(name) || name === "le") throw new TypeError(`Bad label name ${name}`);
      parts.push(`${name}="${escapeLabelValue(value)}"`);
    }
  }
  if (le !== undefined) parts.push(`le="${le}"`);
  return parts.length === 0 ? "" : `{${parts.join(",")}}`;
}

/**
 * Renders metric families in the Prometheus text exposition format 0.0.4 (serve it as
 * `text/plain; version=0.0.4; charset=utf-8`). Histograms get cumulative `_bucket` lines up to
 * `le="+Inf"`, then `_sum` and `_count`.
 *
 * @throws {TypeError} an invalid metric or label name
 */
export function renderPrometheus(families: readonly MetricFamily[]): string {
  const lines: string[] = [];
  for (const family of families) {
    if (!METRIC_NAME.test(family.name)) throw new TypeError(`Bad metric name ${family.name}`);
    lines.push(`# HELP ${family.name} ${escapeHelp(family.help)}`);
    lines.push(`# TYPE ${family.name} ${family.type}`);
    if (family.type !== "histogram") {
      for (const s of family.samples) {
        lines.push(`${family.name}${formatLabels(s.labels)} ${formatValue(s.value)}`);
      }
      continue;
    }
    for (const s of family.samples) {
      const h = s.histogram;
      const cumulative = h.cumulative();
      for (let i = 0; i < cumulative.length; i++) {
        const le = i < h.bounds.length ? formatValue(h.bounds[i]) : "+Inf";
        lines.push(`${family.name}_bucket${formatLabels(s.labels, le)} ${cumulative[i]}`);
      }
      lines.push(`${family.name}_sum${formatLabels(s.labels)} ${formatValue(h.sum)}`);
      lines.push(`${family.name}_count${formatLabels(s.labels)} ${h.count}`);
    }
  }
  return lines.join("\n") + "\n";
}
