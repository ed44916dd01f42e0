import { assert, assertEquals } from "@std/assert";
import type { ByteChannel } from "../../protocol/channel.ts";
import { Kind } from "../../protocol/messages.ts";
import { RecordSealer } from "../../protocol/record.ts";
import { SendQueue } from "../../protocol/send_queue.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test("SendQueue: a write that stalls fails the queue after the stall timeout, never before", async () => {
  const stallMs = 400;
  let hang = false;
  let closed = false;
  const started: number[] = [];
  const channel: ByteChannel = {
    read: () => Promise.resolve(null),
    write: () => {
      started.push(Date.now());
      return hang ? new Promise(() => {}) : Promise.resolve();
    },
    close: () => {
      closed = true;
    },
  };
  const key = crypto.getRandomValues(new Uint8Array(32));
  const sealer = new RecordSealer(key, new Uint8Array(12), {}, true);
  const queue = new SendQueue(channel, sealer, 65536, {
    writeStallTimeout: stallMs,
    onError: () => {},
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
  // A real transport's close ends the write; this one never does, so the queue is failed here.
  queue.fail(new Error("closed"));
});
