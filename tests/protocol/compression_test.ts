import {
  assert,
  assertEquals,
  assertInstanceOf,
  assertRejects,
  assertStrictEquals,
} from "@std/assert";
import {
  DEFAULT_COMPRESSION_THRESHOLD,
  deflateRaw,
  inflateRaw,
  shouldCompress,
} from "../../protocol/compression.ts";
import { InvalidParamsError, ResourceExhaustedError } from "../../protocol/errors.ts";
import { bytesOf } from "../_bytes.ts";

const MiB = 1 << 20;

/** Repeated JSON text of at least `n` bytes. */
function jsonOf(n: number): Uint8Array {
  const record = JSON.stringify({ id: 1, method: "greet", params: ["world", 42, true] });
  return new TextEncoder().encode(record.repeat(Math.ceil(n / record.length)));
}

/** Inflates with the platform decompressor alone (no limit): an interop check. */
async function platformInflate(data: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([data.slice()]).stream().pipeThrough(
    new DecompressionStream("deflate-raw"),
  );
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/**
 * A hand-made deflate-raw stream: one fixed-Huffman block holding a zero byte and then
 * `repeats` copies of (length 258, distance 1), so it inflates to `1 + 258 * repeats` zeros at
 * about 159:1. With `poison`, that block is not final and a block of the reserved type 3
 * follows: any decompressor that reaches it must fail.
 */
function zeroBomb(repeats: number, poison: boolean): Uint8Array {
  const out = new Uint8Array(Math.ceil((3 + 8 + 13 * repeats + 7 + 3) / 8) + 1);
  let bit = 0;
  const bits = (value: number, n: number) => {
    for (let i = 0; i < n; i++, bit++) if ((value >>> i) & 1) out[bit >>> 3] |= 1 << (bit & 7);
  };
  // Huffman codes are packed most significant bit first.
  const code = (value: number, n: number) => {
    for (let i = n - 1; i >= 0; i--, bit++) if ((value >>> i) & 1) out[bit >>> 3] |= 1 << (bit & 7);
  };
  bits(poison ? 0 : 1, 1); // BFINAL
  bits(1, 2); // BTYPE: fixed Huffman
  code(0x30, 8); // literal 0
  for (let i = 0; i < repeats; i++) {
    code(0xc5, 8); // length code 285: 258 bytes, no extra bits
    code(0, 5); // distance code 0: distance 1
  }
  code(0, 7); // end of block
  if (poison) {
    bits(1, 1); // BFINAL
    bits(3, 2); // BTYPE 3: reserved, always an error
  }
  return out.subarray(0, Math.ceil(bit / 8));
}

Deno.test("shouldCompress and the default threshold", async (t) => {
  await t.step("the default threshold is 1 KiB", () => {
    assertStrictEquals(DEFAULT_COMPRESSION_THRESHOLD, 1024);
  });

  await t.step("compresses from the threshold up", () => {
    assertEquals(shouldCompress(1023, DEFAULT_COMPRESSION_THRESHOLD), false);
    assertEquals(shouldCompress(1024, DEFAULT_COMPRESSION_THRESHOLD), true);
    assertEquals(shouldCompress(5 * MiB, DEFAULT_COMPRESSION_THRESHOLD), true);
  });

  await t.step("threshold 0 compresses everything, Infinity nothing", () => {
    assertEquals(shouldCompress(0, 0), true);
    assertEquals(shouldCompress(0, -1), true);
    assertEquals(shouldCompress(Number.MAX_SAFE_INTEGER, Infinity), false);
  });
});

Deno.test("deflateRaw and inflateRaw round trip", async (t) => {
  const cases: [string, Uint8Array][] = [
    ["empty", new Uint8Array(0)],
    ["one byte", new Uint8Array([42])],
    ["short text", new TextEncoder().encode("héllo, wörld ✓")],
    ["random 64 KiB", bytesOf(64 * 1024)],
    ["json 1 MiB", jsonOf(MiB)],
    ["random 5 MiB", bytesOf(5 * MiB, 11)],
  ];
  for (const [name, data] of cases) {
    await t.step(name, async () => {
      const compressed = await deflateRaw(data);
      assertInstanceOf(compressed, Uint8Array);
      assertEquals(await platformInflate(compressed), data);
      const inflated = await inflateRaw(compressed, data.length);
      assertEquals(inflated.length, data.length);
      assertEquals(inflated, data);
      assertEquals(await inflateRaw(compressed, Infinity), data);
    });
  }

  await t.step("a view into a larger buffer compresses only the view", async () => {
    const whole = jsonOf(4096);
    const view = whole.subarray(100, 2100);
    assertEquals(await inflateRaw(await deflateRaw(view), 2000), view);
  });

  await t.step("inflates deflate-raw made by the platform compressor in pieces", async () => {
    const data = jsonOf(256 * 1024);
    const pieces = [data.subarray(0, 1000), data.subarray(1000, 100_000), data.subarray(100_000)];
    const stream = new Blob(pieces.map((p) => p.slice())).stream().pipeThrough(
      new CompressionStream("deflate-raw"),
    );
    const compressed = new Uint8Array(await new Response(stream).arrayBuffer());
    assertEquals(await inflateRaw(compressed, data.length), data);
  });
});

Deno.test("deflateRaw shrinks compressible payloads", async () => {
  const data = jsonOf(MiB);
  const compressed = await deflateRaw(data);
  assert(
    compressed.length * 5 < data.length,
    `${data.length} bytes compressed to ${compressed.length}`,
  );
});

Deno.test("inflateRaw enforces maxBytes", async (t) => {
  const data = jsonOf(300_000);
  const compressed = await deflateRaw(data);

  await t.step("a limit equal to the output size succeeds", async () => {
    assertEquals(await inflateRaw(compressed, data.length), data);
  });

  await t.step("one byte under the output size fails", async () => {
    await assertRejects(
      () => inflateRaw(compressed, data.length - 1),
      ResourceExhaustedError,
      `Compressed payload inflates past the ${data.length - 1}-byte message limit`,
    );
  });

  await t.step("empty output fits a limit of 0", async () => {
    assertEquals(await inflateRaw(await deflateRaw(new Uint8Array(0)), 0), new Uint8Array(0));
    await assertRejects(() => inflateRaw(compressed, 0), ResourceExhaustedError);
  });

  await t.step("the error has the RESOURCE_EXHAUSTED code", async () => {
    const err = await assertRejects(() => inflateRaw(compressed, 1000), ResourceExhaustedError);
    assertEquals(err.code, "RESOURCE_EXHAUSTED");
  });

  await t.step("a negative or NaN limit is a RangeError", async () => {
    await assertRejects(() => inflateRaw(compressed, -1), RangeError);
    await assertRejects(() => inflateRaw(compressed, NaN), RangeError);
  });
});

Deno.test("inflateRaw stops a deflate bomb early", async (t) => {
  await t.step("64 MiB of zeros with a 1 MiB limit", async () => {
    const bomb = await deflateRaw(new Uint8Array(64 * MiB));
    assert(bomb.length < 128 * 1024, `bomb is ${bomb.length} bytes`);
    await assertRejects(
      () => inflateRaw(bomb, MiB),
      ResourceExhaustedError,
      `Compressed payload inflates past the ${MiB}-byte message limit`,
    );
  });

  await t.step("the hand-made bomb inflates as built", async () => {
    const small = zeroBomb(1000, false);
    assertEquals(await inflateRaw(small, 1 + 258 * 1000), new Uint8Array(1 + 258 * 1000));
    assertEquals(await platformInflate(small), new Uint8Array(1 + 258 * 1000));
  });

  await t.step("its poisoned tail fails when reached", async () => {
    const poisoned = zeroBomb(1000, true);
    const err = await assertRejects(() => inflateRaw(poisoned, Infinity), InvalidParamsError);
    assertEquals(err.message, "Corrupt compressed payload");
  });

  await t.step("a 64 MiB poisoned bomb stops at the limit, before its tail", async () => {
    // Inflating the whole input would reach the corrupt tail and fail as INVALID_PARAMS;
    // RESOURCE_EXHAUSTED shows inflating stopped within the first MiB of output.
    const bomb = zeroBomb(Math.ceil((64 * MiB) / 258), true);
    await assertRejects(() => inflateRaw(bomb, MiB), ResourceExhaustedError);
  });
});

Deno.test("inflateRaw rejects corrupt input as INVALID_PARAMS", async (t) => {
  const data = jsonOf(100_000);
  const compressed = await deflateRaw(data);

  const bad: [string, Uint8Array][] = [
    ["garbage bytes", new Uint8Array([0xff, 0xff, 0xff, 0xff])],
    ["empty input", new Uint8Array(0)],
    ["truncated by half", compressed.subarray(0, compressed.length >> 1)],
    ["truncated by one byte", compressed.subarray(0, compressed.length - 1)],
    ["extra bytes after the end", Uint8Array.from([...compressed, 0])],
    ["random bytes", bytesOf(4096, 3)],
  ];
  for (const [name, input] of bad) {
    await t.step(name, async () => {
      const err = await assertRejects(
        () => inflateRaw(input, 10 * MiB),
        InvalidParamsError,
        "Corrupt compressed payload",
      );
      assertEquals(err.code, "INVALID_PARAMS");
    });
  }

  await t.step("every truncation of a small stream", async () => {
    const small = await deflateRaw(jsonOf(2000));
    for (let cut = 0; cut < small.length; cut++) {
      await assertRejects(() => inflateRaw(small.subarray(0, cut), MiB), InvalidParamsError);
    }
  });
});
