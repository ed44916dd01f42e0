/**
 * The Go seed's demo (Simple RPC, `cmd/example`) in one program: two TLS servers with the
 * routes `/health`, `/echo` and `/stream/time`, and a connection pool over both
 * (`createPool({ endpoints, size: 2 })`, the seed's `client.New(addr, tlsConfig, 3)`):
 *
 * - request/response: `pool.call("/health")`, and `/echo` of a large, compressible payload
 *   (compression is on both ways, so it crosses the wire as deflate-raw);
 * - CallStream: `pool.stream("/stream/time", [3, 100])`, an async generator on the server
 *   yielding `{ timestamp }` chunks;
 * - bidirectional sessions: a route that calls the client back while it serves the request,
 *   and a channel (the seed's `CreateBidirectionalSession`: send, then receive);
 * - `pool.stats()` totals at the end.
 *
 * TLS uses the throw-away test certificates in `tests/fixtures/` (a test CA and a server
 * certificate for 127.0.0.1; never use them for anything real). On top of TLS, both sides
 * still prove the shared secret: TRUST_ID when set, otherwise a one-time random secret.
 *
 *     deno run -A examples/go_seed.ts
 *
 * @module
 */

import { connect, createPool, generateSecret, serve, type Server } from "../mod.ts";

const secret = Deno.env.get("TRUST_ID") || generateSecret();
const fixtures = new URL("../tests/fixtures/", import.meta.url);
const ca = await Deno.readTextFile(new URL("ca.pem", fixtures));
const tls = {
  cert: await Deno.readTextFile(new URL("server.pem", fixtures)),
  key: await Deno.readTextFile(new URL("server.key.pem", fixtures)),
};

/** Waits `ms`, or rejects as soon as `signal` aborts (the caller left the stream). */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      reject(signal.reason);
    }, { once: true });
  });
}

/** One server of the seed's demo: `srv.Mux.Handle(route, handler)` for each route. */
function start(name: string): Promise<Server> {
  return serve({
    listen: "tls://127.0.0.1:0",
    tls,
    secret,
    logger: "warn",
    compression: true, // answers of 1 KiB or more go out compressed
    methods: {
      "/health": () => ({ status: "healthy", server: name }),
      "/echo": (value: unknown) => value,
      /** CallStream: `count` chunks, `interval` ms apart. */
      async *"/stream/time"(count: number, interval: number) {
        for (let i = 0; i < count; i++) {
          if (i > 0) await sleep(interval, this.signal);
          yield { timestamp: Date.now() };
        }
        return { sent: count };
      },
      /** Calls the client back over the same connection before answering. */
      async "/session/hello"() {
        const client = await this.call<{ name: string }>("client.identify");
        console.log(`${name}: called the client back during /session/hello: it is ${client.name}`);
        return `Hello, ${client.name}! (from ${name})`;
      },
      /** A bidirectional session: answers every message the client sends. */
      async *"/session/chat"() {
        for await (const message of this.input) yield `${name} got "${message}"`;
      },
    },
  });
}

await using serverA = await start("server-1");
await using serverB = await start("server-2");
const servers = [serverA, serverB];
console.log(`servers: ${servers.map((s) => s.addresses[0]).join(", ")}`);

await using pool = await createPool({
  endpoints: servers.map((s) => s.addresses[0]),
  size: 2,
  secret,
  caCerts: [ca],
  timeout: 5000,
  healthInterval: 1000,
  compression: true, // requests of 1 KiB or more go out compressed
  methods: { "client.identify": () => ({ name: "go-seed-client" }) },
});
// The pool is ready with one connection; wait (bounded) for all four.
for (let i = 0; i < 250 && pool.stats().healthy < 4; i++) {
  await new Promise((r) => setTimeout(r, 20));
}
console.log(`pool: ${pool.stats().healthy} of 4 connections up`);

// 1. Request/response.
for (let i = 0; i < 4; i++) {
  console.log(`/health → ${JSON.stringify(await pool.call("/health"))}`);
}

const payload = {
  rows: Array.from({ length: 4000 }, (_, id) => ({ id, name: "compressible", tags: ["a", "b"] })),
};
const plain = JSON.stringify(payload).length;
const wire = () =>
  servers.reduce((sum, s) => {
    const { bytesIn, bytesOut } = s.stats();
    return { up: sum.up + bytesIn, down: sum.down + bytesOut };
  }, { up: 0, down: 0 });
const before = wire();
const echoed = await pool.call<typeof payload>("/echo", [payload]);
const after = wire();
const intact = JSON.stringify(echoed) === JSON.stringify(payload);
if (!intact) throw new Error("/echo changed the payload");
const up = after.up - before.up;
const down = after.down - before.down;
const kib = (n: number) => `${(n / 1024).toFixed(1)} KiB`;
console.log(`/echo: ${kib(plain)} of JSON round-tripped intact`);
console.log(
  `  on the wire: ${kib(up)} up, ${kib(down)} down ` +
    `(deflate-raw, ${Math.floor(plain / Math.max(up, down))}× smaller)`,
);

// 2. CallStream: iterate the chunks as they come.
console.log(`/stream/time [3, 100]:`);
const stream = pool.stream<{ timestamp: number }, { sent: number }>(
  "/stream/time",
  [3, 100],
  { timeout: 5000 },
);
let chunks = 0;
for await (const chunk of stream) {
  chunks++;
  console.log(`  chunk ${chunks}: ${JSON.stringify(chunk)}`);
}
console.log(`  stream ended after ${chunks} chunks: ${JSON.stringify(await stream.result)}`);

// 3. Bidirectional: the server calls back the client while serving the request...
console.log(`/session/hello → ${await pool.call("/session/hello")}`);

// ...and a session where both sides send (one connection, straight to server-1).
await using client = await connect(serverA.addresses[0], { secret, caCerts: [ca], timeout: 5000 });
await using session = client.open<string, string>("/session/chat", [], { timeout: 5000 });
const replies = session[Symbol.asyncIterator](); // receive, one reply at a time
for (const message of ["Hello, server!", "How are you?"]) {
  await session.send(message);
  const { value } = await replies.next();
  console.log(`session: sent "${message}", received: ${value}`);
}
await session.close();

// 4. The pool's counters.
const stats = pool.stats();
console.log(
  `pool.stats(): ${stats.connections} connections, ${stats.healthy} healthy, ` +
    `${stats.calls} calls, ${stats.failures} failures`,
);
for (const e of stats.endpoints) {
  console.log(`  ${e.endpoint}: ${e.calls} calls, ${e.failures} failures`);
}
