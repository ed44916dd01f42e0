/**
 * bulk: `client.call("echo", [1 MiB Uint8Array])` with 4 in flight → MB/s (10^6 payload
 * bytes/s, one direction). Raw: 1 MiB frames, 4 in flight. Crypto bound: in this process, in
 * the same run, AES-256-GCM seal + open of the same 1 MiB with Web Crypto
 * (`crypto.subtle.encrypt` / `decrypt`, 12-byte IV) → MB/s of payload. An echo makes each
 * process seal the megabyte once and open it once, so this is the most one side can do when
 * the cipher is the limit. Both record the CPU cores they kept busy (`cores`: for the echo,
 * client and server processes together, all threads), which shows when the machine is the
 * limit.
 *
 * @module
 */

import type { Transport } from "../common.ts";
import { cpuSeconds } from "../cpu.ts";
import type { Bound } from "../plan.ts";
import { rawPipeline } from "../raw.ts";
import { keepInFlight, withClient, withRaw } from "./clients.ts";
import type { Context, RepResult, SideSpec } from "./context.ts";

const MIB = 1024 * 1024;
const IN_FLIGHT = 4;
const payload = new Uint8Array(MIB).map((_, i) => (i * 131) >>> 3);

function same(x: unknown): boolean {
  return x instanceof Uint8Array && x.length === MIB && x[0] === payload[0] &&
    x[MIB >> 1] === payload[MIB >> 1] && x[MIB - 1] === payload[MIB - 1];
}

let key: Promise<CryptoKey> | undefined;

/** AES-256-GCM seal + open of 1 MiB, up to `b.n` times or `b.ms`; also the cores it kept busy. */
export async function cryptoBound(b: Bound): Promise<RepResult> {
  key ??= crypto.subtle.importKey(
    "raw",
    crypto.getRandomValues(new Uint8Array(32)),
    "AES-GCM",
    false,
    ["encrypt", "decrypt"],
  );
  const k = await key;
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const ivView = new DataView(iv.buffer);
  const start = performance.now();
  const cpuStart = cpuSeconds();
  const stopAt = start + b.ms;
  let i = 0;
  for (; i < b.n; i++) {
    if (performance.now() > stopAt) break;
    ivView.setUint32(8, i);
    const sealed = await crypto.subtle.encrypt({ name: "AES-GCM", iv }, k, payload);
    const opened = await crypto.subtle.decrypt({ name: "AES-GCM", iv }, k, sealed);
    if (opened.byteLength !== MIB) throw new Error("AES-GCM round trip lost bytes");
  }
  const secs = (performance.now() - start) / 1000;
  const cores = (cpuSeconds() - cpuStart) / secs;
  return { values: { MB_s: i * MIB / secs / 1e6, cores }, limited: i < b.n };
}

/** The sides of bulk on a transport: @trust/rpc, raw echo, crypto bound. */
export function bulkSides(ctx: Context, t: Transport): SideSpec[] {
  return [
    {
      side: "rpc",
      bounds: ctx.plan.bulk.rpc,
      run: (b) =>
        withClient(ctx, ctx.rpcAddress(t), b.ms, async (client) => {
          const cpuStart = cpuSeconds() + cpuSeconds(ctx.rpcPid);
          const r = await keepInFlight(b, IN_FLIGHT, async () => {
            if (!same(await client.call("echo", [payload]))) {
              throw new Error("echo returned something else");
            }
          });
          // Both processes: this one (the client) and the server.
          const cores = (cpuSeconds() + cpuSeconds(ctx.rpcPid) - cpuStart) / r.secs;
          return { values: { MB_s: r.done * MIB / r.secs / 1e6, cores }, limited: r.limited };
        }),
    },
    {
      side: "raw",
      bounds: ctx.plan.bulk.raw,
      run: async (b) => {
        const r = await withRaw(
          ctx,
          ctx.rawAddress(t),
          b.ms,
          (c) => rawPipeline(c, b.n, MIB, IN_FLIGHT, b.ms),
        );
        return { values: { MB_s: r.mbPerSecond }, limited: r.timeLimited };
      },
    },
    { side: "crypto", bounds: ctx.plan.bulk.crypto, run: cryptoBound },
  ];
}
