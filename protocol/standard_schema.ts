/**
 * Params validation through the [Standard Schema](https://standardschema.dev) interface, so a
 * method may be guarded by a schema from any library that implements it (Zod, Valibot,
 * ArkType, …) without `@trust/rpc` depending on one.
 *
 * The interface types below are this library's own declaration of the Standard Schema v1
 * contract (the spec is meant to be re-declared, not imported). {@link validateSchema} turns a
 * schema's result into a JSON-safe, size-capped list of {@link SchemaIssue}s that can travel
 * in the `data` of an {@link InvalidParamsError} (see {@link paramsError}): the input being
 * validated is untrusted, and so is anything a schema derives from it.
 *
 * @example Validate params with any Standard Schema
 * ```ts
 * import { paramsError, validateSchema } from "@trust/rpc/protocol";
 * import type { StandardSchemaV1 } from "@trust/rpc/protocol";
 *
 * const name: StandardSchemaV1<unknown, string> = {
 *   "~standard": {
 *     version: 1,
 *     vendor: "example",
 *     validate: (value) =>
 *       typeof value === "string" ? { value } : { issues: [{ message: "Expected string" }] },
 *   },
 * };
 * const result = await validateSchema(name, 42);
 * if (!result.ok) throw paramsError("greet", result.issues);
 * ```
 *
 * @module
 */

import { InvalidParamsError } from "./errors.ts";

/** A schema that implements Standard Schema v1: everything lives under `~standard`. */
export interface StandardSchemaV1<Input = unknown, Output = Input> {
  /** The Standard Schema properties. */
  readonly "~standard": StandardSchemaProps<Input, Output>;
}

/** The properties a Standard Schema exposes under its `~standard` key. */
export interface StandardSchemaProps<Input = unknown, Output = Input> {
  /** The version of the Standard Schema interface (always 1). */
  readonly version: 1;
  /** The library that built the schema (e.g. `"zod"`). */
  readonly vendor: string;
  /** Checks an unknown value; may answer synchronously or with a promise. */
  readonly validate: (
    value: unknown,
  ) => StandardSchemaResult<Output> | Promise<StandardSchemaResult<Output>>;
  /** Type-level only: the schema's input and output types. */
  readonly types?: StandardSchemaTypes<Input, Output> | undefined;
}

/** The input and output types a schema carries for inference (never present at run time). */
export interface StandardSchemaTypes<Input = unknown, Output = Input> {
  /** The type the schema accepts. */
  readonly input: Input;
  /** The type the schema produces. */
  readonly output: Output;
}

/** What `validate` answers: the (possibly transformed) value, or a list of issues. */
export type StandardSchemaResult<Output> = StandardSchemaSuccess<Output> | StandardSchemaFailure;

/** A successful validation: `issues` is absent. */
export interface StandardSchemaSuccess<Output> {
  /** The validated (possibly transformed or defaulted) value. */
  readonly value: Output;
  /** Always absent on success. */
  readonly issues?: undefined;
}

/** A failed validation: the issues found. */
export interface StandardSchemaFailure {
  /** What is wrong with the value. */
  readonly issues: ReadonlyArray<StandardSchemaIssue>;
}

/** One problem a schema found, as the schema reports it. */
export interface StandardSchemaIssue {
  /** Human-readable description. */
  readonly message: string;
  /** Where in the value the problem is, outermost key first. */
  readonly path?: ReadonlyArray<PropertyKey | StandardSchemaPathSegment> | undefined;
}

/** A path segment given as an object rather than a bare key. */
export interface StandardSchemaPathSegment {
  /** The key this segment stands for. */
  readonly key: PropertyKey;
}

/** The input type of a Standard Schema. */
export type InferInput<S extends StandardSchemaV1> = NonNullable<
  S["~standard"]["types"]
>["input"];

/** The output type of a Standard Schema. */
export type InferOutput<S extends StandardSchemaV1> = NonNullable<
  S["~standard"]["types"]
>["output"];

/** A JSON-safe validation issue, fit to travel in an error's `data`. */
export interface SchemaIssue {
  /** Human-readable description (at most {@link MAX_ISSUE_MESSAGE_LENGTH} characters). */
  message: string;
  /** Where in the value the problem is; absent for the value itself. */
  path?: (string | number)[];
}

/** The outcome of {@link validateSchema}. */
export type SchemaValidation<Output> =
  | { ok: true; value: Output }
  | { ok: false; issues: SchemaIssue[] };

/** Most issues {@link validateSchema} keeps; the rest are dropped. */
export const MAX_SCHEMA_ISSUES = 32;
/** Longest issue message {@link validateSchema} keeps (characters); longer ones are cut. */
export const MAX_ISSUE_MESSAGE_LENGTH = 500;
/** Most path segments kept per issue. */
export const MAX_ISSUE_PATH_DEPTH = 32;
/** Longest string path segment kept (characters); keys come from untrusted input. */
export const MAX_PATH_SEGMENT_LENGTH = 100;
/** Longest text {@link formatIssues} returns (characters). */
export const MAX_FORMATTED_ISSUES_LENGTH = 1000;

const ELLIPSIS = "…";

/**
 * Whether `value` implements Standard Schema v1: an object or function whose `~standard`
 * property is an object with `version: 1` and a `validate` function.
 *
 * @param value anything
 * @returns true for a Standard Schema
 */
export function isStandardSchema(value: unknown): value is StandardSchemaV1 {
  if (value === null || (typeof value !== "object" && typeof value !== "function")) return false;
  try {
    const props: unknown = (value as Record<string, unknown>)["~standard"];
    if (props === null || typeof props !== "object") return false;
    const { version, validate } = props as Record<string, unknown>;
    return version === 1 && typeof validate === "function";
  } catch {
    // a throwing getter or proxy trap: not something we can use
    return false;
  }
}

/**
 * Validates `value` against a Standard Schema. Sync and async schemas are both awaited; the
 * issues are normalized to JSON-safe {@link SchemaIssue}s and capped (at most
 * {@link MAX_SCHEMA_ISSUES} issues, messages cut to {@link MAX_ISSUE_MESSAGE_LENGTH}
 * characters). A `validate` that throws yields one issue carrying the error's message.
 *
 * @param schema the schema to check against
 * @param value the untrusted value
 * @returns `{ ok: true, value }` with the schema's output, or `{ ok: false, issues }`
 */
export async function validateSchema<S extends StandardSchemaV1>(
  schema: S,
  value: unknown,
): Promise<SchemaValidation<InferOutput<S>>> {
  let result: unknown;
  try {
    result = await schema["~standard"].validate(value);
  } catch (err) {
    return { ok: false, issues: [{ message: cut(errorMessage(err), MAX_ISSUE_MESSAGE_LENGTH) }] };
  }
  if (result === null || typeof result !== "object") {
    return { ok: false, issues: [{ message: "Schema returned an invalid result" }] };
  }
  const { issues } = result as { issues?: unknown };
  if (issues === undefined) {
    return { ok: true, value: (result as { value: InferOutput<S> }).value };
  }
  return { ok: false, issues: normalizeIssues(issues) };
}

/**
 * Renders issues as one line: `path: message` pairs (path joined with `.`) separated by `; `,
 * cut to {@link MAX_FORMATTED_ISSUES_LENGTH} characters.
 *
 * @param issues the issues, as {@link validateSchema} returns them
 * @returns e.g. `0: Expected string, received number; name: Required`
 */
export function formatIssues(issues: SchemaIssue[]): string {
  const parts: string[] = [];
  let length = 0;
  for (const issue of issues) {
    const part = issue.path !== undefined && issue.path.length > 0
      ? `${issue.path.join(".")}: ${issue.message}`
      : issue.message;
    parts.push(part);
    length += part.length + 2;
    if (length > MAX_FORMATTED_ISSUES_LENGTH) break;
  }
  return cut(parts.join("; "), MAX_FORMATTED_ISSUES_LENGTH);
}

/**
 * The {@link InvalidParamsError} to raise when a method's params fail their schema: the
 * message names the method and summarizes the issues, and `data.issues` carries them over
 * the wire.
 *
 * @param method the method whose params were rejected
 * @param issues the issues, as {@link validateSchema} returns them
 * @returns an `INVALID_PARAMS` error
 */
export function paramsError(method: string, issues: SchemaIssue[]): InvalidParamsError {
  const summary = formatIssues(issues);
  const message = summary === ""
    ? `Invalid params for '${method}'`
    : `Invalid params for '${method}': ${summary}`;
  return new InvalidParamsError(message, { data: { issues } });
}

/** Turns whatever a schema reported as its issues into at most MAX_SCHEMA_ISSUES SchemaIssues. */
function normalizeIssues(issues: unknown): SchemaIssue[] {
  const out: SchemaIssue[] = [];
  if (Array.isArray(issues)) {
    const count = Math.min(issues.length, MAX_SCHEMA_ISSUES);
    for (let i = 0; i < count; i++) out.push(normalizeIssue(issues[i]));
  }
  // `issues` present means failure, even when the list is empty or malformed
  if (out.length === 0) out.push({ message: "Invalid value" });
  return out;
}

function normalizeIssue(issue: unknown): SchemaIssue {
  if (issue === null || typeof issue !== "object") return { message: "Invalid value" };
  const { message, path } = issue as { message?: unknown; path?: unknown };
  const normalized: SchemaIssue = {
    message: typeof message === "string" && message !== ""
      ? cut(message, MAX_ISSUE_MESSAGE_LENGTH)
      : "Invalid value",
  };
  if (Array.isArray(path) && path.length > 0) {
    const count = Math.min(path.length, MAX_ISSUE_PATH_DEPTH);
    const segments: (string | number)[] = [];
    for (let i = 0; i < count; i++) segments.push(normalizeSegment(path[i]));
    normalized.path = segments;
  }
  return normalized;
}

function normalizeSegment(segment: unknown): string | number {
  const key = segment !== null && typeof segment === "object" && "key" in segment
    ? (segment as StandardSchemaPathSegment).key
    : segment;
  switch (typeof key) {
    case "number":
      // NaN and the infinities do not survive JSON
      return Number.isFinite(key) ? key : String(key);
    case "string":
      return cut(key, MAX_PATH_SEGMENT_LENGTH);
    case "symbol":
      return cut(key.description ?? "", MAX_PATH_SEGMENT_LENGTH);
    default:
      return cut(safeString(key), MAX_PATH_SEGMENT_LENGTH);
  }
}

function errorMessage(err: unknown): string {
  const message = err instanceof Error ? err.message : safeString(err);
  return message === "" ? "Schema validation failed" : message;
}

function safeString(value: unknown): string {
  try {
    return String(value);
  } catch {
    return "";
  }
}

/** Cuts `text` to at most `max` characters, ending in "…", never splitting a surrogate pair. */
function cut(text: string, max: number): string {
  if (text.length <= max) return text;
  let end = max - ELLIPSIS.length;
  const last = text.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end--;
  return text.slice(0, end) + ELLIPSIS;
}
