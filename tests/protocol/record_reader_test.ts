import { assert, assertEquals, assertThrows } from "@std/assert";
import type { ByteChannel } from "../../protocol/channel.ts";
import { ProtocolError } from "../../protocol/errors.ts";
import { FrameType, HEADER_SIZE } from "../../protocol/frame.ts";
import { FrameReader } from "../../protocol/frame_reader.ts";
import { RecordOpener, RecordSealer } from "../../protocol/record.ts";
import { RecordReader } from "../../protocol/record_reader.ts";
import { isSlabBytes } from "../../protocol/slab.ts";

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
