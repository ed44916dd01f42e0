import { assert, assertEquals, assertThrows } from "@std/assert";
import { ProtocolError } from "../../protocol/errors.ts";
import { HEADER_SIZE } from "../../protocol/frame.ts";
import {
  defaultTimeoutField,
  encodeClientAuth,
  encodeServerHello,
  FLAG_DEFAULT_TIMEOUT,
  parseClientAuth,
  parseServerHello,
} from "../../protocol/handshake_messages.ts";
import type { CallContext } from "../../protocol/methods.ts";
import { startServer } from "../_helpers.ts";
import { sessionPair } from "../_session_pair.ts";

/** What a handler saw: its metadata and how long it had (ms), or null without a deadline. */
interface Seen {
  meta: Record<string, unknown>;
  left: number | null;
}

function seen(ctx: CallContext): Seen {
  return { meta: ctx.meta, left: ctx.deadline === undefined ? null : ctx.deadline - Date.now() };
}

Deno.test("default call timeouts (§5.8): announced only when offered and taken", async (t) => {
  const cases: [server: number | undefined, client: number | undefined, want: number[]][] = [
    // [client own, client peer, server own, server peer]
    [30_000, 5_000, [5_000, 30_000, 30_000, 5_000]],
    [undefined, 5_000, [0, 0, 0, 0]], // not offered: the client does not take it
    [30_000, undefined, [0, 0, 0, 0]], // offered, not taken
    [1_234, 0, [0, 0, 0, 0]], // taken, but neither default fits the field (or is none)
    [30_000, 1_234, [0, 30_000, 30_000, 0]], // the client's does not fit: its calls send theirs
  ];
  for (const [server, client, want] of cases) {
    await t.step(`server ${server}, client ${client}`, async () => {
      await using pair = await sessionPair({
        serverDefaultTimeout: server,
        clientDefaultTimeout: client,
      });
      const { client: c, server: s } = pair.handshakes;
      assertEquals(
        [c.ownDefaultTimeout, c.peerDefaultTimeout, s.ownDefaultTimeout, s.peerDefaultTimeout],
        want,
      );
    });
  }
  await t.step("what the 16-bit field can carry: tenths of a second up to 6,553.5 s", () => {
    assertEquals(
      [100, 30_000, 6_553_500, 6_553_600, 150, 0, -100, NaN, undefined].map(defaultTimeoutField),
      [1, 300, 65_535, 0, 0, 0, 0, 0, 0],
    );
  });
});

Deno.test("default call timeouts: M1 and M2 parse strictly", () => {
  const hello = {
    serverRandom: new Uint8Array(32),
    serverShare: new Uint8Array(32).fill(9),
    sessionId: new Uint8Array(16),
    serverInstance: new Uint8Array(16),
    transport: 1,
    maxFrame: 1_048_576,
  };
  const m1 = encodeServerHello({ ...hello, flags: FLAG_DEFAULT_TIMEOUT, defaultTimeout: 30_000 });
  assertEquals(parseServerHello(m1.subarray(HEADER_SIZE)).defaultTimeout, 30_000);
  // Without the flag the field is not written, and a peer that writes it anyway is refused.
  const plain = encodeServerHello({ ...hello, flags: 0, defaultTimeout: 30_000 });
  assertEquals(parseServerHello(plain.subarray(HEADER_SIZE)).defaultTimeout, 0);
  plain[HEADER_SIZE + 99] = 1;
  assertThrows(() => parseServerHello(plain.subarray(HEADER_SIZE)), ProtocolError, "reserved");

  const auth = {
    clientRandom: new Uint8Array(32),
    clientShare: new Uint8Array(32).fill(7),
    clientInstance: new Uint8Array(16),
    transport: 1,
    maxFrame: 1_048_576,
  };
  const m2 = encodeClientAuth({ ...auth, flags: FLAG_DEFAULT_TIMEOUT, defaultTimeout: 2_500 });
  assertEquals(parseClientAuth(m2.subarray(HEADER_SIZE)).defaultTimeout, 2_500);
  m2[HEADER_SIZE + 81] = 0; // the field without its flag
  assertThrows(() => parseClientAuth(m2.subarray(HEADER_SIZE)), ProtocolError, "reserved");
});

Deno.test("default call timeouts: a call with the default sends none, the handler sees it", async (t) => {
  const notified: Seen[] = [];
  await using pair = await sessionPair({
    serverDefaultTimeout: 30_000,
    clientDefaultTimeout: 5_000,
    callTimeout: 5_000,
    serverMethods: {
      info(this: CallContext): Seen {
        return seen(this);
      },
      note(this: CallContext) {
        notified.push(seen(this));
      },
      async *ticks(this: CallContext) {
        yield seen(this);
      },
    },
    clientMethods: {
      info(this: CallContext): Seen {
        return seen(this);
      },
    },
  });
  const { client, server } = pair;
  const info = (options?: { timeout?: number; meta?: Record<string, unknown> }) =>
    client.call<Seen>("info", [], options);
  /** Bytes the client sent for one call (its record: header, messages, tag). */
  const sentFor = async (options?: { timeout?: number }) => {
    const before = client.bytesOut;
    await info(options);
    return client.bytesOut - before;
  };

  await t.step(
    "the default leaves `meta` off the wire; the handler reads it as before",
    async () => {
      const { meta, left } = await info();
      assertEquals(meta, { timeout: 5_000 });
      assert(left !== null && left > 4_000 && left <= 5_000, `left ${left}`);
      assertEquals(
        await sentFor({ timeout: 4_000 }) - await sentFor(),
        ',"meta":{"timeout":4000}'.length,
      );
      assertEquals((await info({ meta: { tenant: "a" } })).meta, { tenant: "a", timeout: 5_000 });
    },
  );
  await t.step("another timeout is sent, as is none at all (timeout: 0)", async () => {
    const other = await info({ timeout: 2_000 });
    assertEquals(other.meta, { timeout: 2_000 });
    assert(other.left !== null && other.left <= 2_000 && other.left > 1_000, `${other.left}`);
    const none = await info({ timeout: 0 });
    assertEquals([none.meta, none.left], [{ timeout: 0 }, null]);
  });
  await t.step(
    "a `timeout` set by hand in the headers still rules a call without one",
    async () => {
      const byHand = await info({ timeout: 0, meta: { timeout: 700 } });
      assertEquals(byHand.meta, { timeout: 700 });
      assert(byHand.left !== null && byHand.left <= 700, `${byHand.left}`);
      // The call's own timeout overrides the header, even when it is the default.
      const overridden = await info({ timeout: 5_000, meta: { timeout: 700 } });
      assertEquals(overridden.meta, { timeout: 5_000 });
    },
  );
  await t.step("notifications and streams take no default", async () => {
    client.notify("note");
    await info();
    assertEquals(notified, [{ meta: {}, left: null }]);
    const [first] = await Array.fromAsync(client.stream<Seen>("ticks"));
    assertEquals(first, { meta: {}, left: null });
  });
  await t.step("the server's calls take the server's default the same way", async () => {
    const { meta, left } = await server.call("info") as Seen;
    assertEquals(meta, { timeout: 30_000 });
    assert(left !== null && left > 29_000 && left <= 30_000, `left ${left}`);
  });
});

Deno.test("default call timeouts: without the extension every timeout travels", async () => {
  await using pair = await sessionPair({
    clientDefaultTimeout: 5_000, // the server does not offer it
    callTimeout: 5_000,
    serverMethods: {
      info(this: CallContext): Seen {
        return seen(this);
      },
    },
  });
  const { meta, left } = await pair.client.call<Seen>("info");
  assertEquals(meta, { timeout: 5_000 });
  assert(left !== null && left > 4_000, `left ${left}`);
  assertEquals((await pair.client.call<Seen>("info", [], { timeout: 0 })).meta, {});
});

Deno.test("default call timeouts: connect({ timeout }) is announced over a real socket", async () => {
  await using ts = await startServer("tcp", {
    methods: {
      info(this: CallContext): Seen {
        return seen(this);
      },
    },
  });
  await using client = await ts.connect({ timeout: 2_500 });
  const { meta, left } = await client.call<Seen>("info");
  assertEquals(meta, { timeout: 2_500 });
  assert(left !== null && left > 1_500 && left <= 2_500, `left ${left}`);
  assertEquals((await client.call<Seen>("info", [], { timeout: 900 })).meta, { timeout: 900 });
});
