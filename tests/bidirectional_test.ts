/**
 * Both directions over real sockets: the server calling its clients (re-entrant, on
 * connect, any peer), events both ways, broadcast with exclude and filter, and
 * `broadcastCall` with a peer that never answers.
 */
import { assert, assertEquals, assertInstanceOf, assertRejects } from "@std/assert";
import type { Client } from "../client.ts";
import { CallTimeoutError, MethodNotFoundError, RemoteError } from "../protocol/errors.ts";
import type { CallContext } from "../protocol/methods.ts";
import type { Peer } from "../protocol/peer.ts";
import { startServer } from "./_helpers.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Resolves with the first value `subscribe` delivers, or rejects after `ms`. */
function nextEvent<T>(
  subscribe: (deliver: (value: T) => void) => () => void,
  ms = 5000,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error("No event within the timeout"));
    }, ms);
    const off = subscribe((value) => {
      clearTimeout(timer);
      off();
      resolve(value);
    });
  });
}

Deno.test("the server calls its clients", async (t) => {
  const statuses: unknown[] = [];
  const connected = Promise.withResolvers<void>();
  await using ts = await startServer("tcp", {
    methods: {
      /** Calls the client back one level down: server and client alternate. */
      async depth(this: CallContext, n: number, trace: string[]) {
        trace = [...trace, `server:${n}`];
        return n === 0 ? trace : await this.call("depth", [n - 1, trace]);
      },
    },
    onConnect: async (peer: Peer) => {
      statuses.push(await peer.call("get_status"));
      connected.resolve();
    },
  });
  const clientMethods = (name: string) => ({
    get_status: () => ({ name, healthy: true }),
    async depth(this: CallContext, n: number, trace: string[]) {
      trace = [...trace, `${name}:${n}`];
      return n === 0 ? trace : await this.call("depth", [n - 1, trace]);
    },
    fail: () => {
      throw new RangeError("Out of range on the client");
    },
    slow(this: CallContext) {
      return new Promise((resolve) => this.signal.addEventListener("abort", resolve));
    },
  });
  await using client = await ts.connect({ methods: clientMethods("alpha") });

  await t.step("on connect (the Python seed's get_status)", async () => {
    await connected.promise;
    assertEquals(statuses, [{ name: "alpha", healthy: true }]);
  });

  await t.step("re-entrant inside a client→server call, six levels deep", async () => {
    const trace = await client.call("depth", [5, []]);
    assertEquals(trace, ["server:5", "alpha:4", "server:3", "alpha:2", "server:1", "alpha:0"]);
  });

  await t.step("any peer, with the same errors and timeouts", async () => {
    const [peer] = ts.server.peers;
    const err = await assertRejects(() => peer.call("fail"), RemoteError);
    assertEquals([err.name, err.message], ["RangeError", "Out of range on the client"]);
    await assertRejects(() => peer.call("nope"), MethodNotFoundError);
    await assertRejects(() => peer.call("slow", [], { timeout: 50 }), CallTimeoutError);
  });

  await t.step("a typed facade on the server side", async () => {
    const api = ts.server.peers[0].api<ReturnType<typeof clientMethods>>();
    const status: { name: string; healthy: boolean } = await api.get_status();
    assertEquals(status.name, "alpha");
  });
});

Deno.test("a throwing onConnect or onDisconnect is logged; the server keeps serving", async () => {
  await using ts = await startServer("tcp", {
    methods: { ping: () => "pong" },
    onConnect: () => {
      throw new Error("onConnect bug");
    },
    onDisconnect: () => Promise.reject(new Error("onDisconnect bug")),
  });
  const first = await ts.connect();
  assertEquals(await first.call("ping"), "pong");
  assertEquals(ts.server.peers.length, 1);
  await first.close();
  for (let i = 0; i < 100 && ts.server.peers.length > 0; i++) await sleep(10);
  assertEquals(ts.server.peers.length, 0, "the peer left the list");
  await using second = await ts.connect();
  assertEquals(await second.call("ping"), "pong");
  assert(ts.logs.some((l) => l.includes("hook_failed") && l.includes("onConnect bug")));
  for (let i = 0; i < 100 && !ts.logs.some((l) => l.includes("onDisconnect bug")); i++) {
    await sleep(10);
  }
  assert(ts.logs.some((l) => l.includes("onDisconnect bug")));
});

Deno.test("an event sent in onConnect reaches listeners given to connect()", async () => {
  await using ts = await startServer("tcp", {
    onConnect: (peer, server) => peer.emit("welcome", { peers: server.peers.length }),
  });
  const got = Promise.withResolvers<unknown>();
  await using client = await ts.connect({ on: { welcome: (data) => got.resolve(data) } });
  assertEquals(await got.promise, { peers: 1 });
  assertEquals(client.status, "connected");
});

Deno.test("events both ways", async (t) => {
  const unhandled: string[] = [];
  await using ts = await startServer("tcp", {
    unhandledEvents: (name) => unhandled.push(name),
  });
  await using client = await ts.connect({ unhandledEvents: (name) => unhandled.push(name) });
  await using other = await ts.connect();
  const peerOf = (c: Client) => ts.server.peers.find((p) => p.id === c.sessionId)!;

  await t.step("client → server, with the sending peer", async () => {
    const got = nextEvent<[Peer, unknown]>((deliver) =>
      ts.server.on("note", (peer, data) => deliver([peer, data]))
    );
    client.emit("note", { text: "hi", bytes: new Uint8Array([1, 2]) });
    const [peer, data] = await got;
    assertEquals(peer.id, client.sessionId);
    assertEquals(data, { text: "hi", bytes: new Uint8Array([1, 2]) });
  });

  await t.step("server → client, and '*' sees every name", async () => {
    const named = nextEvent<unknown>((deliver) => client.on("tick", deliver));
    const any = nextEvent<[string, unknown]>((deliver) =>
      client.on("*", (name: string, data: unknown) => deliver([name, data]))
    );
    peerOf(client).emit("tick", 7);
    assertEquals(await named, 7);
    assertEquals(await any, ["tick", 7]);
  });

  await t.step("events keep their order", async () => {
    const seen: number[] = [];
    const done = Promise.withResolvers<void>();
    const off = client.on("seq", (n) => {
      seen.push(n as number);
      if (seen.length === 1000) done.resolve();
    });
    const peer = peerOf(client);
    for (let i = 0; i < 1000; i++) peer.emit("seq", i);
    await done.promise;
    off();
    assertEquals(seen, Array.from({ length: 1000 }, (_, i) => i));
  });

  await t.step("unknown events are reported per option, never crash", async () => {
    unhandled.length = 0;
    client.emit("nobody_listens", 1);
    peerOf(client).emit("nobody_here_either", 2);
    for (let i = 0; i < 100 && unhandled.length < 2; i++) await sleep(10);
    assertEquals(unhandled.sort(), ["nobody_here_either", "nobody_listens"]);
    assert((await client.ping()) >= 0, "the connection still works");
    assertEquals(client.status, "connected");
  });

  await t.step("a throwing listener is contained; off() removes a listener", async () => {
    const calls: string[] = [];
    const bad = () => {
      calls.push("bad");
      throw new Error("listener bug");
    };
    client.on("x", bad);
    const good = nextEvent<unknown>((deliver) => client.on("x", deliver));
    peerOf(client).emit("x", 1);
    assertEquals(await good, 1);
    client.off("x", bad);
    const again = nextEvent<unknown>((deliver) => client.on("x", deliver));
    peerOf(client).emit("x", 2);
    assertEquals(await again, 2);
    assertEquals(calls, ["bad"]);
  });

  await t.step("invalid event names are refused locally", () => {
    let err: unknown;
    try {
      client.emit("bad name!", 1);
    } catch (e) {
      err = e;
    }
    assertInstanceOf(err, TypeError);
    assertEquals(other.status, "connected");
  });
});

Deno.test("broadcast", async (t) => {
  await using ts = await startServer("tcp", {
    methods: {},
  });
  const names = ["a", "b", "c", "d"];
  const hang = Promise.withResolvers<void>();
  const clients: Client[] = [];
  for (const name of names) {
    clients.push(
      await ts.connect({
        methods: {
          whoami: () => name,
          // "d" never answers (until the test ends).
          status: async () => name === "d" ? await hang.promise : `${name} ok`,
        },
      }),
    );
  }
  const inbox = new Map<string, unknown[]>(names.map((n) => [n, []]));
  clients.forEach((c, i) => c.on("news", (data) => inbox.get(names[i])!.push(data)));
  const peerOf = (c: Client) => ts.server.peers.find((p) => p.id === c.sessionId)!;

  try {
    await t.step("with exclude reaches exactly the others", async () => {
      ts.server.on("news", (from, data) => {
        ts.server.broadcast("news", data, { exclude: from });
      });
      clients[0].emit("news", "from a");
      for (let i = 0; i < 200 && [...inbox.values()].flat().length < 3; i++) await sleep(5);
      await sleep(50); // a stray copy to the sender would have arrived by now
      assertEquals(Object.fromEntries(inbox), {
        a: [],
        b: ["from a"],
        c: ["from a"],
        d: ["from a"],
      });
    });

    await t.step("with a filter and a list of excluded ids", async () => {
      for (const list of inbox.values()) list.length = 0;
      const sent = ts.server.broadcast("news", 2, {
        filter: (p) => p.id !== clients[1].sessionId,
        exclude: [clients[2].sessionId],
      });
      assertEquals(sent, 2);
      for (let i = 0; i < 200 && [...inbox.values()].flat().length < 2; i++) await sleep(5);
      assertEquals(Object.fromEntries(inbox), { a: [2], b: [], c: [], d: [2] });
    });

    await t.step("broadcastCall: a hanging peer times out alone, on time", async () => {
      const started = Date.now();
      const results = await ts.server.broadcastCall<string>("status", [], { timeout: 300 });
      const elapsed = Date.now() - started;
      assert(elapsed < 5000, `waited ${elapsed} ms for a 300 ms timeout`);
      assertEquals(results.size, 4);
      for (const [i, c] of clients.entries()) {
        const r = results.get(peerOf(c))!;
        if (names[i] === "d") {
          assertEquals(r.status, "rejected");
          assertInstanceOf((r as PromiseRejectedResult).reason, CallTimeoutError);
        } else assertEquals(r, { status: "fulfilled", value: `${names[i]} ok` });
      }
    });

    await t.step("broadcastCall with exclude", async () => {
      const results = await ts.server.broadcastCall<string>("whoami", [], {
        exclude: peerOf(clients[3]),
      });
      const values = [...results.values()].map((r) => (r as PromiseFulfilledResult<string>).value);
      assertEquals(values.sort(), ["a", "b", "c"]);
    });
  } finally {
    hang.resolve();
    for (const c of clients) await c.close({ timeout: 500 });
  }
});
