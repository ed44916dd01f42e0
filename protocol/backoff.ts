/**
 * Reconnect delays: exponential backoff with full jitter (a random delay between 0 and
 * `min(max, initial × 2^attempt)`), so many clients that lost the same server do not come back
 * in one wave.
 *
 * @module
 */

/** First backoff ceiling (ms). */
export const DEFAULT_RECONNECT_INITIAL_DELAY = 100;
/** Largest backoff ceiling (ms). */
export const DEFAULT_RECONNECT_MAX_DELAY = 30_000;
/** Delay before retrying after an authentication failure (a configuration error) (ms). */
export const DEFAULT_AUTH_RETRY_DELAY = 30_000;

/**
 * The delay before reconnect attempt `attempt` (0 for the first).
 *
 * @param attempt how many attempts failed before this one
 * @param initial the first ceiling (ms)
 * @param max the largest ceiling (ms)
 * @param random a source of numbers in [0, 1)
 * @returns a delay in ms, from 0 up to the ceiling
 */
export function backoffDelay(
  attempt: number,
  initial = DEFAULT_RECONNECT_INITIAL_DELAY,
  max = DEFAULT_RECONNECT_MAX_DELAY,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(max, initial * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}
