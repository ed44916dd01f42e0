import { assert, assertEquals, assertMatch, assertNotEquals, assertThrows } from "@std/assert";
import { SecretError } from "../../protocol/errors.ts";
import {
  base32,
  fingerprint,
  generateSecret,
  normalizeSecret,
  stretchSecret,
} from "../../protocol/secret.ts";

/** PROTOCOL.md §13 (recomputed with Python's hashlib.pbkdf2_hmac and hmac). */
const GOLDEN_TRUST_ID = "example-only-NOT-a-real-secret-0123456789abcdef";
const GOLDEN_PSK = "d26d1b0c27cfc67383599228de09aee93bf7808f9c1b58df81aa22a70698353a";
const GOLDEN_FINGERPRINT = "27aw2ik2";

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function secretError(fn: () => unknown, code: string): SecretError {
  const err = assertThrows(fn, SecretError);
  assertEquals(err.code, code, err.message);
  return err;
}

Deno.test("normalizeSecret()", async (t) => {
  const s32 = "a".repeat(16) + "B!~#$%&'()*+,-./";
  assertEquals(s32.length, 32);

  await t.step("strips ASCII whitespace on both ends, including a trailing \\r", () => {
    for (const pad of [" ", "\t", "\r", "\n", "\r\n", "\f", "\v", " \t\r\n\f\v"]) {
      assertEquals(normalizeSecret(pad + GOLDEN_TRUST_ID + pad), GOLDEN_TRUST_ID);
    }
    assertEquals(normalizeSecret(GOLDEN_TRUST_ID + "\r"), GOLDEN_TRUST_ID);
  });

  await t.step("accepts 32 to 1024 printable ASCII characters", () => {
    assertEquals(normalizeSecret(s32), s32);
    const long = "x".repeat(1024);
    assertEquals(normalizeSecret(long), long);
    const all = Array.from({ length: 94 }, (_, i) => String.fromCharCode(0x21 + i)).join("");
    assertEquals(normalizeSecret(all), all);
  });

  await t.step("rejects with the right code", () => {
    const table: [string, string, string][] = [
      ["empty", "", "SECRET_EMPTY"],
      ["only whitespace", " \t\r\n ", "SECRET_EMPTY"],
      ["31 characters", s32.slice(1), "SECRET_WEAK"],
      ["1 character", "x", "SECRET_WEAK"],
      ["space inside", s32.slice(0, 16) + " " + s32.slice(16), "SECRET_INVALID"],
      ["tab inside", s32.slice(0, 16) + "\t" + s32.slice(16), "SECRET_INVALID"],
      ["non-ASCII", s32 + "é", "SECRET_INVALID"],
      ["non-breaking space at the end", s32 + "\u00a0", "SECRET_INVALID"],
      ["control character", s32 + "\x01x", "SECRET_INVALID"],
      ["DEL", s32 + "\x7f", "SECRET_INVALID"],
      ["NUL", s32 + "\0", "SECRET_INVALID"],
      ["1025 characters", "x".repeat(1025), "SECRET_INVALID"],
      ["short and a space inside", "ab cd", "SECRET_INVALID"],
    ];
    for (const [name, raw, code] of table) {
      const err = secretError(() => normalizeSecret(raw), code);
      assert(err.message.startsWith("TRUST_ID is "), name);
      assert(err.message.includes("deno run -A client.ts keygen"), name);
      assert(!err.message.endsWith("."), name);
    }
  });

  await t.step("explains the length rule", () => {
    const err = secretError(() => normalizeSecret("x".repeat(12)), "SECRET_WEAK");
    assertEquals(
      err.message,
      "TRUST_ID is too weak: it has 12 characters, at least 32 are required; generate one with `deno run -A client.ts keygen`",
    );
  });

  await t.step("insecureAllowShortSecret lowers the minimum but keeps the character rule", () => {
    const options = { insecureAllowShortSecret: true };
    assertEquals(normalizeSecret(" x\r\n", options), "x");
    secretError(() => normalizeSecret("", options), "SECRET_EMPTY");
    secretError(() => normalizeSecret("a b", options), "SECRET_INVALID");
    secretError(() => normalizeSecret("x".repeat(1025), options), "SECRET_INVALID");
  });

  await t.step("errors never contain the secret", async () => {
    const canary = `canary-${crypto.randomUUID()}`;
    const inputs = [
      canary.slice(0, 20),
      canary + " " + canary,
      canary + "é" + canary,
      canary + "\x07" + canary,
      canary.repeat(30),
      canary.slice(0, 20) + "\x1b",
    ];
    const errors: Error[] = [];
    for (const raw of inputs) {
      errors.push(assertThrows(() => normalizeSecret(raw), SecretError));
    }
    errors.push(await stretchSecret(canary + " ").then(() => new Error("resolved"), (e) => e));
    const parts: string[] = [];
    for (let i = 0; i + 8 <= canary.length; i++) parts.push(canary.slice(i, i + 8));
    for (const err of errors) {
      assert(err instanceof SecretError);
      const text = `${err.message}\n${err.stack}\n${JSON.stringify(err)}`;
      for (const part of parts) assert(!text.includes(part), `leaked: ${err.message}`);
    }
  });
});

Deno.test("stretchSecret()", async (t) => {
  await t.step("matches the golden psk", async () => {
    assertEquals(hex(await stretchSecret(GOLDEN_TRUST_ID)), GOLDEN_PSK);
  });

  await t.step("computes once per distinct secret and returns copies", async () => {
    const secret = generateSecret();
    const subtle = crypto.subtle;
    const original = subtle.deriveBits;
    let derivations = 0;
    subtle.deriveBits = function (...args: Parameters<SubtleCrypto["deriveBits"]>) {
      derivations++;
      return original.apply(this, args);
    };
    try {
      const [a, b, c] = await Promise.all([1, 2, 3].map(() => stretchSecret(secret)));
      assertEquals(derivations, 1);
      assertEquals(a, b);
      assertEquals(b, c);
      a.fill(0);
      const d = await stretchSecret(secret);
      assertEquals(derivations, 1);
      assertEquals(d, b);
      assertEquals(d.length, 32);
      assertNotEquals(hex(d), GOLDEN_PSK);
    } finally {
      Reflect.deleteProperty(subtle, "deriveBits");
    }
    assertEquals(subtle.deriveBits, original);
  });

  await t.step("refuses a secret that is not normalized", async () => {
    for (const raw of ["", GOLDEN_TRUST_ID + "\r", "é".repeat(40), "x".repeat(1025)]) {
      const err = await stretchSecret(raw).then(() => undefined, (e) => e);
      assert(err instanceof SecretError);
      assertEquals(err.code, "SECRET_INVALID");
    }
  });
});

Deno.test("fingerprint()", async (t) => {
  await t.step("is 8 characters of [a-z2-7] and matches the golden value", async () => {
    const fp = await fingerprint(await stretchSecret(GOLDEN_TRUST_ID));
    assertMatch(fp, /^[a-z2-7]{8}$/);
    assertEquals(fp, GOLDEN_FINGERPRINT);
  });

  await t.step("differs between psks and rejects a wrong length", async () => {
    const other = new Uint8Array(32).fill(7);
    assertMatch(await fingerprint(other), /^[a-z2-7]{8}$/);
    assertNotEquals(await fingerprint(other), GOLDEN_FINGERPRINT);
    const err = await fingerprint(new Uint8Array(16)).then(() => undefined, (e) => e);
    assert(err instanceof RangeError);
  });

  await t.step("base32 follows RFC 4648 (lowercase, no padding)", () => {
    const vectors: [string, string][] = [
      ["", ""],
      ["f", "my"],
      ["fo", "mzxq"],
      ["foo", "mzxw6"],
      ["foob", "mzxw6yq"],
      ["fooba", "mzxw6ytb"],
      ["foobar", "mzxw6ytboi"],
    ];
    for (const [input, output] of vectors) {
      assertEquals(base32(new TextEncoder().encode(input)), output);
    }
    assertEquals(base32(new Uint8Array(5).fill(0xff)), "77777777");
  });
});

Deno.test("generateSecret() passes normalizeSecret and differs each time", () => {
  const a = generateSecret();
  const b = generateSecret();
  assertMatch(a, /^[A-Za-z0-9_-]{43}$/);
  assertEquals(normalizeSecret(a), a);
  assertEquals(normalizeSecret(b), b);
  assertNotEquals(a, b);
});
