/**
 * Lifecycle figures: how long a client takes to reconnect after its server restarts on the
 * same address, and how long a graceful `server.close()` takes with calls in flight.
 *
 *     deno run -A bench/lifecycle.ts
 *
 * @module
 */
import { connect, serve } from "../mod.ts";
const secret = "m".repeat(40);
const methods = { ping: () => 1, slow: () => new Promise((r) => setTimeout(() => r(1), 200)) };
const recon: number[] = [];
const drains: number[] = [];
for (let i = 0; i < 10; i++) {
  let server = await serve({ listen: "tcp://127.0.0.1:0", secret, methods, logger: "silent" });
  const address = server.addresses[0];
  const client = await connect(address, { secret, logger: "silent" });
  // drain: 20 calls of 200 ms in flight, then a graceful close
  const inflight = Array.from({ length: 20 }, () => client.call("slow"));
  await new Promise((r) => setTimeout(r, 20));
  let t = performance.now();
  await server.close({ timeout: 5000 });
  drains.push(performance.now() - t);
  await Promise.all(inflight);
  // reconnect: restart on the same address, time until the client is connected again
  server = await serve({ listen: address, secret, methods, logger: "silent" });
  t = performance.now();
  await client.waitConnected({ timeout: 10_000 });
  recon.push(performance.now() - t);
  await client.call("ping");
  await client.close();
  await server.close();
}
const med = (a: number[]) => a.sort((x, y) => x - y)[Math.floor(a.length / 2)].toFixed(0);
console.log(
  `drain with 20 calls of 200 ms in flight: median ${med(drains)} ms (max ${
    Math.max(...drains).toFixed(0)
  })`,
);
console.log(
  `reconnect after restart (default backoff 100 ms → 30 s): median ${med(recon)} ms (max ${
    Math.max(...recon).toFixed(0)
  })`,
);
