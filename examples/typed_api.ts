/**
 * A typed client without code generation: `client.api<typeof methods>()` turns the server's
 * method table *type* into functions whose params and results TypeScript checks. Plain
 * methods are awaited for their value; streaming ones (async generators) are iterated with
 * `for await`. `deno check examples/typed_api.ts` proves the wrong calls below are rejected.
 * Uses TRUST_ID when set, otherwise a one-time random secret.
 *
 *     deno run -A examples/typed_api.ts
 *
 * @module
 */

import { connect, generateSecret, type Methods, serve } from "../mod.ts";

const secret = Deno.env.get("TRUST_ID") || generateSecret();

// In a real project this table lives in its own module; the client imports only its type
// (`import type { methods } from "./methods.ts"`).
const methods = {
  add: (a: number, b: number) => a + b,
  greet: async (name: string) => {
    await new Promise((r) => setTimeout(r, 1));
    return { greeting: `Hello, ${name}!`, length: name.length };
  },
  async *countdown(from: number) {
    for (let n = from; n > 0; n--) {
      yield n;
      await new Promise((r) => setTimeout(r, 20));
    }
    return "liftoff" as const;
  },
} satisfies Methods;

await using server = await serve({ listen: "tcp://127.0.0.1:0", secret, logger: "warn", methods });
await using client = await connect(server.addresses[0], { secret, timeout: 5000 });
const api = client.api<typeof methods>();

const sum: number = await api.add(1, 2);
console.log(`add(1, 2) = ${sum} (${typeof sum})`);

const { greeting, length } = await api.greet("Deno");
console.log(`greet("Deno") = ${greeting} (${length} letters)`);

const counted: number[] = [];
for await (const n of api.countdown(3)) counted.push(n);
console.log(`countdown(3) yielded ${counted.join(", ")}`);

// Awaiting a streaming call gives its RpcStream: the generator's return value is `result`.
const stream = await api.countdown(2);
const ticks = await Array.fromAsync(stream);
const final: "liftoff" = await stream.result;
console.log(`countdown(2) yielded ${ticks.length} values, then returned "${final}"`);

// What `deno check` refuses (these lines never run):
const _wrongCalls = async () => {
  // @ts-expect-error: "1" is not a number
  api.add("1", 2);
  // @ts-expect-error: greet takes one argument
  api.greet();
  // @ts-expect-error: add resolves to a number, not a string
  const _text: string = await api.add(1, 2);
  // @ts-expect-error: there is no method "subtract"
  api.subtract(3, 1);
};
console.log("wrong param types are compile errors: see the @ts-expect-error lines");
