/**
 * The single ordered send queue of a session (PROTOCOL.md §2, §8, M.3). Everything queued in
 * the same turn of the event loop leaves as one record: one AES-GCM call and one `write()`.
 * Messages larger than the peer's `max_frame` leave in MORE pieces, one piece per record, with
 * small messages packed in front of each piece, so a 16 MiB transfer never blocks a small
 * call. Messages of the same call or stream keep their order.
 *
 * @module
 */

import { type ByteChannel, writeHeadAndBody } from "./channel.ts";
import { Deadlines } from "./deadlines.ts";
import { FrameType, HEADER_SIZE, TAG_SIZE } from "./frame.ts";
import { DEFAULT_WRITE_STALL_TIMEOUT } from "./limits.ts";
import { Flag, Kind, MESSAGE_HEADER_SIZE, writeMessageHeader } from "./messages.ts";
import type { RecordSealer, SealedRecord } from "./record.ts";
import { WriteStallWatch } from "./write_stall.ts";

interface Outgoing {
  kind: number;
  flags: number;
  id: number;
  payload: Uint8Array;
  /** ASCII text written straight into the record instead of `payload` (small messages). */
  text: string | undefined;
  /** Payload bytes (`payload.length`, or the text's length). */
  length: number;
  /** Bytes of the payload already sent (pieces). */
  sent: number;
  /** Messages with the same key keep their order; undefined never waits. */
  key: number | undefined;
}

/** A bulk piece smaller than this is not squeezed into a record's leftover space. */
const MIN_PIECE = 1024;
/**
 * The largest piece of a bulk message per record. Sealing a record is one AES-GCM call, and a
 * small call queued behind it waits for that call and for the peer to open it: 256 KiB pieces
 * keep that wait near a millisecond while costing a few percent of bulk throughput.
 */
export const MAX_BULK_PIECE = 256 * 1024;
/** Record plaintexts from this size up are built in a reused buffer. */
const SCRATCH_MIN = 64 * 1024;
const EMPTY = new Uint8Array(0);
const textEncoder = new TextEncoder();

/**
 * Writes ASCII `text` at `offset`. A loop costs ~3 ns a character, `encodeInto` ~200 ns plus a
 * view of the record to write into (an object of ~100 bytes for the GC): even at ~64
 * characters, and the loop allocates nothing; above ~96 the encoder wins (120: ~220 ns against
 * ~370; 250: ~230 against ~800).
 */
function writeAscii(text: string, out: Uint8Array, offset: number): void {
  if (text.length > 96) {
    textEncoder.encodeInto(text, out.subarray(offset, offset + text.length));
    return;
  }
  for (let i = 0; i < text.length; i++) out[offset + i] = text.charCodeAt(i);
}

/** Placeholder characters for a message header inside a run of texts (see {@link writeTexts}). */
const HEADER_PAD = "\0".repeat(MESSAGE_HEADER_SIZE);
/** Consecutive text messages of at least this many bytes (headers included) are joined. */
const JOIN_MIN_BYTES = 128;

/**
 * Writes the consecutive text messages `items[from, to)`, `bytes` long with their headers, at
 * `offset`: one string of them all, each behind ten placeholder characters, written with one
 * `encodeInto`; then the headers over the placeholders. A record of 125 small calls took
 * ~8 µs so against ~60 µs character by character (the loop of {@link writeAscii}).
 */
function writeTexts(
  items: readonly Outgoing[],
  from: number,
  to: number,
  bytes: number,
  out: Uint8Array,
  offset: number,
): void {
  let joined = "";
  for (let i = from; i < to; i++) joined += HEADER_PAD + items[i].text;
  const { read } = textEncoder.encodeInto(joined, out.subarray(offset, offset + bytes));
  // Only ASCII is queued as text (one byte per character): anything else would not fit.
  if (read !== bytes) throw new Error("A text message is not ASCII");
  for (let i = from; i < to; i++) {
    const m = items[i];
    writeMessageHeader(out, offset, m.kind, m.flags, m.id, m.length);
    offset += MESSAGE_HEADER_SIZE + m.length;
  }
}

/** Below this many queued bytes of stream chunks (and nothing else), a record waits one hop. */
const STREAM_GATHER_BYTES = 64 * 1024;

/**
 * The largest plaintext of a record of small messages (other than a gathered stream burst on a
 * byte stream): sealed, it fits one TLS record (16 KiB). On TLS it then leaves in one packet
 * (see {@link ByteChannel.nagle}); everywhere, the peer starts on the first answers while the
 * next are sealed (1,000 calls in flight over TCP: +45–80 % against records of up to 64 KiB).
 */
export const SMALL_RECORD_PLAINTEXT = 16 * 1024 - HEADER_SIZE - TAG_SIZE;

/** Key for events (id 0 but ordered among themselves). */
const EVENT_KEY = -1;

function orderKey(kind: number, id: number): number | undefined {
  if (kind === Kind.PING || kind === Kind.PONG || kind === Kind.GOAWAY) return undefined;
  return kind === Kind.EVENT ? EVENT_KEY : id;
}

/** Options of a {@link SendQueue}. */
export interface SendQueueOptions {
  /** A write that takes longer than this fails the queue (ms). */
  writeStallTimeout?: number;
  /** Called once when sealing or writing fails. */
  onError: (err: Error) => void;
}

/** Drops the scratch buffers of queues that stopped sending bulk data, on one timer. */
const SCRATCH_RELEASE = new Deadlines<SendQueue>(Date.now, true);
const SCRATCH_KEEP_MS = 1000;

/** The ordered, batching send queue. */
export class SendQueue {
  #channel: ByteChannel;
  #sealer: RecordSealer;
  #maxPlain: number;
  /** The largest plaintext of a record of stream chunks only. */
  #streamMax: number;
  #onError: (err: Error) => void;
  #small: Outgoing[] = [];
  #smallHead = 0;
  #bulk: Outgoing[] = [];
  /** Bulk pieces queued per key (made for the first bulk message). */
  #bulkKeys: Map<number, number> | undefined;
  #records: { type: number; plaintext: Uint8Array }[] = [];
  #queuedBytes = 0;
  #running = false;
  #failed: Error | undefined;
  #idle: (() => void)[] = [];
  #stall: WriteStallWatch;
  /** What {@link #plan} chose: the end of the small messages taken, and the bulk piece (-1: none). */
  #plannedEnd = 0;
  #plannedPiece = -1;
  /** Small messages queued that are not stream chunks (those leave at once). */
  #urgent = 0;
  /**
   * The plaintext buffer of large records, reused while bulk data flows (allocating 256 KiB
   * costs Deno several times more than filling it) and dropped once the queue has been idle
   * for a second.
   */
  #scratch: Uint8Array | undefined;
  /** A macrotask hop (made on first use, closed with the queue), to let a stream burst gather. */
  #hop: MessageChannel | undefined;
  #hopWake: (() => void) | undefined;

  /**
   * @param channel where sealed records are written
   * @param sealer seals records in queue order
   * @param maxPlain the peer's `max_frame` (largest record plaintext it accepts)
   * @param options stall timeout and error callback
   */
  constructor(
    channel: ByteChannel,
    sealer: RecordSealer,
    maxPlain: number,
    options: SendQueueOptions,
  ) {
    this.#channel = channel;
    this.#sealer = sealer;
    this.#maxPlain = maxPlain;
    this.#streamMax = channel.nagle === true
      ? Math.min(maxPlain, SMALL_RECORD_PLAINTEXT)
      : maxPlain;
    this.#stall = new WriteStallWatch(
      channel,
      options.writeStallTimeout ?? DEFAULT_WRITE_STALL_TIMEOUT,
    );
    this.#onError = options.onError;
  }

  /** Payload bytes queued and not yet written. */
  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  /**
   * Payload bytes waiting behind the message currently leaving in pieces: the backlog that
   * says the peer is not keeping up (one large message in transit is not a backlog).
   */
  get backlogBytes(): number {
    const head = this.#bulk[0];
    return this.#queuedBytes - (head ? head.length - head.sent : 0);
  }

  /** The error that stopped the queue, if any. */
  get failed(): Error | undefined {
    return this.#failed;
  }

  /** Queues one message. Ignored once the queue has failed. */
  push(kind: number, flags: number, id: number, payload: Uint8Array): void {
    this.#enqueue(kind, flags, id, payload, undefined, payload.length);
  }

  /**
   * Queues a small message whose payload is ASCII `text` (plain JSON): it is written straight
   * into the record, never encoded to a buffer of its own.
   */
  pushText(kind: number, flags: number, id: number, text: string): void {
    const key = orderKey(kind, id);
    if (
      MESSAGE_HEADER_SIZE + text.length > this.#maxPlain ||
      (key !== undefined && this.#bulkKeys?.has(key) === true)
    ) {
      this.#enqueue(kind, flags, id, textEncoder.encode(text), undefined, text.length);
    } else this.#enqueue(kind, flags, id, EMPTY, text, text.length);
  }

  #enqueue(
    kind: number,
    flags: number,
    id: number,
    payload: Uint8Array,
    text: string | undefined,
    length: number,
  ): void {
    if (this.#failed) return;
    const key = orderKey(kind, id);
    const item: Outgoing = { kind, flags, id, payload, text, length, sent: 0, key };
    this.#queuedBytes += length;
    const behindBulk = key !== undefined && this.#bulkKeys?.has(key) === true;
    if (behindBulk || MESSAGE_HEADER_SIZE + length > this.#maxPlain) {
      this.#bulk.push(item);
      if (key !== undefined) {
        const keys = this.#bulkKeys ??= new Map();
        keys.set(key, (keys.get(key) ?? 0) + 1);
      }
    } else {
      this.#small.push(item);
      if (kind !== Kind.STREAM_DATA) this.#urgent++;
    }
    this.#schedule();
  }

  /** Queues a whole record of another type (sealed ALERT / CLOSE) behind the messages. */
  pushRecord(type: number, plaintext: Uint8Array): void {
    if (this.#failed) return;
    this.#records.push({ type, plaintext });
    this.#schedule();
  }

  /** True when everything queued has been written (or the queue failed). */
  get isDrained(): boolean {
    return (!this.#running && this.#isEmpty()) || this.#failed !== undefined;
  }

  /** Resolves when everything queued so far has been written (or the queue failed). */
  drained(): Promise<void> {
    if (this.isDrained) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /** Stops the queue: nothing more is written; waiters of {@link drained} resolve. */
  fail(err: Error): void {
    if (this.#failed) return;
    this.#failed = err;
    this.#small = [];
    this.#smallHead = 0;
    this.#bulk = [];
    this.#bulkKeys = undefined;
    this.#records = [];
    this.#queuedBytes = 0;
    this.#urgent = 0;
    this.#stall.stop();
    if (this.#scratch !== undefined) SCRATCH_RELEASE.delete(this);
    this.#scratch = undefined;
    if (this.#hop !== undefined) {
      this.#hop.port1.close();
      this.#hop.port2.close();
      this.#hopWake?.();
      this.#hopWake = undefined;
    }
    this.#wakeIdle();
  }

  #isEmpty(): boolean {
    return this.#smallHead >= this.#small.length && this.#bulk.length === 0 &&
      this.#records.length === 0;
  }

  #schedule(): void {
    if (this.#running) return;
    this.#running = true;
    // A microtask later: everything queued in this turn joins the same record.
    queueMicrotask(this.#pump);
  }

  #wakeIdle(): void {
    if (this.#idle.length === 0) return; // (no new array per record)
    const waiters = this.#idle;
    this.#idle = [];
    for (const w of waiters) w();
  }

  /**
   * Writes records until the queue is empty. Not an async function: a record of small messages
   * is sealed at once (ChaCha20-Poly1305) and its write's promise calls back here, so the
   * sequential path allocates no suspended frames; anything else (AES-GCM, KEY_UPDATE,
   * gathering a stream burst, alerts) takes one step of {@link #slowStep} and comes back.
   */
  #pump = (): void => {
    this.#stall.end();
    if (this.#failed || this.#isEmpty()) return this.#stop();
    try {
      const size = this.#sealer.needsKeyUpdate || this.#records.length !== 0 ||
          this.#shouldGather()
        ? -1
        : this.#plan();
      if (size < 0) {
        this.#slowStep().then(this.#pump, this.#crash);
        return;
      }
      // A small record is built in its frame and sealed there; a larger one takes AES-GCM.
      const frame = this.#sealer.smallFrame(FrameType.MESSAGES, size);
      let writing: Promise<void>;
      if (frame !== undefined) {
        this.#writePlanned(frame, HEADER_SIZE);
        writing = this.#write(this.#sealer.sealSmallFrame(FrameType.MESSAGES, frame));
      } else {
        const plaintext = this.#plaintextBuffer(size);
        this.#writePlanned(plaintext, 0);
        writing = this.#sealer.sealParts(FrameType.MESSAGES, plaintext).then(this.#write);
      }
      writing.then(this.#pump, this.#crash);
    } catch (err) {
      this.#crash(err);
    }
  };

  /**
   * Only stream chunks are queued, and few: a producer is likely still yielding them, so the
   * record waits one macrotask to take in the rest of the burst.
   */
  #shouldGather(): boolean {
    return this.#urgent === 0 && this.#bulk.length === 0 && this.#records.length === 0 &&
      this.#queuedBytes < Math.min(STREAM_GATHER_BYTES, this.#streamMax);
  }

  /** One step that has to wait: a KEY_UPDATE, a gathered burst, or a record of another type. */
  async #slowStep(): Promise<void> {
    if (this.#sealer.needsKeyUpdate) {
      await this.#write(await this.#sealer.sealKeyUpdate());
      return;
    }
    if (this.#shouldGather()) {
      await this.#gather();
      if (this.#failed) return;
    }
    const plaintext = this.#nextPlaintext();
    if (plaintext !== undefined) {
      await this.#write(await this.#sealer.sealParts(FrameType.MESSAGES, plaintext));
      return;
    }
    const record = this.#records.shift()!;
    await this.#write(await this.#sealer.sealParts(record.type, record.plaintext));
  }

  /** Sealing or writing failed: the queue fails (a write that stalled reports the stall). */
  #crash = (err: unknown): void => {
    if (!this.#failed) {
      const cause = this.#stall.error ?? err;
      const error = cause instanceof Error ? cause : new Error(String(cause));
      this.fail(error);
      this.#onError(error);
    }
    this.#stop();
  };

  /** The queue ran empty or failed: the pump stops until the next push. */
  #stop(): void {
    this.#stall.end();
    this.#running = false;
    if (this.#scratch !== undefined) {
      SCRATCH_RELEASE.add(this, SCRATCH_KEEP_MS, () => {
        if (!this.#running) this.#scratch = undefined;
      });
    }
    this.#wakeIdle();
  }

  #gather(): Promise<void> {
    if (this.#hop === undefined) {
      this.#hop = new MessageChannel();
      this.#hop.port1.onmessage = () => {
        const wake = this.#hopWake;
        this.#hopWake = undefined;
        wake?.();
      };
    }
    const hop = this.#hop;
    return new Promise((resolve) => {
      this.#hopWake = resolve;
      hop.port2.postMessage(0);
    });
  }

  /**
   * One write under the stall deadline: a stalled write closes the channel, which ends it
   * (and {@link #crash} reports the stall). The pump clears the start time when it resumes.
   */
  #write = (record: SealedRecord): Promise<void> => {
    this.#stall.begin();
    return record instanceof Uint8Array
      ? this.#channel.write(record)
      : writeHeadAndBody(this.#channel, record[0], record[1]);
  };

  /**
   * Takes whole small messages (at least one), then one piece of the head bulk message, into a
   * plaintext.
   */
  #nextPlaintext(): Uint8Array | undefined {
    const size = this.#plan();
    if (size < 0) return undefined;
    const out = this.#plaintextBuffer(size);
    this.#writePlanned(out, 0);
    return out;
  }

  /**
   * Plans the next record: whole small messages (at least one), then one piece of the head
   * bulk message. Returns its plaintext size, or -1 when there is nothing to send; the plan
   * stays valid until {@link #writePlanned} or the next push.
   */
  #plan(): number {
    const bulk = this.#bulk[0];
    const capacity = bulk !== undefined
      ? this.#maxPlain
      : this.#urgent > 0
      ? Math.min(this.#maxPlain, SMALL_RECORD_PLAINTEXT)
      : this.#streamMax;
    let used = 0;
    let end = this.#smallHead;
    while (end < this.#small.length) {
      const size = MESSAGE_HEADER_SIZE + this.#small[end].length;
      if (used + size > capacity && end > this.#smallHead) break;
      used += size;
      end++;
    }
    let piece = -1;
    if (bulk !== undefined) {
      const room = capacity - used - MESSAGE_HEADER_SIZE;
      const left = bulk.length - bulk.sent;
      // An empty record always takes a piece; otherwise a piece must be worth its header.
      if (room >= 0 && (used === 0 || left === 0 || room >= Math.min(left, MIN_PIECE))) {
        piece = Math.min(room, left, MAX_BULK_PIECE);
      }
    }
    if (end === this.#smallHead && piece < 0) return -1;
    this.#plannedEnd = end;
    this.#plannedPiece = piece;
    return used + (piece >= 0 ? MESSAGE_HEADER_SIZE + piece : 0);
  }

  /** Writes the planned record's messages into `out` from `offset`, and takes them off the queue. */
  #writePlanned(out: Uint8Array, offset: number): void {
    const end = this.#plannedEnd, piece = this.#plannedPiece;
    const small = this.#small;
    let joinedTo = this.#smallHead; // messages before this were written as one run of texts
    for (let i = this.#smallHead; i < end; i++) {
      const m = small[i];
      if (m.kind !== Kind.STREAM_DATA) this.#urgent--;
      this.#queuedBytes -= m.length;
      if (i < joinedTo) continue;
      if (m.text !== undefined) {
        let to = i, bytes = 0;
        while (to < end && small[to].text !== undefined) {
          bytes += MESSAGE_HEADER_SIZE + small[to++].length;
        }
        if (bytes >= JOIN_MIN_BYTES && to - i > 1) {
          writeTexts(small, i, to, bytes, out, offset);
          offset += bytes;
          joinedTo = to;
          continue;
        }
      }
      writeMessageHeader(out, offset, m.kind, m.flags, m.id, m.length);
      if (m.text === undefined) out.set(m.payload, offset + MESSAGE_HEADER_SIZE);
      else writeAscii(m.text, out, offset + MESSAGE_HEADER_SIZE);
      offset += MESSAGE_HEADER_SIZE + m.length;
    }
    this.#smallHead = end;
    if (this.#smallHead === this.#small.length) {
      this.#small = [];
      this.#smallHead = 0;
    } else if (this.#smallHead > 1024) {
      this.#small = this.#small.slice(this.#smallHead);
      this.#smallHead = 0;
    }
    const bulk = this.#bulk[0];
    if (piece >= 0 && bulk !== undefined) {
      const last = bulk.sent + piece === bulk.length;
      const flags = last ? bulk.flags : bulk.flags | Flag.MORE;
      writeMessageHeader(out, offset, bulk.kind, flags, bulk.id, piece);
      out.set(bulk.payload.subarray(bulk.sent, bulk.sent + piece), offset + MESSAGE_HEADER_SIZE);
      bulk.sent += piece;
      this.#queuedBytes -= piece;
      if (last) this.#finishBulk();
    }
  }

  /**
   * A buffer for a record plaintext of `size` bytes: new when small, the reused scratch when
   * large. Safe because a plaintext is sealed (and so read) before the next one is built.
   */
  #plaintextBuffer(size: number): Uint8Array {
    if (size < SCRATCH_MIN) return new Uint8Array(size);
    if (this.#scratch === undefined || this.#scratch.length < size) {
      this.#scratch = new Uint8Array(Math.max(size, MESSAGE_HEADER_SIZE + MAX_BULK_PIECE));
    }
    return this.#scratch.subarray(0, size);
  }

  #finishBulk(): void {
    const done = this.#bulk.shift()!;
    if (done.key === undefined) return;
    const keys = this.#bulkKeys;
    if (keys === undefined) return;
    const count = (keys.get(done.key) ?? 1) - 1;
    if (count === 0) keys.delete(done.key);
    else keys.set(done.key, count);
  }
}
