/**
 * hs: handshakes per second over TCP, `connect()` → `close()` (a fresh trust-rpc handshake
 * each, no call), one at a time (`hs_s`) and 8 at once (`hs8_s`). The secret's PBKDF2 runs
 * once per process on each side and is cached, so it is out of the figure after the warm-up.
 * Floor: `hs_floor.ts`, the same messages and round trips with only the X25519 exchange (Web
 * Crypto) on both sides, the least any handshake with fresh keys costs in Deno.
 * Raw reference: a TLS handshake (rustls, P-256 certificate) to the raw echo server over TCP,
 * then close: what a transport-level authenticated handshake costs in Deno. Its time includes
 * the work its closes leave on Deno's blocking thread pool (see `blockingPoolDrained`), which
 * would otherwise stall the next @trust/rpc rep's Web Crypto calls by seconds.
 *
 * @module
 */

import { deadline, parseBenchAddress } from "../common.ts";
import type { Bound } from "../plan.ts";
import { floorHandshake } from "../hs_floor.ts";
import { rawConnect } from "../raw.ts";
import { keepInFlight, rpcConnect } from "./clients.ts";
import type { Context, RepResult, SideSpec } from "./context.ts";

/**
 * Waits until Deno's blocking thread pool has run what is queued on it. In Deno 2.9.6,
 * closing a TLS connection queues ~2 ms of work there, and every `crypto.subtle` call waits
 * behind it: after a burst of 1,000 TLS handshakes + closes, the next Web Crypto call (and so
 * the next trust-rpc handshake) in the process waits ~2 s. A digest is such a call.
 */
async function blockingPoolDrained(): Promise<void> {
  await crypto.subtle.digest("SHA-256", new Uint8Array(1));
}

async function handshakes(
  b: Bound,
  concurrency: number,
  metric: string,
  once: () => Promise<void>,
  drain = false,
): Promise<RepResult> {
  const start = performance.now();
  const r = await deadline(
    keepInFlight(b, concurrency, once),
    b.ms + 15_000,
    "handshake rep timed out",
  );
  // The raw TLS side counts the close work it left behind (and leaves none to the next rep).
  if (drain) await deadline(blockingPoolDrained(), 60_000, "blocking pool drain timed out");
  const secs = (performance.now() - start) / 1000;
  return { values: { [metric]: r.done / secs }, limited: r.limited };
}

/** The sides of hs: @trust/rpc, raw TLS and the floor, each sequential and 8 at once. */
export function hsSides(ctx: Context): SideSpec[] {
  const rpc = async () => {
    const client = await rpcConnect(ctx, ctx.rpcAddress("tcp"));
    await client.close({ timeout: 1000 });
  };
  const tlsAddress = parseBenchAddress(ctx.rawAddress("tls"));
  const tls = async () => {
    const conn = await rawConnect(tlsAddress);
    conn.close();
  };
  const floorAddress = ctx.floorAddress ? parseBenchAddress(ctx.floorAddress) : undefined;
  const floor = floorAddress?.transport === "tcp"
    ? () => floorHandshake(floorAddress.hostname, floorAddress.port)
    : undefined;
  const sides: SideSpec[] = [];
  for (const [concurrency, metric] of [[1, "hs_s"], [8, "hs8_s"]] as const) {
    sides.push({
      side: "rpc",
      bounds: ctx.plan.hs.rpc,
      run: (b) => handshakes(b, concurrency, metric, rpc),
    });
    sides.push({
      side: "raw",
      bounds: ctx.plan.hs.raw,
      run: (b) => handshakes(b, concurrency, metric, tls, true),
    });
    if (floor) {
      sides.push({
        side: "floor",
        bounds: ctx.plan.hs.raw,
        run: (b) => handshakes(b, concurrency, metric, floor),
      });
    }
  }
  return sides;
}
