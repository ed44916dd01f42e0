/**
 * Client plumbing shared by the scenarios: a fresh @trust/rpc client (public API, `connect`
 * from `mod.ts`) or raw connection per rep, bounded in time, closed afterwards; and the loop
 * that keeps N calls in flight.
 *
 * @module
 */

import { type Client, connect } from "../../mod.ts";
import { deadline, parseBenchAddress } from "../common.ts";
import { rawConnect } from "../raw.ts";
import type { Bound } from "../plan.ts";
import type { Context } from "./context.ts";

/** The 64-character string of the small calls. */
export const PAYLOAD = "x".repeat(64);

/** Connects to a bench server (default client options apart from the ones given). */
export async function rpcConnect(
  ctx: Context,
  address: string,
  timeout?: number,
): Promise<Client> {
  return await deadline(
    connect(address, { secret: ctx.secret, caCerts: [ctx.caCert], logger: "silent", timeout }),
    15_000,
    `connect to ${address} timed out`,
  );
}

/** Runs `body` on a fresh client, bounded by `limitMs + drain`; closes it afterwards. */
export async function withClient<T>(
  ctx: Context,
  address: string,
  limitMs: number,
  body: (c: Client) => Promise<T>,
  timeout?: number,
): Promise<T> {
  const client = await rpcConnect(ctx, address, timeout);
  try {
    return await deadline(
      body(client),
      limitMs + ctx.plan.drainMs,
      `rep on ${address} timed out`,
    );
  } finally {
    await deadline(client.close({ timeout: 1000 }), 5000, "close timed out").catch(() => {});
  }
}

/** Runs `body` on a fresh raw connection, bounded by `limitMs + drain`; closes it afterwards. */
export async function withRaw<T>(
  ctx: Context,
  address: string,
  limitMs: number,
  body: (c: Deno.Conn) => Promise<T>,
): Promise<T> {
  const conn = await deadline(rawConnect(parseBenchAddress(address)), 15_000, "raw connect");
  try {
    return await deadline(
      body(conn),
      limitMs + ctx.plan.drainMs,
      `raw rep on ${address} timed out`,
    );
  } finally {
    try {
      conn.close();
    } catch { /* closed */ }
  }
}

/**
 * `inFlight` callers each issue `call()` until `b.n` were issued or `b.ms` passed; returns
 * the calls completed and the seconds taken.
 */
export async function keepInFlight(
  b: Bound,
  inFlight: number,
  call: () => Promise<void>,
): Promise<{ done: number; secs: number; limited: boolean }> {
  let issued = 0;
  let done = 0;
  let limited = false;
  const start = performance.now();
  const stopAt = start + b.ms;
  const worker = async () => {
    while (issued < b.n && !limited) {
      // The clock is read every 64 calls: a read is an op (~0.1 µs), which the peers' loops,
      // counting calls only, do not pay per call either.
      if ((issued & 63) === 0 && performance.now() > stopAt) {
        limited = true;
        return;
      }
      issued++;
      await call();
      done++;
    }
  };
  await Promise.all(Array.from({ length: Math.min(inFlight, b.n) }, worker));
  return { done, secs: (performance.now() - start) / 1000, limited };
}
