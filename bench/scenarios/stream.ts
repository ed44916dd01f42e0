/**
 * stream: one server stream of small items. The bench server's `items(n)` is an async
 * generator yielding the same 64-character string `n` times; the client iterates
 * `client.stream("items", [n])` with the library's default window → msgs/s. Leaving the loop
 * at the time limit cancels the stream on the server. The peer figure is gRPC-js server
 * streaming (10,000 × 64 B per call). `windowExperiment` runs windows 64, 256 and 4096 once
 * next to the measured default.
 *
 * @module
 */

import { DEFAULT_STREAM_WINDOW } from "../../protocol/flow.ts";
import type { Transport } from "../common.ts";
import type { Bound } from "../plan.ts";
import { fmt } from "../results.ts";
import { PAYLOAD, withClient } from "./clients.ts";
import type { Context, RepResult, SideSpec } from "./context.ts";

/** The window of the measured reps: the library's default, as a user gets it. */
export const STREAM_WINDOW = DEFAULT_STREAM_WINDOW;

async function rpcStream(
  ctx: Context,
  address: string,
  b: Bound,
  window: number,
): Promise<RepResult> {
  return await withClient(ctx, address, b.ms, async (client) => {
    let got = 0;
    let limited = false;
    const start = performance.now();
    const stopAt = start + b.ms;
    for await (const item of client.stream<string>("items", [b.n], { window })) {
      if (item !== PAYLOAD) throw new Error("items yielded something else");
      got++;
      if ((got & 255) === 0 && performance.now() > stopAt) {
        limited = got < b.n;
        break; // cancels the stream on the server
      }
    }
    const secs = (performance.now() - start) / 1000;
    return { values: { msgs_s: got / secs }, limited };
  });
}

/** The sides of stream on a transport (window {@link STREAM_WINDOW}). */
export function streamSides(ctx: Context, t: Transport): SideSpec[] {
  return [{
    side: "rpc",
    bounds: ctx.plan.stream.rpc,
    run: (b) => rpcStream(ctx, ctx.rpcAddress(t), b, STREAM_WINDOW),
  }];
}

/**
 * One rep each of window 64, 256 and 4096 (after the measured reps, same server), recorded
 * as `msgs_s@w<window>`; notes which is fastest against the library default.
 */
export async function windowExperiment(ctx: Context, t: Transport): Promise<void> {
  const figures: [number, number][] = [];
  for (const window of [64, 256, STREAM_WINDOW, 4096]) {
    const r = await rpcStream(ctx, ctx.rpcAddress(t), ctx.plan.stream.window, window);
    ctx.results.record("stream", t, "rpc", { [`msgs_s@w${window}`]: r.values.msgs_s }, r.limited);
    figures.push([window, r.values.msgs_s]);
  }
  const best = figures.reduce((a, b) => (b[1] > a[1] ? b : a));
  ctx.results.note(
    `stream window (${t.toUpperCase()}, one rep each): ` +
      figures.map(([w, v]) => `${w} → ${fmt(v)} msgs/s`).join(", ") +
      `; fastest here: ${best[0]} (library default streamWindow: ${DEFAULT_STREAM_WINDOW}). ` +
      "One rep each: differences under ~15% are noise on this machine.",
  );
}
