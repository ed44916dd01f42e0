/**
 * Heartbeats (PROTOCOL.md §11) over real sockets with a 200 ms interval: an idle connection
 * stays up on PINGs alone; a frozen path (a proxy that stops forwarding without closing) is
 * noticed by both sides within 3 × interval + 1 s.
 */
import { assert, assertEquals, assertRejects } from "@std/assert";
import { ConnectionClosedError, RpcError } from "../protocol/errors.ts";
import type { CallContext } from "../protocol/methods.ts";
import { connect } from "../client.ts";
import { CANARY_SECRET, startServer } from "./_helpers.ts";
import { MitmProxy } from "./hostile/_harness.ts";

const limits = { heartbeatInterval: 200, heartbeatMisses: 3 };
const BOUND = 3 * 200 + 1000;

Deno.test("Heartbeat: an idle connection stays up on PINGs alone", async () => {
  const reasons: unknown[] = [];
  await using ts = await startServer("tcp", {
    limits,
    methods: { ping: () => "pong" },
    onDisconnect: (_, reason) => reasons.push(reason),
  });
  await using client = await ts.connect({ limits });
  await new Promise((r) => setTimeout(r, 1200)); // 6 intervals without a call
  assertEquals(await client.call("ping"), "pong");
  assertEquals(reasons, []);
});

Deno.test("Heartbeat: a frozen path is detected by both sides within the bound", async () => {
  const started = Promise.withResolvers<void>();
  const handlerAborted = Promise.withResolvers<number>();
  const disconnected = Promise.withResolvers<{ at: number; reason: unknown }>();
  await using ts = await startServer("tcp", {
    limits,
    methods: {
      hang(this: CallContext) {
        this.signal.addEventListener("abort", () => handlerAborted.resolve(Date.now()));
        started.resolve();
        return new Promise(() => {});
      },
    },
    onDisconnect: (_, reason) => disconnected.resolve({ at: Date.now(), reason }),
  });
  let frozen = false;
  await using proxy = new MitmProxy(ts.address, () => frozen ? "blackhole" : "pass");
  const client = await connect(proxy.address, { secret: CANARY_SECRET, limits, timeout: 0 });
  // The test's own bound: nothing below may wait longer than this.
  const guard = setTimeout(() => client.close(), 10_000);
  const call = client.call("hang");
  await started.promise;
  frozen = true;
  const frozenAt = Date.now();
  const err = await assertRejects(() => call, ConnectionClosedError);
  const clientNoticed = Date.now() - frozenAt;
  assert(err.cause instanceof RpcError && err.cause.code === "PEER_TIMEOUT", String(err.cause));
  const { at, reason } = await disconnected.promise;
  assertEquals((reason as RpcError).code, "PEER_TIMEOUT");
  assert(clientNoticed <= BOUND, `client noticed after ${clientNoticed} ms`);
  assert(at - frozenAt <= BOUND, `server noticed after ${at - frozenAt} ms`);
  assert((await handlerAborted.promise) - frozenAt <= BOUND, "the handler was not aborted in time");
  clearTimeout(guard);
  await client.close();
});

Deno.test("Heartbeat: many idle connections on one shared timer each get their PINGs", async () => {
  // 20 idle connections, one of them frozen: every live one stays up on PINGs alone (they all
  // tick on one interval timer per process), and only the frozen one is dropped.
  const reasons: unknown[] = [];
  await using ts = await startServer("tcp", {
    limits,
    methods: { ping: () => "pong" },
    onDisconnect: (_, reason) => reasons.push(reason),
  });
  const clients = await Promise.all(
    Array.from({ length: 19 }, () => ts.connect({ limits, reconnect: false })),
  );
  let freeze = false;
  await using proxy = new MitmProxy(ts.address, () => freeze ? "blackhole" : "pass");
  const frozen = await connect(proxy.address, {
    secret: CANARY_SECRET,
    limits,
    reconnect: false,
    logger: "silent",
  });
  try {
    freeze = true;
    await new Promise((r) => setTimeout(r, BOUND + 400));
    for (const c of clients) assertEquals(await c.call("ping"), "pong");
    assertEquals(reasons.length, 1, "only the frozen connection was dropped");
    assert(reasons[0] instanceof RpcError && reasons[0].code === "PEER_TIMEOUT");
  } finally {
    await frozen.close({ timeout: 100 });
    await Promise.all(clients.map((c) => c.close({ timeout: 100 })));
  }
});
