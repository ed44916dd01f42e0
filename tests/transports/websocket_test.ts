/**
 * The WebSocket transport on its own: addresses, one record per binary message, what a
 * hostile or broken peer gets, the HTTP side of the listener, and dial failures.
 */
import { assert, assertEquals, assertRejects, assertThrows } from "@std/assert";
import { TransportError } from "../../protocol/errors.ts";
import { formatAddress, parseAddress } from "../../transports/address.ts";
import { listenWebSocket, webSocket } from "../../transports/websocket.ts";
import { WebSocketConn } from "../../transports/websocket_conn.ts";

Deno.test("ws:// and wss:// addresses", async (t) => {
  await t.step("default ports and paths", () => {
    assertEquals(parseAddress("ws://127.0.0.1:8080/rpc"), {
      transport: "ws",
      hostname: "127.0.0.1",
      port: 8080,
      path: "/rpc",
    });
    assertEquals(parseAddress("wss://example.com"), {
      transport: "wss",
      hostname: "example.com",
      port: 443,
      path: "/",
    });
    assertEquals(parseAddress("ws://[::1]/a/b"), {
      transport: "ws",
      hostname: "::1",
      port: 80,
      path: "/a/b",
    });
    assertEquals(formatAddress(parseAddress("ws://[::1]:9/x")), "ws://[::1]:9/x");
  });
  await t.step("no user info, query or fragment", () => {
    for (const bad of ["ws://user@host/", "ws://host/?q=1", "ws://host/#f", "ws:/host/"]) {
      const err = assertThrows(() => parseAddress(bad), TransportError);
      assertEquals(err.code, "INVALID_ADDRESS");
    }
  });
});

/** A stand-in WebSocket that records what is sent. */
class FakeSocket extends EventTarget {
  binaryType = "blob";
  readyState: number = WebSocket.OPEN;
  bufferedAmount = 0;
  sent: Uint8Array[] = [];
  onmessage: ((e: MessageEvent) => void) | null = null;
  onclose: (() => void) | null = null;
  onerror: (() => void) | null = null;
  closedWith: number | undefined;
  send(data: Uint8Array) {
    this.sent.push(data.slice());
  }
  close(code?: number) {
    this.closedWith = code;
    this.readyState = WebSocket.CLOSED;
    this.onclose?.();
  }
  receive(data: unknown) {
    this.onmessage?.(new MessageEvent("message", { data }));
  }
}

function fakeConn(maxBuffered?: number) {
  const socket = new FakeSocket();
  const conn = new WebSocketConn(socket as unknown as WebSocket, {
    transport: "ws",
    remoteAddress: "test",
    remoteHost: "test",
    maxBuffered,
  });
  return { socket, conn };
}

Deno.test("WebSocketConn", async (t) => {
  await t.step("every write is exactly one binary message, never split", async () => {
    const { socket, conn } = fakeConn();
    for (const size of [1, 20, 1000, 70_000, 1 << 20]) {
      await conn.write(new Uint8Array(size).fill(size & 0xff));
    }
    assertEquals(socket.sent.map((m) => m.length), [1, 20, 1000, 70_000, 1 << 20]);
    assertEquals(socket.binaryType, "arraybuffer");
  });

  await t.step("reads return the messages' bytes in order, across message borders", async () => {
    const { socket, conn } = fakeConn();
    socket.receive(new Uint8Array([1, 2, 3]).buffer);
    socket.receive(new Uint8Array([4, 5]).buffer);
    const buf = new Uint8Array(4);
    assertEquals(await conn.read(buf), 4);
    assertEquals(buf, new Uint8Array([1, 2, 3, 4]));
    const pending = conn.read(buf);
    assertEquals(await pending, 1);
    assertEquals(buf[0], 5);
    const waiting = conn.read(buf);
    socket.receive(new Uint8Array([6]).buffer);
    assertEquals(await waiting, 1);
    socket.close();
    assertEquals(await conn.read(buf), null);
  });

  await t.step("a text message is not ours: the connection closes", async () => {
    const { socket, conn } = fakeConn();
    socket.receive("hello");
    assertEquals(socket.closedWith, 1000);
    assertEquals(await conn.read(new Uint8Array(4)), null);
    await assertRejects(() => conn.write(new Uint8Array(1)), TransportError);
  });

  await t.step("a peer flooding past the buffer limit is cut off", async () => {
    const { socket, conn } = fakeConn(1000);
    for (let i = 0; i < 20 && socket.readyState === WebSocket.OPEN; i++) {
      socket.receive(new Uint8Array(100).buffer);
    }
    assertEquals(socket.readyState, WebSocket.CLOSED);
    assertEquals(await conn.read(new Uint8Array(2000)), null);
  });

  await t.step("write waits while the socket's own buffer is full", async () => {
    const { socket, conn } = fakeConn();
    socket.bufferedAmount = 2 << 20;
    let done = false;
    const write = conn.write(new Uint8Array(10)).then(() => done = true);
    await new Promise((r) => setTimeout(r, 30));
    assert(!done, "the write waited");
    socket.bufferedAmount = 0;
    await write;
    assert(done);
  });
});

Deno.test("listenWebSocket: the HTTP side and dialing", async (t) => {
  await using listener = await listenWebSocket({
    hostname: "127.0.0.1",
    port: 0,
    path: "/rpc",
    handler: (request) =>
      new URL(request.url).pathname === "/" ? new Response("page") : new Response("no", {
        status: 404,
      }),
  });
  const base = listener.address.replace("ws://", "http://").replace(/\/rpc$/, "");

  await t.step("other paths go to the HTTP handler", async () => {
    const page = await fetch(`${base}/`);
    assertEquals(await page.text(), "page");
    const missing = await fetch(`${base}/nope`);
    assertEquals(missing.status, 404);
    await missing.body?.cancel();
  });

  await t.step("the WebSocket path without an upgrade is 426", async () => {
    const res = await fetch(`${base}/rpc`);
    assertEquals(res.status, 426);
    await res.body?.cancel();
  });

  await t.step("dial and accept, bytes both ways", async () => {
    const accepted = listener.accept();
    const client = await webSocket(listener.address).dial();
    const server = (await accepted)!;
    assertEquals(server.transport, "ws");
    assert(server.remoteAddress.startsWith("127.0.0.1:"));
    await client.write(new Uint8Array([9, 8, 7]));
    const buf = new Uint8Array(8);
    assertEquals(await server.read(buf), 3);
    client.close();
    assertEquals(await server.read(buf), null);
    server.close();
  });

  await t.step("nothing listening: CONNECT_FAILED, quickly", async () => {
    const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (probe.addr as Deno.NetAddr).port;
    probe.close();
    const err = await assertRejects(
      () => webSocket(`ws://127.0.0.1:${port}/rpc`, { connectTimeout: 5000 }).dial(),
      TransportError,
    );
    assertEquals(err.code, "CONNECT_FAILED");
  });
});
