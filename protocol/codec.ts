/**
 * The value codec: JS values to message payload bytes and back (PROTOCOL.md M.2).
 *
 * A payload is JSON text in UTF-8. When a value holds no `Uint8Array`, the payload is exactly
 * `JSON.stringify(value)` (`null` for `undefined`) and the message's BINARY flag is clear;
 * nothing in such a payload is interpreted.
 *
 * When a value holds one or more `Uint8Array`s (subclasses included), the BINARY flag is set
 * and the payload is:
 *
 * ```
 * u32be json_length ‖ json ‖ (u32be attachment_length ‖ attachment bytes)*
 * ```
 *
 * - Each `Uint8Array` is replaced in the JSON by the placeholder `{"$bin": i}`, where `i` is
 *   the index of its attachment; attachments are numbered 0, 1, … in order of appearance
 *   (depth-first, keys in `JSON.stringify` order) and appear in that order after the JSON.
 * - A user object whose serialized keys are exactly `["$bin"]` or exactly `["$esc"]` is
 *   escaped as `{"$esc": <that object>}`. A decoder unwraps `{"$esc": x}` to `x` without
 *   interpreting `x` itself (its children are still interpreted). So every JSON value
 *   round-trips exactly.
 * - Lengths must fit exactly: missing or trailing bytes are a `PROTOCOL_ERROR`, and so is a
 *   placeholder that is not a sole key `$bin` with an integer index in range, or an attachment
 *   that is not referenced exactly once.
 * - Decoded attachments are `subarray` views into the received payload (no copy): call
 *   `.slice()` to keep one apart from the payload's buffer. A payload that is a view into a
 *   shared slab (the plaintext of a small record, `slab.ts`) gives copies instead.
 *
 * Every payload is decoded with a fatal UTF-8 decoder (`BAD_UTF8`) and its nesting depth is
 * checked by an iterative scan before `JSON.parse` (`TOO_DEEP`, default limit 64). Encoding
 * and decoding walk values iteratively, so deep values never overflow the stack. Decoding
 * never touches `Object.prototype`. This file uses Web APIs only.
 *
 * @module
 */

import { isAscii } from "./bytes.ts";
import { ProtocolError } from "./errors.ts";
import { DEFAULT_MAX_JSON_DEPTH } from "./limits.ts";
import { isSlabBytes } from "./slab.ts";

/** The result of {@link encodeValue}. */
export interface EncodedValue {
  /** The payload bytes. */
  bytes: Uint8Array;
  /** True when the payload has attachments: set the message's BINARY flag. */
  binary: boolean;
}

/** Options of {@link decodeValue}. */
export interface DecodeOptions {
  /** Deepest nesting of arrays and objects accepted (default 64). */
  maxDepth?: number;
}

type Container = unknown[] | Record<string, unknown>;

interface Frame {
  src: Container;
  dst: Container;
  keys: string[] | undefined;
  i: number;
}

interface Walk {
  attachments: Uint8Array[];
  frames: Frame[];
  ancestors: Set<object>;
  /** Copies of user objects that look like a placeholder: escaped when there are attachments. */
  lookAlikes: Set<object>;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const dateToJSON = Date.prototype.toJSON;
const OMIT = Symbol("omit");
/** Deeper values take the full walk, which also detects cycles. */
const SCAN_DEPTH = 1000;
/** Shortest placeholder, `{"$bin":0}`: bounds the number of attachments by the JSON size. */
const MIN_PLACEHOLDER_LENGTH = 10;
const LEAF = 0, NODE = 1, SLOW = 2;
const DATA = { writable: true, enumerable: true, configurable: true };

/**
 * Encodes a value as a message payload.
 *
 * @param value any JSON-serializable value; `Uint8Array`s anywhere travel as raw attachments
 * @returns the payload bytes and whether the BINARY flag must be set
 * @throws {TypeError} for BigInt, cycles, and binary values other than `Uint8Array`
 *
 * @example Encode a call with a binary argument
 * ```ts
 * import { encodeValue } from "@trust/rpc/protocol";
 * const { bytes, binary } = encodeValue({ method: "put", params: [new Uint8Array([1, 2])] });
 * console.log(binary, bytes.length); // true 48
 * ```
 */
export function encodeValue(value: unknown): EncodedValue {
  if (scanIsPlain(value)) {
    return { bytes: encoder.encode(JSON.stringify(value) ?? "null"), binary: false };
  }
  const walk: Walk = { attachments: [], frames: [], ancestors: new Set(), lookAlikes: new Set() };
  const top = convert(walk, value, "");
  const { attachments, frames, lookAlikes } = walk;
  while (frames.length > 0) {
    const f = frames[frames.length - 1];
    if (f.keys === undefined) {
      const src = f.src as unknown[];
      if (f.i < src.length) {
        const i = f.i++;
        const r = convert(walk, src[i], String(i));
        (f.dst as unknown[]).push(r === OMIT ? null : r);
        continue;
      }
    } else if (f.i < f.keys.length) {
      const key = f.keys[f.i++];
      const r = convert(walk, (f.src as Record<string, unknown>)[key], key);
      if (r !== OMIT) setOwn(f.dst, key, r);
      continue;
    }
    frames.pop();
    walk.ancestors.delete(f.src);
    if (f.keys !== undefined && f.keys.length > 0) {
      const keys = Object.keys(f.dst);
      if (keys.length === 1 && (keys[0] === "$bin" || keys[0] === "$esc")) lookAlikes.add(f.dst);
    }
  }
  const root = top === OMIT ? null : top;
  if (attachments.length === 0) {
    return { bytes: encoder.encode(JSON.stringify(root)), binary: false };
  }
  // Each look-alike is wrapped once: the wrapper's own member is then written as is.
  const escape = (_: string, v: unknown) => lookAlikes.delete(v as object) ? { $esc: v } : v;
  const json = encoder.encode(JSON.stringify(root, lookAlikes.size > 0 ? escape : undefined));
  let total = 4 + json.length;
  for (const a of attachments) total += 4 + a.byteLength;
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  view.setUint32(0, json.length);
  out.set(json, 4);
  let offset = 4 + json.length;
  for (const a of attachments) {
    view.setUint32(offset, a.byteLength);
    out.set(a, offset + 4);
    offset += 4 + a.byteLength;
  }
  return { bytes: out, binary: true };
}

/**
 * The payload of `value` as text when it is plain JSON (no `Uint8Array` anywhere), written in
 * ASCII only (JSON escapes nothing above U+007F, so other text is left to {@link encodeValue});
 * `undefined` otherwise. Such a payload's bytes are exactly the text's character codes.
 */
export function plainAsciiJson(value: unknown): string | undefined {
  if (!scanIsPlain(value)) return undefined;
  const text = JSON.stringify(value) ?? "null";
  return NON_ASCII.test(text) ? undefined : text;
}

const NON_ASCII = /[\u0080-\uffff]/;

/**
 * Decodes a message payload.
 *
 * @param bytes the payload
 * @param binary the message's BINARY flag
 * @param options `maxDepth`, the deepest nesting accepted (default 64)
 * @returns the value; attachments are `Uint8Array` views into `bytes`
 * @throws {ProtocolError} `BAD_UTF8` for invalid UTF-8, `TOO_DEEP` for nesting deeper than
 * `maxDepth`, `PROTOCOL_ERROR` for invalid JSON or a malformed binary layout
 *
 * @example Round trip
 * ```ts
 * import { decodeValue, encodeValue } from "@trust/rpc/protocol";
 * const { bytes, binary } = encodeValue({ file: new Uint8Array([1, 2, 3]) });
 * const value = decodeValue(bytes, binary) as { file: Uint8Array };
 * console.log(value.file); // Uint8Array(3) [ 1, 2, 3 ]
 * ```
 */
export function decodeValue(bytes: Uint8Array, binary: boolean, options?: DecodeOptions): unknown {
  const maxDepth = options?.maxDepth ?? DEFAULT_MAX_JSON_DEPTH;
  if (!binary) return parseJson(bytes, maxDepth);
  const fail = (message: string) => new ProtocolError("PROTOCOL_ERROR", message);
  if (bytes.length < 4) throw fail("Binary payload is truncated");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const jsonEnd = 4 + view.getUint32(0);
  if (jsonEnd > bytes.length) throw fail("Binary payload is truncated");
  const maxAttachments = Math.floor((jsonEnd - 4) / MIN_PLACEHOLDER_LENGTH);
  const attachments: Uint8Array[] = [];
  const slab = isSlabBytes(bytes);
  let offset = jsonEnd;
  while (offset < bytes.length) {
    if (bytes.length - offset < 4) throw fail("Binary payload is truncated");
    const length = view.getUint32(offset);
    offset += 4;
    if (length > bytes.length - offset) throw fail("Binary payload is truncated");
    if (attachments.length === maxAttachments) {
      throw fail("Binary payload has more attachments than placeholders");
    }
    // A view keeps the payload's buffer alive; a shared slab (small records) is copied from.
    attachments.push(
      slab ? bytes.slice(offset, offset + length) : bytes.subarray(offset, offset + length),
    );
    offset += length;
  }
  return restore(parseJson(bytes.subarray(4, jsonEnd), maxDepth), attachments);
}

/**
 * Measures the nesting depth of JSON text without parsing it: counts `[` and `{` outside
 * strings, iteratively. Stops as soon as the depth exceeds `limit`.
 *
 * @param text JSON text (need not be valid)
 * @param limit stop once the depth exceeds this (default: no limit)
 * @returns the deepest nesting seen, or a number above `limit` once the limit is exceeded
 */
export function maxJsonDepth(text: string, limit: number = Infinity): number {
  let depth = 0;
  let max = 0;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      // Skip the string: find the next quote not escaped by an odd run of backslashes.
      for (;;) {
        const q = text.indexOf('"', i + 1);
        if (q < 0) return max;
        let b = q - 1;
        while (text.charCodeAt(b) === 0x5c) b--;
        i = q;
        if ((q - 1 - b) % 2 === 0) break;
      }
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) {
        max = depth;
        if (max > limit) return max;
      }
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    }
  }
  return max;
}

/**
 * Payloads up to this size are checked for plain ASCII here and then decoded without the fatal
 * decoder: Deno's fatal `TextDecoder` takes a slow op (~0.6 µs for 100 bytes, several in a busy
 * server), its non-fatal one is V8's own (~0.2 µs), and on ASCII bytes both give the same text.
 */
const SHORT_PAYLOAD = 1024;
/** Decodes bytes already known to be ASCII (never sees a malformed sequence). */
const asciiDecoder = new TextDecoder();

function parseJson(bytes: Uint8Array, maxDepth: number): unknown {
  let text = bytes.length <= SHORT_PAYLOAD ? asciiText(bytes) : undefined;
  if (text === undefined) {
    try {
      text = decoder.decode(bytes);
    } catch {
      throw new ProtocolError("BAD_UTF8", "Payload is not valid UTF-8");
    }
  }
  return parseJsonText(text, maxDepth);
}

/** The text of all-ASCII bytes (their UTF-8 text: one character per byte), else `undefined`. */
function asciiText(bytes: Uint8Array): string | undefined {
  return isAscii(bytes) ? asciiDecoder.decode(bytes) : undefined;
}

/**
 * Decodes a JSON payload (no BINARY flag) already turned into text, with the same checks as
 * {@link decodeValue}.
 *
 * @param text the payload's UTF-8 text
 * @param maxDepth the deepest nesting accepted
 * @throws {ProtocolError} `TOO_DEEP`, or `PROTOCOL_ERROR` for invalid JSON
 */
export function parseJsonText(text: string, maxDepth: number = DEFAULT_MAX_JSON_DEPTH): unknown {
  // Valid JSON deeper than maxDepth needs at least 2 × (maxDepth + 1) characters.
  if (text.length > 2 * maxDepth && maxJsonDepth(text, maxDepth) > maxDepth) {
    throw new ProtocolError("TOO_DEEP", `JSON nesting is deeper than ${maxDepth} levels`);
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new ProtocolError("PROTOCOL_ERROR", "Payload is not valid JSON");
  }
}

/** Replaces placeholders by attachments and unwraps escapes, iteratively and in place. */
function restore(root: unknown, attachments: Uint8Array[]): unknown {
  const used = new Uint8Array(attachments.length);
  const box: unknown[] = [root];
  const stack: Container[] = [box];
  while (stack.length > 0) {
    const c = stack.pop()!;
    const keys = Array.isArray(c) ? undefined : Object.keys(c);
    const n = keys === undefined ? (c as unknown[]).length : keys.length;
    for (let i = 0; i < n; i++) {
      const at = keys === undefined ? i : keys[i];
      const v = (c as Record<string, unknown>)[at];
      if (typeof v !== "object" || v === null) continue;
      const own = Array.isArray(v) ? undefined : Object.keys(v);
      if (own === undefined || own.length !== 1 || (own[0] !== "$bin" && own[0] !== "$esc")) {
        stack.push(v as Container);
      } else if (own[0] === "$esc") {
        const x = (v as Record<string, unknown>).$esc;
        setOwn(c, at, x);
        if (typeof x === "object" && x !== null) stack.push(x as Container);
      } else {
        const index = (v as Record<string, unknown>).$bin;
        if (typeof index !== "number" || !Number.isInteger(index)) {
          throw new ProtocolError("PROTOCOL_ERROR", "Attachment placeholder is invalid");
        }
        if (index < 0 || index >= attachments.length) {
          throw new ProtocolError("PROTOCOL_ERROR", `Attachment index ${index} is out of range`);
        }
        if (used[index]++) {
          throw new ProtocolError("PROTOCOL_ERROR", `Attachment ${index} is referenced twice`);
        }
        setOwn(c, at, attachments[index]);
      }
    }
  }
  const unused = used.indexOf(0);
  if (unused >= 0) {
    throw new ProtocolError("PROTOCOL_ERROR", `Attachment ${unused} is never referenced`);
  }
  return box[0];
}

/** Sets an own data property without ever calling an inherited `__proto__` setter. */
function setOwn(target: Container, key: string | number, value: unknown): void {
  if (key === "__proto__") {
    Object.defineProperty(target, key, { ...DATA, value });
  } else {
    (target as Record<string | number, unknown>)[key] = value;
  }
}

/** Classifies a value for the fast scan: a leaf, a container to scan, or one for the walk. */
function kindOf(v: unknown): number {
  if (typeof v !== "object" || v === null) return typeof v === "bigint" ? SLOW : LEAF;
  if (Array.isArray(v)) return NODE;
  if (ArrayBuffer.isView(v)) return SLOW;
  const toJSON = (v as { toJSON?: unknown }).toJSON;
  if (typeof toJSON === "function") return toJSON === dateToJSON ? LEAF : SLOW;
  return isArrayBuffer(v) ? SLOW : NODE;
}

/** True when `JSON.stringify(value)` alone is the right encoding (no binary, no toJSON). */
function scanIsPlain(value: unknown): boolean {
  const kind = kindOf(value);
  if (kind !== NODE) return kind === LEAF;
  const stack: unknown[] = [value, 0];
  while (stack.length > 0) {
    const depth = stack.pop() as number;
    const node = stack.pop() as Container;
    if (depth > SCAN_DEPTH) return false;
    if (Array.isArray(node)) {
      for (let i = 0; i < node.length; i++) {
        const k = kindOf(node[i]);
        if (k === SLOW) return false;
        if (k === NODE) stack.push(node[i], depth + 1);
      }
    } else {
      for (const key in node) {
        const v = node[key];
        const k = kindOf(v);
        if (k === SLOW) return false;
        if (k === NODE) stack.push(v, depth + 1);
      }
    }
  }
  return true;
}

/** Resolves one value as `JSON.stringify` would; containers get a frame and a fresh copy. */
function convert(walk: Walk, v: unknown, key: string): unknown {
  const toJSONable = (typeof v === "object" && v !== null) || typeof v === "function" ||
    typeof v === "bigint";
  if (toJSONable && !(v instanceof Uint8Array)) {
    const toJSON = (v as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === "function") v = toJSON.call(v, key);
  }
  if (typeof v === "bigint" || v instanceof BigInt) {
    throw new TypeError("Cannot encode a BigInt: convert it to a string or a number first");
  }
  if (typeof v !== "object" || v === null) {
    return typeof v === "function" || typeof v === "symbol" || v === undefined ? OMIT : v;
  }
  if (v instanceof Uint8Array) return { $bin: walk.attachments.push(v) - 1 };
  if (ArrayBuffer.isView(v) || isArrayBuffer(v)) {
    const name = Object.prototype.toString.call(v).slice(8, -1);
    throw new TypeError(`Cannot encode a ${name}: pass a Uint8Array instead`);
  }
  if (v instanceof Number) return Number(v);
  if (v instanceof String) return String(v);
  if (v instanceof Boolean) return v.valueOf();
  if (walk.ancestors.has(v)) throw new TypeError("Cannot encode a value that contains a cycle");
  walk.ancestors.add(v);
  const isArray = Array.isArray(v);
  const dst: Container = isArray ? [] : {};
  walk.frames.push({ src: v as Container, dst, keys: isArray ? undefined : Object.keys(v), i: 0 });
  return dst;
}

function isArrayBuffer(v: object): boolean {
  return v instanceof ArrayBuffer ||
    (typeof SharedArrayBuffer !== "undefined" && v instanceof SharedArrayBuffer);
}
