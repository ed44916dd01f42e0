/**
 * Method registration and handler context. Only names registered explicitly are callable:
 * the table is a `Map` built from the own enumerable keys of the object you pass, so
 * prototype members (`toString`, `constructor`, `__proto__`, inherited class methods) can
 * never be reached (HOSTILE-TESTS #42–#43).
 *
 * @module
 */

import { InvalidParamsError } from "./errors.ts";
import { METHOD_NAME_PATTERN } from "./limits.ts";

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
}

/**
 * A handler: positional params as arguments (an object param arrives as one argument), the
 * {@link CallContext} as `this`. May return a value or a promise.
 */
// deno-lint-ignore no-explicit-any
export type MethodHandler = (this: CallContext, ...args: any[]) => unknown;

/** A handler with a params check that runs first; a failing check is `INVALID_PARAMS`. */
export interface MethodDefinition {
  /** The handler. */
  handler: MethodHandler;
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
      table.set(name, { handler: value.handler, validate: value.validate });
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
