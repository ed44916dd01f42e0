/**
 * Server streaming: the method `time(count, interval_ms)` is an async generator; every
 * `yield` is a chunk the client reads with `for await`. Leaving the loop early (`break`)
 * cancels the call on the server (its generator's `finally` runs), the generator's `return`
 * value arrives as the stream's `result`, and `stream.readable` gives the chunks as a Web
 * `ReadableStream`. Uses TRUST_ID when set, otherwise a one-time random secret.
 *
 *     deno run -A examples/streaming.ts
 *
 * @module
 */

import { connect, generateSecret, serve } from "../mod.ts";

const secret = Deno.env.get("TRUST_ID") || generateSecret();

/** Waits `ms`, or rejects as soon as `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      reject(signal.reason);
    }, { once: true });
  });
}

let stopped = Promise.withResolvers<void>();

await using server = await serve({
  listen: "tcp://127.0.0.1:0",
  secret,
  logger: "warn",
  methods: {
    async *time(count: number, interval_ms: number) {
      let sent = 0;
      try {
        for (; sent < count; sent++) {
          if (sent > 0) await sleep(interval_ms, this.signal);
          yield { timestamp: new Date().toISOString() };
        }
        return { sent };
      } finally {
        console.log(`server: producer stopped after ${sent} of ${count} ticks`);
        stopped.resolve();
      }
    },
  },
});

await using client = await connect(server.addresses[0], { secret, timeout: 5000 });

// 1. Read every chunk.
console.log("1. for await over time(3, 50):");
for await (const tick of client.stream<{ timestamp: string }>("time", [3, 50])) {
  console.log(`   tick ${tick.timestamp}`);
}
await stopped.promise;

// 2. Leave early: `break` cancels the call, and the server's generator stops.
stopped = Promise.withResolvers<void>();
console.log("2. break after 2 of time(1000, 20):");
const long = client.stream<{ timestamp: string }>("time", [1000, 20], { timeout: 10_000 });
let seen = 0;
for await (const tick of long) {
  console.log(`   tick ${tick.timestamp}`);
  if (++seen === 2) break;
}
const timer = setTimeout(() => stopped.reject(new Error("the producer did not stop")), 5000);
await stopped.promise.finally(() => clearTimeout(timer));
console.log(`   client: stream cancelled (${await long.result.catch((e) => e.code)})`);

// 3. The generator's return value is `result`; `readable` is a ReadableStream of the chunks.
stopped = Promise.withResolvers<void>();
console.log("3. time(2, 20) through stream.readable:");
const stream = client.stream<{ timestamp: string }, { sent: number }>("time", [2, 20]);
const chunks = await Array.fromAsync(stream.readable);
console.log(`   readable gave ${chunks.length} chunks`);
console.log(`   result: ${JSON.stringify(await stream.result)}`);
await stopped.promise;
