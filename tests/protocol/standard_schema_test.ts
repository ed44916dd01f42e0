import { assert, assertEquals, assertFalse, assertInstanceOf } from "@std/assert";
import { z } from "zod";
import { InvalidParamsError, RpcError } from "../../protocol/errors.ts";
import {
  formatIssues,
  type InferInput,
  type InferOutput,
  isStandardSchema,
  MAX_ISSUE_MESSAGE_LENGTH,
  MAX_SCHEMA_ISSUES,
  paramsError,
  type SchemaIssue,
  type SchemaValidation,
  type StandardSchemaIssue,
  type StandardSchemaResult,
  type StandardSchemaV1,
  validateSchema,
} from "../../protocol/standard_schema.ts";

/** Asserts a failed validation and returns its issues. */
function issuesOf<T>(result: SchemaValidation<T>): SchemaIssue[] {
  if (result.ok) throw new Error(`expected a failure, got ${JSON.stringify(result.value)}`);
  return result.issues;
}

/** Asserts a successful validation and returns its value. */
function valueOf<T>(result: SchemaValidation<T>): T {
  if (!result.ok) throw new Error(`expected success, got ${formatIssues(result.issues)}`);
  return result.value;
}

/** A hand-written schema: a string with at least `min` characters. */
function minString(
  min: number,
  options: { async?: boolean; path?: StandardSchemaIssue["path"] } = {},
): StandardSchemaV1<unknown, string> {
  const check = (value: unknown): StandardSchemaResult<string> =>
    typeof value === "string" && value.length >= min
      ? { value: value.trim() }
      : { issues: [{ message: `Expected at least ${min} characters`, path: options.path }] };
  return {
    "~standard": {
      version: 1,
      vendor: "handwritten",
      validate: options.async ? (value) => Promise.resolve(check(value)) : check,
    },
  };
}

Deno.test("validateSchema: zod schemas", async (t) => {
  await t.step("a tuple passes and returns the parsed output", async () => {
    const schema = z.tuple([z.string().trim(), z.number().int().default(1)]);
    const value = valueOf(await validateSchema(schema, ["  ada  ", undefined]));
    assertEquals(value, ["ada", 1]);
    // the output type is inferred from the schema
    const typed: [string, number] = value;
    assertEquals(typed.length, 2);
  });

  await t.step("an object passes with transforms and defaults applied", async () => {
    const schema = z.object({
      name: z.string(),
      age: z.string().transform((s) => Number.parseInt(s, 10)),
      tags: z.array(z.string()).default([]),
    });
    const value = valueOf(await validateSchema(schema, { name: "Ada", age: "36", extra: 1 }));
    assertEquals(value, { name: "Ada", age: 36, tags: [] });
  });

  await t.step("a failing tuple reports numeric paths", async () => {
    const schema = z.tuple([z.string(), z.number()]);
    const issues = issuesOf(await validateSchema(schema, [42, 1]));
    assertEquals(issues.length, 1);
    assertEquals(issues[0].path, [0]);
    assertEquals(issues[0].message, "Expected string, received number");
  });

  await t.step("a failing object reports key paths, nested ones joined", async () => {
    const schema = z.object({
      name: z.string(),
      address: z.object({ city: z.string() }),
      items: z.array(z.object({ id: z.number() })),
    });
    const issues = issuesOf(
      await validateSchema(schema, { address: {}, items: [{ id: 1 }, { id: "x" }] }),
    );
    assertEquals(issues.map((i) => i.path), [["name"], ["address", "city"], ["items", 1, "id"]]);
    assertEquals(
      formatIssues(issues),
      "name: Required; address.city: Required; items.1.id: Expected number, received string",
    );
  });

  await t.step("a root-level issue has no path", async () => {
    const issues = issuesOf(await validateSchema(z.string(), 1));
    assertEquals(issues, [{ message: "Expected string, received number" }]);
    assertEquals(formatIssues(issues), "Expected string, received number");
  });

  await t.step("an async refine is awaited", async () => {
    const schema = z.object({
      user: z.string().refine(
        async (name) => {
          await new Promise((resolve) => setTimeout(resolve, 1));
          return name !== "taken";
        },
        { message: "Name is taken" },
      ),
    });
    assertEquals(valueOf(await validateSchema(schema, { user: "free" })), { user: "free" });
    assertEquals(issuesOf(await validateSchema(schema, { user: "taken" })), [
      { message: "Name is taken", path: ["user"] },
    ]);
  });

  await t.step("the issues are plain JSON", async () => {
    const schema = z.object({ a: z.array(z.number()) });
    const issues = issuesOf(await validateSchema(schema, { a: [1, "2", null] }));
    assertEquals(JSON.parse(JSON.stringify(issues)), issues);
  });
});

Deno.test("validateSchema: hand-written schemas", async (t) => {
  await t.step("a synchronous validate", async () => {
    const schema = minString(3);
    assertEquals(valueOf(await validateSchema(schema, " abcd ")), "abcd");
    assertEquals(issuesOf(await validateSchema(schema, "ab")), [
      { message: "Expected at least 3 characters" },
    ]);
  });

  await t.step("an asynchronous validate", async () => {
    const schema = minString(3, { async: true });
    assertEquals(valueOf(await validateSchema(schema, "abc")), "abc");
    assertEquals(issuesOf(await validateSchema(schema, 7)), [
      { message: "Expected at least 3 characters" },
    ]);
  });

  await t.step("{ key } segments are unwrapped and symbols become their description", async () => {
    const schema = minString(3, {
      path: [{ key: "user" }, { key: 2 }, Symbol("secret"), { key: Symbol("inner") }, "x", 0],
    });
    const issues = issuesOf(await validateSchema(schema, ""));
    assertEquals(issues[0].path, ["user", 2, "secret", "inner", "x", 0]);
    assertEquals(formatIssues(issues), "user.2.secret.inner.x.0: Expected at least 3 characters");
    assertEquals(JSON.parse(JSON.stringify(issues)), issues);
  });

  await t.step("an empty issue list is still a failure", async () => {
    const schema: StandardSchemaV1 = {
      "~standard": { version: 1, vendor: "test", validate: () => ({ issues: [] }) },
    };
    const issues = issuesOf(await validateSchema(schema, 1));
    assertEquals(issues.length, 1);
  });

  await t.step("types flow through InferInput / InferOutput", () => {
    const schema = z.string().transform((s) => s.length);
    const input: InferInput<typeof schema> = "abc";
    const output: InferOutput<typeof schema> = 3;
    assertEquals([input, output], ["abc", 3]);
  });
});

Deno.test("isStandardSchema", async (t) => {
  await t.step("true for zod and hand-written schemas", () => {
    assert(isStandardSchema(z.string()));
    assert(isStandardSchema(z.object({ a: z.number() })));
    assert(isStandardSchema(minString(1)));
    assert(isStandardSchema(minString(1, { async: true })));
  });

  await t.step("true for a function carrying ~standard", () => {
    const fn = Object.assign(() => {}, {
      "~standard": { version: 1, vendor: "fn", validate: (value: unknown) => ({ value }) },
    });
    assert(isStandardSchema(fn));
  });

  await t.step("false for everything else", () => {
    assertFalse(isStandardSchema({}));
    assertFalse(isStandardSchema(null));
    assertFalse(isStandardSchema(undefined));
    assertFalse(isStandardSchema("~standard"));
    assertFalse(isStandardSchema(42));
    assertFalse(isStandardSchema(() => {}));
    assertFalse(isStandardSchema(function named() {}));
    assertFalse(isStandardSchema({ "~standard": null }));
    assertFalse(isStandardSchema({ "~standard": { version: 2, validate: () => ({}) } }));
    assertFalse(isStandardSchema({ "~standard": { version: 1, validate: "no" } }));
    assertFalse(
      isStandardSchema({
        get "~standard"() {
          throw new Error("boom");
        },
      }),
    );
  });
});

Deno.test("validateSchema: caps", async (t) => {
  await t.step(`at most ${MAX_SCHEMA_ISSUES} issues are kept`, async () => {
    const schema = z.array(z.string());
    const issues = issuesOf(
      await validateSchema(schema, Array.from({ length: 1000 }, (_, i) => i)),
    );
    assertEquals(issues.length, MAX_SCHEMA_ISSUES);
    assertEquals(issues[0].path, [0]);
    assertEquals(issues[MAX_SCHEMA_ISSUES - 1].path, [MAX_SCHEMA_ISSUES - 1]);
  });

  await t.step(`messages are cut to ${MAX_ISSUE_MESSAGE_LENGTH} characters`, async () => {
    const long = "x".repeat(10_000);
    const schema: StandardSchemaV1 = {
      "~standard": {
        version: 1,
        vendor: "test",
        validate: () => ({ issues: [{ message: long }, { message: "short" }] }),
      },
    };
    const issues = issuesOf(await validateSchema(schema, 1));
    assertEquals(issues[0].message.length, MAX_ISSUE_MESSAGE_LENGTH);
    assert(issues[0].message.endsWith("…"));
    assertEquals(issues[1].message, "short");
  });

  await t.step("a cut never splits a surrogate pair", async () => {
    const schema: StandardSchemaV1 = {
      "~standard": {
        version: 1,
        vendor: "test",
        validate: () => ({ issues: [{ message: "a" + "😀".repeat(1000) }] }),
      },
    };
    const [issue] = issuesOf(await validateSchema(schema, 1));
    assert(issue.message.length <= MAX_ISSUE_MESSAGE_LENGTH);
    assert(issue.message.isWellFormed());
  });

  await t.step("formatIssues is cut to about 1000 characters", () => {
    const issues: SchemaIssue[] = Array.from({ length: 32 }, (_, i) => ({
      message: "y".repeat(400),
      path: ["field", i],
    }));
    const text = formatIssues(issues);
    assert(text.length <= 1000, `${text.length}`);
    assert(text.endsWith("…"));
    assert(text.startsWith("field.0: yyy"));
  });

  await t.step("formatIssues of no issues is empty", () => {
    assertEquals(formatIssues([]), "");
  });
});

Deno.test("validateSchema: a throwing validate is a failure", async (t) => {
  await t.step("synchronous throw", async () => {
    const schema: StandardSchemaV1 = {
      "~standard": {
        version: 1,
        vendor: "test",
        validate: () => {
          throw new TypeError("schema exploded");
        },
      },
    };
    assertEquals(await validateSchema(schema, 1), {
      ok: false,
      issues: [{ message: "schema exploded" }],
    });
  });

  await t.step("rejected promise with a non-Error reason", async () => {
    const schema: StandardSchemaV1 = {
      "~standard": { version: 1, vendor: "test", validate: () => Promise.reject("nope") },
    };
    assertEquals(await validateSchema(schema, 1), { ok: false, issues: [{ message: "nope" }] });
  });

  await t.step("zod refine that throws", async () => {
    const schema = z.string().refine(() => {
      throw new Error("refine failed");
    });
    const issues = issuesOf(await validateSchema(schema, "a"));
    assertEquals(issues, [{ message: "refine failed" }]);
  });
});

Deno.test("paramsError", async () => {
  const schema = z.tuple([z.string(), z.object({ name: z.string() })]);
  const issues = issuesOf(await validateSchema(schema, [1, {}]));
  const err = paramsError("greet", issues);
  assertInstanceOf(err, InvalidParamsError);
  assertInstanceOf(err, RpcError);
  assertEquals(err.code, "INVALID_PARAMS");
  assertEquals(
    err.message,
    "Invalid params for 'greet': 0: Expected string, received number; 1.name: Required",
  );
  assertEquals(err.data, { issues });
  assertEquals(err.retryable, false);
  assertEquals(paramsError("m", []).message, "Invalid params for 'm'");
});
