import { assert, assertEquals } from "@std/assert";
import type { ByteChannel } from "../../protocol/channel.ts";
import { ProtocolError } from "../../protocol/errors.ts";
import { FrameType, parseHeader } from "../../protocol/frame.ts";
import { decodeMessages, Kind } from "../../protocol/messages.ts";
import { RecordOpener, RecordSealer } from "../../protocol/record.ts";
import { SendQueue } from "../../protocol/send_queue.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test("SendQueue: a write that stalls fails the queue after the stall timeout, never before", async () => {
  const stallMs = 400;
  let hang = false;
  let closed = false;
  let endWrite: ((err: Error) => void) | undefined;
  const started: number[] = [];
  const channel: ByteChannel = {
    read: () => Promise.resolve(null),
    write: () => {
      started.push(Date.now());
      return hang ? new Promise((_, reject) => endWrite = reject) : Promise.resolve();
    },
    close: () => {
      closed = true;
      endWrite?.(new Error("closed")); // as a real transport: closing ends the write
    },
  };
  const errors: Error[] = [];
  const key = crypto.getRandomValues(new Uint8Array(32));
  const sealer = new RecordSealer(key, new Uint8Array(12), {}, true);
  const queue = new SendQueue(channel, sealer, 65536, {
    writeStallTimeout: stallMs,
    onError: (err) => errors.push(err),
  });
  // A quick write puts the queue under watch; a later one hangs. The deadline that write
  // started is checked against the hanging write, which gets its full stall time.
  queue.push(Kind.EVENT, 0, 0, new Uint8Array([1]));
  await queue.drained();
  await sleep(stallMs / 2);
  hang = true;
  queue.push(Kind.EVENT, 0, 0, new Uint8Array([2]));
  await sleep(stallMs * 0.75);
  assertEquals(closed, false, "closed before the hanging write had its stall time");
  const deadline = Date.now() + 10 * stallMs;
  while (!closed && Date.now() < deadline) await sleep(20);
  assert(closed, "a stalled write did not close the channel");
  assertEquals(started.length, 2);
  const waited = Date.now() - started[1];
  assert(waited >= stallMs - 1, `closed ${waited} ms after the write began`);
  // The write that closing ended is reported as the stall, not as the close.
  await queue.drained();
  assertEquals(errors.length, 1);
  assert(
    errors[0] instanceof ProtocolError && errors[0].code === "PEER_TIMEOUT",
    String(errors[0]),
  );
});

/** A channel that keeps every write (records are never split over writes here). */
function recordingChannel(nagle: boolean): ByteChannel & { writes: Uint8Array[] } {
  const writes: Uint8Array[] = [];
  return {
    writes,
    nagle,
    read: () => Promise.resolve(null),
    write: (data) => (writes.push(data.slice()), Promise.resolve()),
    close: () => {},
  };
}

function newQueue(channel: ByteChannel, maxPlain = 1 << 20): SendQueue {
  const key = crypto.getRandomValues(new Uint8Array(32));
  const sealer = new RecordSealer(key, new Uint8Array(12), {}, true);
  return new SendQueue(channel, sealer, maxPlain, { onError: () => {} });
}

const ONE_TLS_RECORD = 16 * 1024;

Deno.test("SendQueue: record sizes", async (t) => {
  await t.step("a burst of answers leaves in records of at most one TLS record each", async () => {
    for (const nagle of [false, true]) {
      const channel = recordingChannel(nagle);
      const queue = newQueue(channel);
      for (let id = 0; id < 200; id++) queue.push(Kind.RESPONSE, 0, id, new Uint8Array(1000));
      await queue.drained();
      assert(channel.writes.length >= 13, `${channel.writes.length} records for 200 kB`);
      for (const w of channel.writes) {
        assert(w.length <= ONE_TLS_RECORD, `a ${w.length}-byte record`);
      }
      const payload = channel.writes.reduce((n, w) => n + w.length - 20 - 16, 0);
      assertEquals(payload, 200 * (1000 + 10), "every answer, with its message header, once");
    }
  });
  await t.step("an answer larger than that still leaves whole, in one record", async () => {
    const channel = recordingChannel(true);
    const queue = newQueue(channel);
    queue.push(Kind.RESPONSE, 0, 2, new Uint8Array(40_000));
    await queue.drained();
    assertEquals(channel.writes.map((w) => w.length), [20 + 10 + 40_000 + 16]);
  });
  await t.step("a stream burst gathers past it on byte streams, not on TLS", async () => {
    const largest: Record<string, number> = {};
    for (const nagle of [false, true]) {
      const channel = recordingChannel(nagle);
      const queue = newQueue(channel);
      for (let i = 0; i < 2000; i++) queue.push(Kind.STREAM_DATA, 0, 3, new Uint8Array(64));
      await queue.drained();
      largest[String(nagle)] = Math.max(...channel.writes.map((w) => w.length));
    }
    assert(largest["false"] > ONE_TLS_RECORD, `byte stream: largest record ${largest["false"]}`);
    assert(largest["true"] <= ONE_TLS_RECORD, `TLS: largest record ${largest["true"]}`);
  });
});

Deno.test("SendQueue: what leaves opens to the messages pushed, in order", async (t) => {
  const key = crypto.getRandomValues(new Uint8Array(32));
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const channel = recordingChannel(false);
  const sealer = new RecordSealer(key, iv, {}, true);
  const queue = new SendQueue(channel, sealer, 1 << 20, { onError: () => {} });
  const opener = new RecordOpener(key, iv, true);

  /** Opens every record written so far, as `[record type, messages]`. */
  const openAll = async () => {
    const out: [number, { kind: number; id: number; text: string }[]][] = [];
    for (const frame of channel.writes.splice(0)) {
      const header = parseHeader(frame);
      opener.accept(header.seq);
      const plain = await opener.open(header.seq, frame.slice(0, 20), frame.subarray(20));
      out.push([
        frame[3],
        header.type === FrameType.ALERT || header.type === FrameType.ALERT_CHACHA
          ? [{ kind: 0, id: 0, text: new TextDecoder().decode(plain) }]
          : decodeMessages(plain).map((m) => ({
            kind: m.kind,
            id: m.id,
            text: new TextDecoder().decode(m.payload),
          })),
      ]);
    }
    return out;
  };

  await t.step(
    "small messages leave in one ChaCha20-Poly1305 record, text and bytes alike",
    async () => {
      queue.pushText(Kind.REQUEST, 0, 1, '{"a":1}');
      queue.push(Kind.REQUEST, 0, 3, new TextEncoder().encode('"b"'));
      queue.pushText(Kind.NOTIFY, 0, 5, "[]");
      await queue.drained();
      assertEquals(await openAll(), [[FrameType.MESSAGES_CHACHA, [
        { kind: Kind.REQUEST, id: 1, text: '{"a":1}' },
        { kind: Kind.REQUEST, id: 3, text: '"b"' },
        { kind: Kind.NOTIFY, id: 5, text: "[]" },
      ]]]);
    },
  );

  await t.step("a larger record takes AES-GCM; an alert queued behind it comes last", async () => {
    const big = "x".repeat(3000);
    queue.pushText(Kind.RESPONSE, 0, 7, JSON.stringify(big));
    queue.pushRecord(FrameType.ALERT, new TextEncoder().encode("bye"));
    queue.pushText(Kind.RESPONSE, 0, 9, "1");
    await queue.drained();
    assertEquals(await openAll(), [
      [FrameType.MESSAGES, [
        { kind: Kind.RESPONSE, id: 7, text: JSON.stringify(big) },
        { kind: Kind.RESPONSE, id: 9, text: "1" },
      ]],
      [FrameType.ALERT_CHACHA, [{ kind: 0, id: 0, text: "bye" }]],
    ]);
  });

  await t.step("runs of texts between byte payloads keep every byte and header", async () => {
    // Long runs of text are written with one encodeInto each, short ones character by character.
    const pushed: { kind: number; id: number; text: string }[] = [];
    for (let id = 11; id < 11 + 2 * 60; id += 2) {
      const text = JSON.stringify({ id, pad: "p".repeat(id % 37) });
      if (id % 13 === 0) queue.push(Kind.REQUEST, 0, id, new TextEncoder().encode(text));
      else queue.pushText(Kind.REQUEST, 0, id, text);
      pushed.push({ kind: Kind.REQUEST, id, text });
    }
    await queue.drained();
    assertEquals((await openAll()).flatMap(([, messages]) => messages), pushed);
  });

  await t.step("each record leaves in one write, in sequence", async () => {
    for (let round = 0; round < 20; round++) {
      queue.pushText(Kind.EVENT, 0, 0, String(round));
      await queue.drained();
    }
    const records = await openAll();
    assertEquals(
      records.map(([, m]) => m[0].text),
      Array.from({ length: 20 }, (_, i) => String(i)),
    );
  });
});

Deno.test("SendQueue: a write that fails fails the queue once; drained() still resolves", async () => {
  const failure = new Error("the peer is gone");
  let writes = 0;
  const channel: ByteChannel = {
    read: () => Promise.resolve(null),
    write: () => (writes++, Promise.reject(failure)),
    close: () => {},
  };
  const errors: Error[] = [];
  const key = crypto.getRandomValues(new Uint8Array(32));
  const sealer = new RecordSealer(key, new Uint8Array(12), {}, true);
  const queue = new SendQueue(channel, sealer, 65536, { onError: (err) => errors.push(err) });
  queue.push(Kind.EVENT, 0, 0, new Uint8Array([1]));
  queue.push(Kind.EVENT, 0, 0, new Uint8Array([2]));
  await queue.drained();
  assertEquals(errors, [failure]);
  assertEquals(queue.failed, failure);
  queue.push(Kind.EVENT, 0, 0, new Uint8Array([3])); // ignored once failed
  await queue.drained();
  assertEquals(writes, 1);
  assertEquals(queue.queuedBytes, 0);
});
