import {
  assert,
  assertEquals,
  assertInstanceOf,
  assertStrictEquals,
  assertThrows,
} from "@std/assert";
import { decodeValue, encodeValue, maxJsonDepth } from "../../protocol/codec.ts";
import { ProtocolError } from "../../protocol/errors.ts";
import { bytesOf } from "../_bytes.ts";

const utf8 = new TextEncoder();

function roundTrip(value: unknown): { value: unknown; binary: boolean } {
  const { bytes, binary } = encodeValue(value);
  return { value: decodeValue(bytes, binary), binary };
}

function assertProtocolError(fn: () => unknown, code: string, message?: string): void {
  const err = assertThrows(fn, ProtocolError, message);
  assertEquals(err.code, code);
}

/** Builds a binary payload by hand: json, then the attachments. */
function layout(json: string, ...attachments: Uint8Array[]): Uint8Array {
  const j = utf8.encode(json);
  const parts = [u32(j.length), j, ...attachments.flatMap((a) => [u32(a.length), a])];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n);
  return b;
}

function nested(levels: number, kind: "array" | "object"): string {
  return kind === "array"
    ? "[".repeat(levels) + "]".repeat(levels)
    : '{"a":'.repeat(levels - 1) + "{}" + "}".repeat(levels - 1);
}

Deno.test("codec round-trips JSON values in plain mode", async (t) => {
  const cases: Array<[string, unknown]> = [
    ["null", null],
    ["true", true],
    ["false", false],
    ["zero", 0],
    ["minus one", -1],
    ["1e300", 1e300],
    ["fraction", -0.125],
    ["empty string", ""],
    ["unicode", "héllo wörld ✓ 日本語 😀"],
    ["escapes", 'quote " backslash \\ newline \n tab \t nul \u0000 ]}["{'],
    ["empty array", []],
    ["empty object", {}],
    ["nested", { a: [1, { b: [[], {}, null] }], c: { d: { e: "f" } } }],
    ["call", { method: "echo", params: ["x".repeat(64)] }],
    ["ASCII payload of 1 KiB (decoded without a TextDecoder)", "a".repeat(1022)],
    ["ASCII payload of 1 KiB + 1 (decoded by the TextDecoder)", "a".repeat(1023)],
    ["short payload with one non-ASCII character", "a".repeat(30) + "é"],
    ["placeholder-like objects", [{ $bin: 0 }, { $esc: 1 }, { $bin: "x" }, { $esc: { $bin: 0 } }]],
    ["placeholder-like at top", { $bin: 0 }],
    ["64 levels", JSON.parse(nested(64, "array"))],
  ];
  for (const [name, value] of cases) {
    await t.step(name, () => {
      const { value: back, binary } = roundTrip(value);
      assertEquals(binary, false);
      assertEquals(back, value);
      assertEquals(encodeValue(value).bytes, utf8.encode(JSON.stringify(value)));
    });
  }
  await t.step("undefined at top level encodes as null", () => {
    assertEquals(new TextDecoder().decode(encodeValue(undefined).bytes), "null");
    assertEquals(roundTrip(undefined).value, null);
  });
  await t.step("toJSON is respected (Date)", () => {
    const date = new Date(Date.UTC(2024, 0, 2, 3, 4, 5));
    assertEquals(roundTrip({ at: date }).value, { at: "2024-01-02T03:04:05.000Z" });
    const custom = { toJSON: (key: string) => ({ key, ok: true }) };
    assertEquals(roundTrip({ k: custom }).value, { k: { key: "k", ok: true } });
  });
  await t.step("undefined and functions are dropped like JSON.stringify", () => {
    const value = { a: undefined, b: () => 1, c: [undefined, () => 1], d: 1 };
    assertEquals(roundTrip(value).value, JSON.parse(JSON.stringify(value)));
  });
});

Deno.test("codec carries Uint8Array as raw attachments", async (t) => {
  const cases: Array<[string, unknown]> = [
    ["top level", bytesOf(10)],
    ["empty", new Uint8Array(0)],
    ["in an array", [1, bytesOf(3), "x"]],
    ["in an object", { name: "f", data: bytesOf(33) }],
    ["several", {
      a: [bytesOf(1, 1), bytesOf(2, 2)],
      b: { c: bytesOf(3, 3) },
      d: new Uint8Array(0),
    }],
    ["with placeholder-like objects", [
      bytesOf(4),
      { $bin: 0 },
      { $esc: 1 },
      { $bin: "x" },
      { $esc: { $bin: 0 } },
      { deep: { $bin: 1, other: 2 }, $esc: { $esc: { $bin: 5 } } },
    ]],
    ["placeholder-like at top", { $bin: bytesOf(2) }],
    ["escape-like at top", { $esc: bytesOf(2) }],
    [
      "same array twice",
      (() => {
        const b = bytesOf(5);
        return [b, b];
      })(),
    ],
    ["1 MiB", { data: bytesOf(1 << 20) }],
    ["16 MiB", bytesOf(16 << 20)],
  ];
  for (const [name, value] of cases) {
    await t.step(name, () => {
      const { value: back, binary } = roundTrip(value);
      assertEquals(binary, true);
      assertEquals(back, value);
    });
  }
  await t.step("raw bytes follow the JSON, not base64", () => {
    const { bytes, binary } = encodeValue({ data: new Uint8Array([0xde, 0xad]) });
    assert(binary);
    assertEquals(bytes, layout('{"data":{"$bin":0}}', new Uint8Array([0xde, 0xad])));
  });
  await t.step("a subclass of Uint8Array is an attachment", () => {
    class Bytes extends Uint8Array {}
    const { value, binary } = roundTrip([new Bytes([1, 2, 3])]);
    assert(binary);
    assertInstanceOf((value as unknown[])[0], Uint8Array);
    assertEquals((value as Uint8Array[])[0], new Uint8Array([1, 2, 3]));
  });
  await t.step("subarray views keep their own bytes", () => {
    const big = bytesOf(100);
    assertEquals(roundTrip(big.subarray(10, 20)).value, big.slice(10, 20));
  });
  await t.step("decoded attachments are views into the payload", () => {
    const { bytes } = encodeValue(bytesOf(8));
    const back = decodeValue(bytes, true) as Uint8Array;
    assertStrictEquals(back.buffer, bytes.buffer);
  });
  await t.step("in plain mode nothing is interpreted", () => {
    assertEquals(decodeValue(utf8.encode('{"$bin":0}'), false), { $bin: 0 });
    assertEquals(decodeValue(utf8.encode('{"$esc":{"$bin":0}}'), false), { $esc: { $bin: 0 } });
  });
  await t.step("keys dropped by JSON.stringify do not hide a placeholder look-alike", () => {
    const value = [bytesOf(1), { $bin: 0, gone: undefined, fn: () => 0 }, {
      $esc: 1,
      gone: undefined,
    }];
    assertEquals(roundTrip(value).value, [bytesOf(1), { $bin: 0 }, { $esc: 1 }]);
  });
  await t.step("boxed primitives and Dates next to binary", () => {
    const value = [new Uint8Array(1), Object(1), Object("s"), Object(true), new Date(0)];
    assertEquals(roundTrip(value).value, [
      new Uint8Array(1),
      1,
      "s",
      true,
      "1970-01-01T00:00:00.000Z",
    ]);
  });
  await t.step("toJSON may return a Uint8Array", () => {
    const value = { f: { toJSON: () => new Uint8Array([9]) } };
    assertEquals(roundTrip(value).value, { f: new Uint8Array([9]) });
  });
});

Deno.test("codec rejects values JSON cannot carry", async (t) => {
  const cyclic: Record<string, unknown> = { a: 1 };
  cyclic.self = { back: cyclic };
  const cyclicArray: unknown[] = [];
  cyclicArray.push([cyclicArray]);
  const cases: Array<[string, unknown, string]> = [
    ["Uint16Array", { a: new Uint16Array(2) }, "pass a Uint8Array"],
    ["ArrayBuffer", [new ArrayBuffer(4)], "pass a Uint8Array"],
    ["DataView", new DataView(new ArrayBuffer(4)), "pass a Uint8Array"],
    ["Uint8ClampedArray", new Uint8ClampedArray(1), "pass a Uint8Array"],
    ["ArrayBuffer next to a Uint8Array", [new Uint8Array(1), new ArrayBuffer(1)], "Uint8Array"],
    ["BigInt", { n: 1n }, "BigInt"],
    ["BigInt at top", 1n, "BigInt"],
    ["cycle in an object", cyclic, "cycle"],
    ["cycle in an array", cyclicArray, "cycle"],
  ];
  for (const [name, value, message] of cases) {
    await t.step(name, () => {
      assertThrows(() => encodeValue(value), TypeError, message);
    });
  }
  await t.step("shared references that are not cycles are fine", () => {
    const shared = { x: 1 };
    assertEquals(roundTrip([shared, shared, { shared }]).value, [{ x: 1 }, { x: 1 }, {
      shared: { x: 1 },
    }]);
  });
});

Deno.test("codec walks deep values without recursion", async (t) => {
  for (const levels of [2_000, 100_000]) {
    await t.step(`encodes ${levels} levels (plain and binary)`, () => {
      let value: unknown = 1;
      for (let i = 0; i < levels; i++) value = [value];
      assertEquals(encodeValue(value).bytes.length, 2 * levels + 1);
      const withBinary = [value, new Uint8Array(1)];
      assertEquals(encodeValue(withBinary).binary, true);
    });
  }
});

Deno.test("codec enforces the nesting limit before JSON.parse", async (t) => {
  for (const kind of ["array", "object"] as const) {
    await t.step(`${kind}: 64 levels accepted`, () => {
      const text = nested(64, kind);
      assertEquals(maxJsonDepth(text), 64);
      decodeValue(utf8.encode(text), false);
      decodeValue(layout(text), true);
    });
    for (const levels of [65, 10_000, 100_000, 1_000_000]) {
      await t.step(`${kind}: ${levels} levels rejected`, () => {
        const bytes = utf8.encode(nested(levels, kind));
        assertProtocolError(() => decodeValue(bytes, false), "TOO_DEEP", "deeper than 64 levels");
        assertProtocolError(() => decodeValue(layout(nested(levels, kind)), true), "TOO_DEEP");
      });
    }
  }
  await t.step("unbalanced opening brackets only", () => {
    assertProtocolError(() => decodeValue(utf8.encode("[".repeat(1e6)), false), "TOO_DEEP");
  });
  await t.step("brackets inside strings do not count", () => {
    const text = JSON.stringify(["[".repeat(500) + '\\"{{{' + "{".repeat(500)]);
    assertEquals(maxJsonDepth(text), 1);
    assertEquals(decodeValue(utf8.encode(text), false), JSON.parse(text));
  });
  await t.step("escaped backslashes before a quote end the string", () => {
    assertEquals(maxJsonDepth('["a\\\\", [[1]]]'), 3);
    assertEquals(maxJsonDepth('["a\\\\\\"[[", 1]'), 1);
  });
  await t.step("an unterminated string stops the scan", () => {
    assertEquals(maxJsonDepth('[[["abc'), 3);
    assertProtocolError(() => decodeValue(utf8.encode("[".repeat(200) + '"'), false), "TOO_DEEP");
    const text = '["' + "[".repeat(200);
    assertProtocolError(() => decodeValue(utf8.encode(text), false), "PROTOCOL_ERROR");
  });
  await t.step("large flat payloads are accepted", () => {
    const long = "x".repeat(1 << 20);
    assertEquals(decodeValue(utf8.encode(JSON.stringify([long])), false), [long]);
    const wide = decodeValue(utf8.encode("[" + "0,".repeat(4_000_000) + "0]"), false);
    assertEquals((wide as number[]).length, 4_000_001);
  });
  await t.step("maxDepth option", () => {
    const bytes = utf8.encode(nested(10, "array"));
    assertProtocolError(() => decodeValue(bytes, false, { maxDepth: 9 }), "TOO_DEEP", "9 levels");
    decodeValue(bytes, false, { maxDepth: 10 });
  });
});

Deno.test("codec rejects malformed payloads", async (t) => {
  const utf8Cases: Array<[string, number[]]> = [
    ["lone continuation byte", [0x22, 0x80, 0x22]],
    ["overlong encoding", [0x22, 0xc0, 0xaf, 0x22]],
    ["truncated sequence", [0x22, 0xe2, 0x82, 0x22]],
    ["truncated at the end", [0x22, 0xf0, 0x9f]],
    ["surrogate", [0x22, 0xed, 0xa0, 0x80, 0x22]],
  ];
  for (const [name, raw] of utf8Cases) {
    await t.step(`BAD_UTF8: ${name}`, () => {
      const bytes = new Uint8Array(raw);
      assertProtocolError(() => decodeValue(bytes, false), "BAD_UTF8", "not valid UTF-8");
      const bin = new Uint8Array([...u32(raw.length), ...raw]);
      assertProtocolError(() => decodeValue(bin, true), "BAD_UTF8");
    });
  }
  const good = layout('[{"$bin":0},{"$bin":1}]', bytesOf(5), bytesOf(3));
  const cases: Array<[string, Uint8Array, boolean, string]> = [
    ["invalid JSON", utf8.encode('{"a":'), false, "Payload is not valid JSON"],
    ["empty plain payload", new Uint8Array(0), false, "Payload is not valid JSON"],
    ["BOM before JSON", new Uint8Array([0xef, 0xbb, 0xbf, 0x31]), false, "not valid JSON"],
    ["invalid JSON in binary", layout("{x"), true, "Payload is not valid JSON"],
    ["binary shorter than a length", new Uint8Array(3), true, "truncated"],
    ["json length past the end", layout("[]").subarray(0, 5), true, "truncated"],
    ["truncated attachment", good.subarray(0, good.length - 1), true, "truncated"],
    ["truncated attachment length", good.subarray(0, good.length - 5), true, "truncated"],
    ["extra trailing bytes", new Uint8Array([...good, 1, 2]), true, "truncated"],
    ["extra empty attachment", new Uint8Array([...good, 0, 0, 0, 0]), true, "more attachments"],
    ["index out of range", layout('[{"$bin":1}]', bytesOf(1)), true, "out of range"],
    ["negative index", layout('[{"$bin":-1}]', bytesOf(1)), true, "out of range"],
    ["non-integer index", layout('[{"$bin":0.5}]', bytesOf(1)), true, "placeholder is invalid"],
    ["string index", layout('{"$bin":"0"}', bytesOf(1)), true, "placeholder is invalid"],
    ["index used twice", layout('[{"$bin":0},{"$bin":0}]', bytesOf(1)), true, "twice"],
    ["unreferenced attachment", layout('["padding"]', bytesOf(1)), true, "never referenced"],
    ["too many attachments", layout("[]", ...Array(10).fill(bytesOf(0))), true, "more attachments"],
  ];
  for (const [name, bytes, binary, message] of cases) {
    await t.step(`PROTOCOL_ERROR: ${name}`, () => {
      assertProtocolError(() => decodeValue(bytes, binary), "PROTOCOL_ERROR", message);
    });
  }
  await t.step("the error does not echo the payload", () => {
    const err = assertThrows(() => decodeValue(utf8.encode("{secret"), false), ProtocolError);
    assert(!err.message.includes("secret"));
    assertEquals(err.cause, undefined);
  });
  await t.step("a well-formed binary payload decodes", () => {
    assertEquals(decodeValue(good, true), [bytesOf(5), bytesOf(3)]);
  });
});

Deno.test("codec never pollutes Object.prototype", async (t) => {
  const before = Object.getOwnPropertyNames(Object.prototype);
  const payloads = [
    '{"__proto__":{"x":1}}',
    '{"constructor":{"prototype":{"x":1}}}',
    '{"a":[{"__proto__":{"x":1}}],"b":{"constructor":{"prototype":{"x":1}}}}',
  ];
  const check = (value: unknown, text: string) => {
    assertEquals(JSON.stringify(value), text);
    assertEquals(Object.getOwnPropertyNames(Object.prototype), before);
    assertEquals(({} as Record<string, unknown>).x, undefined);
  };
  for (const text of payloads) {
    await t.step(`plain: ${text}`, () => check(decodeValue(utf8.encode(text), false), text));
    await t.step(`binary: ${text}`, () => check(decodeValue(layout(text), true), text));
  }
  await t.step("own __proto__ data survives a binary round trip", () => {
    const value = JSON.parse('{"__proto__":{"x":1,"b":null}}');
    value.__proto__.b = new Uint8Array([1]);
    const back = roundTrip(value).value as Record<string, { x: number; b: Uint8Array }>;
    assert(Object.hasOwn(back, "__proto__"));
    assertEquals(Object.getPrototypeOf(back), Object.prototype);
    assertEquals(back["__proto__"].x, 1);
    assertEquals(back["__proto__"].b, new Uint8Array([1]));
    check({}, "{}");
  });
  await t.step("__proto__ placeholder and escape are replaced as own data", () => {
    const text = '{"__proto__":{"$bin":0},"constructor":{"$esc":{"$bin":1}}}';
    const back = decodeValue(layout(text, bytesOf(2)), true) as Record<string, unknown>;
    assert(Object.hasOwn(back, "__proto__"));
    assertEquals(Object.getPrototypeOf(back), Object.prototype);
    assertEquals(back["__proto__"], bytesOf(2));
    assertEquals(back.constructor, { $bin: 1 });
    check({}, "{}");
  });
});
