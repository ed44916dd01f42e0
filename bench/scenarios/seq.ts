/**
 * seq: sequential round trips. @trust/rpc: `client.call("echo", [64-char string])`, one at a
 * time → calls/s, p50, p99 (µs). Raw: 64-byte frame ping-pong (no RPC, no crypto). Over TCP,
 * Unix, TLS and WebSocket (no raw reference there).
 *
 * @module
 */

import { latencyStats, type RpcTransport } from "../common.ts";
import type { Bound } from "../plan.ts";
import { rawPingPong } from "../raw.ts";
import { PAYLOAD, withClient, withRaw } from "./clients.ts";
import type { Context, RepResult, SideSpec } from "./context.ts";

async function rpcSequential(ctx: Context, address: string, b: Bound): Promise<RepResult> {
  return await withClient(ctx, address, b.ms, async (client) => {
    const lat = new Float64Array(b.n);
    const start = performance.now();
    const stopAt = start + b.ms;
    let i = 0;
    for (; i < b.n; i++) {
      const t0 = performance.now();
      if (t0 > stopAt) break;
      const r = await client.call("echo", [PAYLOAD]);
      lat[i] = (performance.now() - t0) * 1000;
      if (r !== PAYLOAD) throw new Error("echo returned something else");
    }
    const secs = (performance.now() - start) / 1000;
    const { p50, p99 } = latencyStats(lat.subarray(0, i));
    return { values: { calls_s: i / secs, p50, p99 }, limited: i < b.n };
  });
}

/** The sides of seq on a transport. */
export function seqSides(ctx: Context, t: RpcTransport): SideSpec[] {
  const sides: SideSpec[] = [{
    side: "rpc",
    bounds: ctx.plan.seq.rpc,
    run: (b) => rpcSequential(ctx, ctx.rpcAddress(t), b),
  }];
  if (t !== "ws") {
    sides.push({
      side: "raw",
      bounds: ctx.plan.seq.raw,
      run: async (b) => {
        const r = await withRaw(ctx, ctx.rawAddress(t), b.ms, (c) => rawPingPong(c, b.n, 64, b.ms));
        return { values: { calls_s: r.perSecond, p50: r.p50, p99: r.p99 }, limited: r.timeLimited };
      },
    });
  }
  return sides;
}
