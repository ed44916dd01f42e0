/**
 * Hostile tests, part A (secret and configuration): cases 1, 2, 3 and the suite-wide secret
 * canary (case 8). The `.env` variants (5–7) live in tests/env/.
 */
import { assert, assertEquals, assertMatch } from "@std/assert";
import { connect } from "../../client.ts";
import { serve } from "../../server.ts";
import { SecretError } from "../../protocol/errors.ts";
import {
  assertNoLeaks,
  AuthedPeer,
  CANARY_SECRET,
  evidence,
  expectRpcError,
  FrameType,
  hostileServer,
  legitConnect,
  MitmProxy,
  RawConn,
} from "./_harness.ts";

const CHILD = new URL("./_child_secret.ts", import.meta.url).pathname;
const ROOT = new URL("../../", import.meta.url).pathname;

/** The parent's environment minus TRUST_ID: just enough for Deno to find its cache. */
function baseEnv(): Record<string, string> {
  const env: Record<string, string> = { NO_COLOR: "1" };
  for (const name of ["HOME", "PATH", "DENO_DIR", "XDG_CACHE_HOME", "TMPDIR"]) {
    const value = Deno.env.get(name);
    if (value !== undefined) env[name] = value;
  }
  return env;
}

interface ChildResult {
  trustIdDefined: boolean;
  serve: { code?: string; name?: string; message?: string; stack?: string; resolved?: boolean };
  connect: { code?: string; name?: string; message?: string; stack?: string; resolved?: boolean };
  loadSecret: { code?: string; message?: string; stack?: string; resolved?: boolean };
  portFree: boolean;
  dialed: boolean;
}

/** Runs the child with `env` only (clearEnv) in `cwd`; bounded by a kill timer. */
async function runChild(env: Record<string, string>, cwd: string): Promise<ChildResult> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--no-config", "--no-lock", CHILD],
    clearEnv: true,
    env,
    cwd,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const killer = setTimeout(() => child.kill("SIGKILL"), 30_000);
  const out = await child.output();
  clearTimeout(killer);
  const stdout = new TextDecoder().decode(out.stdout);
  const stderr = new TextDecoder().decode(out.stderr);
  evidence.logs.push([stdout, stderr]);
  assertEquals(out.code, 0, `child failed: ${stderr}`);
  return JSON.parse(stdout.trim().split("\n").at(-1)!);
}

Deno.test("case 1: missing secret: factories throw SECRET_MISSING before any socket work", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "hostile-secret-" });
  try {
    await t.step("serve() and connect() in a process without TRUST_ID (clearEnv)", async () => {
      const r = await runChild(baseEnv(), dir);
      assertEquals(r.trustIdDefined, false);
      assertEquals(r.serve.name, "SecretError");
      assertEquals(r.serve.code, "SECRET_MISSING");
      assertMatch(r.serve.message!, /TRUST_ID/);
      assertMatch(r.serve.message!, /environment variable/);
      assertMatch(r.serve.message!, /\.env/);
      assert(r.portFree, "the port serve() was given must still be free");
      assertEquals(r.connect.name, "SecretError");
      assertEquals(r.connect.code, "SECRET_MISSING");
      assertMatch(r.connect.message!, /TRUST_ID/);
      assertEquals(r.dialed, false, "connect() must not dial before checking the secret");
      // .env consulted (the CLIs' path): the message names the exact .env path.
      assertEquals(r.loadSecret.code, "SECRET_MISSING");
      assert(r.loadSecret.message!.includes(`${dir}/.env`), r.loadSecret.message);
    });

    await t.step("the server CLI exits non-zero and names TRUST_ID and the .env path", async () => {
      const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const port = (probe.addr as Deno.NetAddr).port;
      probe.close();
      const child = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          "--no-config",
          "--no-lock",
          `${ROOT}server.ts`,
          "--listen",
          `tcp://127.0.0.1:${port}`,
        ],
        clearEnv: true,
        env: baseEnv(),
        cwd: dir,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const killer = setTimeout(() => child.kill("SIGKILL"), 30_000);
      const out = await child.output();
      clearTimeout(killer);
      const stderr = new TextDecoder().decode(out.stderr);
      evidence.logs.push([stderr, new TextDecoder().decode(out.stdout)]);
      assert(
        out.code !== 0,
        `the CLI must fail without a secret (exit ${out.code}, signal ${out.signal})`,
      );
      assertEquals(out.signal, null, "it exits on its own, it is not killed by the guard");
      assertMatch(stderr, /TRUST_ID/);
      assert(stderr.includes(`${dir}/.env`), `the message names the .env path: ${stderr}`);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("case 2: empty TRUST_ID with a valid .env: SECRET_EMPTY, no fallback", async () => {
  const dir = await Deno.makeTempDir({ prefix: "hostile-secret-" });
  try {
    await Deno.writeTextFile(`${dir}/.env`, `TRUST_ID=${"v".repeat(40)}\n`, { mode: 0o600 });
    const r = await runChild({ ...baseEnv(), TRUST_ID: "" }, dir);
    assertEquals(r.trustIdDefined, true);
    for (
      const [what, e] of [["serve", r.serve], ["connect", r.connect], [
        "loadSecret",
        r.loadSecret,
      ]] as const
    ) {
      assertEquals(e.code, "SECRET_EMPTY", `${what}: ${JSON.stringify(e)}`);
      assertMatch(e.message!, /TRUST_ID is empty/);
    }
    assert(r.portFree, "nothing was bound");
    assertEquals(r.dialed, false, "nothing was dialed");
    assert(!JSON.stringify(r).includes("v".repeat(40)), "the .env value never shows up");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  // The same in-process, with whitespace-only values.
  for (const secret of ["", "   ", "\r\n", "\t \n"]) {
    await expectRpcError(serve({ secret, listen: "tcp://127.0.0.1:0" }), "SECRET_EMPTY");
    await expectRpcError(connect("tcp://127.0.0.1:9", { secret }), "SECRET_EMPTY");
  }
});

Deno.test("case 3: weak or invalid secrets are refused before any socket work", async (t) => {
  const held = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const heldPort = (held.addr as Deno.NetAddr).port;
  const target = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const targetPort = (target.addr as Deno.NetAddr).port;
  const base = "Abcdefghijklmnopqrstuvwxyz012345"; // 32 printable characters
  const cases: [string, string, string][] = [
    ["31 characters", base.slice(0, 31), "SECRET_WEAK"],
    ["1 character", "x", "SECRET_WEAK"],
    ["a space inside", `${base.slice(0, 16)} ${base.slice(16)}`, "SECRET_INVALID"],
    ["a tab inside", `${base}\t${base}`, "SECRET_INVALID"],
    ["non-ASCII", `${base}é`, "SECRET_INVALID"],
    ["a zero-width space", `${base}\u200b${base}`, "SECRET_INVALID"],
    ["a control character", `${base}\x01`, "SECRET_INVALID"],
    ["DEL", `${base}\x7f`, "SECRET_INVALID"],
    ["a NUL", `${base}\0${base}`, "SECRET_INVALID"],
    ["an escape sequence", `${base}\x1b[31m`, "SECRET_INVALID"],
    ["1025 characters", "a".repeat(1025), "SECRET_INVALID"],
    ["the canary plus a space and more", `${CANARY_SECRET} x`, "SECRET_INVALID"],
    ["a prefix of the canary", CANARY_SECRET.slice(0, 20), "SECRET_WEAK"],
  ];
  try {
    for (const [name, secret, code] of cases) {
      await t.step(`${name} → ${code}`, async () => {
        // serve() is aimed at a port that is taken: binding first would give ADDRESS_IN_USE.
        const e1 = await expectRpcError(
          serve({ secret, listen: `tcp://127.0.0.1:${heldPort}`, logger: "silent" }),
          code,
        );
        const e2 = await expectRpcError(
          connect(`tcp://127.0.0.1:${targetPort}`, { secret, logger: "silent" }),
          code,
        );
        for (const e of [e1, e2]) {
          assert(e instanceof SecretError, `${e.name} is a SecretError`);
          assertMatch(e.message, /keygen|gen-secret/, "the message tells how to generate one");
          const shown = `${e.message}\n${e.stack}`;
          if (secret.length >= 4) {
            assert(!shown.includes(secret), "the message never holds the secret");
          }
          assert(!shown.includes(CANARY_SECRET), "never the canary");
        }
      });
    }
    await t.step("connect() never dialed", async () => {
      const sentinel = await Deno.connect({ hostname: "127.0.0.1", port: targetPort });
      const first = await target.accept();
      const dialed =
        (first.remoteAddr as Deno.NetAddr).port !== (sentinel.localAddr as Deno.NetAddr).port;
      first.close();
      sentinel.close();
      assertEquals(dialed, false);
    });
  } finally {
    held.close();
    target.close();
  }
});

Deno.test("case 8: the canary never leaks: a tour of failures, then a scan", async (t) => {
  await using env = await hostileServer({ authFailureDelayMs: 10 });
  await env.sanity();
  await using proxy = new MitmProxy(env.port);

  await t.step("legitimate traffic through the proxy (sealed records only)", async () => {
    const client = await legitConnect(proxy.address);
    try {
      assertEquals(await client.call("echo", [{ text: "hello", n: 42 }]), { text: "hello", n: 42 });
      assertEquals(
        await client.call("echo", [new Uint8Array([1, 2, 3])]),
        new Uint8Array([1, 2, 3]),
      );
      evidence.logs.push([
        Deno.inspect(client, { depth: 10 }),
        Deno.inspect(env.server, { depth: 10 }),
      ]);
      evidence.logs.push([JSON.stringify(client) ?? "", JSON.stringify(env.server) ?? ""]);
    } finally {
      await client.close();
    }
  });

  await t.step("a wrong secret through the proxy", async () => {
    const err = await expectRpcError(
      connect(proxy.address, { secret: `wrong-${CANARY_SECRET}`, logger: "silent" }),
      "AUTH_FAILED",
    );
    assert(!err.message.includes("wrong-"));
  });

  await t.step("a wrong secret that shares the canary as a prefix, direct", async () => {
    await expectRpcError(
      connect(env.address, { secret: `${CANARY_SECRET}-but-longer`, logger: "silent" }),
      "AUTH_FAILED",
    );
  });

  await t.step("a tampered record, a cleartext frame, garbage", async () => {
    const peer = await AuthedPeer.connect(env.port);
    const frame = await peer.sealRecord(FrameType.MESSAGES, new Uint8Array(40));
    frame[frame.length - 1] ^= 1;
    await peer.sendRaw(frame);
    const end = await peer.readUntilClose();
    assertEquals(end.alert?.name, "BAD_RECORD");
    peer.close();
    const raw = await RawConn.dial(env.port);
    await raw.readFrame();
    await raw.write(new TextEncoder().encode("GET /?TRUST_ID= HTTP/1.1\r\n\r\n"));
    await raw.readToEnd();
    raw.close();
  });

  await t.step("client-side protocol failures carry no secret", async () => {
    const client = await legitConnect(env.address);
    try {
      const err = await expectRpcError(
        client.call("no_such_method", [CANARY_SECRET.length]),
        "METHOD_NOT_FOUND",
      );
      assertEquals(err.remote, true);
      await expectRpcError(
        client.call("echo", [1], { timeout: 1, signal: AbortSignal.abort() }),
        "CANCELLED",
      );
    } finally {
      await client.close();
    }
    await expectRpcError(client.call("echo", []), "CONNECTION_CLOSED");
  });

  await env.sanity();
  await proxy.close();
  await env.close();

  await t.step(
    "scan every log line, error, alert and wire byte collected in this file",
    async () => {
      const scanned = await assertNoLeaks();
      assert(
        scanned.logLines > 0 && scanned.errors > 0 && scanned.wireBytes > 0,
        JSON.stringify(scanned),
      );
    },
  );
});

Deno.test("case 8: the scanner itself finds every encoding of the canary and the psk", async () => {
  const { findInText, leakNeedles, indexOfBytes, canaryPsk } = await import("./_harness.ts");
  const needles = await leakNeedles();
  const canary = new TextEncoder().encode(CANARY_SECRET);
  const psk = await canaryPsk();
  const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  const b64 = (b: Uint8Array) => btoa(String.fromCharCode(...b));
  const samples = [
    `line ${CANARY_SECRET} end`,
    `hex=${hex(canary).toUpperCase()}`,
    `b64 ${b64(canary)}`,
    `b64 shifted ${b64(new Uint8Array([1, ...canary, 2]))}`,
    `b64 shifted twice ${b64(new Uint8Array([1, 2, ...canary]))}`,
    `url ${b64(canary).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "")}`,
    `psk ${hex(psk)}`,
    `psk b64 ${b64(psk)}`,
    Deno.inspect({ psk }),
  ];
  for (const s of samples) assert(findInText(s, needles.text).length > 0, `not detected: ${s}`);
  assert(indexOfBytes(new Uint8Array([9, ...psk, 9]), psk) === 1);
  assert(indexOfBytes(new Uint8Array([9, ...canary]), canary) === 1);
  assertEquals(findInText("nothing secret here, just 0123456789abcdef", needles.text), []);
});
