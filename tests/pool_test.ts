/**
 * The pool over real loopback servers: calls spread over the endpoints, a stopped server is
 * routed around and returns to rotation once restarted, the policies pick as they say, and
 * every call settles (closed pool, endpoints down, a connection dropped mid-call).
 */
import { assert, assertEquals, assertRejects, assertThrows } from "@std/assert";
import { createPool, type CreatePoolOptions } from "../client.ts";
import {
  CallTimeoutError,
  ConnectionClosedError,
  ProtocolError,
  RpcError,
  SecretError,
  TransportError,
  UnavailableError,
} from "../protocol/errors.ts";
import type { CallContext } from "../protocol/methods.ts";
import { openPool, type PoolMember, type PoolMemberStatusEvent } from "../protocol/pool.ts";
import { serve, type Server } from "../server.ts";
import { CANARY_SECRET } from "./_helpers.ts";

/** Servers that count the calls each one served (across restarts). */
function fleet() {
  const served: number[] = [];
  const start = (i: number, listen = "tcp://127.0.0.1:0"): Promise<Server> => {
    served[i] ??= 0;
    return serve({
      listen,
      secret: CANARY_SECRET,
      logger: "silent",
      methods: {
        whoami: () => (served[i]++, i),
        async *ticks(this: CallContext, n: number) {
          served[i]++;
          for (let k = 0; k < n; k++) yield { server: i, k };
        },
        work(this: CallContext, ms: number) {
          served[i]++;
          return new Promise((resolve) => setTimeout(() => resolve(i), ms));
        },
      },
    });
  };
  return { served, start };
}

const base: Omit<CreatePoolOptions, "endpoints"> = {
  secret: CANARY_SECRET,
  logger: "silent",
  timeout: 5000,
  healthInterval: 250,
  connectRetry: { initialDelay: 20, maxDelay: 200 },
};

/** Polls `condition` every 20 ms for up to `ms`; fails the test when it never holds. */
async function waitFor(what: string, condition: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

Deno.test("pool: 3 servers, one stopped and restarted; calls keep succeeding", async () => {
  const { served, start } = fleet();
  const servers = await Promise.all([0, 1, 2].map((i) => start(i)));
  const endpoints = servers.map((s) => s.addresses[0]);
  const pool = await createPool({ ...base, endpoints, size: 2 });
  await waitFor("6 healthy connections", () => pool.stats().healthy === 6);

  // Load spreads over all three (10 callers at a time).
  for (let batch = 0; batch < 30; batch++) {
    await Promise.all(Array.from({ length: 10 }, () => pool.call("whoami")));
  }
  assertEquals(served.reduce((a, b) => a + b), 300);
  for (const n of served) assert(n > 30, `each server gets a fair share: ${served}`);

  // Stop server 1 under 8 callers: it is taken out of rotation, the others take every call.
  let stop = false;
  const failures: string[] = [];
  const callers = Array.from({ length: 8 }, async () => {
    for (let n = 0; n < 5000 && !stop; n++) {
      await pool.call("whoami").catch((err) => {
        assert(err instanceof RpcError, String(err));
        failures.push(`${err.code}: ${err.message}`);
      });
    }
  });
  await new Promise((r) => setTimeout(r, 50));
  await servers[1].close({ timeout: 1000 });
  await waitFor("server 1 out of rotation", () => pool.stats().endpoints[1].healthy === 0);
  stop = true;
  await Promise.all(callers);
  // Only a call caught on the dying connection may fail (it may have run), typed; the rest
  // (refused by GOAWAY, never run) moved to the other servers.
  assert(failures.length <= 8, failures.join("\n"));
  for (const f of failures) assert(f.startsWith("CONNECTION_CLOSED:"), f);
  const stopped = pool.stats().endpoints[1];
  assertEquals(stopped.connections, 0);
  assert(stopped.failures >= 1 && stopped.lastError !== undefined, JSON.stringify(stopped));
  const servedBy1 = served[1];
  const answers = new Set<unknown>();
  for (let n = 0; n < 60; n++) answers.add(await pool.call("whoami"));
  assertEquals([...answers].sort(), [0, 2]);
  assertEquals(served[1], servedBy1);

  // Restart it on the same address: it comes back into rotation and serves again.
  servers[1] = await start(1, endpoints[1]);
  await waitFor("server 1 back in rotation", () => pool.stats().endpoints[1].healthy === 2);
  for (let batch = 0; batch < 10; batch++) {
    await Promise.all(Array.from({ length: 6 }, () => pool.call("whoami")));
  }
  assert(served[1] > servedBy1 + 5, `server 1 serves again: ${served}`);

  const stats = pool.stats();
  assertEquals(stats.healthy, 6);
  assertEquals(stats.inFlight, 0);
  assert(stats.calls >= 420);
  assertEquals(stats.endpoints.map((e) => e.endpoint), endpoints);
  await pool.close();
  await pool.close(); // idempotent
  await Promise.all(servers.map((s) => s.close()));
});

Deno.test("pool: round robin takes the endpoints in turn", async () => {
  const { served, start } = fleet();
  const servers = await Promise.all([0, 1, 2].map((i) => start(i)));
  await using pool = await createPool({
    ...base,
    endpoints: servers.map((s) => s.addresses[0]),
    policy: "round-robin",
  });
  await waitFor("3 healthy connections", () => pool.stats().healthy === 3);
  const order: unknown[] = [];
  for (let n = 0; n < 90; n++) order.push(await pool.call("whoami"));
  assertEquals(served, [30, 30, 30]);
  assertEquals(order.slice(0, 6), [order[0], order[1], order[2], order[0], order[1], order[2]]);
  assertEquals(pool.policy, "round-robin");
  await pool.close();
  await Promise.all(servers.map((s) => s.close()));
});

Deno.test("pool: streams are spread like calls and counted in flight", async () => {
  const { served, start } = fleet();
  const servers = await Promise.all([0, 1].map((i) => start(i)));
  await using pool = await createPool({
    ...base,
    endpoints: servers.map((s) => s.addresses[0]),
    policy: "round-robin",
  });
  await waitFor("2 healthy connections", () => pool.stats().healthy === 2);
  const a = pool.stream<{ server: number; k: number }>("ticks", [3]);
  const b = pool.stream<{ server: number; k: number }>("ticks", [3]);
  assertEquals(pool.stats().inFlight, 2, "open streams count in flight");
  const chunksA = await Array.fromAsync(a);
  const chunksB = await Array.fromAsync(b);
  assertEquals(chunksA.map((c) => c.k), [0, 1, 2]);
  assertEquals(new Set([chunksA[0].server, chunksB[0].server]).size, 2, "one per server");
  await waitFor("streams to settle", () => pool.stats().inFlight === 0, 2000);
  assertEquals(served, [1, 1]);
  await pool.close();
  await Promise.all(servers.map((s) => s.close()));
});

Deno.test("pool: least in flight avoids a busy connection", async () => {
  const { start } = fleet();
  const servers = await Promise.all([0, 1].map((i) => start(i)));
  const pool = await createPool({ ...base, endpoints: servers.map((s) => s.addresses[0]) });
  await waitFor("2 healthy connections", () => pool.stats().healthy === 2);
  const busy = pool.call<number>("work", [300]);
  const others = new Set<unknown>();
  for (let n = 0; n < 10; n++) others.add(await pool.call("whoami"));
  const slow = await busy;
  assertEquals([...others], [1 - slow], "every quick call went to the idle endpoint");
  await pool.close();
  await Promise.all(servers.map((s) => s.close()));
});

Deno.test("pool: a connection dropped mid-call; idempotent calls move elsewhere", async () => {
  const { served, start } = fleet();
  const servers = await Promise.all([0, 1].map((i) => start(i)));
  const pool = await createPool({ ...base, endpoints: servers.map((s) => s.addresses[0]) });
  await waitFor("2 healthy connections", () => pool.stats().healthy === 2);
  const plain = pool.call("work", [300]);
  const safe = pool.call("work", [300], { idempotent: true });
  await waitFor("both calls on the servers", () => served[0] + served[1] === 2);
  for (const s of servers) for (const peer of s.peers) peer.close();
  // The plain call may have run: it fails, typed; the idempotent one runs again and answers.
  await assertRejects(() => plain, ConnectionClosedError);
  assert([0, 1].includes(await safe as number));
  await pool.close();
  await Promise.all(servers.map((s) => s.close()));
});

Deno.test("pool: an endpoint down at start joins once it is up", async () => {
  const { served, start } = fleet();
  const first = await start(0);
  const later = `tcp://127.0.0.1:${freePort()}`;
  const pool = await createPool({ ...base, endpoints: [first.addresses[0], later] });
  assertEquals(pool.stats().endpoints[1].healthy, 0);
  assertEquals(await pool.call("whoami"), 0);
  const second = await start(1, later);
  await waitFor("the late endpoint in rotation", () => pool.stats().endpoints[1].healthy === 1);
  for (let n = 0; n < 10; n++) await pool.call("whoami");
  assert(served[1] >= 4, `the late endpoint serves: ${served}`);
  await pool.close();
  await Promise.all([first.close(), second.close()]);
});

Deno.test("pool: every call settles when endpoints are down or the pool closes", async (t) => {
  const { start } = fleet();

  await t.step("no endpoint reachable: createPool rejects with the connect error", async () => {
    const endpoints = [
      `tcp://127.0.0.1:${freePort()}`,
      `tcp://127.0.0.1:${freePort()}`,
    ];
    const err = await assertRejects(
      () => createPool({ ...base, endpoints, connectTimeout: 300 }),
      TransportError,
    );
    assertEquals(err.code, "CONNECT_FAILED");
  });

  await t.step("configuration errors fail at once", async () => {
    await assertRejects(
      () => createPool({ ...base, endpoints: ["tcp://127.0.0.1"] }),
      TransportError,
    );
    await assertRejects(
      () => createPool({ ...base, endpoints: ["tcp://127.0.0.1:1"], secret: "short" }),
      SecretError,
    );
    await assertRejects(() => createPool({ ...base, endpoints: [] }), RangeError);
  });

  await t.step("no healthy connection: calls wait, then TIMEOUT; close fails waiters", async () => {
    const server = await start(0);
    const pool = await createPool({ ...base, endpoints: [server.addresses[0]] });
    await server.close({ timeout: 100 });
    await waitFor("no healthy connection", () => pool.stats().healthy === 0);
    await assertRejects(() => pool.call("whoami", [], { timeout: 150 }), CallTimeoutError);
    assertEquals(pool.stats().waiting, 0);
    const waiting = pool.call("whoami");
    await waitFor("a waiting call", () => pool.stats().waiting === 1);
    await pool.close();
    await assertRejects(() => waiting, ConnectionClosedError);
    await assertRejects(() => pool.call("whoami"), ConnectionClosedError);
    assertEquals(pool.stats().waiting, 0);
  });

  await t.step("close lets calls in flight finish", async () => {
    const server = await start(0);
    const pool = await createPool({ ...base, endpoints: [server.addresses[0]] });
    const inFlight = pool.call("work", [100]);
    await new Promise((r) => setTimeout(r, 20));
    await pool.close();
    assertEquals(await inFlight, 0);
    await server.close();
  });
});

/** A member without a socket: the test decides whether it answers PINGs and calls. */
class FakeMember implements PoolMember {
  status = "connected";
  pendingCalls = 0;
  answersPing = true;
  refuse = false;
  served = 0;
  #listeners = new Set<(e: PoolMemberStatusEvent) => void>();
  constructor(readonly name: string) {}
  call<T>(): Promise<T> {
    if (this.refuse) return Promise.reject(new UnavailableError("Going away"));
    this.served++;
    return Promise.resolve(this.name as T);
  }
  notify(): void {
    this.served++;
  }
  stream(): never {
    throw new TypeError("FakeMember does not stream");
  }
  ping(o: { timeout?: number } = {}): Promise<number> {
    if (this.answersPing) return Promise.resolve(1);
    return new Promise((_, reject) =>
      setTimeout(() => reject(new ProtocolError("PEER_TIMEOUT", "No PONG")), o.timeout)
    );
  }
  close(): Promise<void> {
    this.status = "closed";
    return Promise.resolve();
  }
  onStatus(listener: (e: PoolMemberStatusEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}

Deno.test("pool core: a member that stops answering PINGs is taken out and probed back in", async () => {
  const members = new Map<string, FakeMember>();
  const pool = await openPool((e: string) => {
    const m = new FakeMember(e);
    members.set(e, m);
    return Promise.resolve(m);
  }, { endpoints: ["a", "b"], healthInterval: 30, healthTimeout: 20 });
  await waitFor("both up", () => pool.stats().healthy === 2);
  const a = members.get("a")!;
  a.answersPing = false;
  await waitFor("a out", () => pool.stats().endpoints[0].healthy === 0);
  assertEquals(pool.stats().endpoints[0].lastError, "PEER_TIMEOUT");
  for (let n = 0; n < 5; n++) assertEquals(await pool.call("x"), "b");
  a.answersPing = true;
  await waitFor("a back", () => pool.stats().endpoints[0].healthy === 1);

  // A refusal (retryable, never ran) moves the call to the other member.
  a.refuse = true;
  for (let n = 0; n < 4; n++) assertEquals(await pool.call("x"), "b");
  assert(pool.stats().endpoints[0].failures >= 2);
  await pool.close();
  assertEquals(a.status, "closed");
  assertThrows(() => pool.notify("x"), ConnectionClosedError);
});
