import { assertEquals, assertRejects, assertThrows } from "@std/assert";
import type { ByteChannel } from "../../protocol/channel.ts";
import { FrameReader, MAX_READ_BUFFER, MIN_READ_BUFFER } from "../../protocol/frame_reader.ts";

/**
 * A channel that hands out `data` in reads as large as the reader's buffer allows, except that
 * a read never crosses into the next of `segments` (what arrived at once on a socket).
 */
function channelOf(
  data: Uint8Array,
  segments: number[] = [data.length],
): ByteChannel & { reads: number[] } {
  let at = 0;
  let segmentEnd = 0;
  const reads: number[] = [];
  return {
    reads,
    read(buffer) {
      if (at >= data.length) return Promise.resolve(null);
      if (at === segmentEnd) segmentEnd += segments.shift() ?? data.length - at;
      const n = Math.min(buffer.length, segmentEnd - at);
      buffer.set(data.subarray(at, at + n));
      at += n;
      reads.push(n);
      return Promise.resolve(n);
    },
    write: () => Promise.resolve(),
    close() {},
  };
}

const counting = (n: number) => Uint8Array.from({ length: n }, (_, i) => i & 0xff);

Deno.test("FrameReader: exact reads across buffer boundaries", async () => {
  const data = counting(10_000);
  const reader = new FrameReader(channelOf(data));
  let at = 0;
  for (const n of [1, 19, 500, 7, 3000, 20, 6000, 453]) {
    assertEquals(await reader.read(n), data.subarray(at, at + n));
    at += n;
  }
  assertEquals(at, data.length);
  assertEquals(await reader.read(1), null);
});

Deno.test("FrameReader: the buffer grows under load and shrinks back when idle", async () => {
  // A burst of 1 MiB read in 100-byte frames: the reads fill the buffer, so it doubles.
  const burst = counting(1 << 20);
  const small = counting(100);
  const data = new Uint8Array(burst.length + small.length * 8);
  data.set(burst);
  for (let i = 0; i < 8; i++) data.set(small, burst.length + i * small.length);
  const channel = channelOf(data, [burst.length, ...Array(8).fill(small.length)]);
  const reader = new FrameReader(channel);
  assertEquals(reader.bufferSize, MIN_READ_BUFFER);
  let largest = 0;
  for (let at = 0; at < burst.length; at += 100) {
    await reader.read(Math.min(100, burst.length - at));
    largest = Math.max(largest, reader.bufferSize);
  }
  assertEquals(largest, MAX_READ_BUFFER, "the buffer grew to the largest size");
  assertEquals(Math.max(...channel.reads) > MAX_READ_BUFFER / 2, true);
  // Then small messages one at a time, each a read of its own: one is enough to shrink back.
  assertEquals(await reader.read(100), small);
  assertEquals(reader.bufferSize, MIN_READ_BUFFER, "an idle connection holds the smallest buffer");
  for (let i = 1; i < 8; i++) assertEquals(await reader.read(100), small);
  assertEquals(reader.bufferSize, MIN_READ_BUFFER);
});

Deno.test("FrameReader: a fixed size never grows, a large record gets its own buffer", async () => {
  const data = counting(140 + 5000 + 20);
  const reader = new FrameReader(channelOf(data), 140);
  assertEquals(await reader.read(140), data.subarray(0, 140));
  assertEquals(reader.bufferSize, 140);
  assertEquals(await reader.read(5000), data.subarray(140, 5140));
  assertEquals(await reader.read(20), data.subarray(5140));
  assertEquals(reader.bufferSize, 140, "back to the fixed size once the large record is consumed");
});

Deno.test("FrameReader: an end of stream inside a frame is a protocol error", async () => {
  const reader = new FrameReader(channelOf(Uint8Array.of(0x54, 0x52, 1, 2)));
  await assertRejects(() => reader.read(20), Error, "in the middle of a frame");
});

Deno.test("FrameReader: fill() waits for the next bytes with one read, then reads serve them", async () => {
  const data = counting(300);
  const channel = channelOf(data, [30, 270]);
  const reader = new FrameReader(channel);
  await reader.fill();
  assertEquals(channel.reads, [30]);
  assertEquals(reader.buffered, 30);
  assertEquals(reader.fill(), undefined, "bytes are buffered: nothing to wait for");
  assertEquals(await reader.read(20), data.subarray(0, 20));
  assertEquals(await reader.read(200), data.subarray(20, 220));
  assertEquals(await reader.read(80), data.subarray(220, 300));
  await reader.fill(); // the end of stream
  assertEquals(reader.fill(), undefined, "after the end there is nothing to wait for");
  assertEquals(await reader.read(1), null);
});

Deno.test("FrameReader: buffered bytes are parsed in place and consumed without views", async () => {
  const data = counting(300);
  const reader = new FrameReader(channelOf(data, [100, 200]));
  await reader.fill();
  assertEquals(reader.buffered, 100);
  assertEquals(reader.bytes[reader.offset], 0);
  reader.consume(40);
  assertEquals([reader.buffered, reader.bytes[reader.offset]], [60, 40]);
  assertThrows(() => reader.consume(61), RangeError);
  reader.consume(60); // drained: the next read starts at the buffer's start
  assertEquals(reader.buffered, 0);
  await reader.fill();
  assertEquals([reader.offset, reader.buffered], [0, 200]);
  assertEquals(await reader.read(200), data.subarray(100));
});
