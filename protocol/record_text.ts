/**
 * The small plain-ASCII payloads of one record as strings, from a single decode of the whole
 * record. A record of stream chunks or pipelined calls carries hundreds of small JSON
 * payloads, and a `TextDecoder` call per payload costs ~0.7 µs in Deno, most of a small
 * message's receive cost. Decoding the record once, byte for byte (`latin1`: one UTF-16 code
 * unit per byte, whatever the byte), lines its string up with its bytes; the substring of an
 * all-ASCII payload is then exactly that payload's UTF-8 text.
 *
 * @module
 */

import { isAscii } from "./bytes.ts";

const BYTE_PER_CHAR = new TextDecoder("latin1");

/** Payloads above this are decoded on their own (checking them byte by byte costs more). */
const MAX_PAYLOAD = 1024;

/** The text of a record's small ASCII payloads, decoded on first use. */
export class RecordText {
  #plaintext: Uint8Array;
  #text: string | undefined;

  /** @param plaintext the record's plaintext */
  constructor(plaintext: Uint8Array) {
    this.#plaintext = plaintext;
  }

  /**
   * The record's bytes `[start, start + length)` as text, when they are at most 1 KiB and
   * plain ASCII; `undefined` otherwise (decode them as UTF-8 then).
   */
  ascii(start: number, length: number): string | undefined {
    const plaintext = this.#plaintext;
    if (length > MAX_PAYLOAD || start < 0 || start + length > plaintext.length) return undefined;
    if (!isAscii(plaintext, start, start + length)) return undefined;
    this.#text ??= BYTE_PER_CHAR.decode(plaintext);
    return this.#text.substring(start, start + length);
  }
}
