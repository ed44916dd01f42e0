/**
 * Bidirectional channels: `open()` a method, `send` it values (the handler reads them as
 * `this.input`), iterate what it streams back, `close` your half, and read its final
 * `result`. Shown with an echoing chat (in and out at once), a client-streaming `sum` (in
 * only, one result), and the server opening a channel to a method the client registered —
 * channels work from either side. Uses TRUST_ID when set, otherwise a one-time random secret.
 *
 *     deno run -A examples/channel.ts
 *
 * @module
 */

import { connect, generateSecret, serve } from "../mod.ts";

const secret = Deno.env.get("TRUST_ID") || generateSecret();

await using server = await serve({
  listen: "tcp://127.0.0.1:0",
  secret,
  logger: "warn",
  methods: {
    /** Echoes every message until the caller closes its half; returns how many there were. */
    async *chat() {
      let count = 0;
      for await (const msg of this.input) {
        count++;
        yield "echo: " + msg;
      }
      return count;
    },
    /** Client streaming: adds up every number sent, answers once with the total. */
    async sum() {
      let total = 0;
      for await (const n of this.input) total += n as number;
      return total;
    },
  },
});

await using client = await connect(server.addresses[0], {
  secret,
  timeout: 5000,
  methods: {
    /** Served by the client, opened by the server. */
    async *shout() {
      for await (const word of this.input) yield String(word).toUpperCase() + "!";
      return "done shouting";
    },
  },
});

// 1. A chat: send while reading the replies.
console.log("client → server chat:");
await using chat = client.open<string, string, number>("chat");
for (const msg of ["hello", "how are you?", "bye"]) await chat.send(msg);
await chat.close(); // no more input: the handler's `for await` ends, then the generator returns
for await (const reply of chat) console.log(`  ${reply}`);
console.log(`  chat result: ${await chat.result} messages`);

// 2. Client streaming: many values up, one value back.
await using sum = client.open<number, never, number>("sum");
for (let n = 1; n <= 10; n++) await sum.send(n);
await sum.close();
console.log(`sum of 1..10 = ${await sum.result}`);

// 3. The other way round: the server opens a channel to a method the client registered.
const peer = server.peers[0];
console.log("server → client shout:");
await using shout = peer.open<string, string, string>("shout", [], { timeout: 5000 });
const replies = (async () => {
  const lines: string[] = [];
  for await (const line of shout) lines.push(line);
  return lines;
})();
for (const word of ["channels", "work", "both", "ways"]) await shout.send(word);
await shout.close();
console.log(`  ${(await replies).join(" ")}`);
console.log(`  shout result: ${await shout.result}`);
