/**
 * The client CLI's `stream` and `listen` commands and the demo server's `time` stream and
 * `peer_joined` / `peer_left` events, as a user runs them: `client.ts` and `server.ts` spawned
 * as processes (TRUST_ID in their environment) against loopback sockets on port 0, checked by
 * their JSON lines, stderr and exit codes. Every wait is bounded; nothing asserts on speed.
 */
import { assert, assertEquals, assertMatch } from "@std/assert";
import { connect } from "../client.ts";
import { demoServices, presenceEvents } from "../cli/demo_services.ts";
import type { CallContext } from "../protocol/methods.ts";
import { CANARY_SECRET, startServer, type TestServer } from "./_helpers.ts";
import { type CliProcess, type Exit, spawnCli, WAIT_MS, within } from "./_cli_process.ts";

const ENV = { TRUST_ID: CANARY_SECRET };

/** Polls `condition` every 10 ms until it holds, for at most `ms`. */
async function waitFor(condition: () => boolean, what: string, ms = WAIT_MS): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** {@link spawnCli} with TRUST_ID in the environment. */
function spawn(script: string, args: string[]): CliProcess {
  return spawnCli(script, args, { env: ENV });
}

/** Runs `client.ts …args` to completion. */
async function runClient(args: string[]): Promise<Exit> {
  await using cli = spawn("client.ts", args);
  return await cli.exited();
}

/** Starts the demo `server.ts` on a loopback port 0; resolves once it printed its address. */
async function startDemoServer(): Promise<{ address: string; process: CliProcess }> {
  const process = spawn("server.ts", ["--listen", "tcp://127.0.0.1:0", "--log-level", "warn"]);
  try {
    const line = await process.line();
    const match = line.match(/^Serving on (tcp:\/\/127\.0\.0\.1:\d+)$/);
    if (match === null) throw new Error(`unexpected first line: ${line}`);
    return { address: match[1], process };
  } catch (err) {
    await process[Symbol.asyncDispose]();
    throw err;
  }
}

/** Asserts the output never shows the secret. */
function assertNoSecret(out: Exit): void {
  assert(!out.stdout.includes(CANARY_SECRET) && !out.stderr.includes(CANARY_SECRET));
}

Deno.test("CLI stream: the demo server's time stream and join/leave events", async (t) => {
  const demo = await startDemoServer();
  await using _server = demo.process;
  const { address } = demo;

  await t.step("stream time 3 10 prints 3 timestamp lines in order and exits 0", async () => {
    const out = await runClient(["stream", "time", "3", "10", "--connect", address]);
    assertEquals(out.code, 0, out.stderr);
    const lines = out.stdout.split("\n").filter((l) => l !== "");
    assertEquals(lines.length, 3, out.stdout);
    let previous = -Infinity;
    for (const line of lines) {
      const chunk = JSON.parse(line);
      assertEquals(Object.keys(chunk), ["timestamp"], line);
      assertEquals(typeof chunk.timestamp, "string");
      const ms = Date.parse(chunk.timestamp);
      assert(Number.isFinite(ms), `not a date: ${line}`);
      assertEquals(new Date(ms).toISOString(), chunk.timestamp, "not ISO 8601");
      assert(ms >= previous, `timestamps go back: ${out.stdout}`);
      previous = ms;
    }
    assertNoSecret(out);
  });

  await t.step("stream time 0 10 exits 1 with INVALID_PARAMS on stderr", async () => {
    const out = await runClient(["stream", "time", "0", "10", "--connect", address]);
    assertEquals(out.code, 1, out.stderr);
    assertEquals(out.stdout, "");
    assertMatch(out.stderr, /INVALID_PARAMS: count must be an integer from 1 to 1000000/);
    const interval = await runClient(["stream", "time", "2", '"soon"', "--connect", address]);
    assertEquals(interval.code, 1);
    assertMatch(interval.stderr, /INVALID_PARAMS: interval_ms must be a number/);
  });

  await t.step("stream: exit codes 1 (unknown method) and 2 (usage)", async () => {
    const missing = await runClient(["stream", "nope", "--connect", address]);
    assertEquals(missing.code, 1);
    assertMatch(missing.stderr, /METHOD_NOT_FOUND: Method 'nope' not found/);
    const noMethod = await runClient(["stream", "--connect", address]);
    assertEquals(noMethod.code, 2);
    assertMatch(noMethod.stderr, /stream needs a METHOD/);
    const notJson = await runClient(["stream", "time", "three", "--connect", address]);
    assertEquals(notJson.code, 2);
    const badEvent = await runClient(["listen", "bad name", "--connect", address]);
    assertEquals(badEvent.code, 2);
    assertMatch(badEvent.stderr, /Invalid event name/);
  });

  await t.step("peer_joined and peer_left reach the other peers", async () => {
    await using first = await connect(address, { secret: CANARY_SECRET, logger: "silent" });
    const joined = Promise.withResolvers<unknown>();
    const left = Promise.withResolvers<unknown>();
    first.on("peer_joined", (data) => joined.resolve(data));
    first.on("peer_left", (data) => left.resolve(data));
    const second = await connect(address, { secret: CANARY_SECRET, logger: "silent" });
    const secondId = second.sessionId;
    const secondJoined = Promise.withResolvers<unknown>();
    second.on("peer_joined", (data) => secondJoined.resolve(data));
    try {
      assertEquals(await within(joined.promise, WAIT_MS, "peer_joined"), {
        id: secondId,
        transport: "tcp",
        peers: 2,
      });
    } finally {
      await second.close();
    }
    assertEquals(await within(left.promise, WAIT_MS, "peer_left"), {
      id: secondId,
      reason: "closed",
      peers: 1,
    });
    // A peer is not told about itself: its own join went to the others only.
    const own = await Promise.race([secondJoined.promise, Promise.resolve("none")]);
    assertEquals(own, "none");
  });

  await t.step("server --help lists the demo methods and events", async () => {
    await using help = spawn("server.ts", ["--help"]);
    const out = await help.exited();
    assertEquals(out.code, 0);
    for (const word of ["time(count=5, interval_ms=1000)", "peer_joined", "peer_left"]) {
      assert(out.stdout.includes(word), `missing ${word} in:\n${out.stdout}`);
    }
  });
});

Deno.test("CLI stream: Ctrl+C cancels the stream on the server and exits 130", async () => {
  const finallyRan = Promise.withResolvers<void>();
  const aborted = Promise.withResolvers<unknown>();
  await using ts = await startServer("tcp", {
    methods: {
      async *slow(this: CallContext) {
        try {
          yield "first";
          // Waits until the caller goes away.
          await new Promise((_, reject) => {
            this.signal.addEventListener("abort", () => {
              aborted.resolve(this.signal.reason);
              reject(this.signal.reason);
            }, { once: true });
          });
          yield "never";
        } finally {
          finallyRan.resolve();
        }
      },
      async *bytes() {
        yield new Uint8Array([1, 2, 3]);
        yield { nested: new Uint8Array([255]) };
        yield null;
        return "final value, not printed";
      },
    },
  });
  const client = spawn("client.ts", ["stream", "slow", "--connect", ts.address]);
  await using _client = client;
  assertEquals(await client.line(), '"first"');
  client.child.kill("SIGINT");
  await within(finallyRan.promise, 5_000, "the generator's finally after SIGINT");
  const reason = await within(aborted.promise, 5_000, "the handler's signal to abort");
  assertEquals((reason as { code?: string }).code, "CANCELLED");
  const out = await client.exited();
  assertEquals(out.code, 130, out.stderr);
  assertEquals(out.stdout, '"first"\n');
  assertEquals(out.stderr, "");

  const bytes = await runClient(["stream", "bytes", "--connect", ts.address]);
  assertEquals(bytes.code, 0, bytes.stderr);
  assertEquals(bytes.stdout, '{"$bytes":"AQID"}\n{"nested":{"$bytes":"/w=="}}\nnull\n');
});

Deno.test("CLI listen: prints events as JSON lines until a signal or the connection is lost", async (t) => {
  const presence = presenceEvents();
  await using ts: TestServer = await startServer("tcp", {
    onConnect: presence.onConnect,
    onDisconnect: presence.onDisconnect,
  });
  presence.attach(ts.server);

  await t.step("listen peer_joined prints only peer_joined; SIGINT exits 0", async () => {
    const listener = spawn("client.ts", ["listen", "peer_joined", "--connect", ts.address]);
    await using _listener = listener;
    await waitFor(() => ts.server.peers.length === 1, "the listener to connect");
    // Not subscribed: never printed (it was sent before the join below, on the same session).
    ts.server.peers[0].emit("custom", { skipped: true });
    await using second = await ts.connect();
    const line = await listener.line();
    const event = JSON.parse(line);
    assertEquals(event, {
      event: "peer_joined",
      data: { id: second.sessionId, transport: "tcp", peers: 2 },
    });
    await second.close();
    const out = await listener.stop("SIGINT");
    assertEquals(out.code, 0, out.stderr);
    assertEquals(out.stdout, `${line}\n`, "peer_left and custom were not subscribed to");
    assertNoSecret(out);
  });

  await t.step("listen with no names prints every event; SIGTERM exits 0", async () => {
    await waitFor(() => ts.server.peers.length === 0, "the previous peers to leave");
    const listener = spawn("client.ts", ["listen", "--connect", ts.address]);
    await using _listener = listener;
    await waitFor(() => ts.server.peers.length === 1, "the listener to connect");
    const peer = ts.server.peers[0];
    // The first event may in principle beat the CLI's subscription: send it until it shows.
    let first: string | undefined;
    const deadline = Date.now() + WAIT_MS;
    while (first === undefined) {
      assert(Date.now() < deadline, "no event printed");
      peer.emit("custom", { x: 1 });
      first = await listener.line(200).catch(() => undefined);
    }
    assertEquals(first, '{"event":"custom","data":{"x":1}}');
    peer.emit("bin", new Uint8Array([1, 2, 3]));
    peer.emit("bare");
    const seen: string[] = [];
    for (let line = await listener.line();; line = await listener.line()) {
      if (line === first) continue; // extra copies of the retried event
      seen.push(line);
      if (seen.length === 2) break;
    }
    assertEquals(seen, [
      '{"event":"bin","data":{"$bytes":"AQID"}}',
      '{"event":"bare","data":null}',
    ]);
    const out = await listener.stop("SIGTERM");
    assertEquals(out.code, 0, out.stderr);
  });

  await t.step("the connection lost: exit 1 with a message on stderr", async () => {
    await waitFor(() => ts.server.peers.length === 0, "the previous peers to leave");
    const listener = spawn("client.ts", ["listen", "--connect", ts.address]);
    await using _listener = listener;
    await waitFor(() => ts.server.peers.length === 1, "the listener to connect");
    ts.server.peers[0].close();
    const out = await listener.exited();
    assertEquals(out.code, 1, out.stderr);
    assertMatch(out.stderr, /error: connection lost/);
  });
});

Deno.test("demo time: leaving the loop stops the stream at once and leaks no timer", async () => {
  await using ts = await startServer("tcp", { methods: demoServices() });
  await using client = await ts.connect();
  const ticks: unknown[] = [];
  // An hour between ticks: only cancelling can end the wait (the sanitizers catch a timer left).
  for await (const tick of client.stream("time", [1_000_000, 3_600_000])) {
    ticks.push(tick);
    break;
  }
  assertEquals(ticks.length, 1);
  await waitFor(() => ts.server.peers[0]?.openStreams === 0, "the server to end the stream");
  const defaults: unknown[] = [];
  for await (const tick of client.stream("time", [], { timeout: WAIT_MS })) {
    defaults.push(tick);
    if (defaults.length === 2) break;
  }
  assertEquals(defaults.length, 2);
});
