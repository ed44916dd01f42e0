/**
 * pipe100 / pipe1000: `client.call("echo", [64-char string])` with 100 or 1000 calls in
 * flight (refilled as they complete) → calls/s. Raw: 100-byte frames with the same window,
 * written coalesced (everything the window allows in one write) and, for 1000, also one write
 * per frame (`raw1`). pipe0 (opt-in): 1000 in flight with the client's `timeout: 0`.
 *
 * @module
 */

import type { Transport } from "../common.ts";
import { rawPipeline } from "../raw.ts";
import { keepInFlight, PAYLOAD, withClient, withRaw } from "./clients.ts";
import type { Context, SideSpec } from "./context.ts";

/** The sides of pipe100 (`inFlight` 100), pipe1000 (1000) or pipe0 (1000, `timeout: 0`). */
export function pipeSides(
  ctx: Context,
  t: Transport,
  inFlight: number,
  noTimeout = false,
): SideSpec[] {
  const sides: SideSpec[] = [{
    side: "rpc",
    bounds: ctx.plan.pipe.rpc,
    run: (b) =>
      withClient(ctx, ctx.rpcAddress(t), b.ms, async (client) => {
        const r = await keepInFlight(b, inFlight, async () => {
          if (await client.call("echo", [PAYLOAD]) !== PAYLOAD) {
            throw new Error("echo returned something else");
          }
        });
        return { values: { calls_s: r.done / r.secs }, limited: r.limited };
      }, noTimeout ? 0 : undefined),
  }];
  if (noTimeout) return sides; // compared with the raw figures of pipe1000
  const raw = (maxBatch: number) => async (b: { n: number; ms: number }) => {
    const r = await withRaw(
      ctx,
      ctx.rawAddress(t),
      b.ms,
      (c) => rawPipeline(c, b.n, 100, inFlight, b.ms, maxBatch),
    );
    return { values: { calls_s: r.perSecond }, limited: r.timeLimited };
  };
  sides.push({ side: "raw", bounds: ctx.plan.pipe.raw, run: raw(inFlight) });
  if (inFlight >= 1000) sides.push({ side: "raw1", bounds: ctx.plan.pipe.raw1, run: raw(1) });
  return sides;
}
