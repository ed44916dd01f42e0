import { assert, assertEquals, assertNotStrictEquals, assertThrows } from "@std/assert";
import type { ByteChannel } from "../../protocol/channel.ts";
import { decodeValue, encodeValue } from "../../protocol/codec.ts";
import { ProtocolError } from "../../protocol/errors.ts";
import { FrameType, HEADER_SIZE, parseHeader, parseHeaderAt } from "../../protocol/frame.ts";
import { FrameReader } from "../../protocol/frame_reader.ts";
import { Flag, Kind } from "../../protocol/messages.ts";
import { Reassembler } from "../../protocol/reassembly.ts";
import { RecordOpener, RecordSealer } from "../../protocol/record.ts";
import { RecordReader } from "../../protocol/record_reader.ts";
import { isSlabBytes, MAX_SLAB_PIECE, SLAB_SIZE, slabBytes } from "../../protocol/slab.ts";

/** A channel that hands out `data` one segment per read (what arrived at once on a socket). */
function segmentedChannel(data: Uint8Array, segments: number[]): ByteChannel {
  let at = 0;
  return {
    read(buffer) {
      if (at >= data.length) return Promise.resolve(null);
      const n = Math.min(buffer.length, segments.shift() ?? data.length - at);
      buffer.set(data.subarray(at, at + n));
      at += n;
      return Promise.resolve(n);
    },
    write: () => Promise.resolve(),
    close() {},
  };
}

function keys() {
  const key = crypto.getRandomValues(new Uint8Array(32));
  const iv = crypto.getRandomValues(new Uint8Array(12));
  return {
    sealer: new RecordSealer(key, iv, {}, true),
    opener: new RecordOpener(key, iv, true),
  };
}

const concat = (parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) out.set(p, (at += p.length) - p.length);
  return out;
};

function readerOf(wire: Uint8Array, segments: number[], opener: RecordOpener) {
  const channel = segmentedChannel(wire, segments);
  const frames = new FrameReader(channel);
  return new RecordReader(channel, frames, opener, { maxFrame: 1 << 20, frameBodyTimeout: 5000 });
}

Deno.test("RecordReader.nextBuffered", async (t) => {
  await t.step("opens small records already in the buffer at once, and only those", async () => {
    const { sealer, opener } = keys();
    const small = [1, 2, 3].map((i) => new Uint8Array(100).fill(i));
    const large = new Uint8Array(5000).fill(9); // AES-GCM
    const wire = concat([
      await sealer.seal(FrameType.MESSAGES, small[0]),
      await sealer.seal(FrameType.MESSAGES, small[1]),
      await sealer.seal(FrameType.MESSAGES, large),
      await sealer.seal(FrameType.ALERT, small[2]),
    ]);
    const reader = readerOf(wire, [wire.length], opener);
    assertEquals(reader.nextBuffered(), undefined, "nothing read yet");
    const first = await reader.next();
    assertEquals(first, { type: FrameType.MESSAGES, plaintext: small[0] });
    const second = reader.nextBuffered();
    assertEquals(second, { type: FrameType.MESSAGES, plaintext: small[1] });
    assert(
      second !== undefined && isSlabBytes(second.plaintext),
      "a small plaintext is a slab view",
    );
    assertEquals(reader.nextBuffered(), undefined, "an AES-GCM record is opened by next()");
    assertEquals(await reader.next(), { type: FrameType.MESSAGES, plaintext: large });
    // (whether the alert came in with the large record's last read depends on buffer sizes)
    const alert = reader.nextBuffered() ?? await reader.next();
    assertEquals(alert, { type: FrameType.ALERT, plaintext: small[2] });
    assertEquals(reader.nextBuffered(), undefined);
    assertEquals(await reader.next(), null);
  });

  await t.step("a record not yet whole waits for next(), which reads the rest", async () => {
    const { sealer, opener } = keys();
    const plain = new Uint8Array(300).fill(5);
    const frame = await sealer.seal(FrameType.MESSAGES, plain);
    const reader = readerOf(frame, [HEADER_SIZE + 10, frame.length], opener);
    // The first read brings the header and part of the body.
    const reading = reader.next();
    assertEquals(await reading, { type: FrameType.MESSAGES, plaintext: plain });
  });

  await t.step("a tampered or replayed record is refused as by next()", async () => {
    const { sealer, opener } = keys();
    const a = await sealer.seal(FrameType.MESSAGES, new Uint8Array(50));
    const b = await sealer.seal(FrameType.MESSAGES, new Uint8Array(50));
    const tampered = b.slice();
    tampered[HEADER_SIZE + 3] ^= 1;
    const reader = readerOf(concat([a, tampered]), [a.length + b.length], opener);
    await reader.next();
    const err = assertThrows(() => reader.nextBuffered(), ProtocolError);
    assertEquals(err.code, "BAD_RECORD");
    const { sealer: s2, opener: o2 } = keys();
    const r0 = await s2.seal(FrameType.MESSAGES, new Uint8Array(8));
    const replay = readerOf(concat([r0, r0]), [2 * r0.length], o2);
    await replay.next();
    assertEquals(assertThrows(() => replay.nextBuffered(), ProtocolError).code, "SEQUENCE");
  });

  await t.step("a header that breaks the rules is refused before the body is there", async () => {
    const { sealer, opener } = keys();
    const frame = await sealer.seal(FrameType.MESSAGES, new Uint8Array(20));
    frame[HEADER_SIZE - 1] ^= 0xff; // the header's CRC
    const reader = readerOf(frame.subarray(0, HEADER_SIZE + 1), [HEADER_SIZE + 1], opener);
    const err = await reader.next().then(() => undefined, (e) => e);
    assert(err instanceof ProtocolError && err.code === "PROTOCOL_ERROR", String(err));
    assert(/checksum/.test(err.message), err.message);
  });
});

Deno.test("frame headers parse in place, at any offset", () => {
  const { sealer } = keys();
  const bytes = new Uint8Array(64);
  const header = { type: 0, length: 0, seq: 0 };
  for (const seq of [0, 1, 2 ** 32 + 5, Number.MAX_SAFE_INTEGER - 1]) {
    sealer.seq = seq;
    const frame = sealer.sealSmall(FrameType.MESSAGES, new Uint8Array(3))!;
    bytes.set(frame.subarray(0, HEADER_SIZE), 7);
    parseHeaderAt(bytes, 7, header);
    assertEquals(header, { type: FrameType.MESSAGES_CHACHA, length: 3 + 16, seq });
    assertEquals(parseHeader(frame), header);
  }
  bytes[7 + 8] = 0xff; // a sequence number of 2^53 or more
  bytes.set(new Uint8Array(4), 7 + 16);
  assertEquals(
    assertThrows(() => parseHeaderAt(bytes, 7, header), ProtocolError).code,
    "PROTOCOL_ERROR",
  );
});

Deno.test("slabs: small buffers are disjoint views, and what leaves for users is copied", async (t) => {
  await t.step("views never overlap, start zeroed, and move to a new slab when one is full", () => {
    const views: Uint8Array[] = [];
    let bytes = 0;
    while (bytes < 3 * SLAB_SIZE) {
      const v = slabBytes(100 + (views.length % 7) * 50);
      assert(v.every((x) => x === 0));
      v.fill(0xee);
      views.push(v);
      bytes += v.length;
    }
    const slabs = new Set(views.map((v) => v.buffer));
    assert(slabs.size >= 3, `${slabs.size} slabs`);
    for (const s of slabs) {
      const inIt = views.filter((v) => v.buffer === s).sort((a, b) => a.byteOffset - b.byteOffset);
      for (let i = 1; i < inIt.length; i++) {
        assert(inIt[i].byteOffset >= inIt[i - 1].byteOffset + inIt[i - 1].length, "overlap");
      }
    }
    assert(views.every(isSlabBytes));
    const own = slabBytes(MAX_SLAB_PIECE + 1);
    assertEquals(own.buffer.byteLength, MAX_SLAB_PIECE + 1);
    assert(!isSlabBytes(own));
    assert(!isSlabBytes(new Uint8Array(SLAB_SIZE)), "a buffer of the same size is not a slab");
  });

  await t.step("attachments decoded from a slab payload are copies, others views", () => {
    const { bytes } = encodeValue({ file: new Uint8Array([1, 2, 3]) });
    const inSlab = slabBytes(bytes.length);
    inSlab.set(bytes);
    const fromSlab = decodeValue(inSlab, true) as { file: Uint8Array };
    const fromOwn = decodeValue(bytes, true) as { file: Uint8Array };
    assertEquals(fromSlab.file, new Uint8Array([1, 2, 3]));
    assertNotStrictEquals(fromSlab.file.buffer, inSlab.buffer);
    assertEquals(fromSlab.file.buffer.byteLength, 3);
    assertEquals(fromOwn.file.buffer, bytes.buffer);
  });

  await t.step("pieces of a message kept for reassembly are copied out of a slab", () => {
    const reassembler = new Reassembler(1 << 20, 1 << 20);
    const piece = slabBytes(4);
    piece.set([1, 2, 3, 4]);
    assertEquals(reassembler.add({ kind: Kind.REQUEST, flags: Flag.MORE, id: 1, payload: piece }), {
      state: "partial",
    });
    piece.fill(0); // the slab's bytes are not the piece's any more
    const done = reassembler.add({
      kind: Kind.REQUEST,
      flags: 0,
      id: 1,
      payload: new Uint8Array([5]),
    });
    assertEquals(done, { state: "complete", payload: new Uint8Array([1, 2, 3, 4, 5]), flags: 0 });
  });
});
