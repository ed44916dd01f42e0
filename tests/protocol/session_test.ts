import { assert, assertEquals, assertInstanceOf, assertRejects } from "@std/assert";
import {
  CallTimeoutError,
  CancelledError,
  ConnectionClosedError,
  InvalidParamsError,
  MethodNotFoundError,
  RemoteError,
  RpcError,
  UnavailableError,
} from "../../protocol/errors.ts";
import type { CallContext } from "../../protocol/methods.ts";
import { sessionPair } from "../_session_pair.ts";

function deferred<T = void>() {
  return Promise.withResolvers<T>();
}

Deno.test("Session: calls, errors and notifications round-trip", async (t) => {
  const notified: unknown[] = [];
  await using pair = await sessionPair({
    serverMethods: {
      greet(name: unknown) {
        if (typeof name !== "string") throw new TypeError("Name must be a string");
        return `Hello, ${name}!`;
      },
      add: (a: number, b: number) => a + b,
      named: (p: { x: number }) => p.x * 2,
      async later(v: unknown) {
        await new Promise((r) => setTimeout(r, 5));
        return v;
      },
      strict: {
        handler: (n: number) => n,
        validate: (p) => Array.isArray(p) && typeof p[0] === "number",
      },
      coded() {
        throw new RpcError("QUOTA_EXCEEDED", "Too many widgets", { data: { limit: 3 } });
      },
      log(msg: unknown) {
        notified.push(msg);
      },
      bigint: () => 10n,
    },
  });
  const { client } = pair;
  await t.step("positional and named params", async () => {
    assertEquals(await client.call("greet", ["Alice"]), "Hello, Alice!");
    assertEquals(await client.call("add", [2, 3]), 5);
    assertEquals(await client.call("named", { x: 21 }), 42);
    assertEquals(await client.call("later", [{ deep: [1, null, "x"] }]), { deep: [1, null, "x"] });
  });
  await t.step("a handler's TypeError arrives with its name and message", async () => {
    const err = await assertRejects(() => client.call("greet", [123]), RemoteError);
    assertEquals(err.name, "TypeError");
    assertEquals(err.message, "Name must be a string");
    assertEquals(err.code, "APPLICATION_ERROR");
    assert(err.remote);
    assert(!String(err.stack).includes("session_test"), "no remote stack travels");
  });
  await t.step("unknown method is METHOD_NOT_FOUND; prototype names are unknown", async () => {
    for (const name of ["missing", "toString", "constructor", "__proto__", "hasOwnProperty", ""]) {
      const err = await assertRejects(() => client.call(name), MethodNotFoundError);
      assertEquals(err.code, "METHOD_NOT_FOUND");
    }
  });
  await t.step("failed validation is INVALID_PARAMS", async () => {
    await assertRejects(() => client.call("strict", ["x"]), InvalidParamsError);
    assertEquals(await client.call("strict", [7]), 7);
  });
  await t.step("custom codes and data travel", async () => {
    const err = await assertRejects(() => client.call("coded"), RemoteError);
    assertEquals(err.code, "QUOTA_EXCEEDED");
    assertEquals(err.data, { limit: 3 });
  });
  await t.step("an unencodable result is INTERNAL, the session lives on", async () => {
    const err = await assertRejects(() => client.call("bigint"), RpcError);
    assertEquals(err.code, "INTERNAL");
    assertEquals(await client.call("add", [1, 1]), 2);
  });
  await t.step("notifications run without an answer", async () => {
    client.notify("log", ["hello"]);
    await client.call("add", [0, 0]);
    assertEquals(notified, ["hello"]);
  });
});

Deno.test("Session: 1000 concurrent calls each get their own answer", async () => {
  await using pair = await sessionPair({
    serverMethods: {
      async square(n: number) {
        await new Promise((r) => setTimeout(r, n % 7));
        return n * n;
      },
    },
  });
  const results = await Promise.all(
    Array.from({ length: 1000 }, (_, i) => pair.client.call<number>("square", [i])),
  );
  results.forEach((r, i) => assertEquals(r, i * i));
});

Deno.test("Session: 16 MiB bytes round-trip exactly and do not block a small call", async () => {
  let bulkDone = false;
  await using pair = await sessionPair({
    serverMethods: {
      echo: (v: Uint8Array) => v,
      ping: () => bulkDone,
    },
  });
  const big = new Uint8Array(16 * 1024 * 1024);
  for (let i = 0; i < big.length; i += 4093) big[i] = i & 0xFF;
  big[big.length - 1] = 0xAB;
  const bulk = pair.client.call<Uint8Array>("echo", [big], { timeout: 60_000 }).then((r) => {
    bulkDone = true;
    return r;
  });
  // Queued after the bulk call, answered while it is still in transit.
  assertEquals(await pair.client.call("ping"), false);
  const back = await bulk;
  assertInstanceOf(back, Uint8Array);
  assertEquals(back.length, big.length);
  assert(back.every((b, i) => b === big[i]), "bytes differ");
});

Deno.test("Session: cancellation and timeouts reach the handler", async (t) => {
  const aborted = deferred<unknown>();
  const started = deferred();
  await using pair = await sessionPair({
    serverMethods: {
      wait(this: CallContext) {
        started.resolve();
        return new Promise((_, reject) => {
          this.signal.addEventListener("abort", () => {
            aborted.resolve(this.signal.reason);
            reject(this.signal.reason);
          });
        });
      },
    },
  });
  await t.step("AbortSignal: CANCELLED locally, handler signal aborts remotely", async () => {
    const controller = new AbortController();
    const call = pair.client.call("wait", [], { signal: controller.signal });
    await started.promise;
    controller.abort();
    await assertRejects(() => call, CancelledError);
    const reason = await aborted.promise;
    assertInstanceOf(reason, RpcError);
    assertEquals((reason as RpcError).code, "CANCELLED");
  });
  await t.step("timeout: TIMEOUT locally, handler signal aborts remotely", async () => {
    const again = deferred<unknown>();
    const pair2 = await sessionPair({
      serverMethods: {
        wait(this: CallContext) {
          return new Promise((_, reject) =>
            this.signal.addEventListener("abort", () => {
              again.resolve(this.signal.reason);
              reject(this.signal.reason);
            })
          );
        },
      },
    });
    await assertRejects(() => pair2.client.call("wait", [], { timeout: 50 }), CallTimeoutError);
    const reason = await again.promise;
    assertInstanceOf(reason, RpcError);
    // The server's own deadline, from the request's metadata (the caller sets none here).
    const err = await assertRejects(
      () => pair2.client.call("wait", [], { timeout: 0, meta: { timeout: 40 } }),
      RpcError,
    );
    assertEquals([err.code, err.message], ["TIMEOUT", "Call to 'wait' passed its deadline"]);
    await pair2[Symbol.asyncDispose]();
  });
  await t.step("an already aborted signal fails at once", async () => {
    await assertRejects(
      () => pair.client.call("wait", [], { signal: AbortSignal.abort() }),
      RpcError,
    );
  });
});

Deno.test("Session: a dropped connection rejects pending calls with CONNECTION_CLOSED", async () => {
  const handlerAborted = deferred();
  await using pair = await sessionPair({
    limits: { halfCloseTimeout: 100 },
    serverMethods: {
      hang(this: CallContext) {
        this.signal.addEventListener("abort", () => handlerAborted.resolve());
        return new Promise(() => {});
      },
    },
  });
  const call = pair.client.call("hang");
  await new Promise((r) => setTimeout(r, 10));
  pair.clientEnd.close(); // the wire goes away without CLOSE
  await assertRejects(() => call, ConnectionClosedError);
  await handlerAborted.promise;
  assert(await pair.server.closed instanceof Error, "truncation is not a normal close");
  await assertRejects(() => pair.client.call("hang"), ConnectionClosedError);
});

Deno.test("Session: calls both ways, re-entrant to depth 3", async () => {
  await using pair = await sessionPair({
    serverMethods: {
      async outer(this: CallContext, n: number): Promise<number> {
        return n === 0 ? 0 : 1 + await this.call<number>("inner", [n - 1]);
      },
    },
    clientMethods: {
      async inner(this: CallContext, n: number): Promise<number> {
        return n === 0 ? 0 : 1 + await this.call<number>("outer", [n - 1]);
      },
    },
  });
  assertEquals(await pair.client.call("outer", [6]), 6);
});

Deno.test("Session: GOAWAY lets old calls finish and rejects newer ones as UNAVAILABLE", async () => {
  const release = deferred();
  const ran: number[] = [];
  await using pair = await sessionPair({
    serverMethods: {
      async slow(n: number) {
        ran.push(n);
        await release.promise;
        return n;
      },
    },
  });
  const first = pair.client.call("slow", [1]);
  await new Promise((r) => setTimeout(r, 10));
  pair.server.goAway();
  await new Promise((r) => setTimeout(r, 10));
  await assertRejects(() => pair.client.call("slow", [2]), UnavailableError);
  release.resolve();
  assertEquals(await first, 1);
  assertEquals(ran, [1]);
});

Deno.test("Session: KEY_UPDATE every 10 records keeps working in both directions", async () => {
  await using pair = await sessionPair({
    serverMethods: { echo: (v: unknown) => v },
    keyUpdate: { records: 10 },
  });
  for (let i = 0; i < 60; i++) assertEquals(await pair.client.call("echo", [i]), i);
});

Deno.test("Session: drain lets calls in flight finish, then both sides close normally", async () => {
  const pair = await sessionPair({
    serverMethods: {
      async slow() {
        await new Promise((r) => setTimeout(r, 30));
        return "done";
      },
    },
  });
  const call = pair.client.call("slow");
  await new Promise((r) => setTimeout(r, 5));
  const draining = pair.client.drain({ timeout: 2000 });
  assertEquals(await call, "done");
  await draining;
  assertEquals(await pair.client.closed, undefined);
  assertEquals(await pair.server.closed, undefined);
});

Deno.test("Session: ping measures a round trip", async () => {
  await using pair = await sessionPair();
  const rtt = await pair.client.ping();
  assert(rtt >= 0);
});

Deno.test("Session: a ping pending when the session closes rejects", async () => {
  const pair = await sessionPair();
  pair.serverEnd.tamper = () => null; // PONGs never arrive
  const ping = pair.client.ping({ timeout: 5000 });
  pair.client.close();
  await assertRejects(() => ping, ConnectionClosedError);
  await pair[Symbol.asyncDispose]();
});

Deno.test("Session: over TLS, a stream reader that runs dry grants credit at once", async () => {
  // Deno's TLS server sockets keep Nagle's algorithm: the server's next record waits for an
  // ACK, which rides on the CREDIT the client sends. Elsewhere credit goes in half windows.
  for (const nagle of [false, true]) {
    const release = deferred();
    await using pair = await sessionPair({
      nagle,
      serverMethods: {
        async *items() {
          for (let i = 0; i < 3; i++) yield i;
          await release.promise;
        },
      },
    });
    const stream = pair.client.stream<number>("items", [], { window: 64 });
    const iterator = stream[Symbol.asyncIterator]();
    for (let i = 0; i < 3; i++) assertEquals((await iterator.next()).value, i);
    const before = pair.clientEnd.written.length;
    const fourth = iterator.next(); // nothing left: the reader runs dry
    // A grant leaves within a turn or two; wait up to 2 s for it (where none is due, 50 ms).
    for (let i = 0; i < (nagle ? 400 : 10) && pair.clientEnd.written.length === before; i++) {
      await new Promise((r) => setTimeout(r, 5));
    }
    assertEquals(
      pair.clientEnd.written.length - before,
      nagle ? 1 : 0,
      nagle ? "one record (the CREDIT) when the reader ran dry" : "no grant under half the window",
    );
    release.resolve();
    assertEquals((await fourth).done, true);
  }
});
