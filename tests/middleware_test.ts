/**
 * Middleware around handlers and interceptors around calls, on both sides, with per-call
 * metadata (headers) that handlers read.
 */
import { assert, assertEquals, assertRejects } from "@std/assert";
import { RpcError } from "../protocol/errors.ts";
import type { CallContext } from "../protocol/methods.ts";
import type { Interceptor, Middleware } from "../protocol/middleware.ts";
import { startServer } from "./_helpers.ts";

Deno.test("middleware and interceptors", async (t) => {
  const log: string[] = [];
  const auth: Middleware = (ctx, next) => {
    if (ctx.method.startsWith("admin.") && ctx.meta.token !== "letmein") {
      throw new RpcError("PERMISSION_DENIED", `'${ctx.method}' needs a token`);
    }
    return next();
  };
  const timing: Middleware = async (ctx, next) => {
    log.push(`before ${ctx.method} ${JSON.stringify(ctx.args)}`);
    try {
      return await next();
    } finally {
      log.push(`after ${ctx.method}`);
    }
  };
  const doubling: Middleware = async (ctx, next) => {
    if (ctx.method !== "add") return next();
    ctx.args[0] = (ctx.args[0] as number) * 2; // middleware may rewrite arguments
    return await next();
  };
  await using ts = await startServer("tcp", {
    middleware: [timing, auth, doubling],
    methods: {
      add: (a: number, b: number) => a + b,
      "admin.reset": () => "reset",
      whoSent(this: CallContext) {
        return this.meta;
      },
      async *ticks(n: number) {
        for (let i = 0; i < n; i++) yield i;
      },
    },
  });
  const outgoing: string[] = [];
  const addToken: Interceptor = (call, next) => {
    if (call.method.startsWith("admin.")) call.meta.token = "letmein";
    call.meta.traceId = "t-1";
    return next();
  };
  const record: Interceptor = async (call, next) => {
    outgoing.push(`→ ${call.method}`);
    const result = await next();
    outgoing.push(`← ${call.method} ${JSON.stringify(result)}`);
    return result;
  };
  await using plain = await ts.connect();
  await using withToken = await ts.connect({
    interceptors: [record, addToken],
    middleware: [(ctx, next) => {
      log.push(`client handler ${ctx.method}`);
      return next();
    }],
    methods: { pong: () => "pong" },
  });

  await t.step("before and after every call, in order; arguments may be rewritten", async () => {
    log.length = 0;
    assertEquals(await plain.call("add", [2, 3]), 7);
    assertEquals(log, ["before add [2,3]", "after add"]);
  });

  await t.step("an auth check on method names refuses, with its code", async () => {
    const err = await assertRejects(() => plain.call("admin.reset"), RpcError);
    assertEquals(err.code, "PERMISSION_DENIED");
    assertEquals(err.message, "'admin.reset' needs a token");
  });

  await t.step("an interceptor adds metadata the handler reads", async () => {
    assertEquals(await withToken.call("admin.reset"), "reset");
    const meta = await withToken.call<Record<string, unknown>>("whoSent", [], {
      meta: { tenant: "acme" },
    });
    assertEquals(meta.tenant, "acme");
    assertEquals(meta.traceId, "t-1");
    assert(typeof meta.timeout === "number", "the deadline travels as meta.timeout");
    assertEquals(outgoing.slice(0, 2), ["→ admin.reset", '← admin.reset "reset"']);
  });

  await t.step("interceptors wrap streams and the typed facade too", async () => {
    outgoing.length = 0;
    assertEquals(await Array.fromAsync(withToken.stream("ticks", [2])), [0, 1]);
    const api = withToken.api<{ "admin.reset": () => string }>();
    assertEquals(await api["admin.reset"](), "reset", "the token was added");
    assertEquals(outgoing, [
      "→ ticks",
      "← ticks undefined",
      "→ admin.reset",
      '← admin.reset "reset"',
    ]);
  });

  await t.step("streams go through middleware too", async () => {
    log.length = 0;
    assertEquals(await Array.fromAsync(plain.stream("ticks", [3])), [0, 1, 2]);
    assertEquals(log, ["before ticks [3]", "after ticks"]);
  });

  await t.step("the client's own handlers have middleware too", async () => {
    log.length = 0;
    const peer = ts.server.peers.find((p) => p.id === withToken.sessionId)!;
    assertEquals(await peer.call("pong"), "pong");
    assertEquals(log, ["client handler pong"]);
  });
});
