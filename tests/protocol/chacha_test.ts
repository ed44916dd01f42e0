/**
 * ChaCha20-Poly1305 for small records: our implementation against the RFC 8439 vectors and,
 * on random inputs, against `@noble/ciphers` (a test-only dependency); the handshake
 * negotiation (both must want it); and the record layer (small MESSAGES records on type 0x11,
 * large ones and KEY_UPDATE on AES-GCM; a flipped type byte is BAD_RECORD).
 */
import { assert, assertEquals, assertRejects, assertThrows } from "@std/assert";
import { concatBytes, fromHex, toHex } from "../../protocol/bytes.ts";
import { ChaCha20Poly1305, poly1305 } from "../../protocol/chacha20poly1305.ts";
import { chacha20poly1305 as nobleChaCha } from "npm:@noble/ciphers@2.4.0/chacha.js";
import { poly1305 as noblePoly1305 } from "npm:@noble/ciphers@2.4.0/_poly1305.js";
import { FrameType, HEADER_SIZE } from "../../protocol/frame.ts";
import {
  CHACHA_MAX_PLAINTEXT,
  RecordOpener,
  RecordSealer,
  SPLIT_WRITE_BYTES,
} from "../../protocol/record.ts";
import { ProtocolError } from "../../protocol/errors.ts";
import { sessionPair } from "../_session_pair.ts";

const RFC8439_PLAINTEXT = "Ladies and Gentlemen of the class of '99: If I could offer you only " +
  "one tip for the future, sunscreen would be it.";

Deno.test("ChaCha20-Poly1305: RFC 8439 §2.8.2 AEAD vector", () => {
  const key = new ChaCha20Poly1305(
    fromHex("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"),
  );
  const nonce = fromHex("070000004041424344454647");
  const aad = fromHex("50515253c0c1c2c3c4c5c6c7");
  const plaintext = new TextEncoder().encode(RFC8439_PLAINTEXT);
  const sealed = new Uint8Array(plaintext.length + 16);
  key.sealInto(nonce, aad, plaintext, sealed);
  assertEquals(
    toHex(sealed),
    "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6" +
      "3dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b36" +
      "92ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc" +
      "3ff4def08e4b7a9de576d26586cec64b6116" + "1ae10b594f09e26a7e902ecbd0600691",
  );
  assertEquals(new TextDecoder().decode(key.open(nonce, aad, sealed)), RFC8439_PLAINTEXT);
  const tampered = sealed.slice();
  tampered[5] ^= 1;
  assertThrows(() => key.open(nonce, aad, tampered));
  assertThrows(() => key.open(nonce, fromHex("50515253c0c1c2c3c4c5c6c8"), sealed));
});

Deno.test("ChaCha20-Poly1305: an empty message (the tag over the length block alone)", () => {
  // §2.8.2's key and nonce with an empty plaintext and empty AAD: the tag is Poly1305 over the
  // length block alone; cross-checked with the independent implementation below.
  const key = fromHex("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f");
  const nonce = fromHex("070000004041424344454647");
  const ours = new ChaCha20Poly1305(key).seal(nonce, new Uint8Array(0), new Uint8Array(0));
  assertEquals(toHex(ours), toHex(nobleChaCha(key, nonce).encrypt(new Uint8Array(0))));
});

Deno.test("ChaCha20-Poly1305: equal to @noble/ciphers on 2,000 random inputs", () => {
  for (let i = 0; i < 2000; i++) {
    const key = crypto.getRandomValues(new Uint8Array(32));
    const nonce = crypto.getRandomValues(new Uint8Array(12));
    const aad = crypto.getRandomValues(new Uint8Array(i % 41));
    const plaintext = crypto.getRandomValues(new Uint8Array((i * 7) % 1100));
    if (i % 5 === 0) plaintext.fill(0xff); // all-ones blocks push Poly1305's carries
    const ours = new ChaCha20Poly1305(key);
    const sealed = ours.seal(nonce, aad, plaintext);
    const reference = nobleChaCha(key, nonce, aad).encrypt(plaintext);
    if (toHex(sealed) !== toHex(reference)) {
      throw new Error(`Mismatch at input ${i} (${plaintext.length} bytes, aad ${aad.length})`);
    }
    assertEquals(ours.open(nonce, aad, reference), plaintext);
  }
});

const IETF_TEXT = "Any submission to the IETF intended by the Contributor for publication as " +
  "all or part of an IETF Internet-Draft or RFC and any statement made within the context of " +
  'an IETF activity is considered an "IETF Contribution". Such statements include oral ' +
  "statements in IETF sessions, as well as written and electronic communications made at any " +
  "time or place, which are addressed to";

Deno.test("Poly1305: RFC 8439 §2.5.2 and Appendix A.3 vectors #1-#11", () => {
  const text = (s: string) => toHex(new TextEncoder().encode(s));
  const zeros = (n: number) => "00".repeat(n);
  // [one-time key, message, tag], all hex: §2.5.2's, then A.3's #1-#11 (at their own index);
  // #5-#11 aim at the final reduction and carries.
  const vectors: [string, string, string][] = [
    [
      "85d6be7857556d337f4452fe42d506a80103808afb0db2fd4abff6af4149f51b",
      text("Cryptographic Forum Research Group"),
      "a8061dc1305136c6c22b8baf0c0127a9",
    ],
    [zeros(32), zeros(64), zeros(16)], // #1
    [
      zeros(16) + "36e5f6b5c5e06070f0efca96227a863e",
      text(IETF_TEXT),
      "36e5f6b5c5e06070f0efca96227a863e",
    ],
    [
      "36e5f6b5c5e06070f0efca96227a863e" + zeros(16),
      text(IETF_TEXT),
      "f3477e7cd95417af89a6b8794c310cf0",
    ],
    [
      "1c9240a5eb55d38af333888604f6b5f0473917c1402b80099dca5cbc207075c0",
      text(
        "'Twas brillig, and the slithy toves\nDid gyre and gimble in the wabe:\n" +
          "All mimsy were the borogoves,\nAnd the mome raths outgrabe.",
      ),
      "4541669a7eaaee61e708dc7cbcc5eb62",
    ],
    // #5: a partly reduced h that is not fully reduced (h ≥ p).
    ["02" + zeros(31), "ff".repeat(16), "03" + zeros(15)],
    // #6: adding s wraps past 2^128.
    ["02" + zeros(15) + "ff".repeat(16), "02" + zeros(15), "03" + zeros(15)],
    // #7: an all-ones limb with a carry from below.
    [
      "01" + zeros(31),
      "ff".repeat(16) + "f0" + "ff".repeat(15) + "11" + zeros(15),
      "05" + zeros(15),
    ],
    // #8: h is exactly p.
    ["01" + zeros(31), "ff".repeat(16) + "fb" + "fe".repeat(15) + "01".repeat(16), zeros(16)],
    // #9: h is exactly p − 1.
    ["02" + zeros(31), "fd" + "ff".repeat(15), "fa" + "ff".repeat(15)],
    // #10 and #11: the ×5 fold of the top bits gives a 131-bit value (mid-way, then at the end).
    [
      "01" + zeros(7) + "04" + zeros(23),
      "e33594d7505e43b9" + zeros(8) + "3394d7505e4379cd01" + zeros(23) + "01" + zeros(15),
      "1400000000000000" + "5500000000000000",
    ],
    [
      "01" + zeros(7) + "04" + zeros(23),
      "e33594d7505e43b9" + zeros(8) + "3394d7505e4379cd01" + zeros(23),
      "13" + zeros(15),
    ],
  ];
  for (const [i, [key, message, tag]] of vectors.entries()) {
    assertEquals(toHex(poly1305(fromHex(key), fromHex(message))), tag, `vector ${i}`);
  }
  assertThrows(() => poly1305(new Uint8Array(16), new Uint8Array(0)), RangeError);
});

Deno.test("Poly1305: equal to @noble/ciphers where carries and the reduction are tight", () => {
  const check = (key: Uint8Array, message: Uint8Array, what: string) => {
    const ours = toHex(poly1305(key, message));
    const reference = toHex(noblePoly1305(message, key));
    if (ours !== reference) throw new Error(`Mismatch: ${what}, ${message.length} bytes`);
  };
  const key = (r: number | Uint8Array, s: number | Uint8Array) => {
    const k = new Uint8Array(32);
    if (typeof r === "number") k.fill(r, 0, 16);
    else k.set(r);
    if (typeof s === "number") k.fill(s, 16);
    else k.set(s, 16);
    return k;
  };
  const random = (n: number) => crypto.getRandomValues(new Uint8Array(n));
  // r clamped from all ones (its largest limbs), s all ones (h + s wraps 2^128), empty to 64
  // bytes of all-ones or random messages.
  for (let n = 0; n <= 64; n++) {
    const ones = new Uint8Array(n).fill(0xff);
    check(key(0xff, 0xff), ones, "r, s and message all ones");
    check(key(0xff, 0), ones, "r and message all ones");
    check(key(0xff, 0xff), random(n), "r and s all ones");
    check(key(random(16), 0xff), ones, "s and message all ones");
    check(key(random(16), random(16)), random(n), "random");
  }
  // Longer all-ones messages keep the accumulator's limbs at their largest block after block.
  for (const n of [127, 128, 129, 1000, 1024]) {
    check(key(0xff, 0xff), new Uint8Array(n).fill(0xff), "all ones");
  }
  // With r = 1 two full blocks sum to h = m1 + m2 + 2^129: m1 all ones and m2 = 2^128 − 4 + δ
  // leave h = p + δ, just below, at or just above p (δ = −4…3).
  for (let delta = -4; delta <= 3; delta++) {
    const message = new Uint8Array(32).fill(0xff);
    message[16] = 0xfc + delta;
    check(key(fromHex("01"), 0), message, `h = p ${delta < 0 ? "-" : "+"} ${Math.abs(delta)}`);
    check(
      key(fromHex("01"), 0xff),
      message,
      `h = p ${delta < 0 ? "-" : "+"} ${Math.abs(delta)}, s all ones`,
    );
  }
});

Deno.test("ChaCha20-Poly1305: a key kept in a view of a larger buffer", () => {
  const key = crypto.getRandomValues(new Uint8Array(32));
  const nonce = crypto.getRandomValues(new Uint8Array(12));
  const plaintext = new Uint8Array(300).fill(5);
  const buffer = new Uint8Array(48).fill(0xaa);
  const inView = new ChaCha20Poly1305(key, new Uint32Array(buffer.buffer, 8, 8));
  assertEquals(
    inView.seal(nonce, new Uint8Array(0), plaintext),
    new ChaCha20Poly1305(key).seal(nonce, new Uint8Array(0), plaintext),
  );
  assertEquals([...buffer.subarray(0, 8), ...buffer.subarray(40)], new Array(16).fill(0xaa));
  assertThrows(() => new ChaCha20Poly1305(key, new Uint32Array(4)), RangeError);
});

Deno.test("ChaCha20-Poly1305: a changed byte anywhere fails to open", () => {
  const cipher = new ChaCha20Poly1305(crypto.getRandomValues(new Uint8Array(32)));
  const nonce = crypto.getRandomValues(new Uint8Array(12));
  const aad = new Uint8Array([1, 2, 3]);
  const sealed = cipher.seal(nonce, aad, new Uint8Array(70).fill(9));
  for (let i = 0; i < sealed.length; i++) {
    const bad = sealed.slice();
    bad[i] ^= 0x80;
    assertThrows(() => cipher.open(nonce, aad, bad));
  }
  assertThrows(() => cipher.open(nonce, new Uint8Array([1, 2, 4]), sealed));
  assertThrows(() => cipher.open(nonce, aad, sealed.subarray(0, 10)));
});

Deno.test("records: small MESSAGES on ChaCha20-Poly1305, the rest on AES-GCM", async (t) => {
  const key = crypto.getRandomValues(new Uint8Array(32));
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const sealer = new RecordSealer(key, iv, { records: 3 }, true);
  const opener = new RecordOpener(key, iv, true);
  const open = async (frame: Uint8Array) => {
    const header = frame.subarray(0, HEADER_SIZE);
    const seq = Number(new DataView(header.buffer, header.byteOffset).getBigUint64(8));
    opener.accept(seq);
    return await opener.open(seq, header.slice(), frame.subarray(HEADER_SIZE));
  };

  await t.step("the type byte says which AEAD sealed the record", async () => {
    const small = new Uint8Array(CHACHA_MAX_PLAINTEXT).fill(7);
    const large = new Uint8Array(CHACHA_MAX_PLAINTEXT + 1).fill(8);
    const a = await sealer.seal(FrameType.MESSAGES, small);
    const b = await sealer.seal(FrameType.MESSAGES, large);
    const c = await sealer.seal(FrameType.ALERT, new Uint8Array(4));
    const d = await sealer.seal(FrameType.KEY_UPDATE, new Uint8Array(0));
    assertEquals(
      [a[3], b[3], c[3], d[3]],
      [FrameType.MESSAGES_CHACHA, FrameType.MESSAGES, FrameType.ALERT_CHACHA, 0x30],
    );
    assertEquals(await open(a), small);
    assertEquals(await open(b), large);
    assertEquals(await open(c), new Uint8Array(4));
    assertEquals(await open(d), new Uint8Array(0));
  });

  await t.step(
    "a large AES-GCM record comes back as header and body, to be written in turn",
    async () => {
      const big = new Uint8Array(SPLIT_WRITE_BYTES).fill(3);
      const parts = await sealer.sealParts(FrameType.MESSAGES, big);
      if (parts instanceof Uint8Array) throw new Error("a large record should come back split");
      assertEquals(parts[0].length, HEADER_SIZE);
      assertEquals(parts[1].length, big.length + 16);
      assertEquals(await open(concatBytes(parts[0], parts[1])), big);
      const small = await sealer.sealParts(
        FrameType.MESSAGES,
        new Uint8Array(CHACHA_MAX_PLAINTEXT + 1),
      );
      if (!(small instanceof Uint8Array)) throw new Error("a smaller record should be one frame");
      assertEquals((await open(small)).length, CHACHA_MAX_PLAINTEXT + 1);
    },
  );

  await t.step("both keys renew on KEY_UPDATE", async () => {
    assert(sealer.needsKeyUpdate);
    const update = await sealer.sealKeyUpdate();
    await open(update);
    await opener.rotate();
    const after = await sealer.seal(FrameType.MESSAGES, new Uint8Array([1, 2, 3]));
    assertEquals(after[3], FrameType.MESSAGES_CHACHA);
    assertEquals(await open(after), new Uint8Array([1, 2, 3]));
    // A sealer still on the first key, at the same sequence number, is refused.
    const stale = new RecordSealer(key, iv, {}, true);
    stale.seq = sealer.seq;
    const old = await stale.seal(FrameType.MESSAGES, new Uint8Array([1, 2, 3]));
    await assertRejects(() => open(old), ProtocolError, "failed authentication");
    sealer.seq++; // the opener counted the refused record
  });

  await t.step("a flipped type byte (and so AEAD) fails authentication", async () => {
    const frame = await sealer.seal(FrameType.MESSAGES, new Uint8Array([9]));
    frame[3] = FrameType.MESSAGES;
    let err: unknown;
    try {
      await open(frame);
    } catch (e) {
      err = e;
    }
    assert(err instanceof ProtocolError && err.code === "BAD_RECORD", String(err));
  });

  await t.step("a ChaCha record where it was not negotiated is PROTOCOL_ERROR", async () => {
    const plainSealer = new RecordSealer(key, iv, {}, true);
    const aesOnly = new RecordOpener(key, iv, false);
    for (const [seq, type] of [[0, FrameType.MESSAGES], [1, FrameType.ALERT]]) {
      const frame = await plainSealer.seal(type, new Uint8Array([1, 2]));
      assertEquals(frame[3], type === FrameType.ALERT ? 0x7e : 0x11);
      aesOnly.accept(seq);
      let err: unknown;
      try {
        await aesOnly.open(seq, frame.slice(0, HEADER_SIZE), frame.subarray(HEADER_SIZE));
      } catch (e) {
        err = e;
      }
      assert(err instanceof ProtocolError && err.code === "PROTOCOL_ERROR", String(err));
    }
  });
});

Deno.test("negotiation: ChaCha20-Poly1305 only when both sides want it", async (t) => {
  for (
    const [server, client, expected] of [
      [undefined, undefined, true],
      [false, undefined, false],
      [undefined, false, false],
      [false, false, false],
    ] as const
  ) {
    await t.step(`server ${server ?? "default"}, client ${client ?? "default"}`, async () => {
      await using pair = await sessionPair({
        serverChaCha: server,
        clientChaCha: client,
        serverMethods: { echo: (x: unknown) => x },
      });
      assertEquals(pair.chacha, expected);
      assertEquals(await pair.client.call("echo", ["small"]), "small");
      const big = "x".repeat(100_000);
      assertEquals(await pair.client.call("echo", [big]), big);
      // What crossed the wire after the handshake: record types 0x10 / 0x11.
      const types = new Set(pair.clientEnd.written.slice(1).map((w) => w[3]));
      assertEquals(types.has(FrameType.MESSAGES_CHACHA), expected);
      assert(types.has(FrameType.MESSAGES), "large records stay on AES-GCM");
    });
  }
});

Deno.test("ChaCha20Poly1305: in-place sealing and opening at offsets match seal() and open()", () => {
  const cipher = new ChaCha20Poly1305(crypto.getRandomValues(new Uint8Array(32)));
  for (const length of [0, 1, 15, 16, 63, 64, 65, 200]) {
    const nonce = crypto.getRandomValues(new Uint8Array(12));
    const aad = crypto.getRandomValues(new Uint8Array(20));
    const plaintext = crypto.getRandomValues(new Uint8Array(length));
    const sealed = cipher.seal(nonce, aad, plaintext);
    // A frame: aad, then the plaintext, then room for the tag; sealed where it lies.
    const frame = new Uint8Array(20 + length + 16);
    frame.set(aad);
    frame.set(plaintext, 20);
    cipher.sealFrame(nonce, frame, 20);
    assertEquals(frame.subarray(20), sealed);
    assertEquals(frame.subarray(0, 20), aad);
    // Opened from inside a larger buffer, into a given output.
    const buffer = new Uint8Array(5 + frame.length + 3);
    buffer.set(frame, 5);
    const out = new Uint8Array(length);
    const opened = cipher.openAt(nonce, buffer, 5, 20, buffer, 25, length + 16, out);
    assertEquals(opened, plaintext);
    assert(opened === out, "the given output is used");
    assertEquals(cipher.openAt(nonce, buffer, 5, 20, buffer, 25, length + 16), plaintext);
    buffer[5] ^= 1; // the aad
    assertThrows(() => cipher.openAt(nonce, buffer, 5, 20, buffer, 25, length + 16));
    buffer[5] ^= 1;
    buffer[25 + length] ^= 1; // the tag
    assertThrows(() => cipher.openAt(nonce, buffer, 5, 20, buffer, 25, length + 16));
  }
  assertThrows(() => cipher.sealFrame(new Uint8Array(12), new Uint8Array(30), 20), RangeError);
});
