/**
 * Hostile tests, part B (handshake): cases 4, 9, 10, 11, 14, 15, 16, 18, 19, 20 (plus a
 * parallel-burst variant of 20 and the strict-parsing cases between the numbered ones). Every
 * test against a real server is bracketed by legitimate round trips ("serves others") and the
 * file ends with the canary scan (case 8).
 */
import { assert, assertEquals, assertMatch } from "@std/assert";
import { connect } from "../../client.ts";
import { AlertCode, decodeAlertBody } from "../../protocol/alerts.ts";
import { fromHex, toHex } from "../../protocol/bytes.ts";
import { encodeValue } from "../../protocol/codec.ts";
import { AuthenticationError, ProtocolError } from "../../protocol/errors.ts";
import { FrameReader } from "../../protocol/frame_reader.ts";
import { clientHandshake } from "../../protocol/handshake.ts";
import { parseServerHello } from "../../protocol/handshake_messages.ts";
import { encodeMessages } from "../../protocol/messages.ts";
import { RecordSealer } from "../../protocol/record.ts";
import { HAS_IPV6, TLS } from "../_helpers.ts";
import { memoryPair } from "../_memory_pair.ts";
import {
  assertNoLeaks,
  AuthedPeer,
  buildM1,
  buildM2,
  CANARY_SECRET,
  canaryPsk,
  decodeCleartextAlert,
  evidenceLogger,
  expectRpcError,
  FakeServer,
  fixCrc,
  FrameType,
  hostileServer,
  Kind,
  legitConnect,
  MitmProxy,
  type ProxyFrame,
  randomBytes,
  RawConn,
  recordError,
  sanity,
  splitFrames,
  tapDialer,
  tapWritten,
  within,
} from "./_harness.ts";

const WRONG_SECRET = "a-completely-different-secret-0123456789-xyz";

/** What the server answers on `raw`: the next frame, then everything up to its close. */
async function answerTo(raw: RawConn) {
  const frame = await raw.readFrame(5000);
  const rest = await raw.readToEnd(5000);
  return { frame, rest };
}

/** A fresh raw connection with its M1 read. */
async function dialForM1(port: number) {
  const raw = await RawConn.dial(port);
  const f1 = await raw.readFrame(5000);
  if (f1 === null || f1.type !== FrameType.SERVER_HELLO) throw new Error("expected M1");
  return { raw, m1: f1.bytes, hello: parseServerHello(f1.body) };
}

Deno.test("case 4: a wrong secret gets AUTH_FAILED after the fixed delay; one WARN line", async (t) => {
  // authFailureDelayMs undefined: the real 500 ms default.
  await using env = await hostileServer({ authFailureDelayMs: undefined });
  await env.sanity();
  const dialer = tapDialer(env.port);
  const err = await expectRpcError(
    connect(dialer, { secret: WRONG_SECRET, logger: evidenceLogger() }),
    "AUTH_FAILED",
  );
  const failedAt = performance.now();
  const tap = dialer.taps[0];

  await t.step("typed error, no earlier than 500 ms after M2 left", () => {
    assert(err instanceof AuthenticationError);
    const m2 = tap.writes.find((w) => w.bytes[3] === FrameType.CLIENT_AUTH);
    if (m2 === undefined) throw new Error("the client sent no M2");
    const waited = failedAt - m2.at;
    assert(waited >= 495, `AUTH_FAILED arrived ${waited.toFixed(1)} ms after M2 (must be ≥ 500)`);
  });

  await t.step("the message says the secrets differ", () => {
    assertMatch(err.message, /different secrets/);
    assertMatch(err.message, /TRUST_ID/);
  });

  await t.step("the client sent nothing after M2", () => {
    assertEquals(splitFrames(tapWritten(tap)).map((f) => f.type), [FrameType.CLIENT_AUTH]);
  });

  const warns = env.logs.filter((l) => / WARN auth_failed\b/.test(l));
  await t.step("the server logs exactly one auth_failed WARN line naming the peer", () => {
    assertEquals(warns.length, 1, env.logs.join("\n"));
    assert(warns[0].includes(`peer=127.0.0.1:${tap.localPort}`), warns[0]);
    assertMatch(warns[0], /reason=bad_proof/);
  });

  await t.step("the WARN line carries the session id for correlation (PROTOCOL §10)", () => {
    const m1 = tap.reads.map((r) => r.bytes).reduce((a, b) => new Uint8Array([...a, ...b]));
    const sessionId = toHex(m1.subarray(20 + 64, 20 + 80));
    // "session=<hex16>": the whole id, or at least its first 16 hex digits.
    const logged = /\bsession=([0-9a-f]{16,32})\b/.exec(warns[0] ?? "")?.[1];
    assert(
      logged !== undefined && sessionId.startsWith(logged),
      `no session=${sessionId} in ${warns[0]}`,
    );
  });

  await env.sanity();
});

Deno.test("case 9: a replayed CLIENT_AUTH is AUTH_FAILED and runs no handler", async (t) => {
  await using env = await hostileServer({ authFailureDelayMs: 10 });
  await env.sanity();
  const peer = await AuthedPeer.connect(env.port);
  const id = await peer.request("count");
  assertEquals((await peer.response(id)).value, 1);
  peer.close();
  const before = env.calls.count;

  await t.step("the recorded M2 on three new connections", async () => {
    for (let i = 0; i < 3; i++) {
      const { raw } = await dialForM1(env.port);
      await raw.write(peer.m2);
      const { frame, rest } = await answerTo(raw);
      const alert = decodeCleartextAlert(frame);
      assertEquals(alert.code, AlertCode.AUTH_FAILED);
      assertEquals(alert.seq, 2);
      assertEquals(rest.length, 0, "nothing follows the alert");
      // What the original client would send next, sealed under the old keys: nobody reads it.
      const old = new RecordSealer(peer.keys.c2sKey, peer.keys.c2sIv);
      const payload = encodeValue({ method: "count", params: [] }).bytes;
      await raw.tryWrite(
        await old.seal(
          FrameType.MESSAGES,
          encodeMessages([{ kind: Kind.REQUEST, flags: 0, id: 1, payload }]),
        ),
      );
      raw.close();
    }
  });

  await t.step("M2 and the old session's first record in one write", async () => {
    const { raw } = await dialForM1(env.port);
    const old = new RecordSealer(peer.keys.c2sKey, peer.keys.c2sIv);
    const payload = encodeValue({ method: "count", params: [] }).bytes;
    const record = await old.seal(
      FrameType.MESSAGES,
      encodeMessages([{ kind: Kind.REQUEST, flags: 0, id: 1, payload }]),
    );
    await raw.write(new Uint8Array([...peer.m2, ...record]));
    const bytes = await raw.readToEnd(5000);
    const frames = splitFrames(bytes);
    assert(
      frames.every((f) => f.type === FrameType.ALERT),
      "only an alert (or nothing) comes back",
    );
    raw.close();
  });

  await t.step("no handler ran", () => {
    assertEquals(env.calls.count, before);
  });
  await env.sanity();
});

Deno.test("case 10: a fake server replaying SERVER_HELLO and SERVER_AUTH fails SERVER_AUTH_FAILED", async (t) => {
  await using env = await hostileServer();
  await env.sanity();
  const recorded = await AuthedPeer.connect(env.port);
  recorded.close();

  await t.step("replayed M1 and M3 from a fake server", async () => {
    await using fake = new FakeServer(async (c) => {
      await c.write(recorded.m1);
      const m2 = await c.readFrame(3000);
      if (m2?.type === FrameType.CLIENT_AUTH) await c.write(recorded.m3);
      await c.readToEnd(3000);
    });
    const err = await expectRpcError(
      legitConnect(fake.address, { handshakeTimeout: 2000 }),
      "SERVER_AUTH_FAILED",
    );
    assert(err instanceof AuthenticationError);
    assertMatch(err.message, /impostor|man in the middle/);
    await fake.settled();
    const sent = fake.receivedFrom(0);
    assertEquals(
      splitFrames(sent).map((f) => f.type),
      [FrameType.CLIENT_AUTH],
      "M2 and nothing else",
    );
    assertEquals(sent.length, 140, "no request frames were sent");
    assertEquals(fake.errors, []);
  });

  await t.step("a MITM swaps the real M3 for an old one", async () => {
    await using proxy = new MitmProxy(
      env.port,
      (f) =>
        f.dir === "s2c" && f.type === FrameType.SERVER_AUTH ? { replace: recorded.m3 } : "pass",
    );
    await expectRpcError(legitConnect(proxy.address), "SERVER_AUTH_FAILED");
    await proxy.close();
    assertEquals(proxy.framesOf(0, "c2s").map((f) => f.type), [FrameType.CLIENT_AUTH]);
  });
  await env.sanity();
});

Deno.test("case 11: reflected challenges never make the server prove anything", async (t) => {
  await using env = await hostileServer({ authFailureDelayMs: 0 });
  await env.sanity();
  const noM3 = (bytes: Uint8Array) =>
    assert(!splitFrames(bytes).some((f) => f.type === FrameType.SERVER_AUTH), "the server sent M3");

  await t.step(
    "M2 made of the server's own random, share and instance → SELF_CONNECTION",
    async () => {
      const { raw, m1, hello } = await dialForM1(env.port);
      const { m2 } = await buildM2(m1, {
        clientRandom: hello.serverRandom,
        share: hello.serverShare,
        instance: hello.serverInstance,
      });
      await raw.write(m2);
      const { frame, rest } = await answerTo(raw);
      assertEquals(decodeCleartextAlert(frame).code, AlertCode.SELF_CONNECTION);
      noM3(rest);
      raw.close();
    },
  );

  await t.step("the server's share reflected with a fresh instance → PROTOCOL_ERROR", async () => {
    const { raw, m1, hello } = await dialForM1(env.port);
    const { m2 } = await buildM2(m1, {
      share: hello.serverShare,
      clientRandom: hello.serverRandom,
    });
    await raw.write(m2);
    const { frame, rest } = await answerTo(raw);
    assertEquals(decodeCleartextAlert(frame).code, AlertCode.PROTOCOL_ERROR);
    noM3(rest);
    raw.close();
  });

  await t.step("two connections: B's M2 built from A's M1 values", async () => {
    const a = await dialForM1(env.port);
    const b = await dialForM1(env.port);
    // A's instance is the server's instance: SELF_CONNECTION on B.
    const built1 = await buildM2(b.m1, {
      clientRandom: a.hello.serverRandom,
      share: a.hello.serverShare,
      instance: a.hello.serverInstance,
    });
    await b.raw.write(built1.m2);
    const r1 = await answerTo(b.raw);
    assertEquals(decodeCleartextAlert(r1.frame).code, AlertCode.SELF_CONNECTION);
    noM3(r1.rest);
    // A's random and share with a fresh instance on a third connection: no psk, no proof.
    const c = await dialForM1(env.port);
    const built2 = await buildM2(c.m1, {
      clientRandom: a.hello.serverRandom,
      share: a.hello.serverShare,
      proof: randomBytes(32),
    });
    await c.raw.write(built2.m2);
    const r2 = await answerTo(c.raw);
    assertEquals(decodeCleartextAlert(r2.frame).code, AlertCode.AUTH_FAILED);
    noM3(r2.rest);
    for (const x of [a, b, c]) x.raw.close();
  });

  await t.step(
    "client side: an M1 carrying the client's own instance → SELF_CONNECTION",
    async () => {
      const [c, s] = memoryPair();
      const instance = randomBytes(16);
      const { m1 } = await buildM1({ instance });
      await s.write(m1);
      const err = await expectRpcError(
        clientHandshake(c, new FrameReader(c), {
          psk: await canaryPsk(),
          transport: "tcp",
          maxFrame: 1 << 20,
          instance,
          timeoutMs: 2000,
        }),
        "SELF_CONNECTION",
      );
      assert(err instanceof ProtocolError);
      assert(!c.written.some((w) => w[3] === FrameType.CLIENT_AUTH), "no M2 (no proof) was sent");
      c.close();
    },
  );
  await env.sanity();
});

Deno.test("case 14: a wrong version in M1 or M2 is UNSUPPORTED_VERSION, no proof computed", async (t) => {
  await using env = await hostileServer({ authFailureDelayMs: 10 });
  await env.sanity();

  await t.step("M2 with version 2 (and 0, 255): ALERT UNSUPPORTED_VERSION listing v1", async () => {
    // 12 attempts: more than the failure budget (10), so if a proof had been checked and
    // counted, 127.0.0.1 would now be locked out.
    for (const version of [2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 0, 255]) {
      const { raw, m1 } = await dialForM1(env.port);
      const { m2 } = await buildM2(m1);
      m2[2] = version;
      fixCrc(m2);
      await raw.write(m2);
      const { frame, rest } = await answerTo(raw);
      const alert = decodeCleartextAlert(frame);
      assertEquals(alert.code, AlertCode.UNSUPPORTED_VERSION);
      assertMatch(alert.message, /\b1\b/, "the alert lists the supported version");
      assertEquals(frame!.version, 1, "the alert itself is a v1 frame");
      assertEquals(alert.seq, 2);
      assertEquals(rest.length, 0);
      raw.close();
    }
    assertEquals(env.logs.filter((l) => /auth_failed/.test(l)), [], "no proof was checked");
  });

  await t.step(
    "M1 with version 2 (two lengths): the client names both versions, sends no M2",
    async () => {
      for (const length of [104, 200]) {
        await using fake = new FakeServer(async (c) => {
          const { m1 } = await buildM1({ version: 2 });
          const frame = length === 104 ? m1 : new Uint8Array([...m1, ...new Uint8Array(96)]);
          new DataView(frame.buffer).setUint32(4, length);
          await c.write(fixCrc(frame));
          await c.readToEnd(3000);
        });
        const err = await expectRpcError(
          legitConnect(fake.address, { handshakeTimeout: 2000 }),
          "UNSUPPORTED_VERSION",
        );
        assertMatch(err.message, /v?2\b/);
        assertMatch(err.message, /v?1\b/);
        await fake.settled();
        const frames = splitFrames(fake.receivedFrom(0));
        assert(
          !frames.some((f) => f.type === FrameType.CLIENT_AUTH),
          "no M2, so no proof left the client",
        );
        for (const f of frames) {
          assertEquals(f.type, FrameType.ALERT);
          assertEquals(decodeAlertBody(f.bytes.subarray(20)).code, AlertCode.UNSUPPORTED_VERSION);
        }
      }
    },
  );
  await env.sanity();
});

Deno.test("case 15: transport mismatch is refused before any proof leaves the client", async (t) => {
  await using env = await hostileServer({ authFailureDelayMs: 10 });
  await env.sanity();

  await t.step("the client believes tls, the server tcp (TLS-terminating proxy)", async () => {
    const dialer = tapDialer(env.port, "tls");
    const err = await expectRpcError(legitConnect(dialer), "TRANSPORT_MISMATCH");
    assertMatch(err.message, /TLS-terminating proxy/);
    const frames = splitFrames(tapWritten(dialer.taps[0]));
    assert(!frames.some((f) => f.type === FrameType.CLIENT_AUTH), "no M2 (no proof) was sent");
  });

  await t.step("a fake server announcing unix, or an unknown transport byte", async () => {
    for (
      const [transport, code] of [[3, "TRANSPORT_MISMATCH"], [2, "TRANSPORT_MISMATCH"], [
        9,
        "PROTOCOL_ERROR",
      ], [0, "PROTOCOL_ERROR"]] as const
    ) {
      await using fake = new FakeServer(async (c) => {
        await c.write((await buildM1({ transport })).m1);
        await c.readToEnd(3000);
      });
      await expectRpcError(legitConnect(fake.address, { handshakeTimeout: 2000 }), code);
      await fake.settled();
      assert(!splitFrames(fake.receivedFrom(0)).some((f) => f.type === FrameType.CLIENT_AUTH));
    }
  });

  await t.step("server side: an M2 announcing tls or unix to a tcp server", async () => {
    for (
      const [transport, code] of [[2, AlertCode.TRANSPORT_MISMATCH], [
        3,
        AlertCode.TRANSPORT_MISMATCH,
      ], [9, AlertCode.PROTOCOL_ERROR]]
    ) {
      const { raw, m1 } = await dialForM1(env.port);
      const { m2 } = await buildM2(m1, { transport });
      await raw.write(m2);
      const { frame } = await answerTo(raw);
      assertEquals(decodeCleartextAlert(frame).code, code);
      raw.close();
    }
    assertEquals(env.logs.filter((l) => /auth_failed/.test(l)), [], "no proof was checked");
  });

  await t.step(
    "the explicit override (allowTransportMismatch) connects through such a proxy",
    async () => {
      const dialer = tapDialer(env.port, "tls");
      const client = await legitConnect(dialer, { allowTransportMismatch: true });
      try {
        assertEquals(
          await client.call("echo", ["through a terminating proxy"]),
          "through a terminating proxy",
        );
      } finally {
        await client.close();
      }
    },
  );
  await env.sanity();
});

/** Runs `fn` over `items` with at most `n` at once. */
async function pool<T>(items: T[], n: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: n }, async () => {
    while (next < items.length) await fn(items[next++]);
  }));
}

Deno.test("case 16: bit-flip sweep of every bit of M1 and M2", async (t) => {
  await using env = await hostileServer({
    authFailureDelayMs: 0,
    handshakeTimeout: 3000,
    admission: { authFailureBudget: 1_000_000, maxPreauthPerPeer: 64 },
  });
  await env.sanity();
  // Bits to flip, by the client's source port (the proxy sees it; the dialer registers it).
  const bitByPort = new Map<number, PromiseWithResolvers<number>>();
  const slot = (port: number) => {
    let s = bitByPort.get(port);
    if (s === undefined) bitByPort.set(port, s = Promise.withResolvers<number>());
    return s;
  };
  let target: "s2c" | "c2s" = "c2s";
  await using proxy = new MitmProxy(env.port, async (f: ProxyFrame) => {
    if (f.index !== 0 || f.dir !== target) return "pass";
    return { flip: await within(5000, slot(f.clientPort).promise, "bit registration") };
  });

  async function sweep(bits: number, allowed: string[]) {
    const codes = new Map<string, number>();
    const cases = Array.from({ length: bits }, (_, i) => i);
    let done = 0;
    await pool(cases, 8, async (bit) => {
      const dialer = tapDialer(proxy.port, "tcp", (tap) => slot(tap.localPort).resolve(bit));
      const p = connect(dialer, {
        secret: CANARY_SECRET,
        logger: "silent",
        handshakeTimeout: 3000,
      });
      const err = await expectRpcError(p, allowed, `bit ${bit}: `);
      codes.set(err.code, (codes.get(err.code) ?? 0) + 1);
      if (++done % 100 === 0) await sanity(env.address);
    });
    return Object.fromEntries(codes);
  }

  await t.step("every bit of M2 (140 × 8), through the proxy against the real server", async () => {
    target = "c2s";
    const codes = await sweep(140 * 8, [
      "AUTH_FAILED",
      "PROTOCOL_ERROR",
      "UNSUPPORTED_VERSION",
      "TRANSPORT_MISMATCH",
    ]);
    assert((codes.AUTH_FAILED ?? 0) > 0 && (codes.PROTOCOL_ERROR ?? 0) > 0, JSON.stringify(codes));
  });

  await t.step("every bit of M1 (124 × 8), through the proxy against the real client", async () => {
    target = "s2c";
    bitByPort.clear();
    const codes = await sweep(124 * 8, [
      "AUTH_FAILED",
      "PROTOCOL_ERROR",
      "UNSUPPORTED_VERSION",
      "TRANSPORT_MISMATCH",
      "BAD_SHARE",
    ]);
    assert((codes.AUTH_FAILED ?? 0) > 0 && (codes.PROTOCOL_ERROR ?? 0) > 0, JSON.stringify(codes));
  });

  await t.step("the server never sent M3 and every refused M2 got an ALERT", async () => {
    await proxy.close();
    assert(
      !proxy.frames.some((f) => f.dir === "s2c" && f.type === FrameType.SERVER_AUTH),
      "M3 was sent",
    );
    // M2 sweep connections: each one answered by exactly one ALERT after M1.
    const m2Conns = new Set(
      proxy.frames.filter((f) =>
        f.dir === "c2s" && f.index === 0 && f.type === FrameType.CLIENT_AUTH
      ).map((f) => f.conn),
    );
    let alerts = 0;
    for (const conn of m2Conns) {
      const s2c = proxy.framesOf(conn, "s2c");
      if (s2c.length === 2 && s2c[1].type === FrameType.ALERT) alerts++;
    }
    assert(alerts >= 140 * 8, `only ${alerts} of the M2 cases were answered by an ALERT`);
  });
  await env.sanity();
});

const LOW_ORDER: Record<string, string> = {
  "zero": "00".repeat(32),
  "one": "01" + "00".repeat(31),
  "order 8 (a)": "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
  "order 8 (b)": "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
  "p - 1": "ec" + "ff".repeat(30) + "7f",
  "p": "ed" + "ff".repeat(30) + "7f",
  "p + 1": "ee" + "ff".repeat(30) + "7f",
  "zero, high bit set": "00".repeat(31) + "80",
  "one, high bit set": "01" + "00".repeat(30) + "80",
  "order 8 (a), high bit": "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b880",
  "order 8 (b), high bit": "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f11d7",
  "p - 1, high bit": "ec" + "ff".repeat(31),
  "p, high bit": "ed" + "ff".repeat(31),
  "p + 1, high bit": "ee" + "ff".repeat(31),
};

Deno.test("case 18: low-order and non-canonical X25519 shares", async (t) => {
  await using env = await hostileServer({
    authFailureDelayMs: 0,
    admission: { authFailureBudget: 1000 },
  });
  await env.sanity();

  await t.step(
    "server side: M2 with the share, proof computed as if dh were all zero",
    async () => {
      for (const [name, hex] of Object.entries(LOW_ORDER)) {
        const { raw, m1 } = await dialForM1(env.port);
        const { m2 } = await buildM2(m1, { share: fromHex(hex), dh: new Uint8Array(32) });
        await raw.write(m2);
        const { frame, rest } = await answerTo(raw);
        const alert = decodeCleartextAlert(frame);
        assert(
          [AlertCode.AUTH_FAILED, AlertCode.PROTOCOL_ERROR].includes(alert.code as 1 | 3),
          `${name}: ${alert.name}`,
        );
        assert(!splitFrames(rest).some((f) => f.type === FrameType.SERVER_AUTH), `${name}: M3`);
        raw.close();
      }
    },
  );

  await t.step("client side: a fake server's M1 with the share → BAD_SHARE, no M2", async () => {
    for (const [name, hex] of Object.entries(LOW_ORDER)) {
      await using fake = new FakeServer(async (c) => {
        await c.write((await buildM1({ share: fromHex(hex) })).m1);
        await c.readToEnd(3000);
      });
      const err = await expectRpcError(
        legitConnect(fake.address, { handshakeTimeout: 2000 }),
        ["BAD_SHARE", "AUTH_FAILED"],
        `${name}: `,
      );
      assert(
        err instanceof ProtocolError || err instanceof AuthenticationError,
        "typed, not a DOMException",
      );
      await fake.settled();
      assert(
        !splitFrames(fake.receivedFrom(0)).some((f) => f.type === FrameType.CLIENT_AUTH),
        `${name}: M2 sent`,
      );
    }
  });
  await env.sanity();
});

Deno.test("case 19: client-side timeouts end with a hint; nothing waits forever", async (t) => {
  await t.step("the server accepts and never sends M1", async () => {
    await using fake = new FakeServer(async (c) => {
      await c.readToEnd(5000);
    });
    const started = performance.now();
    const err = await within(
      10_000,
      expectRpcError(legitConnect(fake.address, { handshakeTimeout: 300 }), "HANDSHAKE_TIMEOUT"),
      "connect",
    );
    assert(performance.now() - started >= 295);
    assertMatch(err.message, /wrong port|TLS\/plain mismatch/);
  });

  await t.step("the server sends M1 and never M3", async () => {
    await using fake = new FakeServer(async (c) => {
      await c.write((await buildM1()).m1);
      await c.readFrame(3000);
      await c.readToEnd(5000);
    });
    const err = await within(
      10_000,
      expectRpcError(legitConnect(fake.address, { handshakeTimeout: 300 }), "HANDSHAKE_TIMEOUT"),
      "connect",
    );
    assertMatch(err.message, /did not finish the handshake/);
  });

  await t.step("a plain client aimed at a TLS port shows the TLS hint", async () => {
    await using env = await hostileServer({
      listen: "tls://127.0.0.1:0",
      tls: { cert: TLS.cert, key: TLS.key },
      handshakeTimeout: 2000,
    });
    await env.sanity();
    const port = Number(/:(\d+)$/.exec(env.address)![1]);
    const err = await within(
      10_000,
      expectRpcError(
        legitConnect(`tcp://127.0.0.1:${port}`, { handshakeTimeout: 400 }),
        "HANDSHAKE_TIMEOUT",
      ),
      "connect",
    );
    assertMatch(err.message, /TLS/);
    await env.sanity();
  });

  await t.step("a peer that answers with TLS records is recognised as TLS", async () => {
    // A TLS handshake record (≥ 20 bytes), then a bare 7-byte TLS alert followed by a close.
    const replies = [
      new Uint8Array([0x16, 0x03, 0x03, 0x00, 0x31, 0x02, ...new Uint8Array(48)]),
      new Uint8Array([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x50]),
    ];
    for (const reply of replies) {
      await using fake = new FakeServer(async (c) => {
        await c.write(reply);
        c.close();
      });
      const err = await within(
        10_000,
        expectRpcError(legitConnect(fake.address, { handshakeTimeout: 2000 }), [
          "PROTOCOL_ERROR",
          "CONNECTION_CLOSED",
          "HANDSHAKE_TIMEOUT",
        ]),
        "connect",
      );
      assertMatch(err.message, /TLS/, `${reply.length}-byte TLS reply: ${err.message}`);
    }
  });

  await t.step("the server's own deadline: ALERT HANDSHAKE_TIMEOUT, then close", async () => {
    await using env = await hostileServer({ handshakeTimeout: 300 });
    await env.sanity();
    for (const partial of [0, 70]) {
      const { raw, m1 } = await dialForM1(env.port);
      if (partial > 0) await raw.write((await buildM2(m1)).m2.subarray(0, partial));
      const { frame, rest } = await answerTo(raw);
      const alert = decodeCleartextAlert(frame);
      assertEquals(alert.code, AlertCode.HANDSHAKE_TIMEOUT);
      assertEquals(rest.length, 0);
      raw.close();
    }
    await env.sanity();
  });
});

Deno.test("case 20: online guessing: lockout after 10 failures, bounded log, others unaffected", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "hostile-guess-" });
  const listen = ["tcp://127.0.0.1:0", `unix://${dir}/s.sock`];
  if (HAS_IPV6) listen.push("tcp://[::1]:0");
  await using env = await hostileServer({
    listen,
    authFailureDelayMs: 5,
    admission: { authFailureBudget: 10, authFailureWindow: 60_000 },
  });
  const [v4, unix, v6] = env.server.addresses;
  await env.sanity(v4);
  const codes: string[] = [];

  await t.step("100 wrong-secret attempts from 127.0.0.1", async () => {
    for (let i = 0; i < 100; i++) {
      const err = await expectRpcError(
        connect(v4, { secret: WRONG_SECRET, logger: "silent", handshakeTimeout: 2000 }),
        ["AUTH_FAILED", "RATE_LIMITED"],
      );
      codes.push(err.code);
    }
    assertEquals(codes.slice(0, 10), Array(10).fill("AUTH_FAILED"));
    assertEquals(codes.slice(10), Array(90).fill("RATE_LIMITED"));
  });

  await t.step("RATE_LIMITED replaces M1: no share, so no X25519 work for that peer", async () => {
    const raw = await RawConn.dial(v4);
    const frame = await raw.readFrame(3000);
    const alert = decodeCleartextAlert(frame);
    assertEquals(alert.code, AlertCode.RATE_LIMITED);
    assertEquals(alert.seq, 0, "the alert stands in place of M1");
    assertEquals(await raw.readToEnd(3000), new Uint8Array(0));
    raw.close();
    // Even the right secret is refused from the locked-out address.
    await expectRpcError(legitConnect(v4), "RATE_LIMITED");
  });

  await t.step("the log stays bounded", () => {
    const warns = env.logs.filter((l) => / WARN /.test(l));
    assert(warns.length <= 12, `${warns.length} WARN lines for 100 attempts:\n${warns.join("\n")}`);
    assert(warns.some((l) => /auth_failed/.test(l)) && warns.some((l) => /rate_limited/.test(l)));
  });

  await t.step("a legitimate peer identity over a Unix socket is unaffected", async () => {
    await sanity(unix);
  });

  await t.step({
    name: "a legitimate peer identity over ::1 is unaffected",
    ignore: !HAS_IPV6,
    fn: async () => {
      await sanity(v6);
    },
  });
  await env.close();
  await Deno.remove(dir, { recursive: true }).catch(() => {});
});

Deno.test("case 20 (burst): parallel guesses from one peer get no more proof checks than the budget", async () => {
  // 40 wrong proofs at once from 127.0.0.1, budget 10: every attempt beyond the budget must be
  // refused (RATE_LIMITED, or BUSY at the pre-auth cap) instead of costing X25519 work and a guess.
  await using env = await hostileServer({
    authFailureDelayMs: 50,
    admission: { authFailureBudget: 10, authFailureWindow: 60_000 },
  });
  await env.sanity();
  const results = await Promise.allSettled(
    Array.from(
      { length: 40 },
      () =>
        connect(env.address, { secret: WRONG_SECRET, logger: "silent", handshakeTimeout: 5000 }),
    ),
  );
  const codes: Record<string, number> = {};
  for (const r of results) {
    if (r.status === "fulfilled") {
      await r.value.close();
      throw new Error("a wrong secret connected");
    }
    const code = (recordError(r.reason) as { code?: string }).code ?? "untyped";
    codes[code] = (codes[code] ?? 0) + 1;
  }
  assert(
    Object.keys(codes).every((c) => ["AUTH_FAILED", "RATE_LIMITED", "BUSY"].includes(c)),
    JSON.stringify(codes),
  );
  assert(
    (codes.AUTH_FAILED ?? 0) <= 10,
    `${codes.AUTH_FAILED} proofs were checked for a budget of 10: ${JSON.stringify(codes)}`,
  );
});

Deno.test("gaps in the numbering (§5 strict parsing): reserved bits, bounds, sizes, CRC, half-close", async (t) => {
  // A long deadline: a server that waited for it instead of answering at once would fail here.
  await using env = await hostileServer({ authFailureDelayMs: 0, handshakeTimeout: 10_000 });
  await env.sanity();
  const refused = async (m2: Uint8Array, codes: number[] = [AlertCode.PROTOCOL_ERROR]) => {
    const { raw } = await dialForM1(env.port);
    await raw.write(m2);
    const { frame, rest } = await answerTo(raw);
    const alert = decodeCleartextAlert(frame);
    assert(codes.includes(alert.code), `got ${alert.name}`);
    assert(!splitFrames(rest).some((f) => f.type === FrameType.SERVER_AUTH));
    raw.close();
  };

  await t.step("M2 with unknown flags or non-zero reserved bytes", async () => {
    for (const offset of [81, 82, 83]) {
      const c = await dialForM1(env.port);
      const { m2 } = await buildM2(c.m1);
      // Bits 0 and 1 of the flags are FLAG_CHACHA and FLAG_DEFAULT_TIMEOUT (known); bit 2 is
      // not. The reserved field may be non-zero only with FLAG_DEFAULT_TIMEOUT.
      m2[20 + offset] = offset === 81 ? 0x04 : 0x01;
      await c.raw.write(m2);
      const { frame } = await answerTo(c.raw);
      assertEquals(decodeCleartextAlert(frame).code, AlertCode.PROTOCOL_ERROR, `offset ${offset}`);
      c.raw.close();
    }
  });

  await t.step("M2 max_frame out of bounds (proof consistent), and the 1024 boundary", async () => {
    for (const maxFrame of [0, 1023, 16 * 1024 * 1024 + 1, 0xFFFF_FFFF]) {
      const c = await dialForM1(env.port);
      const { m2 } = await buildM2(c.m1, { maxFrame });
      await c.raw.write(m2);
      const { frame } = await answerTo(c.raw);
      assertEquals(
        decodeCleartextAlert(frame).code,
        AlertCode.PROTOCOL_ERROR,
        `max_frame ${maxFrame}`,
      );
      c.raw.close();
    }
    const peer = await AuthedPeer.connect(env.port, { maxFrame: 1024 });
    const id = await peer.request("echo", ["small frames"]);
    assertEquals((await peer.response(id)).value, "small frames");
    peer.close();
  });

  await t.step("M2 of the wrong length, seq or CRC: answered from the header", async () => {
    const c = await dialForM1(env.port);
    const { m2 } = await buildM2(c.m1);
    c.raw.close();
    for (const length of [0, 119, 121, 1000]) {
      const frame = new Uint8Array(20 + length);
      frame.set(m2.subarray(0, Math.min(frame.length, m2.length)));
      new DataView(frame.buffer).setUint32(4, length);
      fixCrc(frame);
      await refused(frame);
    }
    for (const seq of [0, 2, 0xFFFF_FFFF]) {
      const bad = m2.slice();
      new DataView(bad.buffer).setUint32(12, seq);
      await refused(fixCrc(bad));
    }
    const badCrc = m2.slice();
    badCrc[19] ^= 0x01;
    await refused(badCrc);
  });

  await t.step(
    "M1 with unknown flags, or max_frame below 1024: client PROTOCOL_ERROR",
    async () => {
      for (const patch of [{ flags: 4 }, { flags: 0x80 }, { maxFrame: 1023 }, { maxFrame: 0 }]) {
        await using fake = new FakeServer(async (c) => {
          await c.write((await buildM1(patch)).m1);
          await c.readToEnd(3000);
        });
        await expectRpcError(
          legitConnect(fake.address, { handshakeTimeout: 2000 }),
          "PROTOCOL_ERROR",
          `${JSON.stringify(patch)}: `,
        );
        await fake.settled();
        assert(!splitFrames(fake.receivedFrom(0)).some((f) => f.type === FrameType.CLIENT_AUTH));
      }
    },
  );

  await t.step(
    "a half-close or a truncated M2 before authentication closes the connection",
    async () => {
      for (const send of [0, 70]) {
        const c = await dialForM1(env.port);
        if (send > 0) await c.raw.write((await buildM2(c.m1)).m2.subarray(0, send));
        await c.raw.conn.closeWrite();
        // Well before the 10 s handshake deadline.
        const rest = await c.raw.readToEnd(3000);
        assert(!splitFrames(rest).some((f) => f.type === FrameType.SERVER_AUTH));
        c.raw.close();
      }
    },
  );
  await env.sanity();
});

Deno.test("case 8 (handshake file): nothing collected here holds the canary, psk or keys", async () => {
  await assertNoLeaks();
});
