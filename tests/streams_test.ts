/**
 * Server streams and channels end to end over real sockets: order and completeness, credit
 * flow control (a slow or absent reader holds the producer back), cancellation in both
 * directions, errors, a dropped connection, and several streams sharing one connection.
 */
import { assert, assertEquals, assertRejects } from "@std/assert";
import {
  CallTimeoutError,
  ConnectionClosedError,
  InvalidParamsError,
  RemoteError,
  RpcError,
} from "../protocol/errors.ts";
import { DEFAULT_STREAM_WINDOW } from "../protocol/flow.ts";
import type { CallContext } from "../protocol/methods.ts";
import { MATRIX, startServer } from "./_helpers.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` every few ms until it holds, failing after `ms`. */
async function until(check: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`Timed out waiting for ${what}`);
    await sleep(5);
  }
}

function streamingMethods(probe: {
  produced: number;
  stopped: PromiseWithResolvers<string>;
}) {
  return {
    async *count(n: number) {
      for (let i = 0; i < n; i++) yield i;
      return n;
    },
    async *watched(this: CallContext, n: number) {
      probe.produced = 0;
      try {
        for (let i = 0; i < n; i++) {
          probe.produced++;
          yield i;
        }
      } finally {
        probe.stopped.resolve(this.signal.aborted ? "aborted" : "ended");
      }
    },
    async *failing() {
      yield 1;
      yield 2;
      throw new TypeError("Broken on the third chunk");
    },
    readable: () => ReadableStream.from(["a", "b", "c"]),
    plain: (x: number) => x * 2,
    async *forever(this: CallContext) {
      try {
        for (let i = 0;; i++) {
          yield i;
          await sleep(1);
          if (i > 1_000_000) return;
        }
      } finally {
        probe.stopped.resolve(this.signal.aborted ? "aborted" : "ended");
      }
    },
    async *echo(this: CallContext) {
      for await (const message of this.input) yield `echo: ${message}`;
    },
    async sum(this: CallContext) {
      let total = 0;
      for await (const n of this.input) total += n as number;
      return total;
    },
    /** A hand-written iterable whose return() throws synchronously. */
    awkward(): AsyncIterable<number> {
      let i = 0;
      return {
        [Symbol.asyncIterator]: () => ({
          next: () => Promise.resolve({ value: i++, done: false }),
          return: () => {
            throw new Error("return() blew up");
          },
        }),
      };
    },
    async firstOnly(this: CallContext) {
      for await (const n of this.input) return n;
      return undefined;
    },
  };
}

for (const transport of MATRIX) {
  Deno.test(`a server stream over ${transport} arrives complete and in order`, async () => {
    const probe = { produced: 0, stopped: Promise.withResolvers<string>() };
    await using ts = await startServer(transport, { methods: streamingMethods(probe) });
    await using client = await ts.connect();
    // TLS is slow here: Deno cannot set TCP_NODELAY on accepted TLS sockets (README).
    const n = transport === "tcp" ? 100_000 : transport.endsWith("s") ? 2_000 : 20_000;
    const stream = client.stream<number, number>("count", [n]);
    let expected = 0;
    for await (const value of stream) {
      if (value !== expected) throw new Error(`Chunk ${expected} arrived as ${value}`);
      expected++;
    }
    assertEquals(expected, n);
    assertEquals(await stream.result, n, "the generator's return value is the result");
    assert(
      stream.bufferedHighWater <= DEFAULT_STREAM_WINDOW,
      `buffered ${stream.bufferedHighWater} > window`,
    );
  });
}

Deno.test("streams: flow control, cancellation, errors", async (t) => {
  const probe = { produced: 0, stopped: Promise.withResolvers<string>() };
  await using ts = await startServer("tcp", { methods: streamingMethods(probe) });
  await using client = await ts.connect();
  const reset = () => {
    probe.produced = 0;
    probe.stopped = Promise.withResolvers<string>();
  };

  await t.step("a slow reader keeps the producer within the window", async () => {
    reset();
    const window = 8;
    const stream = client.stream<number>("watched", [200], { window });
    let read = 0;
    let maxAhead = 0;
    for await (const _ of stream) {
      read++;
      await sleep(2);
      maxAhead = Math.max(maxAhead, probe.produced - read);
    }
    assertEquals(read, 200);
    // The generator is pulled only with credit: at most `window` chunks ahead of the reader
    // (plus the one being produced while a grant travels).
    assert(maxAhead <= window + 1, `the producer ran ${maxAhead} chunks ahead (window ${window})`);
    assert(stream.bufferedHighWater <= window);
    assertEquals(await probe.stopped.promise, "ended");
  });

  await t.step("a stream nobody reads stops at the window", async () => {
    reset();
    const stream = client.stream<number>("watched", [10_000], { window: 16 });
    await until(() => probe.produced >= 16, 5000, "the first window");
    await sleep(100);
    assert(probe.produced <= 17, `produced ${probe.produced} with nobody reading`);
    assertEquals(stream.buffered, 16);
    stream.cancel();
    assertEquals(await probe.stopped.promise, "aborted");
  });

  await t.step("break cancels the producer end to end", async () => {
    reset();
    const stream = client.stream<number>("forever");
    let seen = 0;
    for await (const _ of stream) if (++seen === 5) break;
    assertEquals(await probe.stopped.promise, "aborted", "the generator's finally ran");
    const err = await assertRejects(() => stream.result, RpcError);
    assertEquals(err.code, "CANCELLED");
    await until(() => ts.server.peers[0].openStreams === 0, 2000, "the stream to close");
  });

  await t.step("cancel() under a running loop makes it throw CANCELLED", async () => {
    reset();
    const stream = client.stream<number>("forever");
    let seen = 0;
    const err = await assertRejects(async () => {
      for await (const _ of stream) if (++seen === 3) stream.cancel();
    }, RpcError);
    assertEquals(err.code, "CANCELLED");
    assertEquals(await probe.stopped.promise, "aborted");
  });

  await t.step(
    "cancelling a stream whose return() throws leaves the connection working",
    async () => {
      const stream = client.stream<number>("awkward");
      let seen = 0;
      for await (const _ of stream) if (++seen === 3) break;
      assertEquals(await client.call("plain", [4]), 8);
    },
  );

  await t.step("an AbortSignal cancels too", async () => {
    reset();
    const controller = new AbortController();
    const stream = client.stream<number>("forever", [], { signal: controller.signal });
    const iterator = stream[Symbol.asyncIterator]();
    await iterator.next();
    controller.abort();
    const err = await assertRejects(async () => {
      while (!(await iterator.next()).done) { /* drain what was buffered */ }
    }, RpcError);
    assertEquals(err.code, "CANCELLED");
    assertEquals(await probe.stopped.promise, "aborted");
  });

  await t.step("a timeout ends the stream with TIMEOUT on both sides", async () => {
    reset();
    const stream = client.stream<number>("forever", [], { timeout: 100 });
    await assertRejects(async () => {
      for await (const _ of stream) { /* until the deadline */ }
    }, CallTimeoutError);
    assertEquals(await probe.stopped.promise, "aborted");
  });

  await t.step("an error after two chunks arrives after them, with its class", async () => {
    const stream = client.stream<number>("failing");
    const seen: number[] = [];
    const err = await assertRejects(async () => {
      for await (const v of stream) seen.push(v);
    }, RemoteError);
    assertEquals(seen, [1, 2]);
    assertEquals(err.name, "TypeError");
    assertEquals(err.message, "Broken on the third chunk");
    await assertRejects(() => stream.result, RemoteError);
  });

  await t.step("a handler may return a ReadableStream; readable works on the caller", async () => {
    const chunks: string[] = [];
    for await (const c of client.stream<string>("readable").readable) chunks.push(c);
    assertEquals(chunks, ["a", "b", "c"]);
  });

  await t.step("stream() of a plain method gives no chunks and the value", async () => {
    const stream = client.stream("plain", [21]);
    assertEquals(await Array.fromAsync(stream), []);
    assertEquals(await stream.result, 42);
    assertEquals(await stream.streaming, false);
  });

  await t.step(
    "call() of a streaming method is INVALID_PARAMS, the producer never runs",
    async () => {
      reset();
      const err = await assertRejects(() => client.call("watched", [5]), InvalidParamsError);
      assert(err.message.includes("stream()"), err.message);
      assertEquals(probe.produced, 0);
    },
  );

  await t.step(
    "two streams share the connection: a short one is not held behind a long one",
    async () => {
      const long = client.stream<number>("count", [50_000], { window: 64 });
      const short = client.stream<number>("count", [100], { window: 64 });
      let longRead = 0;
      const longDone = (async () => {
        for await (const _ of long) longRead++;
      })();
      assertEquals((await Array.fromAsync(short)).length, 100);
      assert(longRead < 50_000, "the short stream finished while the long one was running");
      await longDone;
      assertEquals(longRead, 50_000);
    },
  );
});

Deno.test("streams: a dropped connection errors every open stream", async () => {
  const probe = { produced: 0, stopped: Promise.withResolvers<string>() };
  await using ts = await startServer("tcp", { methods: streamingMethods(probe) });
  await using client = await ts.connect({ reconnect: false });
  const a = client.stream<number>("forever");
  const b = client.stream<number>("forever");
  const iterator = a[Symbol.asyncIterator]();
  await iterator.next();
  ts.server.peers[0].close();
  await assertRejects(async () => {
    while (!(await iterator.next()).done) { /* until the drop */ }
  }, ConnectionClosedError);
  await assertRejects(async () => {
    for await (const _ of b) { /* until the drop */ }
  }, ConnectionClosedError);
  await assertRejects(() => a.result, ConnectionClosedError);
});

Deno.test("channels: both directions, ordered, from either side", async (t) => {
  const probe = { produced: 0, stopped: Promise.withResolvers<string>() };
  const clientSide = {
    async *shout(this: CallContext) {
      for await (const s of this.input) yield String(s).toUpperCase();
    },
  };
  await using ts = await startServer("tcp", { methods: streamingMethods(probe) });
  await using client = await ts.connect({ methods: clientSide });

  await t.step("echo: what is sent comes back in order", async () => {
    const channel = client.open<string, string>("echo");
    const sent = Array.from({ length: 500 }, (_, i) => `m${i}`);
    const received = (async () => await Array.fromAsync(channel))();
    for (const m of sent) await channel.send(m);
    await channel.close();
    assertEquals(await received, sent.map((m) => `echo: ${m}`));
  });

  await t.step("client streaming: the handler's return value is the result", async () => {
    const channel = client.open<number, never, number>("sum", [], { window: 4 });
    for (let i = 1; i <= 1000; i++) await channel.send(i);
    await channel.close();
    assertEquals(await channel.result, 500_500);
  });

  await t.step("sends after the handler has finished reject, nothing hangs", async () => {
    const channel = client.open<number, never, number>("firstOnly");
    await channel.send(7);
    assertEquals(await channel.result, 7);
    await assertRejects(() => channel.send(8), RpcError);
  });

  await t.step("the server opens a channel to the client", async () => {
    const peer = ts.server.peers[0];
    const channel = peer.open<string, string>("shout");
    await channel.send("hello");
    await channel.send("world");
    await channel.close();
    assertEquals(await Array.fromAsync(channel), ["HELLO", "WORLD"]);
  });

  await t.step("sending to a closed half is refused", async () => {
    const channel = client.open<string, string>("echo");
    await channel.close();
    await assertRejects(() => channel.send("late"), TypeError);
    assertEquals(await Array.fromAsync(channel), []);
  });
});

Deno.test("streams: the per-connection stream cap refuses with RESOURCE_EXHAUSTED", async () => {
  const probe = { produced: 0, stopped: Promise.withResolvers<string>() };
  await using ts = await startServer("tcp", {
    methods: streamingMethods(probe),
    limits: { maxStreams: 3 },
  });
  await using client = await ts.connect();
  const open = [0, 1, 2].map(() => client.stream<number>("forever"));
  for (const s of open) await s[Symbol.asyncIterator]().next();
  const fourth = client.stream<number>("forever");
  const err = await assertRejects(() => fourth.result, RpcError);
  assertEquals(err.code, "RESOURCE_EXHAUSTED");
  assertEquals(await client.call("plain", [2]), 4, "calls still work");
  for (const s of open) s.cancel();
});
