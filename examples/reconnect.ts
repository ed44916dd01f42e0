/**
 * A client riding through a server restart: the server goes away and comes back on the same
 * address; the client reconnects by itself, and a call made during the outage waits for it.
 * Uses TRUST_ID when set, otherwise a one-time random secret.
 *
 *     deno run -A examples/reconnect.ts
 *
 * @module
 */

import { connect, generateSecret, serve } from "../mod.ts";

const secret = Deno.env.get("TRUST_ID") || generateSecret();
const methods = { time: () => new Date().toISOString() };

let server = await serve({ listen: "tcp://127.0.0.1:0", secret, methods, logger: "warn" });
const address = server.addresses[0];
const client = await connect(address, {
  secret,
  timeout: 10_000,
  reconnect: { initialDelay: 50, maxDelay: 1000 },
});
client.onStatus((e) =>
  console.log(`status: ${e.status}${e.attempt ? ` (attempt ${e.attempt}, in ${e.delay} ms)` : ""}`)
);
console.log("before the restart:", await client.call("time"));

await server.close();
console.log("server stopped; calling anyway…");
const waiting = client.call("time"); // waits for the connection, within its 10 s timeout
await new Promise((r) => setTimeout(r, 500));
server = await serve({ listen: address, secret, methods, logger: "warn" });
console.log("server restarted on", address);
console.log("after the restart:", await waiting, `(reconnects: ${client.reconnects})`);

await client.close();
await server.close();
