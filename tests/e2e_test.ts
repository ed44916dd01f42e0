/**
 * End to end over real loopback sockets, the same cases on every transport of the matrix
 * (TCP on 127.0.0.1 and [::1], TLS with the test CA, Unix sockets in a temp dir).
 */
import { assert, assertEquals, assertInstanceOf, assertRejects } from "@std/assert";
import { connect } from "../client.ts";
import { demoServices } from "../cli/demo_services.ts";
import {
  AuthenticationError,
  CallTimeoutError,
  CancelledError,
  ConnectionClosedError,
  InvalidParamsError,
  MethodNotFoundError,
  RemoteError,
  SecretError,
} from "../protocol/errors.ts";
import type { CallContext } from "../protocol/methods.ts";
import { CANARY_SECRET, MATRIX, startServer, TLS } from "./_helpers.ts";

function methods(events: { aborted: PromiseWithResolvers<unknown> }) {
  return {
    ...demoServices(),
    async square(n: number) {
      await new Promise((r) => setTimeout(r, n % 5));
      return n * n;
    },
    size: (b: Uint8Array) => b.length,
    wait(this: CallContext) {
      return new Promise((_, reject) => {
        this.signal.addEventListener("abort", () => {
          events.aborted.resolve(this.signal.reason);
          reject(this.signal.reason);
        });
      });
    },
  };
}

for (const transport of MATRIX) {
  Deno.test(`e2e over ${transport}`, async (t) => {
    const events = { aborted: Promise.withResolvers<unknown>() };
    await using ts = await startServer(transport, {
      methods: methods(events),
      authFailureDelayMs: 20,
    });

    await t.step("successful connection and RPC", async () => {
      await using client = await ts.connect();
      assertEquals(await client.call("greet", ["Alice"]), "Hello, Alice!");
      assertEquals(client.sessionId.length, 32);
      assertEquals(ts.server.peers.map((p) => p.id), [client.sessionId]);
    });

    await t.step("refused with a mismatched TRUST_ID; the server keeps serving", async () => {
      const err = await assertRejects(
        () => ts.connect({ secret: `${CANARY_SECRET}-but-different` }),
        AuthenticationError,
      );
      assertEquals(err.code, "AUTH_FAILED");
      assert(err.message.includes("different secrets"), err.message);
      await using client = await ts.connect();
      assertEquals(await client.call("health").then((h) => (h as { status: string }).status), "ok");
    });

    await t.step("refused before any socket work when the client has no TRUST_ID", async () => {
      const saved = Deno.env.get("TRUST_ID");
      Deno.env.delete("TRUST_ID");
      const before = ts.server.peers.length;
      try {
        const err = await assertRejects(
          () => connect(ts.address, { caCerts: [TLS.ca] }),
          SecretError,
        );
        assertEquals(err.code, "SECRET_MISSING");
        assert(err.message.includes("TRUST_ID"), err.message);
      } finally {
        if (saved !== undefined) Deno.env.set("TRUST_ID", saved);
      }
      assertEquals(ts.server.peers.length, before);
      assert(!ts.logs.some((l) => l.includes("handshake_failed") && l.includes("secret")));
    });

    await t.step("method not found, parameter errors", async () => {
      await using client = await ts.connect();
      const missing = await assertRejects(
        () => client.call("non_existent_function"),
        MethodNotFoundError,
      );
      assertEquals(missing.message, "Method 'non_existent_function' not found");
      const typeError = await assertRejects(() => client.call("greet", [123]), RemoteError);
      assertEquals([typeError.name, typeError.message], ["TypeError", "Name must be a string"]);
      await assertRejects(() => client.call("long_running_task", ["soon"]), InvalidParamsError);
      await assertRejects(() => client.call("greet", 5 as unknown as []), TypeError);
    });

    await t.step("1000 concurrent calls, each result matched to its call", async () => {
      await using client = await ts.connect();
      const results = await Promise.all(
        Array.from({ length: 1000 }, (_, i) => client.call<number>("square", [i])),
      );
      results.forEach((r, i) => assertEquals(r, i * i));
    });

    await t.step("1 MiB and 16 MiB Uint8Array round-trip byte-exact", async () => {
      await using client = await ts.connect({ timeout: 60_000 });
      for (const size of [1 << 20, 16 << 20]) {
        const data = crypto.getRandomValues(new Uint8Array(65536));
        const big = new Uint8Array(size);
        for (let i = 0; i < size; i += data.length) big.set(data.subarray(0, size - i), i);
        const back = await client.call<Uint8Array>("echo", [big]);
        assertInstanceOf(back, Uint8Array);
        assertEquals(back.length, size);
        let same = true;
        for (let i = 0; i < size && same; i++) same = back[i] === big[i];
        assert(same, `${size} bytes differ after the round trip`);
      }
    });

    await t.step("a 16 MiB transfer does not stop a small call", async () => {
      await using client = await ts.connect({ timeout: 60_000 });
      let bulkDone = false;
      const bulk = client.call("size", [new Uint8Array(16 << 20)]).then((n) => {
        bulkDone = true;
        return n;
      });
      assertEquals(await client.call("greet", ["quick"]), "Hello, quick!");
      assertEquals(bulkDone, false, "the small call was answered before the bulk one");
      assertEquals(await bulk, 16 << 20);
    });

    await t.step("cancellation and timeout reach the server handler", async () => {
      await using client = await ts.connect();
      const controller = new AbortController();
      const call = client.call("wait", [], { signal: controller.signal });
      await new Promise((r) => setTimeout(r, 20));
      controller.abort(new Error("user gave up"));
      await assertRejects(() => call, CancelledError);
      assertEquals(((await events.aborted.promise) as { code: string }).code, "CANCELLED");
      events.aborted = Promise.withResolvers();
      await assertRejects(() => client.call("wait", [], { timeout: 50 }), CallTimeoutError);
      await events.aborted.promise;
      events.aborted = Promise.withResolvers();
      await assertRejects(
        () => client.call("long_running_task", [30], { timeout: 50 }),
        CallTimeoutError,
      );
    });

    await t.step("a call whose connection drops rejects with CONNECTION_CLOSED", async () => {
      const client = await ts.connect();
      const call = client.call("wait");
      await new Promise((r) => setTimeout(r, 20));
      for (const peer of ts.server.peers) peer.close();
      await assertRejects(() => call, ConnectionClosedError);
      await events.aborted.promise;
      await client.close();
    });
  });
}
