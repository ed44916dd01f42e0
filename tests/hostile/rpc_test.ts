/**
 * Hostile tests, part E (RPC and JSON layer): cases 42, 43, 44 (also re-run under
 * `--unsafe-proto` in a child process), 45, and invalid UTF-8 (46).
 */
import { assert, assertEquals, assertMatch } from "@std/assert";
import { serve } from "../../server.ts";
import { RpcError } from "../../protocol/errors.ts";
import type { CallContext, Methods } from "../../protocol/methods.ts";
import {
  assertNoLeaks,
  AuthedPeer,
  CANARY_SECRET,
  evidenceLogger,
  expectRpcError,
  Flag,
  hostileServer,
  Kind,
  legitConnect,
  RAW_CONTROL,
  sanity,
} from "./_harness.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const IN_UNSAFE_PROTO_CHILD = Deno.env.get("HOSTILE_UNSAFE_PROTO_CHILD") === "1";

Deno.test("case 42: method-name abuse gets a generic METHOD_NOT_FOUND and invokes nothing", async (t) => {
  await using env = await hostileServer();
  await env.sanity();
  const client = await legitConnect(env.address);
  const names = [
    "__proto__",
    "constructor",
    "toString",
    "valueOf",
    "hasOwnProperty",
    "__defineGetter__",
    "__lookupGetter__",
    "isPrototypeOf",
    "propertyIsEnumerable",
    "toLocaleString",
    "prototype",
    "then",
    "call",
    "apply",
    "bind",
    "get",
    "has",
    "size",
    "",
    "a".repeat(10 * 1024),
    "echo\n",
    "line\nbreak\r\nWARN forged_line",
    "\x1b[31mred\x1b[0m\x07",
    "\u2028echo\u2029",
    " echo",
    "ECHO",
    "\u0435cho", // Cyrillic е
    "echo\u0000",
    "echo.",
    "/echo/../count",
  ];

  await t.step("every name → METHOD_NOT_FOUND, message escaped and truncated", async () => {
    for (const name of names) {
      const err = await expectRpcError(
        client.call(name, [1]),
        "METHOD_NOT_FOUND",
        `${JSON.stringify(name.slice(0, 40))}: `,
      );
      assertEquals(err.name, "MethodNotFoundError");
      assert(
        !RAW_CONTROL.test(err.message),
        `raw control character in ${JSON.stringify(err.message)}`,
      );
      assert(!/[\u2028\u2029]/.test(err.message));
      assert(err.message.length <= 200, `message of ${err.message.length} characters`);
    }
  });

  await t.step("nothing was invoked", () => {
    assertEquals(env.calls.invoked, ["echo"]); // the sanity round trip only
  });

  await t.step("the server log escapes and truncates the names", () => {
    for (const line of env.logs) {
      assert(
        !RAW_CONTROL.test(line),
        `raw control character in log line ${JSON.stringify(line.slice(0, 120))}`,
      );
      assert(!/[\u2028\u2029]/.test(line));
      assert(line.length < 600, `log line of ${line.length} characters`);
      assert(!line.includes("a".repeat(300)), "a 10 KB name is truncated");
    }
  });

  await t.step(
    "non-string method fields and malformed requests (raw): an ERROR, nothing runs",
    async () => {
      const peer = await AuthedPeer.connect(env.port);
      const bodies = [
        '{"method":1,"params":[]}',
        '{"method":null,"params":[]}',
        '{"method":["echo"],"params":[]}',
        '{"method":{"toString":"echo"},"params":[]}',
        '{"params":["echo"]}',
        '["echo",[1]]',
        '"echo"',
        "null",
        '{"method":"echo","params":"not an array"}',
        '{"method":"echo","params":[],"meta":"not an object"}',
      ];
      for (const body of bodies) {
        const id = await peer.requestText(body);
        const answer = await peer.response(id);
        assertEquals(answer.kind, Kind.ERROR, body);
        const code = (answer.value as { code: string }).code;
        assert(["INVALID_PARAMS", "METHOD_NOT_FOUND"].includes(code), `${body}: ${code}`);
      }
      const id = await peer.request("echo", ["still open"]);
      assertEquals((await peer.response(id)).value, "still open");
      peer.close();
      assertEquals(env.calls.invoked, ["echo", "echo"]);
    },
  );
  await client.close();
  await env.sanity();
});

Deno.test("case 43: methods that were never exported cannot be called", async (t) => {
  const leaked: string[] = [];
  class Base {
    inherited() {
      leaked.push("inherited");
      return "inherited";
    }
  }
  class Service extends Base {
    static staticMethod() {
      leaked.push("static");
      return "static";
    }
    #privateMethod() {
      leaked.push("#private");
      return "private";
    }
    _helper() {
      leaked.push("_helper");
      return this.#privateMethod();
    }
    get getter() {
      leaked.push("getter");
      return () => "getter";
    }
    [Symbol.for("symbolMethod")]() {
      leaked.push("symbol");
      return "symbol";
    }
    visible() {
      return "visible";
    }
  }
  const tried = [
    "_helper",
    "#privateMethod",
    "privateMethod",
    "getter",
    "staticMethod",
    "inherited",
    "constructor",
    "symbolMethod",
    "Symbol(symbolMethod)",
    "__proto__",
    "prototype",
    "visible",
  ];
  const echo = (v: unknown) => v;

  async function run(methods: Methods, callable: string[]) {
    const logger = evidenceLogger();
    const server = await serve({
      secret: CANARY_SECRET,
      listen: "tcp://127.0.0.1:0",
      logger,
      methods,
    });
    try {
      await sanity(server.addresses[0]);
      const client = await legitConnect(server.addresses[0]);
      for (const name of tried) {
        if (callable.includes(name)) continue;
        await expectRpcError(client.call(name), "METHOD_NOT_FOUND", `${name}: `);
      }
      for (const name of callable) assertEquals(await client.call(name), name);
      await client.close();
      await sanity(server.addresses[0]);
    } finally {
      await server.close({ timeout: 1000 });
    }
  }

  await t.step(
    "a class instance passed as the method table exposes nothing but own properties",
    async () => {
      await run(Object.assign(new Service(), { echo }) as unknown as Methods, []);
    },
  );

  await t.step("explicit registration: only the registered names", async () => {
    const svc = new Service();
    await run({ echo, visible: () => svc.visible() }, ["visible"]);
  });

  await t.step("inherited, non-enumerable and Symbol-keyed members of a plain table", async () => {
    const proto = {
      inherited() {
        leaked.push("plain inherited");
        return "inherited";
      },
    };
    const table = Object.create(proto, {
      echo: { value: echo, enumerable: true },
      own: { value: () => "own", enumerable: true },
      hidden: { value: () => leaked.push("hidden"), enumerable: false },
      [Symbol.for("sym")]: { value: () => leaked.push("sym"), enumerable: true },
    });
    const logger = evidenceLogger();
    const server = await serve({
      secret: CANARY_SECRET,
      listen: "tcp://127.0.0.1:0",
      logger,
      methods: table,
    });
    try {
      const client = await legitConnect(server.addresses[0]);
      assertEquals(await client.call("own"), "own");
      for (const name of ["inherited", "hidden", "sym", "Symbol(sym)", "toString", "__proto__"]) {
        await expectRpcError(client.call(name), "METHOD_NOT_FOUND", `${name}: `);
      }
      await client.close();
    } finally {
      await server.close({ timeout: 1000 });
    }
  });

  await t.step("none of the hidden members ever ran", () => {
    assertEquals(leaked, []);
  });
});

const POLLUTED =
  '{"__proto__":{"x":1,"isAdmin":true},"constructor":{"prototype":{"x":1,"isAdmin":true}}}';

function prototypeSnapshot() {
  return {
    object: Object.getOwnPropertyNames(Object.prototype).sort(),
    array: Object.getOwnPropertyNames(Array.prototype).sort(),
    fn: Object.getOwnPropertyNames(Function.prototype).sort(),
  };
}

function assertClean() {
  // deno-lint-ignore no-explicit-any
  const probe = {} as any;
  assertEquals(probe.x, undefined);
  assertEquals(probe.isAdmin, undefined);
  // deno-lint-ignore no-explicit-any
  assertEquals(([] as any).x, undefined);
  // deno-lint-ignore no-explicit-any
  assertEquals((Object.prototype as any).x, undefined);
}

/** What a handler sees of a value it received. */
function describe(v: unknown) {
  const o = v as Record<string, unknown>;
  return {
    proto: typeof v === "object" && v !== null && Object.getPrototypeOf(v) === Object.prototype,
    x: o?.x ?? null,
    isAdmin: o?.isAdmin ?? null,
    keys: typeof v === "object" && v !== null ? Object.keys(v).sort() : [],
  };
}

Deno.test("case 44: prototype-pollution payloads leave every prototype untouched", async (t) => {
  if (IN_UNSAFE_PROTO_CHILD) {
    assert(
      ({} as { __proto__?: unknown }).__proto__ === Object.prototype,
      "the child must run with a live __proto__ accessor",
    );
  }
  const before = prototypeSnapshot();
  await using env = await hostileServer({
    methods: {
      probe: (v: unknown) => describe(v),
      metaProbe(this: CallContext) {
        return {
          ...describe(this.meta),
          timeout: (this.meta as Record<string, unknown>).timeout ?? null,
        };
      },
      hostile: () => JSON.parse(POLLUTED),
      hostileError() {
        throw new RpcError("HOSTILE", "hostile data attached", { data: JSON.parse(POLLUTED) });
      },
    },
  });
  await env.sanity();

  await t.step("params, named params, metadata and the request itself (raw JSON)", async () => {
    const peer = await AuthedPeer.connect(env.port);
    const ask = async (json: string) => {
      const id = await peer.requestText(json);
      return await peer.response(id);
    };
    const inner = { proto: true, x: null, isAdmin: null };
    let r = await ask('{"method":"probe","params":[{"__proto__":{"x":1,"isAdmin":true}}]}');
    assertEquals(r.value, { ...inner, keys: ["__proto__"] });
    r = await ask(
      '{"method":"probe","params":[{"constructor":{"prototype":{"x":1,"isAdmin":true}}}]}',
    );
    assertEquals(r.value, { ...inner, keys: ["constructor"] });
    r = await ask(`{"method":"probe","params":${POLLUTED}}`);
    assertEquals(r.value, { ...inner, keys: ["__proto__", "constructor"] });
    r = await ask(
      `{"method":"metaProbe","params":[],"meta":{"__proto__":{"timeout":1,"x":1},"constructor":{"prototype":{"x":1}}}}`,
    );
    assertEquals(r.value, { ...inner, keys: ["__proto__", "constructor"], timeout: null });
    // A method name inherited from a polluted request object must not count.
    r = await ask('{"__proto__":{"method":"count","params":[]}}');
    assertEquals(r.kind, Kind.ERROR);
    assertEquals((r.value as { code: string }).code, "INVALID_PARAMS");
    peer.close();
    assertEquals(env.calls.count, 0, "count never ran");
  });

  await t.step("binary payloads: placeholders and escapes under __proto__ keys", async () => {
    const peer = await AuthedPeer.connect(env.port);
    const json = new TextEncoder().encode(
      '{"method":"probe","params":[{"__proto__":{"$bin":0},"a":{"$esc":{"__proto__":{"x":1}}}}]}',
    );
    const payload = new Uint8Array(4 + json.length + 4 + 3);
    const view = new DataView(payload.buffer);
    view.setUint32(0, json.length);
    payload.set(json, 4);
    view.setUint32(4 + json.length, 3);
    payload.set([1, 2, 3], 8 + json.length);
    const id = peer.nextId();
    await peer.sendMessage(Kind.REQUEST, id, payload, Flag.BINARY);
    const r = await peer.response(id);
    assertEquals(r.value, { proto: true, x: null, isAdmin: null, keys: ["__proto__", "a"] });
    peer.close();
  });

  await t.step(
    "events, stream chunks and credits carrying the payloads are ignored safely",
    async () => {
      const peer = await AuthedPeer.connect(env.port);
      const bytes = new TextEncoder().encode(POLLUTED);
      for (const kind of [Kind.EVENT, Kind.STREAM_DATA, Kind.STREAM_END, Kind.CREDIT]) {
        await peer.sendMessages([{
          kind,
          flags: 0,
          id: kind === Kind.EVENT ? 0 : 1,
          payload: bytes,
        }]);
      }
      const id = await peer.request("echo", ["alive"]);
      assertEquals((await peer.response(id)).value, "alive");
      peer.close();
    },
  );

  await t.step("results, error data and metadata reaching the real client", async () => {
    const client = await legitConnect(env.address);
    try {
      const result = await client.call<Record<string, unknown>>("hostile");
      assert(Object.hasOwn(result, "__proto__"), "the key stays an own data property");
      assertEquals(Object.getPrototypeOf(result), Object.prototype);
      assertEquals(result.x, undefined);
      const err = await expectRpcError(client.call("hostileError"), "HOSTILE");
      const data = err.data as Record<string, unknown>;
      assert(Object.hasOwn(data, "__proto__"));
      assertEquals(data.isAdmin, undefined);
      const meta = await client.call("metaProbe", [], { meta: JSON.parse(POLLUTED) });
      assertEquals((meta as { proto: boolean; x: unknown }).proto, true);
      assertEquals((meta as { x: unknown }).x, null);
      const echoed = await client.call<Record<string, unknown>>("echo", [
        { ...JSON.parse(POLLUTED), bytes: new Uint8Array([7]) },
      ]);
      assert(Object.hasOwn(echoed, "__proto__"));
      assertEquals(echoed.bytes, new Uint8Array([7]));
      assertEquals(echoed.isAdmin, undefined);
    } finally {
      await client.close();
    }
  });

  await t.step("Object.prototype, Array.prototype and Function.prototype are unchanged", () => {
    assertEquals(prototypeSnapshot(), before);
    assertClean();
  });
  await env.sanity();

  await t.step({
    name: "the same run under --unsafe-proto (child process)",
    ignore: IN_UNSAFE_PROTO_CHILD,
    fn: async () => {
      const child = new Deno.Command(Deno.execPath(), {
        args: [
          "test",
          "-A",
          "--unsafe-proto",
          "--no-check",
          "tests/hostile/rpc_test.ts",
          "--filter",
          "case 44",
        ],
        cwd: ROOT,
        env: { HOSTILE_UNSAFE_PROTO_CHILD: "1", NO_COLOR: "1" },
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const killer = setTimeout(() => child.kill("SIGKILL"), 60_000);
      const out = await child.output();
      clearTimeout(killer);
      const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
      assertEquals(out.code, 0, text);
      assertMatch(text, /ok \| 1 passed/);
    },
  });
});

/** `[[[…]]]` nested `n` deep. */
function deepArray(n: number): unknown {
  let v: unknown = [];
  for (let i = 1; i < n; i++) v = [v];
  return v;
}

Deno.test("case 45: deep nesting is TOO_DEEP from the pre-scan; no RangeError escapes", async (t) => {
  await using env = await hostileServer({
    methods: {
      deep: (n: number) => deepArray(Math.min(n, 100_000)),
    },
  });
  await env.sanity();
  const client = await legitConnect(env.address);

  await t.step("10^4 and 10^5 levels of [ in params (real client)", async () => {
    for (const n of [1e4, 1e5]) {
      const err = await expectRpcError(client.call("echo", [deepArray(n)]), "TOO_DEEP", `${n}: `);
      assert(err.remote);
    }
  });

  await t.step("10^6 levels of [ … ] (2 MB of valid JSON in MORE pieces, raw peer)", async () => {
    const peer = await AuthedPeer.connect(env.port);
    const n = 1e6;
    const id = await peer.requestText(
      `{"method":"echo","params":[${"[".repeat(n)}${"]".repeat(n)}]}`,
    );
    const r = await peer.response(id, 10_000);
    assertEquals(r.kind, Kind.ERROR);
    assertEquals((r.value as { code: string }).code, "TOO_DEEP");
    const again = await peer.request("echo", ["same connection"]);
    assertEquals((await peer.response(again)).value, "same connection");
    peer.close();
  });

  await t.step('10^5 levels of {"a": in params', async () => {
    let v: unknown = {};
    for (let i = 0; i < 1e5; i++) v = { a: v };
    await expectRpcError(client.call("echo", [v]), "TOO_DEEP");
  });

  await t.step("unbalanced: 10^6 and 2·10^6 bytes of [ (raw, never valid JSON)", async () => {
    const peer = await AuthedPeer.connect(env.port);
    for (const n of [1e6, 2e6]) {
      const id = await peer.requestText(`{"method":"echo","params":${"[".repeat(n)}`);
      const r = await peer.response(id, 10_000);
      assertEquals(r.kind, Kind.ERROR);
      assertEquals((r.value as { code: string }).code, "TOO_DEEP");
    }
    peer.close();
  });

  await t.step("the limit is 64 levels, envelope included", async () => {
    // {"method":…,"params":[X]} adds two levels around X.
    assertEquals(await client.call("echo", [deepArray(62)]), deepArray(62));
    await expectRpcError(client.call("echo", [deepArray(63)]), "TOO_DEEP");
  });

  await t.step("brackets inside strings (with escaped quotes) do not count", async () => {
    const s = `a\\"${"[".repeat(1e5)}"\\\\${"{".repeat(1000)}`;
    assertEquals(await client.call("echo", [s]), s);
  });

  await t.step("a deep result is TOO_DEEP on the client; the session lives on", async () => {
    for (const n of [100, 1e4, 1e5]) {
      await expectRpcError(client.call("deep", [n]), "TOO_DEEP", `${n}: `);
    }
    assertEquals(await client.call("echo", ["alive"]), "alive");
  });

  await client.close();
  await env.sanity();
});

Deno.test("case 46 (extra): invalid UTF-8 and a BOM are typed errors; the session lives on", async () => {
  await using env = await hostileServer();
  await env.sanity();
  const peer = await AuthedPeer.connect(env.port);
  const enc = new TextEncoder();
  const cases: [string, Uint8Array, string[]][] = [
    ["a truncated sequence", new Uint8Array([0xc3, 0x28]), ["BAD_UTF8"]],
    ["an overlong slash", new Uint8Array([0xc0, 0xaf]), ["BAD_UTF8"]],
    ["a lone surrogate", new Uint8Array([0xed, 0xa0, 0x80]), ["BAD_UTF8"]],
    ["0xFF", new Uint8Array([0xff]), ["BAD_UTF8"]],
  ];
  for (const [name, bad, codes] of cases) {
    const payload = new Uint8Array([
      ...enc.encode('{"method":"echo","params":["'),
      ...bad,
      ...enc.encode('"]}'),
    ]);
    const id = peer.nextId();
    await peer.sendMessage(Kind.REQUEST, id, payload);
    const r = await peer.response(id);
    assertEquals(r.kind, Kind.ERROR, name);
    assert(
      codes.includes((r.value as { code: string }).code),
      `${name}: ${JSON.stringify(r.value)}`,
    );
  }
  const bom = new Uint8Array([
    0xef,
    0xbb,
    0xbf,
    ...enc.encode('{"method":"echo","params":["bom"]}'),
  ]);
  const id = peer.nextId();
  await peer.sendMessage(Kind.REQUEST, id, bom);
  const r = await peer.response(id);
  assertEquals(r.kind, Kind.ERROR, "a BOM is not silently stripped");
  const again = await peer.request("echo", ["alive"]);
  assertEquals((await peer.response(again)).value, "alive");
  peer.close();
  assertEquals(env.calls.invoked, ["echo", "echo"]);
  await env.sanity();
});

Deno.test({
  name: "case 8 (rpc file): nothing collected here holds the canary, psk or keys",
  ignore: IN_UNSAFE_PROTO_CHILD,
  fn: async () => {
    await assertNoLeaks();
  },
});
