/**
 * HOSTILE-TESTS #37: a client sends 100 000 requests and never reads the answers. The server
 * stops reading it (TCP backpressure) instead of queueing answers without bound, memory stays
 * bounded, other clients stay served, and the write-stall timeout finally closes the flooder.
 */
import { assert, assertEquals } from "@std/assert";
import { encodeValue } from "../../protocol/codec.ts";
import { Kind } from "../../protocol/messages.ts";
import { startServer } from "../_helpers.ts";
import { AuthedPeer, portOf } from "./_harness.ts";

Deno.test("case 37: 100 000 unread requests do not grow the server without bound", async () => {
  let executed = 0;
  const answer = "x".repeat(512);
  await using ts = await startServer("tcp", {
    limits: { writeStallTimeout: 2000, maxOutboundBytes: 1_048_576 },
    methods: {
      echo: () => {
        executed++;
        return answer;
      },
      ping: () => "pong",
    },
  });
  await using bystander = await ts.connect();
  const peer = await AuthedPeer.connect(portOf(ts.address));
  const rssBefore = Deno.memoryUsage().rss;
  const payload = encodeValue({ method: "echo", params: [] }).bytes;
  let sent = 0;
  // Records of 1000 requests; stop when the server has stopped reading (a write that does
  // not complete within a second) or everything is sent.
  while (sent < 100_000) {
    const batch = Array.from({ length: 1000 }, () => ({
      kind: Kind.REQUEST,
      flags: 0,
      id: peer.nextId(),
      payload,
    }));
    let timer: ReturnType<typeof setTimeout> | undefined;
    const stalled = new Promise<"stalled">((r) => timer = setTimeout(() => r("stalled"), 1000));
    const outcome = await Promise.race([
      peer.sendMessages(batch).then(() => "sent" as const),
      stalled,
    ]);
    clearTimeout(timer);
    if (outcome === "stalled") break;
    sent += batch.length;
  }
  // The requests are small enough for the kernel's socket buffers to swallow them all; what
  // matters is that the server stopped reading (and running) what it could not answer.
  assert(executed < sent, `the server ran all ${executed} requests it could not answer`);
  assertEquals(await bystander.call("ping"), "pong", "other clients stay served");
  const grown = (Deno.memoryUsage().rss - rssBefore) / 1_048_576;
  assert(grown < 50, `server RSS grew by ${grown.toFixed(1)} MB`);
  // The flooder never reads: its connection is closed once a write stalls for 2 s.
  const deadline = Date.now() + 10_000;
  while (ts.server.peers.length > 1 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
  }
  assertEquals(ts.server.peers.length, 1, "the flooding connection was closed");
  console.log(
    `flood: ${sent} requests sent, ${executed} executed, RSS +${grown.toFixed(1)} MB`,
  );
  peer.close();
});
