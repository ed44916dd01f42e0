/**
 * What a scenario gets from `run.ts` (options, plan, results, the servers' addresses, the
 * time budget) and the loop every scenario shares: one warm-up per side, then the reps, with
 * the order of the sides alternating so that none always runs first (same machine weather).
 *
 * @module
 */

import type { RpcTransport, Transport } from "../common.ts";
import type { Options } from "../options.ts";
import type { Bound, Bounds, Plan } from "../plan.ts";
import type { Results, Side } from "../results.ts";

/** What a scenario works with. */
export interface Context {
  options: Options;
  plan: Plan;
  results: Results;
  /** The shared secret (`TRUST_ID`) of the bench servers. */
  secret: string;
  /** The CA of the TLS fixtures. */
  caCert: string;
  /** The @trust/rpc bench server's address on a transport. */
  rpcAddress(t: RpcTransport): string;
  /** The @trust/rpc bench server's pid (for its CPU time). */
  rpcPid: number;
  /** The raw echo server's address on a transport. */
  rawAddress(t: Transport): string;
  /** The handshake floor server's address (`hs_floor.ts`), when hs runs. */
  floorAddress?: string;
  /** Milliseconds left before the run must be over (the soft budget). */
  remainingMs(): number;
}

/** The values of one rep. */
export interface RepResult {
  values: Record<string, number>;
  /** The rep ended at its time limit before its count. */
  limited: boolean;
}

/** One side of a scenario: who is measured, how much, and how. */
export interface SideSpec {
  side: Side;
  bounds: Bounds;
  run(b: Bound): Promise<RepResult>;
}

/** Upper bound of the time `runSides` takes (ms), for the budget. */
export function sidesCostMs(ctx: Context, sides: SideSpec[]): number {
  const perRep = sides.reduce((a, s) => a + s.bounds[1].ms + 150, 0);
  const warm = sides.reduce((a, s) => a + s.bounds[0].ms + 150, 0);
  return warm + perRep * ctx.options.reps;
}

/**
 * Runs a warm-up of every side (not recorded), then `reps` reps of every side, alternating
 * their order, and records the values under `scenario` / `transport`.
 */
export async function runSides(
  ctx: Context,
  scenario: string,
  transport: string,
  sides: SideSpec[],
): Promise<void> {
  for (const s of sides) await s.run(s.bounds[0]);
  for (let r = 0; r < ctx.options.reps; r++) {
    const order = r % 2 === 0 ? sides : [...sides].reverse();
    for (const s of order) {
      const res = await s.run(s.bounds[1]);
      ctx.results.record(scenario, transport, s.side, res.values, res.limited);
    }
  }
}
