/**
 * A server's counters: handshakes by outcome, calls by method and outcome (with latency
 * histograms), bytes, connections, streams — as a snapshot ({@link ServerCounters.stats})
 * or in the Prometheus text format.
 *
 * @module
 */

import {
  CallMetrics,
  MAX_OUTCOMES,
  type MetricFamily,
  OTHER_OUTCOME,
  renderPrometheus,
} from "./metrics.ts";
import type { Peer } from "./peer.ts";
import type { Session } from "./session.ts";

/** A snapshot of a server's counters: {@link Server.stats}. Counters start at {@link serve}. */
export interface ServerStats {
  /** Authenticated connections open now. */
  connections: number;
  /** Handshakes since start. */
  handshakes: {
    /** Connections that authenticated. */
    ok: number;
    /** Connections that did not (the sum of `failedByReason`). */
    failed: number;
    /**
     * Failures by code: `AUTH_FAILED` (wrong secret), `HANDSHAKE_TIMEOUT`, `PROTOCOL_ERROR`,
     * `CONNECTION_CLOSED` (the client left mid-handshake), `TRANSPORT_MISMATCH`, …, and the
     * connections refused before any handshake: `BUSY` (connection or pre-auth cap) and
     * `RATE_LIMITED` (the address's failure budget is spent).
     */
    failedByReason: Record<string, number>;
  };
  /**
   * Requests and notifications served since start, counted when they finish (empty with
   * `metrics: false`).
   */
  calls: {
    /** Calls finished. */
    total: number;
    /**
     * Calls by outcome: `ok`, or the error code the caller got — `METHOD_NOT_FOUND`,
     * `INVALID_PARAMS`, `APPLICATION_ERROR` (a handler threw a plain Error), a handler's own
     * `RpcError` code, `CANCELLED` / `TIMEOUT` / `CONNECTION_CLOSED` (the handler was aborted;
     * no answer was sent), `UNAVAILABLE` (refused by GOAWAY), `RESOURCE_EXHAUSTED`. Only codes
     * seen appear; past 64 distinct codes the rest count as `OTHER`.
     */
    byOutcome: Record<string, number>;
    /**
     * Calls by method: only methods this server serves appear by name; every other name (and
     * requests refused before their name was read) counts as `unknown`.
     */
    byMethod: Record<string, number>;
  };
  /** Peer calls running (or waiting for a handler slot) now, across all connections. */
  inFlight: number;
  /** Streams and channels open now, both directions, across all connections. */
  streams: number;
  /** Bytes of sealed records received after handshakes, closed connections included. */
  bytesIn: number;
  /** Bytes of sealed records sent after handshakes, closed connections included. */
  bytesOut: number;
  /** Milliseconds since the server started. */
  uptime: number;
}

/** The counters behind `Server.stats()` and `Server.metricsText()`. */
export class ServerCounters {
  #startedAt = performance.now();
  #calls: CallMetrics | undefined;
  #handshakesOk = 0;
  #handshakeFailures = new Map<string, number>();
  /** Bytes of connections already closed (live ones are summed over the peers). */
  #closedBytesIn = 0;
  #closedBytesOut = 0;

  /** @param methods the served method names; undefined: calls are not counted */
  constructor(methods: Iterable<string> | undefined) {
    if (methods !== undefined) this.#calls = new CallMetrics(methods);
  }

  /** Where sessions report their calls (undefined when calls are not counted). */
  get calls(): CallMetrics | undefined {
    return this.#calls;
  }

  /** A handshake succeeded. */
  handshakeOk(): void {
    this.#handshakesOk++;
  }

  /** A session closed: its bytes join the totals. */
  closed(session: Session): void {
    this.#closedBytesIn += session.bytesIn;
    this.#closedBytesOut += session.bytesOut;
  }

  /** A snapshot of the server's counters (a fresh plain object, safe to serialize). */
  stats(peers: ReadonlySet<Peer>): ServerStats {
    let inFlight = 0;
    let streams = 0;
    let bytesIn = this.#closedBytesIn;
    let bytesOut = this.#closedBytesOut;
    for (const peer of peers) {
      inFlight += peer.inFlight;
      streams += peer.openStreams;
      bytesIn += peer.bytesIn;
      bytesOut += peer.bytesOut;
    }
    let failed = 0;
    for (const n of this.#handshakeFailures.values()) failed += n;
    return {
      connections: peers.size,
      handshakes: {
        ok: this.#handshakesOk,
        failed,
        failedByReason: Object.fromEntries(this.#handshakeFailures),
      },
      calls: {
        total: this.#calls?.total ?? 0,
        byOutcome: this.#calls?.byOutcome() ?? {},
        byMethod: this.#calls?.byMethod() ?? {},
      },
      inFlight,
      streams,
      bytesIn,
      bytesOut,
      uptime: performance.now() - this.#startedAt,
    };
  }

  /**
   * The counters of {@link stats} and the per-method latency histograms in the Prometheus
   * text exposition format 0.0.4 (serve it as `text/plain; version=0.0.4`): gauges
   * `trust_rpc_uptime_seconds`, `trust_rpc_connections`, `trust_rpc_calls_in_flight`;
   * counters `trust_rpc_handshakes_total{outcome}` (`ok` or the failure code),
   * `trust_rpc_received_bytes_total`, `trust_rpc_sent_bytes_total`,
   * `trust_rpc_calls_total{method,outcome}`; histogram
   * `trust_rpc_call_duration_seconds{method}` (100 µs to 10 s).
   */
  metricsText(peers: ReadonlySet<Peer>): string {
    const s = this.stats(peers);
    const handshakes = [{ labels: { outcome: "ok" }, value: s.handshakes.ok }];
    for (const [outcome, value] of this.#handshakeFailures) {
      handshakes.push({ labels: { outcome }, value });
    }
    const families: MetricFamily[] = [
      {
        name: "trust_rpc_uptime_seconds",
        help: "Seconds since the server started.",
        type: "gauge",
        samples: [{ value: s.uptime / 1000 }],
      },
      {
        name: "trust_rpc_connections",
        help: "Authenticated connections open now.",
        type: "gauge",
        samples: [{ value: s.connections }],
      },
      {
        name: "trust_rpc_handshakes_total",
        help: "Handshakes by outcome: ok, or why the connection was refused or failed.",
        type: "counter",
        samples: handshakes,
      },
      {
        name: "trust_rpc_calls_in_flight",
        help: "Peer calls running or waiting for a handler slot now.",
        type: "gauge",
        samples: [{ value: s.inFlight }],
      },
      {
        name: "trust_rpc_streams_open",
        help: "Streams and channels open now, both directions.",
        type: "gauge",
        samples: [{ value: s.streams }],
      },
      {
        name: "trust_rpc_received_bytes_total",
        help: "Bytes of sealed records received after handshakes.",
        type: "counter",
        samples: [{ value: s.bytesIn }],
      },
      {
        name: "trust_rpc_sent_bytes_total",
        help: "Bytes of sealed records sent after handshakes.",
        type: "counter",
        samples: [{ value: s.bytesOut }],
      },
    ];
    if (this.#calls !== undefined) families.push(...this.#calls.families("trust_rpc_"));
    return renderPrometheus(families);
  }

  /** Counts a refused or failed handshake by its code (bounded label set). */
  countFailure(code: string): void {
    const map = this.#handshakeFailures;
    if (!map.has(code) && map.size >= MAX_OUTCOMES) code = OTHER_OUTCOME;
    map.set(code, (map.get(code) ?? 0) + 1);
  }
}
