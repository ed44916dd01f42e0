/**
 * The value codec against plain JSON: `deno bench bench/codec_bench.ts`.
 *
 * @module
 */

import { decodeValue, encodeValue } from "../protocol/codec.ts";

const call = { method: "echo", params: ["x".repeat(64)] };
const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const callBytes = encoder.encode(JSON.stringify(call));
const blob = { method: "put", params: [crypto.getRandomValues(new Uint8Array(65536)).slice()] };
const mib = new Uint8Array(1 << 20).map((_, i) => i * 31);
const mibPayload = encodeValue({ method: "put", params: [mib] });
let sink: unknown;

Deno.bench("JSON.stringify + TextEncoder (small call)", { group: "encode", baseline: true }, () => {
  sink = encoder.encode(JSON.stringify(call));
});
Deno.bench("encodeValue (small call)", { group: "encode" }, () => {
  sink = encodeValue(call);
});

Deno.bench("TextDecoder + JSON.parse (small call)", { group: "decode", baseline: true }, () => {
  sink = JSON.parse(decoder.decode(callBytes));
});
Deno.bench("decodeValue (small call)", { group: "decode" }, () => {
  sink = decodeValue(callBytes, false);
});

Deno.bench("encodeValue (64 KiB Uint8Array)", { group: "binary" }, () => {
  sink = encodeValue(blob);
});
Deno.bench("encodeValue (1 MiB Uint8Array)", { group: "binary" }, () => {
  sink = encodeValue({ method: "put", params: [mib] });
});
Deno.bench("decodeValue (1 MiB Uint8Array)", { group: "binary" }, () => {
  sink = decodeValue(mibPayload.bytes, true);
});
Deno.bench("round trip (1 MiB Uint8Array)", { group: "binary" }, () => {
  const { bytes, binary } = encodeValue({ method: "put", params: [mib] });
  sink = decodeValue(bytes, binary);
});

globalThis.addEventListener("unload", () => void sink);
