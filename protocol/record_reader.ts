/**
 * Reads sealed records in order after the handshake (PROTOCOL.md §8 receiver steps): checks
 * the header (type, length against `max_frame`, sequence number — advanced before any await),
 * reads the body under a deadline, opens it, and applies KEY_UPDATE itself. Yields the
 * plaintext of MESSAGES and ALERT records.
 *
 * @module
 */

import type { ByteChannel } from "./channel.ts";
import { Deadlines } from "./deadlines.ts";
import { ConnectionClosedError, ProtocolError } from "./errors.ts";
import {
  type FrameHeader,
  FrameType,
  HEADER_SIZE,
  parseHeader,
  parseHeaderAt,
  TAG_SIZE,
} from "./frame.ts";
import type { FrameReader } from "./frame_reader.ts";
import type { RecordOpener } from "./record.ts";

/** An opened record: MESSAGES or ALERT. */
export interface OpenedRecord {
  /** `FrameType.MESSAGES` or `FrameType.ALERT`. */
  type: number;
  /** The decrypted plaintext. */
  plaintext: Uint8Array;
}

/** The header {@link RecordReader.nextBuffered} parses in place (used synchronously only). */
const BUFFERED_HEADER: FrameHeader = { type: 0, length: 0, seq: 0 };

/** Reads and opens records one at a time. */
export class RecordReader {
  #channel: ByteChannel;
  #reader: FrameReader;
  #opener: RecordOpener;
  #maxBody: number;
  #bodyTimeout: number;
  #watchdog = new Deadlines<0>();

  /**
   * @param channel closed when a body misses its deadline (that interrupts the read)
   * @param reader the frame reader (it may hold bytes already)
   * @param opener the receiving direction's keys
   * @param limits this side's `max_frame` and the per-record body deadline (ms)
   */
  constructor(
    channel: ByteChannel,
    reader: FrameReader,
    opener: RecordOpener,
    limits: { maxFrame: number; frameBodyTimeout: number },
  ) {
    this.#channel = channel;
    this.#reader = reader;
    this.#opener = opener;
    this.#maxBody = limits.maxFrame + TAG_SIZE;
    this.#bodyTimeout = limits.frameBodyTimeout;
  }

  /**
   * The next MESSAGES or ALERT record; `null` at a clean end of stream between records.
   * Throws a `ProtocolError` for anything that breaks the record layer.
   */
  next(): Promise<OpenedRecord | null> {
    // Between records an idle connection waits in `fill()`, which suspends no frame here.
    const filling = this.#reader.fill();
    return filling === undefined ? this.#next() : filling.then(this.#afterFill);
  }

  #afterFill = (): OpenedRecord | Promise<OpenedRecord | null> =>
    this.nextBuffered() ?? this.#next();

  /**
   * The next record, at once, when it is buffered whole and sealed with ChaCha20-Poly1305 (a
   * small record: the common case), opened in the read buffer without views or awaits;
   * `undefined` when it has to be read or opened asynchronously ({@link next}). Throws like
   * {@link next}.
   */
  nextBuffered(): OpenedRecord | undefined {
    const reader = this.#reader;
    if (reader.buffered < HEADER_SIZE) return undefined;
    const bytes = reader.bytes, at = reader.offset;
    const type = bytes[at + 3];
    if (type !== FrameType.MESSAGES_CHACHA && type !== FrameType.ALERT_CHACHA) return undefined;
    const header = BUFFERED_HEADER;
    parseHeaderAt(bytes, at, header);
    this.#check(header);
    if (reader.buffered < HEADER_SIZE + header.length) return undefined;
    this.#opener.accept(header.seq);
    const plaintext = this.#opener.openChaChaAt(header.seq, bytes, at, header.length);
    reader.consume(HEADER_SIZE + header.length);
    return {
      type: type === FrameType.MESSAGES_CHACHA ? FrameType.MESSAGES : FrameType.ALERT,
      plaintext,
    };
  }

  /** The header checks of PROTOCOL.md §8 that do not depend on the sequence number. */
  #check(header: FrameHeader): void {
    if (header.type < FrameType.MESSAGES) {
      throw new ProtocolError("BAD_RECORD", "Cleartext handshake frame after authentication");
    }
    if (
      header.type !== FrameType.MESSAGES && header.type !== FrameType.KEY_UPDATE &&
      header.type !== FrameType.ALERT &&
      !((header.type === FrameType.MESSAGES_CHACHA || header.type === FrameType.ALERT_CHACHA) &&
        this.#opener.usesChaCha)
    ) {
      throw new ProtocolError("PROTOCOL_ERROR", `Unknown record type ${header.type}`);
    }
    if (header.length < TAG_SIZE) {
      throw new ProtocolError("PROTOCOL_ERROR", "Record shorter than its tag");
    }
    if (header.length > this.#maxBody) {
      throw new ProtocolError("FRAME_TOO_LARGE", `Record of ${header.length} bytes is too large`);
    }
  }

  async #next(): Promise<OpenedRecord | null> {
    for (;;) {
      const headerView = await this.#reader.readHeader();
      if (headerView === null) return null;
      const header = parseHeader(headerView);
      this.#check(header);
      this.#opener.accept(header.seq);
      // The header is a view into the read buffer: it stays valid while the body is already
      // buffered; a read that has to wait may move the buffer, so it is copied first then.
      const headerBytes = this.#reader.buffered >= header.length ? headerView : headerView.slice();
      const body = await this.#readBody(header.length);
      const plaintext = await this.#opener.open(header.seq, headerBytes, body);
      if (header.type === FrameType.MESSAGES_CHACHA) return { type: FrameType.MESSAGES, plaintext };
      if (header.type === FrameType.ALERT_CHACHA) return { type: FrameType.ALERT, plaintext };
      if (header.type !== FrameType.KEY_UPDATE) return { type: header.type, plaintext };
      if (plaintext.length !== 0) throw new ProtocolError("PROTOCOL_ERROR", "KEY_UPDATE with data");
      await this.#opener.rotate();
    }
  }

  /** Stops the body deadline timer (the session is closing). */
  close(): void {
    this.#watchdog.clear();
  }

  async #readBody(length: number): Promise<Uint8Array> {
    if (this.#reader.buffered >= length) return (await this.#reader.read(length))!;
    let timedOut = false;
    this.#watchdog.add(0, this.#bodyTimeout, () => {
      timedOut = true;
      this.#channel.close();
    });
    try {
      const body = await this.#reader.read(length);
      if (body === null) throw new ConnectionClosedError("Connection ended before a record body");
      return body;
    } catch (err) {
      if (timedOut) {
        throw new ProtocolError("PEER_TIMEOUT", "A record body did not arrive within the deadline");
      }
      throw err;
    } finally {
      this.#watchdog.delete(0);
    }
  }
}
