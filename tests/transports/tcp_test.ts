import {
  assert,
  assertEquals,
  assertInstanceOf,
  assertMatch,
  assertRejects,
  assertThrows,
} from "@std/assert";
import { TransportError } from "../../protocol/errors.ts";
import { parseAddress } from "../../transports/address.ts";
import { listenTcp, tcp } from "../../transports/tcp.ts";
import type { Conn, Listener } from "../../transports/types.ts";
import { readExactly } from "./_io.ts";
import { HAS_IPV6 } from "../_helpers.ts";

const MiB = 1 << 20;

function pattern(n: number, seed = 0): Uint8Array {
  const data = new Uint8Array(n);
  for (let i = 0; i < n; i++) data[i] = (i * 31 + seed) & 0xff;
  return data;
}

/** The bound port of a TCP listener. */
function portOf(listener: Listener): number {
  const address = parseAddress(listener.address);
  if (address.transport === "unix") throw new Error(`Not a TCP listener: ${listener.address}`);
  return address.port;
}

/** Opens a listener, dials it and accepts: returns both ends. */
async function pair(hostname = "127.0.0.1"): Promise<[Listener, Conn, Conn]> {
  const listener = listenTcp({ hostname, port: 0 });
  const accepted = listener.accept();
  const client = await tcp({ hostname, port: portOf(listener) }).dial();
  const server = await accepted;
  if (server === null) throw new Error("accept() resolved null");
  return [listener, client, server];
}

async function echoRoundTrip(hostname: string) {
  const [listener, client, server] = await pair(hostname);
  try {
    assertEquals(server.transport, "tcp");
    assertEquals(client.remoteHost, hostname);
    assertEquals(server.remoteHost, hostname);
    const bracketed = hostname.includes(":") ? `[${hostname}]` : hostname;
    assertMatch(client.remoteAddress, new RegExp(`^${bracketed.replace(/[[\].]/g, "\\$&")}:\\d+$`));
    await client.handshake();
    const data = pattern(MiB);
    const echo = (async () => {
      const got = await readExactly(server, data.length);
      await server.write(got);
    })();
    const [, , back] = await Promise.all([
      client.write(data),
      echo,
      readExactly(client, data.length),
    ]);
    assertEquals(back, data);
  } finally {
    client.close();
    server.close();
    listener.close();
  }
}

Deno.test("tcp transport", async (t) => {
  await t.step(
    "echo round trip with a 1 MiB write over 127.0.0.1",
    () => echoRoundTrip("127.0.0.1"),
  );

  await t.step({
    name: "echo round trip with a 1 MiB write over [::1]",
    ignore: !HAS_IPV6,
    fn: () => echoRoundTrip("::1"),
  });

  await t.step("listener.address resolves port 0", () => {
    const listener = listenTcp({ port: 0 });
    try {
      assert(portOf(listener) > 0);
      assertMatch(listener.address, /^tcp:\/\/127\.0\.0\.1:\d+$/);
    } finally {
      listener.close();
    }
  });

  await t.step("concurrent writes are queued, not interleaved", async () => {
    const [listener, client, server] = await pair();
    try {
      const a = new Uint8Array(MiB).fill(0xaa);
      const b = new Uint8Array(MiB).fill(0xbb);
      const reading = readExactly(server, 2 * MiB);
      await Promise.all([client.write(a), client.write(b)]);
      const got = await reading;
      assert(got.subarray(0, MiB).every((x) => x === 0xaa));
      assert(got.subarray(MiB).every((x) => x === 0xbb));
    } finally {
      client.close();
      server.close();
      listener.close();
    }
  });

  await t.step("writes started one after another keep their order, small and large", async () => {
    const [listener, client, server] = await pair();
    try {
      // Small writes take the direct path; a large one is written in parts while the next
      // ones queue behind it.
      const sizes = [10, 3 * MiB, 1, 200_000, 7, 5 * MiB, 64];
      const writes = sizes.map((n, i) => new Uint8Array(n).fill(i + 1));
      const total = sizes.reduce((a, b) => a + b, 0);
      const reading = readExactly(server, total);
      await Promise.all(writes.map((w) => client.write(w)));
      await client.write(new Uint8Array([0xff])); // and one more once all are done
      const got = await reading;
      let at = 0;
      for (const [i, n] of sizes.entries()) {
        assert(got.subarray(at, at + n).every((x) => x === i + 1), `write ${i} out of place`);
        at += n;
      }
      assertEquals(await readExactly(server, 1), new Uint8Array([0xff]));
    } finally {
      client.close();
      server.close();
      listener.close();
    }
  });

  await t.step("writeParts writes head then body with no other write between", async () => {
    const [listener, client, server] = await pair();
    try {
      const head = new Uint8Array(20).fill(0x11);
      const body = new Uint8Array(MiB).fill(0x22);
      const other = new Uint8Array(MiB).fill(0x33);
      const reading = readExactly(server, 20 + 2 * MiB);
      await Promise.all([client.writeParts!(head, body), client.write(other)]);
      const got = await reading;
      assert(got.subarray(0, 20).every((x) => x === 0x11));
      assert(got.subarray(20, 20 + MiB).every((x) => x === 0x22));
      assert(got.subarray(20 + MiB).every((x) => x === 0x33));
    } finally {
      client.close();
      server.close();
      listener.close();
    }
  });

  await t.step("connect refused gives CONNECT_FAILED", async () => {
    const listener = listenTcp({ port: 0 });
    const port = portOf(listener);
    listener.close();
    const err = await assertRejects(
      () => tcp({ hostname: "127.0.0.1", port }).dial(),
      TransportError,
    );
    assertEquals(err.code, "CONNECT_FAILED");
    assertEquals(err.message, `Cannot connect to tcp://127.0.0.1:${port}: connection refused`);
    assertInstanceOf(err.cause, Deno.errors.ConnectionRefused);
  });

  await t.step("connect timeout and abort", async () => {
    // A full accept queue makes Linux drop SYNs, so the next connect hangs.
    const full = Deno.listen({ hostname: "127.0.0.1", port: 0, tcpBacklog: 1 });
    const port = full.addr.port;
    const dialer = tcp({ hostname: "127.0.0.1", port, connectTimeout: 100 });
    const queued: Conn[] = [];
    let timedOut: TransportError | undefined;
    try {
      for (let i = 0; i < 32 && timedOut === undefined; i++) {
        try {
          queued.push(await dialer.dial());
        } catch (err) {
          if (!(err instanceof TransportError)) throw err;
          timedOut = err;
        }
      }
      if (timedOut === undefined) throw new Error("The accept queue never filled up");
      assertEquals(timedOut.code, "CONNECT_FAILED");
      assertEquals(
        timedOut.message,
        `Cannot connect to tcp://127.0.0.1:${port}: timed out after 100 ms`,
      );

      const slow = tcp({ hostname: "127.0.0.1", port });
      const controller = new AbortController();
      const dialing = slow.dial({ signal: controller.signal });
      const timer = setTimeout(() => controller.abort(), 20);
      const aborted = await assertRejects(() => dialing, TransportError);
      clearTimeout(timer);
      assertEquals(aborted.message, `Cannot connect to tcp://127.0.0.1:${port}: aborted`);
      assertEquals(aborted.retryable, false);

      const pre = await assertRejects(
        () => slow.dial({ signal: AbortSignal.abort() }),
        TransportError,
      );
      assertEquals(pre.code, "CONNECT_FAILED");
    } finally {
      for (const conn of queued) conn.close();
      full.close();
    }
  });

  await t.step("accept() resolves null after close", async () => {
    const listener = listenTcp({ port: 0 });
    const pending = listener.accept();
    listener.close();
    assertEquals(await pending, null);
    assertEquals(await listener.accept(), null);
    listener.close(); // idempotent
    await listener[Symbol.asyncDispose]();
  });

  await t.step("listening on a taken port gives ADDRESS_IN_USE", () => {
    const listener = listenTcp({ port: 0 });
    try {
      const port = portOf(listener);
      const err = assertThrows(() => listenTcp({ port }), TransportError);
      assertEquals(err.code, "ADDRESS_IN_USE");
    } finally {
      listener.close();
    }
  });

  await t.step("read after a local close resolves null, write rejects", async () => {
    const [listener, client, server] = await pair();
    try {
      const pending = client.read(new Uint8Array(16));
      client.close();
      client.close(); // idempotent, never throws
      assertEquals(await pending, null);
      assertEquals(await client.read(new Uint8Array(16)), null);
      await assertRejects(() => client.write(new Uint8Array(1)), Deno.errors.BadResource);
      await client.closeWrite(); // nothing to do
      assertEquals(await server.read(new Uint8Array(16)), null);
    } finally {
      server.close();
      listener.close();
    }
  });

  await t.step("write to a peer that closed rejects", async () => {
    const [listener, client, server] = await pair();
    try {
      server.close();
      let failure: unknown;
      const chunk = new Uint8Array(64 * 1024);
      for (let i = 0; i < 200 && failure === undefined; i++) {
        await client.write(chunk).catch((err) => (failure = err));
      }
      assert(
        failure instanceof Deno.errors.BrokenPipe || failure instanceof Deno.errors.ConnectionReset,
        `expected BrokenPipe or ConnectionReset, got ${failure}`,
      );
      assertEquals(await client.read(new Uint8Array(16)), null); // reset reads as end of stream
    } finally {
      client.close();
      listener.close();
    }
  });

  await t.step("half-close: the peer reads null and can still reply", async () => {
    const [listener, client, server] = await pair();
    try {
      await client.write(new Uint8Array([1, 2, 3]));
      await client.closeWrite();
      assertEquals(await readExactly(server, 3), new Uint8Array([1, 2, 3]));
      assertEquals(await server.read(new Uint8Array(16)), null);
      await server.write(new Uint8Array([4, 5]));
      await server.closeWrite();
      assertEquals(await readExactly(client, 2), new Uint8Array([4, 5]));
      assertEquals(await client.read(new Uint8Array(16)), null);
    } finally {
      client.close();
      server.close();
      listener.close();
    }
  });

  await t.step("bad options", () => {
    assertEquals(
      assertThrows(() => tcp({ hostname: "", port: 1 }), TransportError).code,
      "INVALID_ADDRESS",
    );
    assertThrows(() => tcp({ hostname: "localhost", port: 0 }), TransportError);
    assertThrows(() => listenTcp({ port: 70000 }), TransportError);
    assertThrows(() => tcp({ hostname: "localhost", port: 1, connectTimeout: -1 }), TypeError);
    assertEquals(tcp({ hostname: "[::1]", port: 5 }).address, "tcp://[::1]:5");
  });
});

Deno.test("tcp accept() throws on EMFILE and works again afterwards", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const script = `${dir}/emfile.ts`;
    await Deno.writeTextFile(
      script,
      `import { listenTcp } from ${JSON.stringify(import.meta.resolve("../../transports/tcp.ts"))};
const listener = listenTcp({ port: 0 });
const port = Number(listener.address.split(":").pop());
const client = await Deno.connect({ hostname: "127.0.0.1", port });
const files = [];
try { for (let i = 0; i < 1000; i++) files.push(Deno.openSync("/dev/null")); } catch { /* EMFILE */ }
let first = "no error";
try { (await listener.accept())?.close(); first = "accepted"; } catch (err) { first = String(err); }
for (const f of files) f.close();
const conn = await listener.accept();
console.log(JSON.stringify({ first, second: conn === null ? "null" : conn.remoteHost }));
conn?.close(); client.close(); listener.close();
`,
    );
    const { code, stdout, stderr } = await new Deno.Command("sh", {
      args: ["-c", 'ulimit -n 64 && exec "$0" run -A "$1"', Deno.execPath(), script],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const out = new TextDecoder().decode(stdout);
    assertEquals(code, 0, new TextDecoder().decode(stderr));
    const result = JSON.parse(out);
    assertMatch(result.first, /Too many open files/);
    assertEquals(result.second, "127.0.0.1");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
