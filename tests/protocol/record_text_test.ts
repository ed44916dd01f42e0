import { assertEquals } from "@std/assert";
import { RecordText } from "../../protocol/record_text.ts";

const utf8 = new TextDecoder("utf-8", { fatal: true });

Deno.test("RecordText: ASCII payloads come out as their UTF-8 text, whatever bytes surround them", () => {
  // Every byte value, 0x80–0x9F included (windows-1252 maps those to other code points, but
  // still one per byte), between payloads: their offsets must not shift.
  const parts: Uint8Array[] = [];
  const payloads: [number, number][] = [];
  let at = 0;
  for (let i = 0; i < 256; i++) {
    const header = Uint8Array.of(i, 255 - i, 0x80 + (i % 32), 0x9f, 0xc3);
    const payload = new TextEncoder().encode(JSON.stringify({ n: i, s: "x".repeat(i % 50) }));
    parts.push(header, payload);
    payloads.push([at + header.length, payload.length]);
    at += header.length + payload.length;
  }
  const plaintext = new Uint8Array(at);
  let offset = 0;
  for (const p of parts) {
    plaintext.set(p, offset);
    offset += p.length;
  }
  const text = new RecordText(plaintext);
  for (const [start, length] of payloads) {
    const payload = plaintext.subarray(start, start + length);
    assertEquals(text.ascii(start, length), utf8.decode(payload));
  }
});

Deno.test("RecordText: anything else is left to the UTF-8 decoder", () => {
  const enc = new TextEncoder();
  const plaintext = new Uint8Array(4096);
  const accented = enc.encode('"café"');
  plaintext.set(accented, 10);
  plaintext.set(enc.encode('"' + "a".repeat(1100) + '"'), 100);
  const text = new RecordText(plaintext);
  assertEquals(text.ascii(10, accented.length), undefined, "not ASCII");
  assertEquals(text.ascii(100, 1102), undefined, "over 1 KiB");
  const other = new Uint8Array(plaintext.buffer, 0, 50);
  assertEquals(new RecordText(other).ascii(100, 10), undefined, "outside it");
  assertEquals(new RecordText(other).ascii(45, 10), undefined, "running past its end");
  assertEquals(new RecordText(other).ascii(-1, 5), undefined, "before its start");
});
