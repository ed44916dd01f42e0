/**
 * Compression over a real connection: per connection and per call, for requests, answers,
 * events and stream chunks; it round-trips exactly and actually shrinks what crosses the
 * wire; a deflate bomb is refused before it is inflated past the message limit.
 */
import { assert, assertEquals } from "@std/assert";
import { deflateRaw } from "../protocol/compression.ts";
import { encodeValue } from "../protocol/codec.ts";
import { Flag, Kind } from "../protocol/messages.ts";
import { startServer } from "./_helpers.ts";
import { AuthedPeer, portOf } from "./hostile/_harness.ts";

const text = JSON.stringify(
  Array.from({ length: 5000 }, (_, i) => ({ id: i, name: "compressible", tags: ["a", "b"] })),
);

const methods = {
  echo: (value: unknown) => value,
  size: (s: string) => s.length,
  async *chunks(n: number, body: string) {
    for (let i = 0; i < n; i++) yield body;
  },
};

Deno.test("compression round-trips and shrinks what crosses the wire", async (t) => {
  await using ts = await startServer("tcp", { methods, compression: true });

  await t.step("per connection: requests and answers", async () => {
    await using client = await ts.connect({ compression: true });
    const peer = ts.server.peers.find((p) => p.id === client.sessionId)!;
    const inBefore = peer.bytesIn;
    const outBefore = peer.bytesOut;
    assertEquals(await client.call("echo", [text]), text);
    const sent = peer.bytesIn - inBefore;
    const answered = peer.bytesOut - outBefore;
    assert(sent * 5 < text.length, `request crossed as ${sent} bytes for ${text.length}`);
    assert(answered * 5 < text.length, `answer crossed as ${answered} bytes`);
  });

  await t.step("per call, with binary values inside", async () => {
    await using client = await ts.connect();
    const peer = ts.server.peers.find((p) => p.id === client.sessionId)!;
    const value = { text, bytes: new Uint8Array(4096).fill(7) };
    let before = peer.bytesIn;
    assertEquals(await client.call("echo", [value], { compress: true }), value);
    const compressed = peer.bytesIn - before;
    before = peer.bytesIn;
    assertEquals(await client.call("echo", [value]), value);
    const plain = peer.bytesIn - before;
    assert(compressed * 5 < plain, `compressed ${compressed} vs plain ${plain}`);
  });

  await t.step("events and stream chunks", async () => {
    await using client = await ts.connect({ compression: { threshold: 512 } });
    const got = Promise.withResolvers<unknown>();
    ts.server.on("big", (_peer, data) => got.resolve(data));
    client.emit("big", text);
    assertEquals(await got.promise, text);
    const chunks = await Array.fromAsync(client.stream<string>("chunks", [20, text]));
    assertEquals(chunks.length, 20);
    assert(chunks.every((c) => c === text));
  });

  await t.step("small payloads are sent as they are", async () => {
    await using client = await ts.connect({ compression: true });
    assertEquals(await client.call("echo", ["tiny"]), "tiny");
  });
});

Deno.test("a deflate bomb is refused at the message limit, the connection lives", async () => {
  await using ts = await startServer("tcp", {
    methods,
    limits: { maxMessageSize: 1 << 20 },
  });
  const peer = await AuthedPeer.connect(portOf(ts.address));
  try {
    // 64 MiB of spaces inside a JSON string, deflated to ~64 KiB: inflating it all would
    // need 64 times the limit.
    const head = new TextEncoder().encode('{"method":"size","params":["');
    const body = new Uint8Array(64 << 20).fill(0x20);
    const tail = new TextEncoder().encode('"]}');
    const json = new Uint8Array(head.length + body.length + tail.length);
    json.set(head);
    json.set(body, head.length);
    json.set(tail, head.length + body.length);
    const bomb = await deflateRaw(json);
    assert(bomb.length < 1 << 20, "the bomb itself fits in a message");
    const id = peer.nextId();
    await peer.sendMessage(Kind.REQUEST, id, bomb, Flag.COMPRESSED);
    const answer = await peer.response(id);
    assertEquals(answer.kind, Kind.ERROR);
    assertEquals((answer.value as { code: string }).code, "RESOURCE_EXHAUSTED");
    // A well-formed compressed request on the same connection still works.
    const ok = peer.nextId();
    const request = encodeValue({ method: "size", params: [text] }).bytes;
    await peer.sendMessage(Kind.REQUEST, ok, await deflateRaw(request), Flag.COMPRESSED);
    const r = await peer.response(ok);
    assertEquals(r.value, text.length);
  } finally {
    peer.close();
  }
});
