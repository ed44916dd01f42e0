import {
  assert,
  assertEquals,
  assertRejects,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import { TransportError } from "../../protocol/errors.ts";
import { listenUnix, unix } from "../../transports/unix.ts";
import { readExactly } from "./_io.ts";

const MiB = 1 << 20;
const UNIX_MODULE = import.meta.resolve("../../transports/unix.ts");

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

/** Runs a Deno script in a child process (through `sh -c` so the shell can set up limits). */
function spawnScript(dir: string, code: string, shellPrefix = "") {
  const script = `${dir}/child_${crypto.randomUUID()}.ts`;
  Deno.writeTextFileSync(script, code);
  return new Deno.Command("sh", {
    args: ["-c", `${shellPrefix}exec "$0" run -A "$1"`, Deno.execPath(), script],
    stdout: "piped",
    stderr: "piped",
  });
}

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "trpc" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("unix transport", async (t) => {
  await t.step("echo round trip with 1 MiB; the file is gone after close", async () => {
    await withTempDir(async (dir) => {
      const path = `${dir}/rpc.sock`;
      const listener = await listenUnix({ path });
      assertEquals(listener.address, `unix://${path}`);
      assertEquals((await Deno.lstat(path)).mode! & 0o777, 0o600);
      const accepted = listener.accept();
      const client = await unix({ path }).dial();
      const server = await accepted;
      try {
        if (server === null) throw new Error("accept() resolved null");
        assertEquals([client.remoteAddress, client.remoteHost], ["unix", undefined]);
        assertEquals(server.transport, "unix");
        const data = new Uint8Array(MiB).map((_, i) => i % 253);
        const echo = readExactly(server, MiB).then((got) => server.write(got));
        const [, , back] = await Promise.all([client.write(data), echo, readExactly(client, MiB)]);
        assertEquals(back, data);
        await client.closeWrite();
        assertEquals(await server.read(new Uint8Array(4)), null);
      } finally {
        client.close();
        server?.close();
        listener.close();
      }
      assertEquals(await exists(path), false);
      listener.close(); // idempotent
      assertEquals(await listener.accept(), null);
    });
  });

  await t.step("a stale socket left by a SIGKILLed server is replaced", async () => {
    await withTempDir(async (dir) => {
      const path = `${dir}/stale.sock`;
      const child = spawnScript(
        dir,
        `Deno.listen({ transport: "unix", path: ${JSON.stringify(path)} });
console.log("ready");
setInterval(() => {}, 1000);`,
      ).spawn();
      const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
      let out = "";
      for (let i = 0; i < 100 && !out.includes("ready"); i++) {
        const { value, done } = await reader.read();
        if (done) break;
        out += value;
      }
      child.kill("SIGKILL");
      await child.status;
      await reader.cancel();
      await child.stderr.cancel();
      assert(out.includes("ready"), "the child did not start");
      assert((await Deno.lstat(path)).isSocket, "the stale socket file should remain");
      const refused = await assertRejects(() => unix({ path }).dial(), TransportError);
      assertStringIncludes(refused.message, "connection refused");

      const listener = await listenUnix({ path });
      try {
        const accepted = listener.accept();
        const client = await unix({ path }).dial();
        (await accepted)?.close();
        client.close();
      } finally {
        listener.close();
      }
    });
  });

  await t.step("a live socket is refused with ADDRESS_IN_USE", async () => {
    await withTempDir(async (dir) => {
      const path = `${dir}/live.sock`;
      const first = await listenUnix({ path });
      try {
        const err = await assertRejects(() => listenUnix({ path }), TransportError);
        assertEquals(err.code, "ADDRESS_IN_USE");
        assertStringIncludes(err.message, "is in use by another server");
        // The first server still owns its socket and still accepts.
        const accepted = first.accept();
        const client = await unix({ path }).dial();
        (await accepted)?.close();
        client.close();
      } finally {
        first.close();
      }
    });
  });

  await t.step("a regular file, directory or symlink is refused and left alone", async () => {
    await withTempDir(async (dir) => {
      const file = `${dir}/file.sock`;
      await Deno.writeTextFile(file, "precious");
      const directory = `${dir}/dir.sock`;
      await Deno.mkdir(directory);
      const link = `${dir}/link.sock`;
      await Deno.symlink(file, link);
      const dangling = `${dir}/dangling.sock`;
      await Deno.symlink(`${dir}/nowhere`, dangling);
      const live = await listenUnix({ path: `${dir}/real.sock` });
      const toSocket = `${dir}/to_socket.sock`;
      await Deno.symlink(`${dir}/real.sock`, toSocket);
      try {
        for (const path of [file, directory, link, dangling, toSocket]) {
          const err = await assertRejects(() => listenUnix({ path }), TransportError);
          assertEquals(err.code, "UNSAFE_PATH", path);
          assert(await exists(path), `${path} was deleted`);
        }
        assertEquals(await Deno.readTextFile(file), "precious");
        assert((await Deno.lstat(link)).isSymlink);
        assert((await Deno.lstat(`${dir}/real.sock`)).isSocket);
      } finally {
        live.close();
      }
    });
  });

  await t.step("the socket is 0600 even under umask 000", async () => {
    await withTempDir(async (dir) => {
      const path = `${dir}/umask.sock`;
      const { code, stdout, stderr } = await spawnScript(
        dir,
        `import { listenUnix } from ${JSON.stringify(UNIX_MODULE)};
const probe = ${JSON.stringify(`${dir}/probe`)};
Deno.writeTextFileSync(probe, "");
const listener = await listenUnix({ path: ${JSON.stringify(path)} });
const modes = [Deno.statSync(probe).mode & 0o777, Deno.statSync(${
          JSON.stringify(path)
        }).mode & 0o777];
listener.close();
console.log(JSON.stringify(modes));`,
        "umask 000 && ",
      ).output();
      assertEquals(code, 0, new TextDecoder().decode(stderr));
      const [probeMode, socketMode] = JSON.parse(new TextDecoder().decode(stdout));
      assertEquals(probeMode, 0o666, "the child did not run under umask 000");
      assertEquals(socketMode, 0o600);
      assertEquals(await exists(path), false);
    });
  });

  await t.step("a path over 107 bytes gives PATH_TOO_LONG before any syscall", async () => {
    await withTempDir(async (dir) => {
      const base = `${dir}/missing-dir/`;
      const long = base + "x".repeat(108 - base.length);
      assertEquals(new TextEncoder().encode(long).length, 108);
      const multibyte = `${dir}/${"é".repeat(50)}`; // 100 characters, but over 107 bytes
      for (const path of [long, multibyte]) {
        const err = await assertRejects(() => listenUnix({ path }), TransportError);
        assertEquals(err.code, "PATH_TOO_LONG");
        assertEquals(assertThrows(() => unix({ path }), TransportError).code, "PATH_TOO_LONG");
      }
      // Exactly 107 bytes works.
      const exact = `${dir}/` + "y".repeat(107 - dir.length - 1);
      assertEquals(new TextEncoder().encode(exact).length, 107);
      const listener = await listenUnix({ path: exact });
      listener.close();
    });
  });

  await t.step("dialing a missing socket gives CONNECT_FAILED", async () => {
    await withTempDir(async (dir) => {
      const path = `${dir}/none.sock`;
      const err = await assertRejects(() => unix({ path }).dial(), TransportError);
      assertEquals(err.code, "CONNECT_FAILED");
      assertEquals(err.message, `Cannot connect to unix://${path}: no such socket file`);
    });
  });

  await t.step("accept() resolves null after close", async () => {
    await withTempDir(async (dir) => {
      const listener = await listenUnix({ path: `${dir}/a.sock` });
      const pending = listener.accept();
      await listener[Symbol.asyncDispose]();
      assertEquals(await pending, null);
    });
  });
});
