/**
 * Turns the `secret` option of `connect()` / `serve()` into the stretched key: the given
 * string, or `TRUST_ID` from the environment when none is given (the CLIs also read `.env`).
 * Runs before any socket work, so a bad secret fails fast.
 *
 * @module
 */

import { normalizeSecret, stretchSecret } from "../protocol/secret.ts";
import { loadSecret } from "./secret_source.ts";

/**
 * Validates and stretches a secret (PBKDF2, cached per process).
 *
 * @param secret the secret, or undefined to read `TRUST_ID` from the environment
 * @param insecureAllowShortSecret test only: accept fewer than 32 characters
 * @returns the 32-byte psk
 * @throws {SecretError} missing, empty, weak or invalid secret, or no permission to read it
 */
export async function prepareSecret(
  secret: string | undefined,
  insecureAllowShortSecret = false,
): Promise<Uint8Array> {
  const normalized = secret === undefined
    ? (await loadSecret({ dotenv: false, insecureAllowShortSecret })).secret
    : normalizeSecret(secret, { insecureAllowShortSecret });
  return await stretchSecret(normalized);
}
