/**
 * A server and a client in one script, over TCP on a free port: calls, a typed error, and
 * bytes. Uses TRUST_ID when set, otherwise a one-time random secret.
 *
 *     deno run -A examples/in_process.ts
 *
 * @module
 */

import { connect, generateSecret, MethodNotFoundError, serve } from "../mod.ts";

const secret = Deno.env.get("TRUST_ID") || generateSecret();

await using server = await serve({
  listen: "tcp://127.0.0.1:0",
  secret,
  logger: "warn",
  methods: {
    greet: (name: string) => `Hello, ${name}!`,
    checksum: (data: Uint8Array) => data.reduce((sum, b) => (sum + b) & 0xFFFF, 0),
  },
});

await using client = await connect(server.addresses[0], { secret, timeout: 5000 });
console.log(await client.call("greet", ["Deno"]));
console.log("checksum:", await client.call("checksum", [new Uint8Array([1, 2, 3, 250])]));
try {
  await client.call("nope");
} catch (err) {
  if (err instanceof MethodNotFoundError) console.log(`${err.code}: ${err.message}`);
}
