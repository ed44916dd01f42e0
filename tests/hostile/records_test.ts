/**
 * Hostile tests, part C (framing and record layer): cases 21, 22, 23, 25, 26, 27, 30, 31, plus
 * absurd sequence numbers, a trickled record body (35) and a PING flood (40). The attacker
 * either holds the psk (an authenticated raw peer that seals what it likes) or sits in the
 * middle (the MITM proxy in front of a real client and server).
 */
import { assert, assertEquals } from "@std/assert";
import { AlertCode, decodeAlertBody } from "../../protocol/alerts.ts";
import { concatBytes } from "../../protocol/bytes.ts";
import { encodeValue } from "../../protocol/codec.ts";
import { RpcError } from "../../protocol/errors.ts";
import { encodeAlertFrame } from "../../protocol/handshake.ts";
import { encodeMessages, type Message } from "../../protocol/messages.ts";
import {
  assertNoLeaks,
  AuthedPeer,
  buildM2,
  decodeCleartextAlert,
  evidence,
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
  RAW_CONTROL,
  RawConn,
  rawHeader,
  recordError,
  sleep,
  splitFrames,
  within,
} from "./_harness.ts";

const MiB = 1 << 20;

/** A REQUEST message for `method` with id `id`. */
function requestMessage(id: number, method: string, params: unknown[] = []): Message {
  return { kind: Kind.REQUEST, flags: 0, id, payload: encodeValue({ method, params }).bytes };
}

/** The code of the reason a client or session closed with (`undefined`: a normal close). */
async function closeCode(closed: Promise<Error | undefined>): Promise<string | undefined> {
  const reason = await within(5000, closed, "close");
  if (reason === undefined) return undefined;
  recordError(reason);
  return reason instanceof RpcError ? reason.code : reason.name;
}

Deno.test("case 21: oversized length prefixes are FRAME_TOO_LARGE from the header alone", async (t) => {
  // The body deadline stays long (30 s): a server that waited for a body would time out here.
  await using env = await hostileServer({
    limits: { maxFrame: 64 * 1024, frameBodyTimeout: 30_000 },
  });
  await env.sanity();
  for (
    const [name, length] of [["0xFFFFFFFF", 0xFFFF_FFFF], ["2^31", 2 ** 31], [
      "max_frame + 17",
      64 * 1024 + 17,
    ]] as const
  ) {
    await t.step(`${name}: header only → sealed ALERT FRAME_TOO_LARGE and close`, async () => {
      const peer = await AuthedPeer.connect(env.port);
      const before = Deno.memoryUsage().rss;
      await peer.sendRaw(rawHeader(FrameType.MESSAGES, length, peer.sealer.seq));
      const end = await peer.readUntilClose(5000);
      const grown = Deno.memoryUsage().rss - before;
      assertEquals(end.alert?.code, AlertCode.FRAME_TOO_LARGE, JSON.stringify(end));
      assertEquals(end.types, [FrameType.ALERT], "nothing but the alert");
      // A buffer for the announced length would be GiBs; the first connection alone moves RSS
      // by 0.3–1.1 MiB here (code compiled, the heap grown), so 1 MiB was a flaky bound.
      assert(grown < 8 * MiB, `RSS grew by ${(grown / MiB).toFixed(2)} MiB`);
      peer.close();
    });
  }

  await t.step("exactly max_frame bytes of plaintext is accepted (boundary)", async () => {
    const peer = await AuthedPeer.connect(env.port);
    const id = peer.nextId();
    const fill = "x".repeat(64 * 1024 - 10 - '{"method":"echo","params":[""]}'.length);
    const payload = new TextEncoder().encode(JSON.stringify({ method: "echo", params: [fill] }));
    const frame = await peer.sendMessages([{ kind: Kind.REQUEST, flags: 0, id, payload }]);
    assertEquals(frame.length, 20 + 64 * 1024 + 16);
    assertEquals((await peer.response(id)).value, fill);
    peer.close();
  });

  await t.step("before authentication: an M2 header announcing 0xFFFFFFFF bytes", async () => {
    const raw = await RawConn.dial(env.port);
    await raw.readFrame();
    await raw.write(rawHeader(FrameType.CLIENT_AUTH, 0xFFFF_FFFF, 1));
    const alert = decodeCleartextAlert(await raw.readFrame(5000));
    assert(
      [AlertCode.PROTOCOL_ERROR, AlertCode.FRAME_TOO_LARGE].includes(alert.code as 1 | 6),
      alert.name,
    );
    assertEquals(await raw.readToEnd(5000), new Uint8Array(0));
    raw.close();
  });

  await t.step("client side: a MITM forges a 0xFFFFFFFF server record header", async () => {
    await using proxy = new MitmProxy(
      env.port,
      (f) =>
        f.dir === "s2c" && f.index === 2
          ? { replace: rawHeader(FrameType.MESSAGES, 0xFFFF_FFFF, f.seq) }
          : "pass",
    );
    const client = await legitConnect(proxy.address);
    await expectRpcError(client.call("echo", ["x"]), "CONNECTION_CLOSED");
    assertEquals(await closeCode(client.closed), "FRAME_TOO_LARGE");
    await client.close();
  });
  await env.sanity();
});

Deno.test("case 22: zero-length and too-short record bodies", async (t) => {
  await using env = await hostileServer();
  await env.sanity();

  await t.step("L = 0 … 15: PROTOCOL_ERROR and close, nothing runs", async () => {
    for (let length = 0; length < 16; length++) {
      const peer = await AuthedPeer.connect(env.port);
      const body = encodeMessages([requestMessage(1, "count")]).subarray(0, length);
      await peer.sendRaw(concatBytes(rawHeader(FrameType.MESSAGES, length, 0), body));
      const end = await peer.readUntilClose();
      assertEquals(
        end.alert?.code,
        AlertCode.PROTOCOL_ERROR,
        `L = ${length}: ${JSON.stringify(end)}`,
      );
      peer.close();
    }
    assertEquals(env.calls.count, 0);
  });

  await t.step("L = 16 (empty plaintext): MESSAGES is PROTOCOL_ERROR", async () => {
    const peer = await AuthedPeer.connect(env.port);
    await peer.send(FrameType.MESSAGES, new Uint8Array(0));
    assertEquals((await peer.readUntilClose()).alert?.code, AlertCode.PROTOCOL_ERROR);
    peer.close();
  });

  await t.step("L = 16: KEY_UPDATE is accepted and both sides switch keys", async () => {
    const peer = await AuthedPeer.connect(env.port);
    const frame = await peer.sealer.sealKeyUpdate();
    assertEquals(frame.length, 20 + 16);
    await peer.sendRaw(frame);
    const id = await peer.request("echo", ["after key update"]);
    assertEquals((await peer.response(id)).value, "after key update");
    peer.close();
  });

  await t.step("L = 17: KEY_UPDATE carrying data is PROTOCOL_ERROR", async () => {
    const peer = await AuthedPeer.connect(env.port);
    await peer.send(FrameType.KEY_UPDATE, new Uint8Array(1));
    assertEquals((await peer.readUntilClose()).alert?.code, AlertCode.PROTOCOL_ERROR);
    peer.close();
  });

  await t.step("L = 16: an empty sealed ALERT closes the connection (no crash)", async () => {
    const peer = await AuthedPeer.connect(env.port);
    await peer.send(FrameType.ALERT, new Uint8Array(0));
    const end = await peer.readUntilClose();
    assertEquals(end.openError, undefined);
    peer.close();
  });
  await env.sanity();
});

const GARBAGE: Record<string, Uint8Array> = {
  "an HTTP request": new TextEncoder().encode(
    "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: curl/8.5.0\r\n\r\n",
  ),
  "a TLS ClientHello": concatBytes(
    new Uint8Array([0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03]),
    randomBytes(32),
    new Uint8Array([0x00, 0x00, 0x02, 0x13, 0x01, 0x01, 0x00]),
    new Uint8Array(100),
  ),
  "an SSH banner": new TextEncoder().encode("SSH-2.0-OpenSSH_9.6p1 Ubuntu-3ubuntu13.5\r\n"),
  "1 KB of random bytes": (() => {
    const b = randomBytes(1024);
    b[0] = 0x00; // never "TR" by chance
    return b;
  })(),
  "terminal escapes and a fake log line": new TextEncoder().encode(
    "\x1b[2J\x1b[31mPWNED\x1b[0m\n2026-01-01T00:00:00Z WARN fake_line peer=evil\r\n\u2028",
  ),
};

Deno.test("case 23: garbage before the magic: immediate close, no resync, sanitized log", async (t) => {
  await using env = await hostileServer({ authFailureDelayMs: 10 });
  await env.sanity();
  const logStart = env.logs.length;
  for (const [name, garbage] of Object.entries(GARBAGE)) {
    await t.step(`${name}, followed by a valid M2`, async () => {
      const raw = await RawConn.dial(env.port);
      const f1 = await raw.readFrame();
      const { m2 } = await buildM2(f1!.bytes);
      await raw.write(concatBytes(garbage, m2));
      // The server reads one header, sees no magic and closes; it never resyncs onto the M2.
      const rest = await raw.readToEnd(5000);
      const frames = splitFrames(rest);
      assert(
        !frames.some((f) => f.type === FrameType.SERVER_AUTH),
        "the server resynced and sent M3",
      );
      assertEquals(frames.length, 1, "exactly one frame: the alert");
      assertEquals(frames[0].type, FrameType.ALERT);
      const alert = decodeAlertBody(frames[0].bytes.subarray(20));
      evidence.alerts.push(alert.message);
      assertEquals(alert.code, AlertCode.PROTOCOL_ERROR);
      assertEquals(frames[0].seq, 2);
      raw.close();
    });
  }
  await t.step("the log: few lines, none with raw control characters or attacker text", () => {
    const lines = env.logs.slice(logStart);
    const failures = lines.filter((l) => /handshake_failed/.test(l));
    assert(
      failures.length >= 1 && failures.length <= Object.keys(GARBAGE).length,
      lines.join("\n"),
    );
    for (const line of lines) {
      assert(!RAW_CONTROL.test(line), `raw control character in ${JSON.stringify(line)}`);
      assert(!/PWNED|SSH-2\.0|GET \/|fake_line/.test(line), `attacker text logged: ${line}`);
    }
  });
  await t.step("client side: a server that answers with text gets a sanitized error", async () => {
    for (
      const text of [
        "HTTP/1.1 400 Bad Request\r\n\r\n",
        "\x1b[31mEVIL\x1b[0m\n\u2028 owned, really owned",
      ]
    ) {
      await using fake = new FakeServer(async (c) => {
        await c.write(new TextEncoder().encode(text));
        c.close();
      });
      const err = await expectRpcError(legitConnect(fake.address, { handshakeTimeout: 2000 }), [
        "PROTOCOL_ERROR",
        "CONNECTION_CLOSED",
      ]);
      assert(
        !RAW_CONTROL.test(err.message),
        `raw control character in ${JSON.stringify(err.message)}`,
      );
      assert(!err.message.includes("\u2028"));
      assert(err.message.length < 300);
    }
  });
  await env.sanity();
});

/** The tamper cases of case 25, applied to the first record a direction carries. */
const TAMPER: [
  string,
  (f: ProxyFrame) => ProxyFrame | { flip: number } | { replace: Uint8Array },
  string[],
][] = [
  ["ciphertext, first bit", () => ({ flip: 20 * 8 }), ["BAD_RECORD"]],
  ["ciphertext, middle", (f) => ({ flip: (20 + ((f.length - 16) >> 1)) * 8 + 5 }), ["BAD_RECORD"]],
  ["ciphertext, last byte", (f) => ({ flip: (f.bytes.length - 17) * 8 + 7 }), ["BAD_RECORD"]],
  ["tag, first bit", (f) => ({ flip: (f.bytes.length - 16) * 8 }), ["BAD_RECORD"]],
  ["tag, last bit", (f) => ({ flip: f.bytes.length * 8 - 1 }), ["BAD_RECORD"]],
  ["header type (AAD), CRC fixed", (f) => {
    const b = f.bytes.slice();
    b[3] = FrameType.KEY_UPDATE;
    return { replace: fixCrc(b) };
  }, ["BAD_RECORD"]],
  ["header seq, CRC fixed", (f) => {
    const b = f.bytes.slice();
    b[8] ^= 0x01;
    return { replace: fixCrc(b) };
  }, ["BAD_RECORD", "SEQUENCE"]],
  ["header bit, CRC not fixed", () => ({ flip: 3 * 8 + 1 }), ["PROTOCOL_ERROR", "BAD_RECORD"]],
];

Deno.test("case 25: tampered ciphertext, tag or header: BAD_RECORD, close, no handler", async (t) => {
  await using env = await hostileServer();
  await env.sanity();
  const bystander = await legitConnect(env.address);

  for (const [name, tamper, codes] of TAMPER) {
    await t.step(`client → server: ${name}`, async () => {
      await using proxy = new MitmProxy(
        env.port,
        (f) => f.dir === "c2s" && f.index === 1 ? tamper(f) as { flip: number } : "pass",
      );
      const client = await legitConnect(proxy.address);
      const before = env.calls.count;
      await expectRpcError(client.call("count"), "CONNECTION_CLOSED");
      const code = await closeCode(client.closed);
      assert(code !== undefined && codes.includes(code), `closed with ${code}`);
      assertEquals(env.calls.count, before, "no handler ran");
      await client.close();
    });
  }

  for (const [name, tamper, codes] of TAMPER.slice(0, 5)) {
    await t.step(`server → client: ${name}`, async () => {
      await using proxy = new MitmProxy(
        env.port,
        (f) => f.dir === "s2c" && f.index === 2 ? tamper(f) as { flip: number } : "pass",
      );
      const client = await legitConnect(proxy.address);
      await expectRpcError(client.call("echo", ["tampered answer"]), "CONNECTION_CLOSED");
      const code = await closeCode(client.closed);
      assert(code !== undefined && codes.includes(code), `closed with ${code}`);
      await client.close();
    });
  }

  await t.step(
    "an authenticated peer's own tampered record: one generic sealed ALERT",
    async () => {
      for (const where of ["ciphertext", "tag"]) {
        const peer = await AuthedPeer.connect(env.port);
        const frame = await peer.sealRecord(
          FrameType.MESSAGES,
          encodeMessages([requestMessage(1, "count")]),
        );
        const at = where === "tag" ? frame.length - 1 : 25;
        frame[at] ^= 0x40;
        const before = env.calls.count;
        await peer.sendRaw(frame);
        const end = await peer.readUntilClose();
        assertEquals(end.alert, {
          code: AlertCode.BAD_RECORD,
          name: "BAD_RECORD",
          message: "bad record",
        });
        assertEquals(env.calls.count, before);
        peer.close();
      }
    },
  );

  await t.step("other connections are unaffected", async () => {
    assertEquals(await bystander.call("echo", ["still here"]), "still here");
  });
  await bystander.close();
  await env.sanity();
});

Deno.test("case 26: a replayed record is refused and the handler runs exactly once", async (t) => {
  await using env = await hostileServer();
  await env.sanity();

  await t.step("an authenticated peer sends the same sealed record twice", async () => {
    const peer = await AuthedPeer.connect(env.port);
    const before = env.calls.count;
    const frame = await peer.sealRecord(
      FrameType.MESSAGES,
      encodeMessages([requestMessage(1, "count")]),
    );
    await peer.sendRaw(frame);
    await peer.sendRaw(frame);
    assertEquals((await peer.response(1)).value, before + 1);
    const end = await peer.readUntilClose();
    assertEquals(end.alert?.code, AlertCode.BAD_RECORD);
    assertEquals(end.alert?.message, "bad record");
    assertEquals(env.calls.count, before + 1, "the handler ran exactly once");
    peer.close();
  });

  await t.step("a MITM duplicates the client's request record", async () => {
    await using proxy = new MitmProxy(
      env.port,
      (f) => f.dir === "c2s" && f.index === 1 ? "duplicate" : "pass",
    );
    const client = await legitConnect(proxy.address);
    const before = env.calls.count;
    // The answer to the first copy may or may not beat the close.
    await client.call("count").catch((err) => recordError(err));
    assertEquals(await closeCode(client.closed), "BAD_RECORD");
    assertEquals(env.calls.count, before + 1, "the handler ran exactly once");
    await client.close();
  });

  await t.step("the server's own record reflected back to it", async () => {
    const peer = await AuthedPeer.connect(env.port);
    const id = await peer.request("echo", ["reflect me"]);
    await peer.response(id);
    const before = env.calls.invoked.length;
    // The server's sealed answer (s2c seq 0), sent back with the c2s seq the server expects.
    const answer = peer.raw.received.length > 0
      ? splitFrames(concatBytes(...peer.raw.received)).find((f) => f.type === FrameType.MESSAGES)
      : undefined;
    if (answer === undefined) throw new Error("no sealed answer captured");
    const reflected = answer.bytes.slice();
    new DataView(reflected.buffer).setUint32(12, peer.sealer.seq);
    await peer.sendRaw(fixCrc(reflected));
    assertEquals((await peer.readUntilClose()).alert?.code, AlertCode.BAD_RECORD);
    assertEquals(env.calls.invoked.length, before, "nothing ran");
    peer.close();
  });

  await t.step("a record from another session, at the expected seq", async () => {
    const a = await AuthedPeer.connect(env.port);
    const b = await AuthedPeer.connect(env.port);
    const before = env.calls.count;
    const fromA = await a.sealRecord(
      FrameType.MESSAGES,
      encodeMessages([requestMessage(1, "count")]),
    );
    await b.sendRaw(fromA);
    assertEquals((await b.readUntilClose()).alert?.code, AlertCode.BAD_RECORD);
    assertEquals(env.calls.count, before);
    a.close();
    b.close();
  });
  await env.sanity();
});

Deno.test("case 27: reordered or dropped records: close, the later frame is not executed", async (t) => {
  await using env = await hostileServer();
  await env.sanity();

  await t.step("raw: seq 1 before seq 0 (swap)", async () => {
    const peer = await AuthedPeer.connect(env.port);
    const before = env.calls.count;
    const r0 = await peer.sealRecord(
      FrameType.MESSAGES,
      encodeMessages([requestMessage(1, "count")]),
    );
    const r1 = await peer.sealRecord(
      FrameType.MESSAGES,
      encodeMessages([requestMessage(3, "count")]),
    );
    await peer.sendRaw(concatBytes(r1, r0));
    const end = await peer.readUntilClose();
    assertEquals(end.alert?.code, AlertCode.BAD_RECORD);
    assertEquals(end.types, [FrameType.ALERT], "no answer to either request");
    assertEquals(env.calls.count, before);
    peer.close();
  });

  await t.step("raw: seq 0 skipped (drop)", async () => {
    const peer = await AuthedPeer.connect(env.port);
    const before = env.calls.count;
    await peer.sealRecord(FrameType.MESSAGES, encodeMessages([requestMessage(1, "count")]));
    const r1 = await peer.sealRecord(
      FrameType.MESSAGES,
      encodeMessages([requestMessage(3, "count")]),
    );
    await peer.sendRaw(r1);
    assertEquals((await peer.readUntilClose()).alert?.code, AlertCode.BAD_RECORD);
    assertEquals(env.calls.count, before);
    peer.close();
  });

  for (const action of ["hold", "drop"] as const) {
    await t.step(
      `MITM: the client's first record ${
        action === "hold" ? "swapped with the second" : "dropped"
      }`,
      async () => {
        await using proxy = new MitmProxy(
          env.port,
          (f) => f.dir === "c2s" && f.index === 1 ? action : "pass",
        );
        const client = await legitConnect(proxy.address);
        const before = env.calls.count;
        const first = client.call("count");
        first.catch(() => {});
        await sleep(30); // the second call leaves in a record of its own
        const second = client.call("count");
        await expectRpcError(second, "CONNECTION_CLOSED");
        await expectRpcError(first, "CONNECTION_CLOSED");
        assertEquals(await closeCode(client.closed), "BAD_RECORD");
        assertEquals(env.calls.count, before, "neither call was executed");
        await client.close();
      },
    );
  }
  await env.sanity();
});

Deno.test("case 30: unknown record types and message kinds are PROTOCOL_ERROR", async (t) => {
  await using env = await hostileServer();
  await env.sanity();
  const payload = encodeMessages([requestMessage(1, "count")]);

  await t.step("authenticated records of unknown types", async () => {
    for (const type of [0x55, 0x11, 0x2f, 0x31, 0x7e, 0x80, 0xff]) {
      const peer = await AuthedPeer.connect(env.port);
      await peer.send(type, payload);
      const end = await peer.readUntilClose();
      assertEquals(end.alert?.code, AlertCode.PROTOCOL_ERROR, `type 0x${type.toString(16)}`);
      peer.close();
    }
  });

  await t.step("authenticated records with handshake-range types", async () => {
    for (const type of [0x00, 0x01, 0x02, 0x03, 0x0f]) {
      const peer = await AuthedPeer.connect(env.port);
      await peer.send(type, payload);
      const end = await peer.readUntilClose();
      assert(
        [AlertCode.BAD_RECORD, AlertCode.PROTOCOL_ERROR].includes(end.alert?.code as 1 | 9),
        `type 0x${type.toString(16)}: ${JSON.stringify(end)}`,
      );
      peer.close();
    }
  });

  await t.step("unknown message kinds, unknown flags, bad request ids", async () => {
    const bad: Message[] = [
      { kind: 0, flags: 0, id: 1, payload: new Uint8Array(0) },
      { kind: 13, flags: 0, id: 1, payload: new Uint8Array(0) },
      { kind: 255, flags: 0, id: 1, payload: new Uint8Array(0) },
      { ...requestMessage(1, "count"), flags: 0x08 },
      { ...requestMessage(1, "count"), flags: 0x80 },
      requestMessage(0, "count"),
      requestMessage(2, "count"),
    ];
    for (const m of bad) {
      const peer = await AuthedPeer.connect(env.port);
      await peer.sendMessages([m]);
      const end = await peer.readUntilClose();
      assertEquals(
        end.alert?.code,
        AlertCode.PROTOCOL_ERROR,
        JSON.stringify({ kind: m.kind, flags: m.flags, id: m.id }),
      );
      peer.close();
    }
  });

  await t.step("a request id reused while in flight is PROTOCOL_ERROR", async () => {
    await using slow = await hostileServer({
      methods: { wait: () => new Promise((resolve) => setTimeout(() => resolve("late"), 200)) },
    });
    const peer = await AuthedPeer.connect(slow.port);
    await peer.sendMessages([requestMessage(1, "wait")]);
    await peer.sendMessages([requestMessage(1, "count")]);
    assertEquals((await peer.readUntilClose()).alert?.code, AlertCode.PROTOCOL_ERROR);
    assertEquals(slow.calls.count, 0);
    peer.close();
  });

  assertEquals(env.calls.count, 0, "no handler ran");
  await env.sanity();
});

Deno.test("case 31: a cleartext frame after the handshake is BAD_RECORD, never an alert", async (t) => {
  const reasons: (Error | undefined)[] = [];
  await using env = await hostileServer({ onDisconnect: (_, reason) => reasons.push(reason) });
  await env.sanity();

  const injections: [string, (p: AuthedPeer) => Uint8Array, number[]][] = [
    [
      "a cleartext ALERT CLOSE (short body)",
      (p) => encodeAlertFrame(AlertCode.CLOSE, "closed", p.sealer.seq),
      [AlertCode.BAD_RECORD, AlertCode.PROTOCOL_ERROR],
    ],
    [
      "a cleartext ALERT SHUTDOWN (≥ 16-byte body)",
      (p) => encodeAlertFrame(AlertCode.SHUTDOWN, "server is shutting down now", p.sealer.seq),
      [AlertCode.BAD_RECORD],
    ],
    ["a replayed M2", (p) => p.m2, [AlertCode.BAD_RECORD]],
    ["an M1-type frame", (p) => p.m1, [AlertCode.BAD_RECORD]],
    ["an M3-type frame", (p) => p.m3, [AlertCode.BAD_RECORD]],
  ];
  for (const [name, make, codes] of injections) {
    await t.step(`client → server: ${name}`, async () => {
      const peer = await AuthedPeer.connect(env.port);
      reasons.length = 0;
      await peer.sendRaw(make(peer));
      const end = await peer.readUntilClose();
      assert(
        end.alert !== undefined && codes.includes(end.alert.code),
        `${name}: ${JSON.stringify(end)}`,
      );
      peer.close();
      for (let i = 0; i < 50 && reasons.length === 0; i++) await sleep(10);
      assertEquals(reasons.length, 1);
      assert(reasons[0] instanceof Error, "the server did not treat it as a normal close");
    });
  }

  await t.step("server → client: a MITM injects a cleartext ALERT SHUTDOWN", async () => {
    for (const message of ["bye", "the server is shutting down"]) {
      await using proxy = new MitmProxy(
        env.port,
        (f) =>
          f.dir === "s2c" && f.index === 2
            ? {
              replace: concatBytes(encodeAlertFrame(AlertCode.SHUTDOWN, message, f.seq), f.bytes),
            }
            : "pass",
      );
      const client = await legitConnect(proxy.address);
      const call = client.call("echo", ["x"]);
      await expectRpcError(call, "CONNECTION_CLOSED");
      const code = await closeCode(client.closed);
      assert(
        code === "BAD_RECORD" || (message.length < 14 && code === "PROTOCOL_ERROR"),
        `closed with ${code}`,
      );
      await client.close();
    }
  });
  await env.sanity();
});

Deno.test("gap (§8 seq): absurd sequence numbers on a well-sealed first record", async () => {
  await using env = await hostileServer();
  await env.sanity();
  for (const seq of [1, 2 ** 32, 2 ** 53 - 1, 2 ** 53, 2 ** 64 - 1]) {
    const peer = await AuthedPeer.connect(env.port);
    const frame = await peer.sealRecord(
      FrameType.MESSAGES,
      encodeMessages([requestMessage(1, "count")]),
    );
    const view = new DataView(frame.buffer);
    view.setUint32(8, Math.floor(seq / 2 ** 32) >>> 0);
    view.setUint32(12, seq >>> 0);
    if (seq === 2 ** 64 - 1) view.setUint32(12, 0xFFFF_FFFF);
    await peer.sendRaw(fixCrc(frame));
    assertEquals((await peer.readUntilClose()).alert?.code, AlertCode.BAD_RECORD, `seq ${seq}`);
    peer.close();
  }
  assertEquals(env.calls.count, 0);
  await env.sanity();
});

Deno.test("case 35 (extra): a record body trickled after its header is cut at the frame deadline", async (t) => {
  await using env = await hostileServer({ limits: { frameBodyTimeout: 300 } });
  await env.sanity();
  const frame = (peer: AuthedPeer) =>
    peer.sealRecord(
      FrameType.MESSAGES,
      encodeMessages([requestMessage(1, "count", ["x".repeat(200)])]),
    );

  await t.step("the header, then nothing", async () => {
    const peer = await AuthedPeer.connect(env.port);
    const f = await frame(peer);
    const started = performance.now();
    await peer.sendRaw(f.subarray(0, 20));
    await peer.readUntilClose(5000);
    assert(peer.raw.ended, "the server closed the connection");
    assert(performance.now() - started >= 290, "not before the deadline");
    peer.close();
  });

  await t.step("the header, then one byte every 50 ms", async () => {
    const peer = await AuthedPeer.connect(env.port);
    const f = await frame(peer);
    await peer.sendRaw(f.subarray(0, 20));
    let sent = 20;
    const reading = peer.readUntilClose(5000);
    while (sent < f.length && !peer.raw.ended) {
      await sleep(50);
      if (!await peer.raw.tryWrite(f.subarray(sent, sent + 1))) break;
      sent++;
    }
    await reading;
    assert(sent < f.length, "the server waited for the whole trickled body");
    peer.close();
  });
  assertEquals(env.calls.count, 0);
  await env.sanity();
});

Deno.test("case 40 (extra): a PING flood is RATE_LIMITED and closed, the log stays quiet", async () => {
  await using env = await hostileServer();
  await env.sanity();
  const logStart = env.logs.length;
  const peer = await AuthedPeer.connect(env.port);
  const pings: Message[] = Array.from({ length: 50 }, (_, i) => ({
    kind: Kind.PING,
    flags: 0,
    id: 0,
    payload: new Uint8Array(8).fill(i),
  }));
  await peer.sendMessages(pings);
  const end = await peer.readUntilClose();
  assertEquals(end.alert?.code, AlertCode.RATE_LIMITED);
  peer.close();
  assert(env.logs.length - logStart <= 5, env.logs.slice(logStart).join("\n"));
  await env.sanity();
});

Deno.test("case 8 (records file): nothing collected here holds the canary, psk or keys", async () => {
  assert(evidence.wire.length > 0);
  await assertNoLeaks();
});
