/**
 * Standard Schema validation with a real schema library (zod, a test-only dependency):
 * params are checked (and transformed) before the handler runs, results before they leave.
 */
import { assertEquals, assertRejects } from "@std/assert";
import { z } from "zod";
import { InvalidParamsError, RpcError } from "../protocol/errors.ts";
import { startServer } from "./_helpers.ts";

Deno.test("Standard Schema validation with zod", async (t) => {
  const calls: unknown[][] = [];
  const methods = {
    register: {
      params: z.tuple([
        z.object({
          name: z.string().min(1),
          age: z.number().int().nonnegative(),
          tags: z.array(z.string()).default([]),
        }),
        z.enum(["member", "admin"]),
      ]),
      result: z.object({ id: z.string() }),
      handler(user: { name: string; age: number; tags?: string[] }, role: "member" | "admin") {
        calls.push([user, role]);
        return { id: `${user.name}:${role}` };
      },
    },
    trimmed: {
      params: z.tuple([z.string().trim()]),
      handler: (s: string) => s,
    },
    lying: {
      result: z.number(),
      handler: () => "not a number",
    },
  };
  await using ts = await startServer("tcp", { methods });
  await using client = await ts.connect();

  await t.step("valid params reach the handler, defaults and transforms applied", async () => {
    assertEquals(await client.call("register", [{ name: "Ada", age: 36 }, "member"]), {
      id: "Ada:member",
    });
    assertEquals(await client.call("trimmed", ["  padded  "]), "padded");
    assertEquals(calls, [[{ name: "Ada", age: 36, tags: [] }, "member"]]);
  });

  await t.step("invalid params are INVALID_PARAMS with the issues; no handler runs", async () => {
    calls.length = 0;
    const err = await assertRejects(
      () => client.call("register", [{ name: "", age: -1 }, "member"]),
      InvalidParamsError,
    );
    const issues = (err.data as { issues: { path: (string | number)[]; message: string }[] })
      .issues;
    assertEquals(issues.map((i) => i.path).sort(), [[0, "age"], [0, "name"]]);
    assertEquals(calls, []);
    await assertRejects(() => client.call("register", ["not an object"]), InvalidParamsError);
  });

  await t.step("the typed facade sees the same checks", async () => {
    const api = client.api<typeof methods>();
    assertEquals(await api.register({ name: "Grace", age: 45 }, "admin"), { id: "Grace:admin" });
    // @ts-expect-error age must be a number
    await assertRejects(() => api.register({ name: "x", age: "old" }, "admin"), InvalidParamsError);
  });

  await t.step("a result that fails its schema is INTERNAL, never sent as is", async () => {
    const err = await assertRejects(() => client.call("lying"), RpcError);
    assertEquals(err.code, "INTERNAL");
  });

  await t.step(
    "a definition whose schema is not a Standard Schema is refused at serve()",
    async () => {
      await assertRejects(
        () =>
          startServer("tcp", {
            methods: { bad: { params: {} as never, handler: () => 1 } },
          }),
        TypeError,
        "Standard Schema",
      );
    },
  );
});
