/**
 * The WebSocket client framed by us (Deno side): RFC 6455 frames and upgrade checks on bytes,
 * then the client against a scripted server on a real socket (fragments, pings, close, what a
 * broken server gets) and against our own `listenWebSocket` over ws:// and wss://.
 */
import { assert, assertEquals, assertNotEquals, assertRejects, assertThrows } from "@std/assert";
import { TransportError } from "../../protocol/errors.ts";
import type { Conn } from "../../transports/types.ts";
import { listenWebSocket } from "../../transports/websocket.ts";
import { dial } from "../../transports/mod.ts";
import { WebSocketClientConn } from "../../transports/websocket_client_conn.ts";
import { webSocketDialer } from "../../transports/websocket_dialer.ts";
import {
  clientFrame,
  clientFrameIn,
  OPCODE,
  readServerFrameHeader,
} from "../../transports/websocket_frames.ts";
import {
  checkUpgradeResponse,
  expectedAccept,
  responseHeadLength,
} from "../../transports/websocket_upgrade.ts";
import { readExactly } from "./_io.ts";

const FIXTURES = new URL("../fixtures/", import.meta.url);
const TLS = {
  cert: await Deno.readTextFile(new URL("server.pem", FIXTURES)),
  key: await Deno.readTextFile(new URL("server.key.pem", FIXTURES)),
  ca: await Deno.readTextFile(new URL("ca.pem", FIXTURES)),
};

/** A client frame decoded independently of the code under test. */
interface DecodedFrame {
  fin: boolean;
  opcode: number;
  payload: Uint8Array;
  size: number;
}

function decodeClientFrame(bytes: Uint8Array): DecodedFrame {
  assert(bytes[1] & 0x80, "client frames are masked");
  let length = bytes[1] & 0x7f;
  let at = 2;
  if (length === 126) {
    length = bytes[2] * 256 + bytes[3];
    at = 4;
  } else if (length === 127) {
    length = Number(new DataView(bytes.buffer, bytes.byteOffset + 2, 8).getBigUint64(0));
    at = 10;
  }
  const mask = bytes.subarray(at, at + 4);
  const payload = bytes.slice(at + 4, at + 4 + length);
  for (let i = 0; i < payload.length; i++) payload[i] ^= mask[i % 4];
  return { fin: (bytes[0] & 0x80) !== 0, opcode: bytes[0] & 0x0f, payload, size: at + 4 + length };
}

/** A server frame: unmasked unless asked (a zero mask, to test the refusal), FIN unless told. */
function serverFrame(
  opcode: number,
  payload: Uint8Array,
  { fin = true, masked = false, rsv = 0 } = {},
): Uint8Array {
  const n = payload.length;
  const lengthBytes = n < 126 ? 0 : n < 65536 ? 2 : 8;
  const out = new Uint8Array(2 + lengthBytes + (masked ? 4 : 0) + n);
  out[0] = (fin ? 0x80 : 0) | rsv | opcode;
  out[1] = (masked ? 0x80 : 0) | (lengthBytes === 0 ? n : lengthBytes === 2 ? 126 : 127);
  const view = new DataView(out.buffer);
  if (lengthBytes === 2) view.setUint16(2, n);
  if (lengthBytes === 8) view.setBigUint64(2, BigInt(n));
  out.set(payload, out.length - n);
  return out;
}

function bytes(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 31 + seed) & 255;
  return out;
}

Deno.test("WebSocket client frames (RFC 6455 §5)", async (t) => {
  await t.step("masked, with the three length forms; parts are joined", () => {
    for (const n of [0, 1, 125, 126, 255, 256, 257, 65535, 65536, 70001]) {
      const head = bytes(Math.min(n, 7), 3);
      const body = bytes(n - head.length, 5);
      const frame = clientFrame(OPCODE.binary, head, body);
      const decoded = decodeClientFrame(frame);
      assertEquals(decoded.size, frame.length, `one frame, nothing more (${n})`);
      assertEquals(decoded.fin, true);
      assertEquals(decoded.opcode, OPCODE.binary);
      const joined = new Uint8Array(n);
      joined.set(head);
      joined.set(body, head.length);
      assertEquals(decoded.payload, joined, `payload of ${n} bytes`);
    }
  });
  await t.step("input at any alignment is masked right and left untouched", () => {
    const source = bytes(301, 9);
    const copy = source.slice();
    for (let offset = 0; offset < 4; offset++) {
      const part = source.subarray(offset, offset + 290);
      assertEquals(decodeClientFrame(clientFrame(OPCODE.binary, part)).payload, part);
    }
    assertEquals(source, copy);
  });
  await t.step("built in a given buffer at any offset: the same frame, or none", () => {
    const big = new Uint8Array(2100);
    for (const n of [0, 1, 125, 126, 255, 256, 300, 2000]) {
      for (let offset = 0; offset < 4; offset++) {
        const scratch = big.subarray(offset, offset + 2090);
        const head = bytes(Math.min(n, 7), 3);
        const body = bytes(n - head.length, 5);
        const frame = clientFrameIn(scratch, OPCODE.binary, head, body)!;
        assertEquals(frame.buffer, big.buffer, "a view into the buffer given");
        const decoded = decodeClientFrame(frame);
        assertEquals(decoded.size, frame.length);
        assertEquals(decoded.payload.subarray(0, head.length), head);
        assertEquals(decoded.payload.subarray(head.length), body, `${n} bytes at ${offset}`);
      }
    }
    assertEquals(clientFrameIn(new Uint8Array(100), OPCODE.binary, bytes(95)), undefined);
  });
  await t.step("every frame has a fresh mask", () => {
    const masks = new Set<string>();
    for (let i = 0; i < 2000; i++) {
      masks.add(clientFrame(OPCODE.binary, new Uint8Array(1)).subarray(2, 6).join());
    }
    assert(masks.size > 1900, `${masks.size} distinct masks in 2000 frames`);
  });
  await t.step("server headers: the three length forms, and incomplete ones", () => {
    for (const n of [0, 125, 126, 65535, 65536, 100000]) {
      const frame = serverFrame(OPCODE.binary, bytes(n), { fin: false });
      const header = readServerFrameHeader(frame, 0, frame.length);
      assertEquals(header?.length, n);
      assertEquals(header?.fin, false);
      assertEquals(header?.headerLength, frame.length - n);
      for (let cut = 0; cut < header!.headerLength; cut++) {
        assertEquals(readServerFrameHeader(frame, 0, cut), undefined, `cut at ${cut}`);
      }
    }
  });
  await t.step("server headers RFC 6455 forbids are refused", () => {
    const bad: [Uint8Array, string][] = [
      [serverFrame(OPCODE.binary, bytes(3), { masked: true }), "must not be masked"],
      [serverFrame(OPCODE.binary, bytes(3), { rsv: 0x40 }), "reserved bits"],
      [serverFrame(0x3, bytes(3)), "unknown opcode 3"],
      [serverFrame(0xb, bytes(3)), "unknown opcode 11"],
      [serverFrame(OPCODE.ping, bytes(126)), "control frame"],
      [serverFrame(OPCODE.ping, bytes(3), { fin: false }), "control frame"],
      [new Uint8Array([0x82, 127, 0xff, 0, 0, 0, 0, 0, 0, 1]), "out of range"],
    ];
    for (const [frame, message] of bad) {
      assertThrows(() => readServerFrameHeader(frame, 0, frame.length), Error, message);
    }
  });
});

Deno.test("WebSocket upgrade checks (RFC 6455 §4)", async (t) => {
  const ok = (accept: string, extra = "") =>
    `HTTP/1.1 101 Switching Protocols\r\nUpgrade: WebSocket\r\nConnection: keep-alive, Upgrade\r\n` +
    `Sec-WebSocket-Accept: ${accept}${extra}`;
  await t.step("the accept key of RFC 6455 §1.3", async () => {
    assertEquals(await expectedAccept("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  });
  await t.step("a proper 101 passes; anything else says what came", () => {
    const accept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";
    checkUpgradeResponse(ok(accept), accept);
    const cases: [string, string][] = [
      ["HTTP/1.1 404 Not Found\r\nContent-Length: 0", '"HTTP/1.1 404 Not Found"'],
      [ok("AAAA"), "Sec-WebSocket-Accept does not match"],
      [ok(accept).replace("Upgrade: WebSocket\r\n", ""), "Upgrade: websocket"],
      [ok(accept).replace("keep-alive, Upgrade", "keep-alive"), "Connection: upgrade"],
      [ok(accept, "\r\nSec-WebSocket-Extensions: permessage-deflate"), "not offered"],
    ];
    for (const [head, message] of cases) {
      assertThrows(() => checkUpgradeResponse(head, accept), Error, message);
    }
  });
  await t.step("the head ends at its blank line", () => {
    const head = new TextEncoder().encode("HTTP/1.1 101 X\r\nA: b\r\n\r\n");
    const text = new Uint8Array([...head, 0x82, 0x00]);
    assertEquals(responseHeadLength(text, text.length), head.length);
    assertEquals(responseHeadLength(text, text.length - 3), -1);
  });
});

/** A scripted WebSocket server on a real socket: the test writes its frames by hand. */
function scriptedServer(
  answer: (key: string) => Promise<string> = async (key) =>
    `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Accept: ${await expectedAccept(key)}\r\n\r\n`,
  firstFrames: Uint8Array = new Uint8Array(0),
) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const accepted = (async () => {
    const conn = await listener.accept();
    const buf = new Uint8Array(4096);
    let text = "";
    for (let i = 0; i < 100 && !text.includes("\r\n\r\n"); i++) {
      const n = await conn.read(buf);
      if (n === null) break;
      text += new TextDecoder().decode(buf.subarray(0, n));
    }
    const key = /sec-websocket-key: (\S+)/i.exec(text)?.[1] ?? "";
    const head = new TextEncoder().encode(await answer(key));
    const out = new Uint8Array(head.length + firstFrames.length);
    out.set(head);
    out.set(firstFrames, head.length); // in the same segment as the 101
    await conn.write(out);
    return { conn, request: text };
  })();
  return {
    port,
    accepted,
    async [Symbol.asyncDispose]() {
      listener.close();
      (await accepted.catch(() => undefined))?.conn.close();
    },
  };
}

/** Reads one client frame from the raw socket (closing it after 5 s if none comes). */
async function readClientFrame(conn: Deno.Conn): Promise<DecodedFrame> {
  const buf = new Uint8Array(256);
  let have = 0;
  const timer = setTimeout(() => conn.close(), 5000);
  try {
    for (let i = 0; i < 50 && !(have >= 6 && have >= 6 + (buf[1] & 0x7f)); i++) {
      const n = await conn.read(buf.subarray(have));
      if (n === null) throw new Error("ended before a frame");
      have += n;
    }
  } finally {
    clearTimeout(timer);
  }
  return decodeClientFrame(buf.subarray(0, have));
}

/**
 * A Conn under a WebSocket client that answers its upgrade request (the first of `writes`,
 * which `write` records) with a proper 101, then ends; `write` decides when writes complete.
 */
function upgradedPipe(writes: Uint8Array[], write: (data: Uint8Array) => Promise<void>): Conn {
  let answered = false;
  return {
    transport: "tcp",
    remoteAddress: "x",
    remoteHost: undefined,
    handshake: () => Promise.resolve(),
    async read(buffer) {
      if (answered) return null;
      answered = true;
      const key = /Sec-WebSocket-Key: (\S+)/.exec(new TextDecoder().decode(writes[0]))![1];
      const head = new TextEncoder().encode(
        `HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: upgrade\r\n` +
          `Sec-WebSocket-Accept: ${await expectedAccept(key)}\r\n\r\n`,
      );
      buffer.set(head);
      return head.length;
    },
    write,
    closeWrite: () => Promise.resolve(),
    close: () => {},
  };
}

Deno.test("WebSocketClientConn against a scripted server", async (t) => {
  const dial = (port: number) =>
    webSocketDialer(`ws://127.0.0.1:${port}/rpc`, { connectTimeout: 5000 }).dial();

  await t.step("the request; fragments, pings and frames of every size, in order", async () => {
    const early = serverFrame(OPCODE.binary, bytes(5, 40));
    await using server = scriptedServer(undefined, early);
    const client = await dial(server.port);
    const { conn, request } = await server.accepted;
    assert(request.startsWith("GET /rpc HTTP/1.1\r\n"), request);
    assert(request.includes(`Host: 127.0.0.1:${server.port}\r\n`));
    assert(/Sec-WebSocket-Version: 13\r\n/.test(request));
    assertEquals(client.transport, "ws");
    const big = bytes(200_000, 7);
    const parts = [
      serverFrame(OPCODE.binary, bytes(10, 1), { fin: false }),
      serverFrame(OPCODE.ping, new Uint8Array([1, 2, 3])),
      serverFrame(OPCODE.continuation, bytes(300, 2), { fin: false }),
      serverFrame(OPCODE.continuation, new Uint8Array(0)),
      serverFrame(OPCODE.pong, new Uint8Array([9])),
      serverFrame(OPCODE.binary, big),
    ];
    for (const part of parts) await conn.write(part);
    const expected = [bytes(5, 40), bytes(10, 1), bytes(300, 2), big];
    const total = expected.reduce((n, b) => n + b.length, 0);
    const got = await readExactly(client, total);
    let at = 0;
    for (const part of expected) {
      assertEquals(got.subarray(at, at + part.length), part);
      at += part.length;
    }
    const pong = await readClientFrame(conn);
    assertEquals(pong.opcode, OPCODE.pong);
    assertEquals(pong.payload, new Uint8Array([1, 2, 3]));
    client.close();
  });

  await t.step("every write is one whole frame in one write", async () => {
    // Over a recording pipe: the Conn under the WebSocket sees one write per frame.
    const writes: Uint8Array[] = [];
    const recorder = upgradedPipe(writes, (data) => (writes.push(data.slice()), Promise.resolve()));
    const ws = await WebSocketClientConn.open(recorder, { transport: "ws", host: "h", path: "/" });
    await ws.write(bytes(2000));
    await ws.writeParts!(bytes(5), bytes(70_000));
    assertEquals(writes.length, 3, "the request, then one write per frame");
    assertEquals(decodeClientFrame(writes[1]).size, writes[1].length);
    assertEquals(decodeClientFrame(writes[1]).payload, bytes(2000));
    const joined = decodeClientFrame(writes[2]);
    assertEquals(joined.size, writes[2].length);
    assertEquals(joined.payload.subarray(0, 5), bytes(5));
    assertEquals(joined.payload.subarray(5), bytes(70_000));
  });

  await t.step("a frame being written is never overwritten by the next", async () => {
    // Writes that complete only when told: the frames are kept as given, not copied.
    const writes: Uint8Array[] = [];
    const done: (() => void)[] = [];
    const slow = upgradedPipe(writes, (data) => {
      writes.push(data);
      return writes.length === 1 ? Promise.resolve() : new Promise((r) => done.push(r));
    });
    const ws = await WebSocketClientConn.open(slow, { transport: "ws", host: "h", path: "/" });
    const first = ws.write(bytes(100, 1));
    const second = ws.write(bytes(100, 2)); // the first is still being written
    assertEquals(decodeClientFrame(writes[1]).payload, bytes(100, 1));
    assertEquals(decodeClientFrame(writes[2]).payload, bytes(100, 2));
    assertNotEquals(writes[1].buffer, writes[2].buffer);
    done[0]();
    await first;
    const third = ws.write(bytes(100, 3)); // the buffer of the first is free again
    assertEquals(writes[3].buffer, writes[1].buffer, "small frames reuse one buffer");
    assertEquals(decodeClientFrame(writes[3]).payload, bytes(100, 3));
    assertEquals(decodeClientFrame(writes[2]).payload, bytes(100, 2));
    done[1]();
    done[2]();
    await Promise.all([second, third]);
  });

  await t.step("the server's close is answered with its code; reads end", async () => {
    await using server = scriptedServer();
    const client = await dial(server.port);
    const { conn } = await server.accepted;
    await conn.write(serverFrame(OPCODE.binary, bytes(4)));
    await conn.write(serverFrame(OPCODE.close, new Uint8Array([0x03, 0xe9, 0x62, 0x79])));
    assertEquals(await readExactly(client, 4), bytes(4));
    assertEquals(await client.read(new Uint8Array(8)), null);
    const reply = await readClientFrame(conn);
    assertEquals(reply.opcode, OPCODE.close);
    assertEquals(reply.payload, new Uint8Array([0x03, 0xe9]));
    const err = await assertRejects(() => client.write(bytes(1)), TransportError);
    assertEquals(err.code, "CONNECT_FAILED");
    client.close();
  });

  await t.step("a text or masked frame is PROTOCOL_ERROR, and the connection closes", async () => {
    for (
      const frame of [
        serverFrame(OPCODE.text, bytes(3)),
        serverFrame(2, bytes(3), { masked: true }),
      ]
    ) {
      await using server = scriptedServer();
      const client = await dial(server.port);
      const { conn } = await server.accepted;
      await conn.write(frame);
      const err = await assertRejects(() => client.read(new Uint8Array(8)), TransportError);
      assertEquals(err.code, "PROTOCOL_ERROR");
      assertEquals(await conn.read(new Uint8Array(8)), null, "the server sees the socket end");
    }
  });

  await t.step("a stray continuation is PROTOCOL_ERROR", async () => {
    await using server = scriptedServer();
    const client = await dial(server.port);
    const { conn } = await server.accepted;
    await conn.write(serverFrame(OPCODE.continuation, bytes(3)));
    const err = await assertRejects(() => client.read(new Uint8Array(8)), TransportError);
    assert(/stray continuation/.test(err.message), err.message);
  });

  await t.step("no upgrade: CONNECT_FAILED naming the server's answer", async () => {
    const answers = [
      () => Promise.resolve("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"),
      () =>
        Promise.resolve(
          "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
            "Sec-WebSocket-Accept: bm9wZQ==\r\n\r\n",
        ),
    ];
    for (const [i, answer] of answers.entries()) {
      await using server = scriptedServer(answer);
      const err = await assertRejects(() => dial(server.port), TransportError);
      assertEquals(err.code, "CONNECT_FAILED");
      assert(err.message.startsWith(`Cannot connect to ws://127.0.0.1:${server.port}/rpc: `));
      assert([/404 Not Found/, /does not match/][i].test(err.message), err.message);
    }
  });

  await t.step("a server that never answers: the connect timeout", async () => {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (listener.addr as Deno.NetAddr).port;
    const held = listener.accept();
    const err = await assertRejects(
      () => webSocketDialer(`ws://127.0.0.1:${port}/`, { connectTimeout: 200 }).dial(),
      TransportError,
    );
    assertEquals(err.code, "CONNECT_FAILED");
    assert(/timed out after 200 ms/.test(err.message), err.message);
    (await held).close();
    listener.close();
  });

  await t.step("nothing listening: connection refused", async () => {
    const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (probe.addr as Deno.NetAddr).port;
    probe.close();
    const err = await assertRejects(() => dial(port), TransportError);
    assertEquals(err.code, "CONNECT_FAILED");
    assert(/connection refused/.test(err.message), err.message);
  });
});

Deno.test("WebSocketClientConn against listenWebSocket (Deno.upgradeWebSocket)", async (t) => {
  for (const secure of [false, true]) {
    const scheme = secure ? "wss" : "ws";
    await t.step(`${scheme}://: 1 MiB both ways, in order`, async () => {
      await using listener = await listenWebSocket({
        hostname: "127.0.0.1",
        port: 0,
        path: "/rpc",
        tls: secure ? { cert: TLS.cert, key: TLS.key } : undefined,
      });
      const accepted = listener.accept();
      const client = await webSocketDialer(listener.address, { caCerts: [TLS.ca] }).dial();
      const server = (await accepted)!;
      assertEquals(client.transport, scheme);
      const payload = bytes(1 << 20, 11);
      const [, received] = await Promise.all([
        client.write(payload),
        readExactly(server, payload.length),
      ]);
      assertEquals(received, payload);
      const [, back] = await Promise.all([
        server.write(payload.subarray(3, 300_003)),
        readExactly(client, 300_000),
      ]);
      assertEquals(back, payload.subarray(3, 300_003));
      client.close();
      assertEquals(await server.read(new Uint8Array(8)), null);
      server.close();
    });
  }
  await t.step("dial() from Deno uses this client, not Deno's WebSocket", async () => {
    await using listener = await listenWebSocket({ hostname: "127.0.0.1", port: 0, path: "/rpc" });
    const accepted = listener.accept();
    const client = await dial(listener.address).dial();
    assert(client instanceof WebSocketClientConn, "Deno's WebSocket client stalls on Nagle");
    client.close();
    (await accepted)?.close();
  });
  await t.step("wss:// with an unknown CA: TLS_ERROR", async () => {
    await using listener = await listenWebSocket({
      hostname: "127.0.0.1",
      port: 0,
      path: "/rpc",
      tls: { cert: TLS.cert, key: TLS.key },
    });
    const err = await assertRejects(() => webSocketDialer(listener.address).dial(), TransportError);
    assertEquals(err.code, "TLS_ERROR");
    assertNotEquals(err.message, "");
  });
});
