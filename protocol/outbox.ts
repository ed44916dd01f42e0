/**
 * Values to messages on their way out: encodes a value once, enforces the message size
 * limit, and compresses payloads when asked (per call, or for the whole connection) — in
 * order: while a payload is being compressed, later messages wait behind it, so the peer
 * sees them in the order they were sent.
 *
 * @module
 */

import { encodeValue, plainAsciiJson } from "./codec.ts";
import { DEFAULT_COMPRESSION_THRESHOLD, deflateRaw, shouldCompress } from "./compression.ts";
import { errorToWire, ResourceExhaustedError } from "./errors.ts";
import { Flag, Kind } from "./messages.ts";
import type { SendQueue } from "./send_queue.ts";

/** Plain JSON up to this many characters is written into records as text. */
const MAX_TEXT_MESSAGE = 16 * 1024;

/** Connection-wide compression: on (default threshold) or with a threshold in bytes. */
export type CompressionOption = boolean | { threshold?: number };

/** Encoding, the size limit and optional compression in front of a {@link SendQueue}. */
export class Outbox {
  #queue: SendQueue;
  #maxMessageSize: number;
  #always: boolean;
  #threshold: number;
  #tail: Promise<void> = Promise.resolve();
  #waiting = 0;

  /**
   * @param queue the session's send queue
   * @param maxMessageSize the largest payload sent
   * @param compression compress everything at or above a threshold (off by default)
   */
  constructor(queue: SendQueue, maxMessageSize: number, compression: CompressionOption = false) {
    this.#queue = queue;
    this.#maxMessageSize = maxMessageSize;
    this.#always = compression !== false;
    this.#threshold = typeof compression === "object"
      ? compression.threshold ?? DEFAULT_COMPRESSION_THRESHOLD
      : DEFAULT_COMPRESSION_THRESHOLD;
  }

  /**
   * Encodes `value` and queues it. Throws when the value cannot be encoded or is larger than
   * the message limit (`what` names it in the error).
   */
  value(kind: number, id: number, value: unknown, compress = false, what = "message"): void {
    if (!compress && !this.#always && this.#waiting === 0) {
      // Plain ASCII JSON goes into the record as text: no buffer of its own.
      const text = plainAsciiJson(value);
      if (text !== undefined && text.length <= MAX_TEXT_MESSAGE) {
        if (text.length > this.#maxMessageSize) this.#tooLarge(what, text.length);
        this.#queue.pushText(kind, 0, id, text);
        return;
      }
    }
    const encoded = encodeValue(value);
    if (encoded.bytes.length > this.#maxMessageSize) this.#tooLarge(what, encoded.bytes.length);
    this.bytes(kind, encoded.binary ? Flag.BINARY : 0, id, encoded.bytes, compress);
  }

  #tooLarge(what: string, size: number): never {
    throw new ResourceExhaustedError(
      `The ${what} of ${size} bytes exceeds the ${this.#maxMessageSize}-byte message limit`,
    );
  }

  /**
   * Queues an answer (RESPONSE, STREAM_END or ERROR). Never throws: a value that cannot be
   * encoded, or is too large, is answered with an ERROR instead.
   */
  answer(kind: number, id: number, value: unknown, compress = false): void {
    const what = kind === Kind.ERROR ? "error" : "result";
    try {
      this.value(kind, id, value, compress, what);
    } catch (err) {
      const wire = err instanceof ResourceExhaustedError ? errorToWire(err) : {
        code: "INTERNAL",
        name: "RpcError",
        message: `The ${what} could not be encoded: ${err instanceof Error ? err.message : err}`,
      };
      this.value(Kind.ERROR, id, { code: wire.code, name: wire.name, message: wire.message });
    }
  }

  /** Queues a payload, compressing it first when asked and worth it. */
  bytes(kind: number, flags: number, id: number, payload: Uint8Array, compress = false): void {
    const squeeze = (compress || this.#always) && shouldCompress(payload.length, this.#threshold);
    if (!squeeze && this.#waiting === 0) return this.#queue.push(kind, flags, id, payload);
    this.#waiting++;
    this.#tail = this.#tail.then(async () => {
      let out = payload;
      let outFlags = flags;
      if (squeeze) {
        try {
          const deflated = await deflateRaw(payload);
          if (deflated.length < payload.length) {
            out = deflated;
            outFlags |= Flag.COMPRESSED;
          }
        } catch {
          // Sent as it is.
        }
      }
      this.#waiting--;
      this.#queue.push(kind, outFlags, id, out);
    });
  }

  /** True when nothing waits to be compressed or written (checked without waiting). */
  get isDrained(): boolean {
    return this.#waiting === 0 && this.#queue.isDrained;
  }

  /** Resolves when everything queued so far has been handed to the send queue and written. */
  async drained(): Promise<void> {
    await this.#tail;
    await this.#queue.drained();
  }
}
