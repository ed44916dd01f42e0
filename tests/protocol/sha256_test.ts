/**
 * Synchronous SHA-256, HMAC-SHA256 and HKDF-SHA256: the NIST, RFC 4231 and RFC 5869 vectors,
 * and random inputs (lengths around the block and padding boundaries, keys longer than a block,
 * incremental updates split anywhere) checked against Web Crypto.
 */
import { assert, assertEquals, assertThrows } from "@std/assert";
import { bufferSource as bs, fromHex, toHex, utf8 } from "../../protocol/bytes.ts";
import {
  hkdfSha256,
  hmacSha256,
  Sha256,
  sha256,
  sha256Concat,
  timingSafeEqual,
} from "../../protocol/sha256.ts";

const random = (n: number): Uint8Array => {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(out.subarray(i, i + 65536));
  return out;
};
const randomInt = (n: number): number => Math.floor(Math.random() * n);
const fill = (byte: number, n: number): Uint8Array => new Uint8Array(n).fill(byte);
const range = (from: number, to: number): Uint8Array => {
  const out = new Uint8Array(to - from + 1);
  for (let i = 0; i < out.length; i++) out[i] = from + i;
  return out;
};

async function webSha256(data: Uint8Array): Promise<string> {
  return toHex(new Uint8Array(await crypto.subtle.digest("SHA-256", bs(data))));
}

async function webHmac(key: Uint8Array, data: Uint8Array): Promise<string> {
  // Web Crypto refuses an empty HMAC key; HMAC zero-pads keys, so one zero byte is the same key.
  if (key.length === 0) key = new Uint8Array(1);
  const k = await crypto.subtle.importKey(
    "raw",
    bs(key),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  return toHex(new Uint8Array(await crypto.subtle.sign("HMAC", k, bs(data))));
}

async function webHkdf(
  ikm: Uint8Array,
  salt: Uint8Array,
  info: Uint8Array,
  length: number,
): Promise<string> {
  const k = await crypto.subtle.importKey("raw", bs(ikm), "HKDF", false, ["deriveBits"]);
  const bits = await crypto.subtle.deriveBits(
    { name: "HKDF", hash: "SHA-256", salt: bs(salt), info: bs(info) },
    k,
    length * 8,
  );
  return toHex(new Uint8Array(bits));
}

/** The lengths the random cross-checks use: 0..300 and the block and padding boundaries. */
function lengths(): number[] {
  const out = [0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129, 1000, 4096, 4097];
  for (let i = 0; i < 300; i++) out.push(randomInt(301));
  return out;
}

Deno.test("SHA-256: the NIST (FIPS 180-2 / CAVP) vectors", () => {
  const vectors: [string, string][] = [
    ["", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"],
    ["abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"],
    [
      "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
      "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
    ],
    [
      "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
      "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1",
    ],
  ];
  for (const [message, digest] of vectors) {
    assertEquals(toHex(sha256(utf8(message))), digest, message);
    assertEquals(toHex(new Sha256().update(utf8(message)).digest()), digest, message);
  }
});

Deno.test("SHA-256: one million 'a', one-shot and in uneven chunks", () => {
  const expected = "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";
  const million = utf8("a".repeat(1_000_000));
  assertEquals(toHex(sha256(million)), expected);
  const hasher = new Sha256();
  for (let i = 0; i < million.length; i += 997) hasher.update(million.subarray(i, i + 997));
  assertEquals(toHex(hasher.digest()), expected);
});

Deno.test("SHA-256: equal to Web Crypto on random inputs, one-shot, concatenated and split", async () => {
  for (const n of lengths()) {
    const data = random(n);
    const expected = await webSha256(data);
    assertEquals(toHex(sha256(data)), expected, `length ${n}`);
    // Split at two random points, fed through the class and through sha256Concat.
    const a = randomInt(n + 1);
    const b = a + randomInt(n - a + 1);
    const parts = [data.subarray(0, a), data.subarray(a, b), data.subarray(b)];
    assertEquals(toHex(sha256Concat(parts)), expected, `length ${n} split ${a}/${b}`);
    const hasher = new Sha256();
    for (const part of parts) hasher.update(part);
    assertEquals(toHex(hasher.digest()), expected, `length ${n} split ${a}/${b}`);
    // Byte at a time, for the short ones.
    if (n <= 130) {
      const bytewise = new Sha256();
      for (let i = 0; i < n; i++) bytewise.update(data.subarray(i, i + 1));
      assertEquals(toHex(bytewise.digest()), expected, `length ${n} byte at a time`);
    }
  }
});

Deno.test("Sha256: digest leaves the hasher unchanged, reset starts over, digestInto at an offset", () => {
  const hasher = new Sha256().update(utf8("ab"));
  assertEquals(toHex(hasher.digest()), toHex(sha256(utf8("ab"))));
  hasher.update(utf8("c"));
  assertEquals(toHex(hasher.digest()), toHex(sha256(utf8("abc"))));
  assertEquals(toHex(hasher.digest()), toHex(sha256(utf8("abc"))));
  // Digest after a pending tail past the padding boundary, then keep going.
  const long = random(200);
  const h2 = new Sha256().update(long.subarray(0, 60));
  assertEquals(toHex(h2.digest()), toHex(sha256(long.subarray(0, 60))));
  h2.update(long.subarray(60));
  assertEquals(toHex(h2.digest()), toHex(sha256(long)));
  hasher.reset().update(utf8("xyz"));
  assertEquals(toHex(hasher.digest()), toHex(sha256(utf8("xyz"))));
  const out = new Uint8Array(40).fill(0xee);
  hasher.digestInto(out, 5);
  assertEquals(toHex(out.subarray(5, 37)), toHex(sha256(utf8("xyz"))));
  assertEquals([...out.subarray(0, 5), ...out.subarray(37)], Array(8).fill(0xee));
  assertThrows(() => hasher.digestInto(new Uint8Array(31)), RangeError);
  assertThrows(() => hasher.digestInto(new Uint8Array(40), 9), RangeError);
  assertThrows(() => hasher.digestInto(new Uint8Array(40), -1), RangeError);
});

Deno.test("HMAC-SHA256: RFC 4231 test cases 1–7", () => {
  const cases: [Uint8Array, Uint8Array, string][] = [
    [
      fill(0x0b, 20),
      utf8("Hi There"),
      "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
    ],
    [
      utf8("Jefe"),
      utf8("what do ya want for nothing?"),
      "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
    ],
    [
      fill(0xaa, 20),
      fill(0xdd, 50),
      "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
    ],
    [
      range(0x01, 0x19),
      fill(0xcd, 50),
      "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
    ],
    // Case 5: the output truncated to 128 bits.
    [fill(0x0c, 20), utf8("Test With Truncation"), "a3b6167473100ee06e0c796c2955552b"],
    [
      fill(0xaa, 131),
      utf8("Test Using Larger Than Block-Size Key - Hash Key First"),
      "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
    ],
    [
      fill(0xaa, 131),
      utf8(
        "This is a test using a larger than block-size key and a larger than block-size data. " +
          "The key needs to be hashed before being used by the HMAC algorithm.",
      ),
      "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
    ],
  ];
  for (const [i, [key, data, mac]] of cases.entries()) {
    const ours = hmacSha256(key, data);
    assertEquals(ours.length, 32);
    assertEquals(toHex(ours.subarray(0, mac.length / 2)), mac, `case ${i + 1}`);
  }
});

Deno.test("HMAC-SHA256: equal to Web Crypto on random keys and messages, however split", async () => {
  const keyLengths = [0, 1, 16, 32, 63, 64, 65, 100, 131, 200];
  for (const [i, n] of lengths().entries()) {
    const key = random(i < keyLengths.length ? keyLengths[i] : randomInt(150));
    const data = random(n);
    const expected = await webHmac(key, data);
    assertEquals(toHex(hmacSha256(key, data)), expected, `key ${key.length}, data ${n}`);
    const a = randomInt(n + 1);
    const b = a + randomInt(n - a + 1);
    assertEquals(
      toHex(hmacSha256(key, data.subarray(0, a), data.subarray(a, b), data.subarray(b))),
      expected,
      `key ${key.length}, data ${n} split ${a}/${b}`,
    );
  }
  // No data at all is the empty message.
  const key = random(32);
  assertEquals(toHex(hmacSha256(key)), await webHmac(key, new Uint8Array(0)));
});

Deno.test("HKDF-SHA256: RFC 5869 test cases 1–3 (and their PRKs)", () => {
  const cases: [Uint8Array, Uint8Array, Uint8Array, number, string, string][] = [
    [
      fill(0x0b, 22),
      range(0x00, 0x0c),
      range(0xf0, 0xf9),
      42,
      "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5",
      "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865",
    ],
    [
      range(0x00, 0x4f),
      range(0x60, 0xaf),
      range(0xb0, 0xff),
      82,
      "06a6b88c5853361a06104c9ceb35b45cef760014904671014a193f40c15fc244",
      "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c" +
      "59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71" +
      "cc30c58179ec3e87c14c01d5c1f3434f1d87",
    ],
    [
      fill(0x0b, 22),
      new Uint8Array(0),
      new Uint8Array(0),
      42,
      "19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04",
      "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8",
    ],
  ];
  for (const [i, [ikm, salt, info, length, prk, okm]] of cases.entries()) {
    const effectiveSalt = salt.length === 0 ? new Uint8Array(32) : salt;
    assertEquals(toHex(hmacSha256(effectiveSalt, ikm)), prk, `case ${i + 1} PRK`);
    assertEquals(toHex(hkdfSha256(ikm, salt, info, length)), okm, `case ${i + 1} OKM`);
  }
});

Deno.test("HKDF-SHA256: equal to Web Crypto on random inputs and lengths", async () => {
  const outLengths = [1, 31, 32, 33, 44, 64, 88, 96, 255, 8160];
  for (let i = 0; i < 150; i++) {
    const ikm = random(i < 3 ? [0, 65, 200][i] : randomInt(100));
    const salt = random(i % 7 === 0 ? 0 : randomInt(i % 5 === 0 ? 150 : 64));
    const info = random(i % 11 === 0 ? 0 : randomInt(i % 4 === 0 ? 200 : 40));
    const length = i < outLengths.length ? outLengths[i] : 1 + randomInt(200);
    assertEquals(
      toHex(hkdfSha256(ikm, salt, info, length)),
      await webHkdf(ikm, salt, info, length),
      `ikm ${ikm.length}, salt ${salt.length}, info ${info.length}, length ${length}`,
    );
  }
});

Deno.test("HKDF-SHA256: output lengths outside 0..8160 throw RangeError", () => {
  const ikm = random(32);
  assertEquals(hkdfSha256(ikm, new Uint8Array(0), new Uint8Array(0), 0).length, 0);
  assertEquals(hkdfSha256(ikm, new Uint8Array(0), new Uint8Array(0), 8160).length, 8160);
  for (const bad of [8161, -1, 1.5, NaN, Infinity]) {
    assertThrows(() => hkdfSha256(ikm, new Uint8Array(0), new Uint8Array(0), bad), RangeError);
  }
  // A shorter output is a prefix of a longer one.
  const salt = random(16);
  const info = utf8("trust-rpc/1 test");
  const long = hkdfSha256(ikm, salt, info, 100);
  assertEquals(toHex(hkdfSha256(ikm, salt, info, 44)), toHex(long.subarray(0, 44)));
});

Deno.test("timingSafeEqual: equal, different and different-length arrays", () => {
  const a = random(48);
  assert(timingSafeEqual(a, a.slice()));
  assert(timingSafeEqual(new Uint8Array(0), new Uint8Array(0)));
  for (const i of [0, 17, 47]) {
    const b = a.slice();
    b[i] ^= 0x80;
    assert(!timingSafeEqual(a, b));
  }
  assert(!timingSafeEqual(a, a.subarray(0, 47)));
  assert(!timingSafeEqual(new Uint8Array(0), new Uint8Array(1)));
  assert(timingSafeEqual(fromHex("00ff"), Uint8Array.of(0, 255)));
});
