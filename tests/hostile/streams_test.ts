/**
 * Hostile peers against flow control: a producer that ignores its credit, absurd grants,
 * malformed stream requests, and stream messages for ids that are not open. Memory must
 * stay bounded and the server must keep serving everyone else.
 */
import { assert, assertEquals } from "@std/assert";
import { encodeValue } from "../../protocol/codec.ts";
import type { CallContext } from "../../protocol/methods.ts";
import { FrameType } from "../../protocol/frame.ts";
import { decodeMessages, Kind } from "../../protocol/messages.ts";
import { AuthedPeer, hostileServer } from "./_harness.ts";

const json = (value: unknown) => encodeValue(value).bytes;

const methods = {
  async sum(this: CallContext) {
    let total = 0;
    for await (const n of this.input) total += n as number;
    return total;
  },
  async *ticks() {
    for (let i = 0; i < 1_000_000; i++) yield i;
  },
};

Deno.test("hostile streams: a peer that breaks flow control is closed, others unaffected", async (t) => {
  await using env = await hostileServer({ methods, limits: { streamWindow: 8 } });

  await t.step("input chunks beyond the credit granted: PROTOCOL_ERROR", async () => {
    const peer = await AuthedPeer.connect(env.port);
    const id = peer.nextId();
    await peer.sendMessage(
      Kind.REQUEST,
      id,
      json({ method: "sum", params: [], credit: 4, input: true }),
    );
    // Granted 8 (the server's window); send 100 without waiting for more.
    await peer.sendMessages(
      Array.from(
        { length: 100 },
        () => ({ kind: Kind.STREAM_DATA, flags: 0, id, payload: json(1) }),
      ),
    );
    const end = await peer.readUntilClose();
    assertEquals(end.alert?.name, "PROTOCOL_ERROR");
    await env.sanity();
  });

  await t.step("an absurd CREDIT grant: PROTOCOL_ERROR", async () => {
    const peer = await AuthedPeer.connect(env.port);
    const id = peer.nextId();
    await peer.sendMessage(Kind.REQUEST, id, json({ method: "ticks", params: [], credit: 1 }));
    await peer.sendMessage(Kind.CREDIT, id, json({ credit: 1e12 }));
    const end = await peer.readUntilClose();
    assertEquals(end.alert?.name, "PROTOCOL_ERROR");
    await env.sanity();
  });

  await t.step("malformed stream requests are INVALID_PARAMS; the connection lives", async () => {
    const peer = await AuthedPeer.connect(env.port);
    for (
      const bad of [{ credit: 0 }, { credit: -5 }, { credit: 1.5 }, { credit: 1e9 }, {
        input: true,
      }]
    ) {
      const id = peer.nextId();
      await peer.sendMessage(Kind.REQUEST, id, json({ method: "sum", params: [], ...bad }));
      const r = await peer.response(id);
      assertEquals(r.kind, Kind.ERROR, JSON.stringify(bad));
      assertEquals((r.value as { code: string }).code, "INVALID_PARAMS");
    }
    const id = await peer.request("echo", ["alive"]);
    assertEquals((await peer.response(id)).value, "alive");
    peer.close();
  });

  await t.step("stream messages for ids that are not open are ignored", async () => {
    const peer = await AuthedPeer.connect(env.port);
    await peer.sendMessages([
      { kind: Kind.STREAM_DATA, flags: 0, id: 99, payload: json(1) },
      { kind: Kind.STREAM_END, flags: 0, id: 99, payload: json({}) },
      { kind: Kind.CREDIT, flags: 0, id: 98, payload: json({ credit: 5 }) },
      { kind: Kind.STREAM_DATA, flags: 0, id: 2, payload: json("not mine") },
    ]);
    const id = await peer.request("echo", ["alive"]);
    assertEquals((await peer.response(id)).value, "alive");
    peer.close();
  });

  await t.step("a stream nobody reads holds at most the window on the server", async () => {
    const peer = await AuthedPeer.connect(env.port);
    const id = peer.nextId();
    await peer.sendMessage(Kind.REQUEST, id, json({ method: "ticks", params: [], credit: 8 }));
    // Read what arrives for a while without granting more: exactly 8 chunks.
    let chunks = 0;
    const deadline = Date.now() + 300;
    while (Date.now() < deadline) {
      const record = await peer.readRecord(Math.max(1, deadline - Date.now())).catch(() => null);
      if (record === null) break;
      if (record.type !== FrameType.MESSAGES) continue;
      for (const m of decodeMessages(record.plaintext)) if (m.kind === Kind.STREAM_DATA) chunks++;
    }
    assertEquals(chunks, 8);
    const peers = env.server.peers;
    assert(peers.some((p) => p.openStreams === 1), "the stream is open, waiting for credit");
    peer.close();
  });
});
