/**
 * How the CLIs print values and errors: JSON lines (bytes as `{"$bytes": base64}`) and errors
 * as `CODE: message` (a remote class name first when the peer sent one).
 *
 * @module
 */

import { RemoteError, RpcError } from "../protocol/errors.ts";
import { UsageError } from "./args.ts";

/** Exit code: the call failed. */
export const EXIT_CALL_FAILED = 1;
/** Exit code: bad command line. */
export const EXIT_USAGE = 2;
/** Exit code: could not load the secret, connect or authenticate. */
export const EXIT_CONNECT_FAILED = 3;

function bytesToBase64(bytes: Uint8Array): string {
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(text);
}

/** JSON text of a result; `Uint8Array` values print as `{"$bytes": "<base64>"}`. */
export function toJsonLine(value: unknown): string {
  return JSON.stringify(
    value ?? null,
    (_key, v) => v instanceof Uint8Array ? { $bytes: bytesToBase64(v) } : v,
  );
}

/** One line describing an error: `TypeError: Name must be a string`, `METHOD_NOT_FOUND: …`. */
export function describeError(err: unknown): string {
  if (err instanceof RemoteError) return `${err.name}: ${err.message}`;
  if (err instanceof RpcError) return `${err.code}: ${err.message}`;
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return String(err);
}

/**
 * Reports a failure while reading the command line: a usage error with the help text (exit
 * 2), anything else (an unreadable file) as a plain error (exit 3). Returns the exit code.
 */
export function reportArgsFailure(err: unknown, help: string): number {
  if (err instanceof UsageError) {
    console.error(`error: ${err.message}\n\n${help}`);
    return EXIT_USAGE;
  }
  console.error(`error: ${describeError(err)}`);
  return EXIT_CONNECT_FAILED;
}
