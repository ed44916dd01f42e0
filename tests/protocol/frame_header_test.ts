import { assertEquals, assertThrows } from "@std/assert";
import { ProtocolError } from "../../protocol/errors.ts";
import { FrameType, HEADER_SIZE, parseHeader, parseHeaderAt } from "../../protocol/frame.ts";
import { RecordSealer } from "../../protocol/record.ts";

Deno.test("frame headers parse in place, at any offset", () => {
  const sealer = new RecordSealer(
    crypto.getRandomValues(new Uint8Array(32)),
    new Uint8Array(12),
    {},
    true,
  );
  const bytes = new Uint8Array(64);
  const header = { type: 0, length: 0, seq: 0 };
  for (const seq of [0, 1, 2 ** 32 + 5, Number.MAX_SAFE_INTEGER - 1]) {
    sealer.seq = seq;
    const frame = sealer.sealSmall(FrameType.MESSAGES, new Uint8Array(3))!;
    bytes.set(frame.subarray(0, HEADER_SIZE), 7);
    parseHeaderAt(bytes, 7, header);
    assertEquals(header, { type: FrameType.MESSAGES_CHACHA, length: 3 + 16, seq });
    assertEquals(parseHeader(frame), header);
  }
  bytes[7 + 8] = 0xff; // a sequence number of 2^53 or more
  bytes.set(new Uint8Array(4), 7 + 16);
  assertEquals(
    assertThrows(() => parseHeaderAt(bytes, 7, header), ProtocolError).code,
    "PROTOCOL_ERROR",
  );
});
