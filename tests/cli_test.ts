/**
 * The two CLIs as a user runs them: `server.ts` and `client.ts` spawned as processes with
 * `TRUST_ID` in their environment (or in a `.env` file), checked by output and exit code.
 */
import { assert, assertEquals, assertMatch } from "@std/assert";
import { denoCommand, TLS } from "./_helpers.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const SECRET = "cli-test-secret-0123456789-abcdefghijklmnop";

interface Output {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `deno run -A <script> …args` to completion (bounded by `timeoutMs`). */
async function run(
  script: string,
  args: string[],
  options: { env?: Record<string, string>; cwd?: string; timeoutMs?: number } = {},
): Promise<Output> {
  const out = await denoCommand(["run", "-A", `${ROOT}${script}`, ...args], {
    env: options.env,
    cwd: options.cwd,
    signal: AbortSignal.timeout(options.timeoutMs ?? 30_000),
  }).output();
  const text = new TextDecoder();
  return { code: out.code, stdout: text.decode(out.stdout), stderr: text.decode(out.stderr) };
}

/** A running `server.ts` process with the addresses it printed. */
interface ServerProcess extends AsyncDisposable {
  child: Deno.ChildProcess;
  addresses: string[];
  /** Sends `signal` and resolves with the exit status and the rest of its output. */
  stop(signal?: Deno.Signal): Promise<{ code: number; stdout: string; stderr: string }>;
}

async function startServer(args: string[], env: Record<string, string>): Promise<ServerProcess> {
  const child = denoCommand(["run", "-A", `${ROOT}server.ts`, ...args], { env }).spawn();
  const stderr = new Response(child.stderr).text();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  const addresses: string[] = [];
  const expected = args.filter((a) => a.startsWith("--listen")).length || 1;
  const deadline = Date.now() + 20_000;
  while (addresses.length < expected && Date.now() < deadline) {
    const { value, done } = await reader.read();
    if (done) break;
    seen += value;
    addresses.splice(
      0,
      addresses.length,
      ...[...seen.matchAll(/^Serving on (\S+)$/gm)].map((m) => m[1]),
    );
  }
  const rest = (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return seen;
      seen += value;
    }
  })();
  let stopped: Promise<{ code: number; stdout: string; stderr: string }> | undefined;
  const stop = (signal: Deno.Signal = "SIGTERM") => {
    stopped ??= (async () => {
      try {
        child.kill(signal);
      } catch { /* already gone */ }
      const status = await child.status;
      return { code: status.code, stdout: await rest, stderr: await stderr };
    })();
    return stopped;
  };
  if (addresses.length < expected) {
    const out = await stop("SIGKILL");
    throw new Error(`server did not start: ${out.stdout}\n${out.stderr}`);
  }
  return { child, addresses, stop, [Symbol.asyncDispose]: async () => void await stop() };
}

Deno.test("CLI: server.ts and client.ts", async (t) => {
  const env = { TRUST_ID: SECRET };
  await using server = await startServer(["--listen", "tcp://127.0.0.1:0"], env);
  const [address] = server.addresses;
  assertMatch(address, /^tcp:\/\/127\.0\.0\.1:\d+$/);

  await t.step("demo prints the seed's results and exits 0", async () => {
    const out = await run("client.ts", ["demo", "--connect", address], { env });
    assertEquals(out.code, 0, out.stderr);
    for (
      const line of [
        "Async 'greet' result: Hello, Alice!",
        "Async 'long_running_task' result: Task completed after 2 seconds.",
        "Error test successful: METHOD_NOT_FOUND: Method 'non_existent_function' not found",
        "Error test successful: TypeError: Name must be a string",
        "Error test successful: INVALID_PARAMS: seconds must be a number from 0 to 3600",
      ]
    ) assert(out.stdout.includes(line), `missing "${line}" in:\n${out.stdout}`);
  });

  await t.step("call prints the JSON result", async () => {
    const out = await run("client.ts", ["call", "greet", '"Alice"', "--connect", address], { env });
    assertEquals([out.code, out.stdout.trim()], [0, '"Hello, Alice!"']);
    const echo = await run("client.ts", ["call", "echo", '{"a":[1,2]}', "--connect", address], {
      env,
    });
    assertEquals(echo.stdout.trim(), '{"a":[1,2]}');
  });

  await t.step("exit codes: 1 for a failed call, 2 for usage, 3 for auth", async () => {
    const missing = await run("client.ts", ["call", "nope", "--connect", address], { env });
    assertEquals(missing.code, 1);
    assertMatch(missing.stderr, /METHOD_NOT_FOUND: Method 'nope' not found/);
    const typeError = await run("client.ts", ["call", "greet", "42", "--connect", address], {
      env,
    });
    assertEquals(typeError.code, 1);
    assertMatch(typeError.stderr, /TypeError: Name must be a string/);
    const usage = await run("client.ts", ["call", "greet", "not-json", "--connect", address], {
      env,
    });
    assertEquals(usage.code, 2);
    const flag = await run("client.ts", ["--bogus"], { env });
    assertEquals(flag.code, 2);
    const wrong = await run("client.ts", ["call", "greet", '"x"', "--connect", address], {
      env: { TRUST_ID: `${SECRET}-other` },
    });
    assertEquals(wrong.code, 3);
    assertMatch(wrong.stderr, /AUTH_FAILED: .*different secrets/);
    assert(!wrong.stderr.includes(SECRET), "the secret leaked into the output");
  });

  await t.step("no TRUST_ID anywhere: a clear error naming the variable and .env", async () => {
    const dir = await Deno.makeTempDir();
    try {
      const out = await run("client.ts", ["call", "greet", '"x"', "--connect", address], {
        cwd: dir,
      });
      assertEquals(out.code, 3);
      assertMatch(out.stderr, /TRUST_ID is not set/);
      assert(out.stderr.includes(`${await Deno.realPath(dir)}/.env`), out.stderr);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });

  await t.step(".env in the working directory is loaded when TRUST_ID is unset", async () => {
    const dir = await Deno.makeTempDir();
    try {
      await Deno.writeTextFile(`${dir}/.env`, `\uFEFF# test\r\nexport TRUST_ID="${SECRET}"\r\n`, {
        mode: 0o600,
      });
      const out = await run("client.ts", ["call", "greet", '"Env"', "--connect", address], {
        cwd: dir,
      });
      assertEquals([out.code, out.stdout.trim()], [0, '"Hello, Env!"'], out.stderr);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });

  await t.step("keygen and fingerprint", async () => {
    const key = await run("client.ts", ["keygen"]);
    assertEquals(key.code, 0);
    assertMatch(key.stdout.trim(), /^[A-Za-z0-9_-]{43}$/);
    const a = await run("client.ts", ["fingerprint"], { env });
    const b = await run("client.ts", ["fingerprint"], { env: { TRUST_ID: ` ${SECRET}\r\n` } });
    assertMatch(a.stdout.trim(), /^[a-z2-7]{8}$/);
    assertEquals(a.stdout, b.stdout);
  });

  await t.step("SIGTERM stops the server gracefully with exit code 0", async () => {
    const out = await server.stop("SIGTERM");
    assertEquals(out.code, 0, out.stderr);
    assert(!out.stderr.includes(SECRET));
  });
});

Deno.test("CLI: TLS server with --tls-cert/--tls-key and client --ca", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const fixtures = `${ROOT}tests/fixtures`;
    await using server = await startServer([
      "--listen",
      "tls://127.0.0.1:0",
      "--tls-cert",
      `${fixtures}/server.pem`,
      "--tls-key",
      `${fixtures}/server.key.pem`,
    ], { TRUST_ID: SECRET });
    const [address] = server.addresses;
    await Deno.writeTextFile(`${dir}/ca.pem`, TLS.ca);
    const ok = await run("client.ts", [
      "call",
      "greet",
      '"TLS"',
      "--connect",
      address,
      "--ca",
      `${dir}/ca.pem`,
    ], { env: { TRUST_ID: SECRET } });
    assertEquals([ok.code, ok.stdout.trim()], [0, '"Hello, TLS!"'], ok.stderr);
    const noCa = await run("client.ts", ["call", "greet", '"x"', "--connect", address], {
      env: { TRUST_ID: SECRET },
    });
    assertEquals(noCa.code, 3);
    assertMatch(noCa.stderr, /TLS_ERROR/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("CLI: a stale Unix socket left by a killed server is replaced", async () => {
  const dir = await Deno.makeTempDir();
  const address = `unix://${dir}/trust.sock`;
  const env = { TRUST_ID: SECRET };
  try {
    const first = await startServer(["--listen", address], env);
    const killed = await first.stop("SIGKILL");
    assertEquals(killed.code, 137);
    assert((await Deno.lstat(`${dir}/trust.sock`)).isSocket, "the socket file stays behind");
    await using second = await startServer(["--listen", address], env);
    assertEquals(second.addresses, [address]);
    const busy = await run("server.ts", ["--listen", address], { env, timeoutMs: 15_000 });
    assertEquals(busy.code, 3);
    assertMatch(busy.stderr, /ADDRESS_IN_USE/);
    const out = await run("client.ts", ["call", "greet", '"Unix"', "--connect", address], { env });
    assertEquals(out.stdout.trim(), '"Hello, Unix!"', out.stderr);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
