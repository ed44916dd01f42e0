/**
 * The typed facade: `client.api<typeof methods>()` checks params and results with
 * TypeScript (the `@ts-expect-error` lines below make `deno check` — and so `deno test` —
 * fail if a wrong type were accepted) and behaves like call() / stream() at run time.
 */
import { assertEquals, assertRejects } from "@std/assert";
import { MethodNotFoundError, RemoteError } from "../protocol/errors.ts";
import type { CallContext } from "../protocol/methods.ts";
import type { RpcStream } from "../protocol/rpc_stream.ts";
import { startServer } from "./_helpers.ts";

const methods = {
  add: (a: number, b: number) => a + b,
  greet: (name: string) => Promise.resolve(`Hello, ${name}!`),
  user: (id: number) => ({ id, name: `user${id}`, tags: ["x"] }),
  async *countdown(from: number) {
    for (let i = from; i > 0; i--) yield i;
    return "liftoff" as const;
  },
  chunks: (n: number) => ReadableStream.from(Array.from({ length: n }, (_, i) => `c${i}`)),
  whoami(this: CallContext) {
    return this.sessionId;
  },
  boom: () => {
    throw new TypeError("Boom");
  },
  definition: {
    handler: (flag: boolean) => !flag,
  },
};

Deno.test("typed API", async (t) => {
  await using ts = await startServer("tcp", { methods });
  await using client = await ts.connect();
  const api = client.api<typeof methods>();

  await t.step("plain methods are typed promises", async () => {
    const sum: number = await api.add(1, 2);
    const text: string = await api.greet("Alice");
    const user: { id: number; name: string } = await api.user(7);
    const flipped: boolean = await api.definition(true);
    assertEquals([sum, text, user.name, flipped], [3, "Hello, Alice!", "user7", false]);
    assertEquals(await api.whoami(), client.sessionId, "`this` is not a parameter");
  });

  await t.step("wrong params and results are type errors", () => {
    const check = () => {
      // @ts-expect-error a string is not a number
      api.add("1", 2);
      // @ts-expect-error missing argument
      api.add(1);
      // @ts-expect-error unknown method
      api.nope();
      // @ts-expect-error the result is a number, not a string
      const _s: Promise<string> = api.add(1, 2);
      // @ts-expect-error chunks are numbers
      const _c: RpcStream<string> = api.countdown(3);
    };
    assertEquals(typeof check, "function"); // type-level only: never run
  });

  await t.step("streaming methods are typed async iterables", async () => {
    const seen: number[] = [];
    for await (const n of api.countdown(3)) seen.push(n);
    assertEquals(seen, [3, 2, 1]);
    const stream = api.countdown(2);
    const result: "liftoff" = await (await stream).result;
    assertEquals(result, "liftoff");
    const strings: string[] = await Array.fromAsync(api.chunks(2));
    assertEquals(strings, ["c0", "c1"]);
  });

  await t.step("errors arrive as for call()", async () => {
    await assertRejects(() => api.boom(), RemoteError, "Boom");
    const untyped = client.api();
    await assertRejects(() => untyped.missing(), MethodNotFoundError);
  });

  await t.step("the facade is not a thenable and lists nothing", async () => {
    assertEquals(await Promise.resolve(api) === api, true);
    assertEquals(Object.keys(api), []);
  });
});
