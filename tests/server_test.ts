/**
 * Server behaviour a user notices: hooks and the peer list, graceful close, admission limits,
 * refusal deadlines on TLS, answers that cannot be encoded, the transport-mismatch override.
 */
import { assert, assertEquals, assertRejects } from "@std/assert";
import { connect } from "../client.ts";
import {
  AuthenticationError,
  ConnectionClosedError,
  ProtocolError,
  RpcError,
  UnavailableError,
} from "../protocol/errors.ts";
import { listenTcp, tcp } from "../transports/tcp.ts";
import { createLogger } from "../protocol/logger.ts";
import { serve } from "../server.ts";
import type { Dialer } from "../transports/types.ts";
import { CANARY_SECRET, startServer } from "./_helpers.ts";

Deno.test("Server: onConnect/onDisconnect fire once each; peers is accurate", async () => {
  const events: string[] = [];
  await using ts = await startServer("tcp", {
    methods: { ping: () => "pong" },
    onConnect: (peer) => events.push(`connect ${peer.id}`),
    onDisconnect: (peer, reason) => events.push(`disconnect ${peer.id} ${reason ?? "normal"}`),
  });
  const client = await ts.connect();
  assertEquals(await client.call("ping"), "pong");
  const [peer] = ts.server.peers;
  assertEquals(peer.id, client.sessionId);
  assertEquals(peer.transport, "tcp");
  assert(peer.remoteAddress.startsWith("127.0.0.1:"));
  await client.close();
  await peer.closed;
  await new Promise((r) => setTimeout(r, 10));
  assertEquals(events, [`connect ${peer.id}`, `disconnect ${peer.id} normal`]);
  assertEquals(ts.server.peers, []);
});

Deno.test("Server: close() drains calls in flight and refuses later ones as UNAVAILABLE", async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => release = r);
  const ts = await startServer("tcp", {
    methods: {
      async slow() {
        await gate;
        return "finished";
      },
    },
  });
  // Without reconnecting, a call made during the drain is refused at once as UNAVAILABLE.
  const client = await ts.connect({ reconnect: false });
  const inFlight = client.call("slow");
  await new Promise((r) => setTimeout(r, 20));
  const closing = ts.server.close({ timeout: 5000 });
  await new Promise((r) => setTimeout(r, 20));
  await assertRejects(() => client.call("slow"), UnavailableError);
  release();
  assertEquals(await inFlight, "finished");
  await closing;
  assertEquals(await client.closed, undefined, "the client saw a normal close");
  await ts[Symbol.asyncDispose]();
});

Deno.test("Server: over maxConnections a client is told BUSY", async () => {
  await using ts = await startServer("tcp", { maxConnections: 1, methods: { ping: () => 1 } });
  await using first = await ts.connect();
  const err = await assertRejects(() => ts.connect(), ProtocolError);
  assertEquals(err.code, "BUSY");
  assertEquals(await first.call("ping"), 1);
});

Deno.test("Server: over the pre-auth cap a connection gets BUSY in place of M1, then EOF", async () => {
  await using ts = await startServer("tcp", { admission: { maxPreauth: 0 } });
  const port = Number(new URL(ts.address.replace("tcp:", "http:")).port);
  const raw = await Deno.connect({ hostname: "127.0.0.1", port });
  const timer = setTimeout(() => raw.close(), 10_000);
  const received: number[] = [];
  const buf = new Uint8Array(256);
  for (let i = 0; i < 100; i++) {
    const n = await raw.read(buf).catch(() => null);
    if (n === null) break;
    received.push(...buf.subarray(0, n));
  }
  clearTimeout(timer);
  raw.close();
  // A cleartext ALERT frame (type 0x7F, seq 0) whose body is code 5 (BUSY).
  assertEquals(received.slice(0, 4), [0x54, 0x52, 0x01, 0x7F]);
  assertEquals(received.slice(20, 22), [0, 5]);
});

Deno.test("Server: an error that cannot be encoded is answered INTERNAL, the server lives", async () => {
  await using ts = await startServer("tcp", {
    methods: {
      async badError() {
        await Promise.resolve();
        throw new RpcError("CUSTOM", "with bad data", { data: { n: 1n } });
      },
      badResult: () => ({ n: 1n }),
      ok: () => "ok",
    },
  });
  await using client = await ts.connect();
  for (const method of ["badError", "badResult"]) {
    const err = await assertRejects(() => client.call(method), RpcError);
    assertEquals(err.code, "INTERNAL");
  }
  assertEquals(await client.call("ok"), "ok");
});

Deno.test("Client: transport mismatch is refused unless explicitly allowed", async () => {
  await using ts = await startServer("tcp", { methods: { ping: () => "pong" } });
  const port = Number(new URL(ts.address.replace("tcp:", "http:")).port);
  const plain = tcp({ hostname: "127.0.0.1", port });
  // What a client behind a TLS-terminating proxy sees: it dials tls, the server is on tcp.
  const lying: Dialer = { transport: "tls", address: ts.address, dial: (o) => plain.dial(o) };
  const err = await assertRejects(() => connect(lying, { secret: CANARY_SECRET }), ProtocolError);
  assertEquals(err.code, "TRANSPORT_MISMATCH");
  await using client = await connect(lying, {
    secret: CANARY_SECRET,
    allowTransportMismatch: true,
  });
  assertEquals(await client.call("ping"), "pong");
});

Deno.test("Client: closing the server rejects pending calls; none hangs", async () => {
  const ts = await startServer("unix", { methods: { hang: () => new Promise(() => {}) } });
  const client = await ts.connect();
  const pending = Array.from({ length: 10 }, () => client.call("hang"));
  await new Promise((r) => setTimeout(r, 20));
  await ts.server.close({ timeout: 50 });
  for (const p of pending) await assertRejects(() => p, ConnectionClosedError);
  await client.close();
  await ts[Symbol.asyncDispose]();
});

Deno.test("Server: wrong secret is AUTH_FAILED and logged once, without the secret", async () => {
  await using ts = await startServer("tcp", { authFailureDelayMs: 10 });
  await assertRejects(() => ts.connect({ secret: "x".repeat(40) }), AuthenticationError);
  await new Promise((r) => setTimeout(r, 20));
  const lines = ts.logs.filter((l) => l.includes("auth_failed"));
  assertEquals(lines.length, 1);
  assert(lines[0].includes("peer=127.0.0.1:"));
  assert(!ts.logs.some((l) => l.includes(CANARY_SECRET)));
});

Deno.test("Server: route-style method names like the Go seed's are callable", async () => {
  await using ts = await startServer("tcp", {
    methods: {
      "/health": () => ({ status: "ok" }),
      "/stream/time": (count: number) => Array.from({ length: count }, (_, i) => i),
      "v1.users:get": (id: number) => ({ id }),
    },
  });
  await using client = await ts.connect();
  assertEquals(await client.call("/health"), { status: "ok" });
  assertEquals(await client.call("/stream/time", [3]), [0, 1, 2]);
  assertEquals(await client.call("v1.users:get", [7]), { id: 7 });
  await assertRejects(() => client.call("/missing"), RpcError);
});

Deno.test("Server: maxConcurrentHandlers caps handlers across connections", async () => {
  let running = 0;
  let most = 0;
  const ran: string[] = [];
  await using ts = await startServer("tcp", {
    maxConcurrentHandlers: 2,
    methods: {
      async work(tag: string) {
        ran.push(tag);
        most = Math.max(most, ++running);
        await new Promise((r) => setTimeout(r, 20));
        running--;
        return tag;
      },
    },
  });
  await using a = await ts.connect();
  await using b = await ts.connect();
  const controller = new AbortController();
  const calls = [];
  for (let i = 0; i < 6; i++) calls.push((i % 2 ? a : b).call("work", [`t${i}`]));
  const cancelled = a.call("work", ["never"], { signal: controller.signal });
  controller.abort();
  await assertRejects(() => cancelled, RpcError);
  assertEquals((await Promise.all(calls)).sort(), ["t0", "t1", "t2", "t3", "t4", "t5"]);
  await new Promise((r) => setTimeout(r, 50));
  assertEquals(most, 2, "never more than two handlers at once");
  assert(!ran.includes("never"), "a call cancelled while waiting for a slot never runs");
});

Deno.test("Server: the accept loop survives EMFILE and keeps serving", async () => {
  const real = listenTcp({ hostname: "127.0.0.1", port: 0 });
  let failures = 3;
  const flaky = {
    transport: real.transport,
    address: real.address,
    accept: () =>
      failures-- > 0
        ? Promise.reject(new Error("Too many open files (os error 24)"))
        : real.accept(),
    close: () => real.close(),
    [Symbol.asyncDispose]: () => real[Symbol.asyncDispose](),
  };
  const logs: string[] = [];
  await using server = await serve({
    listen: flaky,
    secret: CANARY_SECRET,
    methods: { ping: () => "pong" },
    logger: createLogger({ level: "warn", sink: (_, line) => logs.push(line) }),
  });
  await using client = await connect(server.addresses[0], { secret: CANARY_SECRET });
  assertEquals(await client.call("ping"), "pong");
  assertEquals(
    logs.filter((l) => l.includes("accept_failed")).length,
    1,
    "logged once, rate-limited",
  );
});
