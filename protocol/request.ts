/**
 * Reading a REQUEST or NOTIFY body (PROTOCOL.md D.1, protocol/README.md §6.2):
 * `{"method", "params", "meta"?, "credit"?, "input"?}`. Everything a peer may get wrong is
 * refused here with a typed error, before any handler runs.
 *
 * @module
 */

import { escapeForLog } from "./alerts.ts";
import { InvalidParamsError, MethodNotFoundError } from "./errors.ts";
import { MAX_STREAM_WINDOW } from "./flow.ts";
import { METHOD_NAME_PATTERN } from "./limits.ts";
import { type MethodDefinition, type MethodTable, type Params, validateParams } from "./methods.ts";

/** A request that passed every check. */
export interface ParsedRequest {
  /** The method name. */
  method: string;
  /** Its registered definition. */
  def: MethodDefinition;
  /** The handler's arguments (an object param is one argument). */
  args: unknown[];
  /** Metadata (headers), `{}` when none. */
  meta: Record<string, unknown>;
  /** Chunks the caller granted: it accepts a stream (`stream()` / `open()`). */
  credit: number | undefined;
  /** True for a channel (`open()`): the caller sends input. */
  input: boolean;
}

/**
 * Checks a decoded request body against the method table.
 *
 * @param onMethod told the method name as soon as it is known (for logs and metrics)
 * @throws {InvalidParamsError} a malformed body, params, meta or stream options
 * @throws {MethodNotFoundError} a name that is not registered (or breaks the name rule)
 */
export function parseRequest(
  request: unknown,
  methods: MethodTable,
  onMethod: (method: string) => void,
): ParsedRequest {
  if (typeof request !== "object" || request === null) {
    throw new InvalidParamsError("Malformed request: a method name is required");
  }
  const body = request as Record<string, unknown>;
  const method = body.method;
  if (typeof method !== "string") {
    throw new InvalidParamsError("Malformed request: a method name is required");
  }
  onMethod(method);
  const def = METHOD_NAME_PATTERN.test(method) ? methods.get(method) : undefined;
  if (def === undefined) {
    throw new MethodNotFoundError(`Method '${escapeForLog(method)}' not found`);
  }
  const params = body.params ?? [];
  if (typeof params !== "object" || params === null) {
    throw new InvalidParamsError(`Params of '${method}' must be an array or an object`);
  }
  const meta = body.meta;
  if (meta !== undefined && (typeof meta !== "object" || meta === null || Array.isArray(meta))) {
    throw new InvalidParamsError("Request metadata must be an object");
  }
  const credit = body.credit;
  if (
    credit !== undefined &&
    (typeof credit !== "number" || !Number.isInteger(credit) || credit < 1 ||
      credit > MAX_STREAM_WINDOW)
  ) {
    throw new InvalidParamsError(`Stream credit must be an integer from 1 to ${MAX_STREAM_WINDOW}`);
  }
  const input = body.input === true;
  if (input && credit === undefined) {
    throw new InvalidParamsError("A channel request must grant credit");
  }
  validateParams(method, def, params as Params);
  return {
    method,
    def,
    args: Array.isArray(params) ? params : [params],
    meta: (meta ?? {}) as Record<string, unknown>,
    credit: credit as number | undefined,
    input,
  };
}
