/**
 * A connection pool over three servers in this process (the Go seed's pool.Call): `health`
 * and `echo` calls spread over the servers, one server stops and the calls go on over the
 * other two, then it comes back and serves again. Uses TRUST_ID when set, otherwise a one-time
 * random secret.
 *
 *     deno run -A examples/pool.ts
 *
 * @module
 */

import { createPool, generateSecret, serve, type Server } from "../mod.ts";

const secret = Deno.env.get("TRUST_ID") || generateSecret();

function start(name: string, listen = "tcp://127.0.0.1:0"): Promise<Server> {
  return serve({
    listen,
    secret,
    logger: "warn",
    methods: {
      health: () => ({ status: "ok", server: name }),
      echo: (value: unknown) => ({ value, server: name }),
    },
  });
}

const names = ["server-a", "server-b", "server-c"];
const servers = await Promise.all(names.map((name) => start(name)));
const pool = await createPool({
  endpoints: servers.map((s) => s.addresses[0]),
  secret,
  size: 2,
  timeout: 5000,
  healthInterval: 200,
  connectRetry: { initialDelay: 50, maxDelay: 200 },
});
await pool.waitHealthy({ timeout: 5000 });

async function round(label: string, calls: number): Promise<void> {
  const answered: Record<string, number> = {};
  for (let i = 0; i < calls; i++) {
    const { server } = await pool.call<{ server: string }>("health");
    answered[server] = (answered[server] ?? 0) + 1;
  }
  console.log(`${label}: answered by`, answered);
}

const { value, server } = await pool.call<{ value: string; server: string }>("echo", ["hi"]);
console.log(`echo "${value}" answered by ${server}`);
await round("all up", 12);

await servers[1].close();
console.log(`${names[1]} stopped`);
await round("one down", 12);

servers[1] = await start(names[1], servers[1].addresses[0]);
console.log(`${names[1]} restarted`);
for (let i = 0; i < 100 && pool.stats().healthy < 6; i++) {
  await new Promise((r) => setTimeout(r, 50));
}
await round("back again", 12);

const stats = pool.stats();
for (const e of stats.endpoints) {
  console.log(`stats: ${e.endpoint} healthy=${e.healthy} calls=${e.calls} failures=${e.failures}`);
}
await pool.close();
await Promise.all(servers.map((s) => s.close()));
