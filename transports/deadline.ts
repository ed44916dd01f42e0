/**
 * Connect timeouts shared by every dialer: the default, its check, and a deadline that
 * combines it with the caller's `AbortSignal`. No `Deno.*` here (the browser dialer uses it).
 *
 * @module
 */

import { TransportError } from "../protocol/errors.ts";

/** Milliseconds a dial may take by default (TLS: including the TLS handshake). */
export const DEFAULT_CONNECT_TIMEOUT = 10_000;

/**
 * Checks a connect timeout.
 *
 * @param ms the timeout in milliseconds, or `undefined` for the default
 * @returns the timeout to use
 * @throws {TypeError} when not a positive finite number
 */
export function checkTimeout(ms: number | undefined): number {
  if (ms === undefined) return DEFAULT_CONNECT_TIMEOUT;
  if (typeof ms !== "number" || !(ms > 0) || !Number.isFinite(ms)) {
    throw new TypeError(`Invalid connectTimeout ${String(ms)}: expected a positive number of ms`);
  }
  return ms;
}

/** A connect deadline: the connect timeout combined with the caller's signal. */
export interface ConnectDeadline {
  /** Aborts when the timeout passes or the caller aborts. */
  readonly signal: AbortSignal;
  /**
   * Builds the `CONNECT_FAILED` error for a failed attempt, naming the timeout or the abort
   * when one of them is the reason.
   */
  error(address: string, cause: unknown): TransportError;
}

/**
 * Starts a connect deadline.
 *
 * @param ms the connect timeout in milliseconds
 * @param caller the caller's signal, if any
 * @param describe says why an attempt failed, in words
 * @returns the combined signal and an error builder
 */
export function connectDeadline(
  ms: number,
  caller?: AbortSignal,
  describe: (cause: unknown) => string = (cause) =>
    cause instanceof Error ? cause.message : String(cause),
): ConnectDeadline {
  const timeout = AbortSignal.timeout(ms);
  return {
    signal: caller ? AbortSignal.any([timeout, caller]) : timeout,
    error(address, cause) {
      const aborted = !timeout.aborted && caller?.aborted === true;
      const why = timeout.aborted
        ? `timed out after ${ms} ms`
        : aborted
        ? "aborted"
        : describe(cause);
      return new TransportError("CONNECT_FAILED", `Cannot connect to ${address}: ${why}`, {
        cause,
        retryable: !aborted,
      });
    },
  };
}
