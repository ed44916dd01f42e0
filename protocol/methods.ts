/**
 * Method registration and handler context. Only names registered explicitly are callable:
 * the table is a `Map` built from the own enumerable keys of the object you pass, so
 * prototype members (`toString`, `constructor`, `__proto__`, inherited class methods) can
 * never be reached (HOSTILE-TESTS #42–#43).
 *
 * @module
 */

import { InvalidParamsError, RpcError } from "./errors.ts";
import { isStreamSource } from "./flow.ts";
import type { Peer } from "./peer.ts";
import { METHOD_NAME_PATTERN } from "./limits.ts";
import {
  formatIssues,
  isStandardSchema,
  paramsError,
  type StandardSchemaV1,
  validateSchema,
} from "./standard_schema.ts";

/** Parameters of a call: positional (an array) or named (one object). */
export type Params = unknown[] | Record<string, unknown>;

/** What a handler sees as `this`: who calls, how to learn it was cancelled, how to call back. */
export interface CallContext {
  /** The session (connection) id, 32 hex digits. */
  readonly sessionId: string;
  /** The method being run. */
  readonly method: string;
  /** Aborts when the caller cancels, the call's deadline passes, or the connection drops. */
  readonly signal: AbortSignal;
  /** The caller's deadline (epoch ms), if it sent one. */
  readonly deadline: number | undefined;
  /** Metadata (headers) the caller attached. */
  readonly meta: Readonly<Record<string, unknown>>;
  /** Calls the caller back over the same connection. */
  call<T = unknown>(method: string, params?: Params): Promise<T>;
  /** Sends the caller a notification over the same connection. */
  notify(method: string, params?: Params): void;
  /** Sends the caller an event over the same connection. */
  emit(name: string, data?: unknown): void;
  /** On the server: the client calling (its id, address, `data`, …). Undefined on a client. */
  readonly peer?: Peer;
  /**
   * What the caller sends on a channel (`open()`), in order; ends when the caller closes its
   * half. Empty for other calls. Reading grants the caller credit to send more.
   */
  readonly input: AsyncIterable<unknown>;
}

/**
 * A handler: positional params as arguments (an object param arrives as one argument), the
 * {@link CallContext} as `this`. May return a value or a promise.
 */
// deno-lint-ignore no-explicit-any
export type MethodHandler = (this: CallContext, ...args: any[]) => unknown;

/**
 * A handler with checks. `params` and `result` take any Standard Schema (zod, valibot,
 * arktype, … — anything with a `~standard` property); `params` validates the **argument
 * list** (an array: use a tuple schema, e.g. `z.tuple([z.string()])`) and the handler gets
 * the schema's output (transforms and defaults applied). Invalid params are answered
 * `INVALID_PARAMS` with the issues as `data.issues`; an invalid result is `INTERNAL`.
 */
export interface MethodDefinition<H extends MethodHandler = MethodHandler> {
  /** The handler. */
  handler: H;
  /** Standard Schema for the argument list. */
  params?: StandardSchemaV1;
  /** Standard Schema for the result (not for stream chunks). */
  result?: StandardSchemaV1;
  /**
   * Checks the params before the handler runs. Throw (or return `false`) to reject them; the
   * error's message is sent back as `INVALID_PARAMS`.
   */
  validate?: (params: Params) => boolean | void;
}

/** The methods a side serves: a name → handler (or definition) record. */
export type Methods = Record<string, MethodHandler | MethodDefinition>;

/** The resolved method table. */
export type MethodTable = ReadonlyMap<string, MethodDefinition>;

/**
 * Builds the method table from own enumerable string keys only. Names must follow the method
 * name rule (identifiers and routes such as `/stream/time`).
 *
 * @throws {TypeError} when a name breaks the rule or a value is not a handler
 */
export function createMethodTable(methods: Methods | undefined): MethodTable {
  const table = new Map<string, MethodDefinition>();
  if (methods === undefined) return table;
  for (const name of Object.keys(methods)) {
    if (!METHOD_NAME_PATTERN.test(name)) {
      throw new TypeError(
        `Invalid method name ${JSON.stringify(name)}: use letters, digits, _ . / : -`,
      );
    }
    const value = methods[name];
    if (typeof value === "function") table.set(name, { handler: value });
    else if (value && typeof value === "object" && typeof value.handler === "function") {
      for (const key of ["params", "result"] as const) {
        if (value[key] !== undefined && !isStandardSchema(value[key])) {
          throw new TypeError(`Method ${JSON.stringify(name)}: ${key} is not a Standard Schema`);
        }
      }
      table.set(name, {
        handler: value.params || value.result ? withSchemas(name, value) : value.handler,
        validate: value.validate,
        params: value.params,
        result: value.result,
      });
    } else throw new TypeError(`Method ${JSON.stringify(name)} is not a function`);
  }
  return table;
}

/** Runs a definition's `validate`, turning any failure into {@link InvalidParamsError}. */
export function validateParams(
  name: string,
  def: MethodDefinition,
  params: Params,
): void {
  if (!def.validate) return;
  let ok: boolean | void;
  try {
    ok = def.validate(params);
  } catch (err) {
    if (err instanceof InvalidParamsError) throw err;
    throw new InvalidParamsError(
      `Invalid params for '${name}': ${err instanceof Error ? err.message : String(err)}`,
    );
  }
  if (ok === false) throw new InvalidParamsError(`Invalid params for '${name}'`);
}

/** The handler wrapped with its Standard Schema checks (params first, result last). */
function withSchemas(name: string, def: MethodDefinition): MethodHandler {
  const { handler, params, result } = def;
  return async function (this: CallContext, ...args: unknown[]): Promise<unknown> {
    if (params) {
      const checked = await validateSchema(params, args);
      if (!checked.ok) throw paramsError(name, checked.issues);
      args = Array.isArray(checked.value) ? checked.value : [checked.value];
    }
    const value = await handler.apply(this, args);
    if (!result || isStreamSource(value)) return value;
    const checked = await validateSchema(result, value);
    if (checked.ok) return checked.value;
    throw new RpcError(
      "INTERNAL",
      `The result of '${name}' failed validation: ${formatIssues(checked.issues)}`,
      { data: { issues: checked.issues } },
    );
  };
}
