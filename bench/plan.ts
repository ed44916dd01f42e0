/**
 * How much work each rep does: a count and a time limit, whichever comes first, for the
 * warm-up and for the measured reps, per scenario and side. The full sizes follow the peer
 * harness (`../shared/bench/peers`): 64-character / 64-byte payloads, 100 and 1000 in flight,
 * 1 MiB with 4 in flight.
 *
 * @module
 */

/** Count and time limit of one rep. */
export interface Bound {
  /** At most this many operations. */
  n: number;
  /** No new operation after this many ms. */
  ms: number;
}

/** [warm-up, measured]. */
export type Bounds = [Bound, Bound];

const B = (n: number, ms: number): Bound => ({ n, ms });

/** The bounds of one run. */
export interface Plan {
  seq: { rpc: Bounds; raw: Bounds };
  pipe: { rpc: Bounds; raw: Bounds; raw1: Bounds };
  stream: { rpc: Bounds; window: Bound };
  bulk: { rpc: Bounds; raw: Bounds; crypto: Bounds };
  hs: { rpc: Bounds; raw: Bounds };
  /** Extra time a rep may take to collect what is in flight after its time limit (ms). */
  drainMs: number;
}

/** The full run: ≥ 5 reps, the README quotes it. */
export const FULL: Plan = {
  seq: { rpc: [B(2_000, 800), B(10_000, 2000)], raw: [B(3_000, 500), B(20_000, 1000)] },
  pipe: {
    rpc: [B(20_000, 800), B(200_000, 2000)],
    raw: [B(100_000, 500), B(2_000_000, 800)],
    raw1: [B(20_000, 500), B(200_000, 1000)],
  },
  stream: { rpc: [B(50_000, 800), B(1_000_000, 2000)], window: B(1_000_000, 2000) },
  bulk: {
    rpc: [B(16, 800), B(256, 2000)],
    raw: [B(64, 500), B(1_024, 1000)],
    crypto: [B(8, 300), B(128, 800)],
  },
  hs: { rpc: [B(100, 500), B(5_000, 2000)], raw: [B(100, 300), B(5_000, 1000)] },
  drainMs: 15_000,
};

/** The smoke run (< 60 s in all). */
export const QUICK: Plan = {
  seq: { rpc: [B(300, 200), B(2_000, 500)], raw: [B(300, 100), B(3_000, 300)] },
  pipe: {
    rpc: [B(2_000, 200), B(20_000, 500)],
    raw: [B(10_000, 100), B(200_000, 300)],
    raw1: [B(5_000, 100), B(20_000, 300)],
  },
  stream: { rpc: [B(5_000, 200), B(100_000, 500)], window: B(100_000, 300) },
  bulk: {
    rpc: [B(2, 300), B(16, 600)],
    raw: [B(8, 100), B(64, 300)],
    crypto: [B(2, 100), B(16, 300)],
  },
  hs: { rpc: [B(20, 200), B(300, 400)], raw: [B(20, 100), B(300, 300)] },
  drainMs: 5_000,
};
