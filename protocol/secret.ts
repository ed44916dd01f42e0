/**
 * The shared secret `TRUST_ID`: normalization, stretching into the 32-byte psk, the operator
 * fingerprint and generation (PROTOCOL.md §3). Pure Web platform code (no `Deno.*`), so it
 * runs in a browser too. Loading the secret from the environment lives in
 * `env/secret_source.ts`.
 *
 * No error raised here contains the secret or any of its characters.
 *
 * @module
 */

import { toHex } from "./bytes.ts";
import { SecretError } from "./errors.ts";
import { hmacSha256 } from "./sha256.ts";

/** Fewest characters a `TRUST_ID` may have (without `insecureAllowShortSecret`). */
export const MIN_SECRET_LENGTH = 32;
/** Most characters a `TRUST_ID` may have. */
export const MAX_SECRET_LENGTH = 1024;
/** PBKDF2-SHA-256 iteration count of the psk (PROTOCOL.md §3.3). */
export const PSK_ITERATIONS = 600_000;

const PSK_SALT = "trust-rpc/1 psk";
const FINGERPRINT_LABEL = "trust-rpc/1 fingerprint";
const KEYGEN_HINT = "generate one with `deno run -A client.ts keygen`";
const BASE32_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567";
const encoder = new TextEncoder();

/** Options of {@link normalizeSecret}. */
export interface NormalizeSecretOptions {
  /**
   * Test-only: accept secrets shorter than 32 characters (at least 1). The character rule
   * still applies. Never set this in production.
   */
  insecureAllowShortSecret?: boolean;
}

function isAsciiWhitespace(code: number): boolean {
  // space, \t, \n, \v, \f, \r
  return code === 0x20 || (code >= 0x09 && code <= 0x0d);
}

/** Describes the first character outside `!`..`~` without revealing it. */
function describeBadCharacter(secret: string): string | undefined {
  for (let i = 0; i < secret.length; i++) {
    const code = secret.charCodeAt(i);
    if (code >= 0x21 && code <= 0x7e) continue;
    if (code === 0x20) return "a space";
    if (code > 0x7f) return "a non-ASCII character";
    return "a control character";
  }
  return undefined;
}

/**
 * Normalizes a raw `TRUST_ID` (PROTOCOL.md §3.2): strips leading and trailing ASCII
 * whitespace (space, `\t`, `\r`, `\n`, `\f`, `\v`), then requires 32 to 1024 printable ASCII
 * characters (`!` to `~`). The error message never contains the secret.
 *
 * @example Normalize a secret read from a file
 * ```ts
 * import { normalizeSecret } from "./secret.ts";
 * import { assertEquals } from "@std/assert";
 *
 * const secret = normalizeSecret("  example-only-NOT-a-real-secret-0123456789abcdef\r\n");
 * assertEquals(secret, "example-only-NOT-a-real-secret-0123456789abcdef");
 * ```
 *
 * @param raw the secret as read from the environment or a file
 * @param options `insecureAllowShortSecret` (test-only) lowers the minimum length to 1
 * @returns the normalized secret
 * @throws {SecretError} `SECRET_EMPTY`, `SECRET_WEAK` (too short) or `SECRET_INVALID` (a
 * character outside `!`..`~`, or longer than 1024 characters)
 */
export function normalizeSecret(raw: string, options: NormalizeSecretOptions = {}): string {
  if (typeof raw !== "string") throw new TypeError("Cannot normalize TRUST_ID: not a string");
  let start = 0;
  let end = raw.length;
  while (start < end && isAsciiWhitespace(raw.charCodeAt(start))) start++;
  while (end > start && isAsciiWhitespace(raw.charCodeAt(end - 1))) end--;
  const secret = raw.slice(start, end);
  if (secret.length === 0) {
    throw new SecretError(
      "SECRET_EMPTY",
      `TRUST_ID is empty: it must hold ${MIN_SECRET_LENGTH} to ${MAX_SECRET_LENGTH} printable ASCII characters; ${KEYGEN_HINT}`,
    );
  }
  const bad = describeBadCharacter(secret);
  if (bad !== undefined) {
    throw new SecretError(
      "SECRET_INVALID",
      `TRUST_ID is invalid: it contains ${bad}, only printable ASCII characters from ! to ~ are allowed (no spaces, tabs or control characters); ${KEYGEN_HINT}`,
    );
  }
  if (secret.length > MAX_SECRET_LENGTH) {
    throw new SecretError(
      "SECRET_INVALID",
      `TRUST_ID is invalid: it has ${secret.length} characters, at most ${MAX_SECRET_LENGTH} are allowed; ${KEYGEN_HINT}`,
    );
  }
  const min = options.insecureAllowShortSecret === true ? 1 : MIN_SECRET_LENGTH;
  if (secret.length < min) {
    throw new SecretError(
      "SECRET_WEAK",
      `TRUST_ID is too weak: it has ${secret.length} characters, at least ${min} are required; ${KEYGEN_HINT}`,
    );
  }
  return secret;
}

/** Cache of psk computations, keyed by HMAC(per-process random key, secret) in hex. */
const pskCache = new Map<string, Promise<Uint8Array>>();
let cacheKey: Uint8Array | undefined;

function cacheKeyOf(secret: string): string {
  // A keyed hash with a random per-process key: the map does not hold the secret, and its
  // keys are no offline oracle for it without that key. Synchronous (`sha256.ts`): every
  // connect() looks its psk up here.
  cacheKey ??= crypto.getRandomValues(new Uint8Array(32));
  return toHex(hmacSha256(cacheKey, encoder.encode(secret)));
}

async function derivePsk(secret: string): Promise<Uint8Array> {
  const password = await crypto.subtle.importKey(
    "raw",
    encoder.encode(secret),
    "PBKDF2",
    false,
    ["deriveBits"],
  );
  const bits = await crypto.subtle.deriveBits(
    { name: "PBKDF2", hash: "SHA-256", salt: encoder.encode(PSK_SALT), iterations: PSK_ITERATIONS },
    password,
    256,
  );
  return new Uint8Array(bits);
}

/**
 * Stretches a normalized secret into the 32-byte psk:
 * `PBKDF2(SHA-256, P = ASCII(secret), S = ASCII("trust-rpc/1 psk"), c = 600000, dkLen = 32)`.
 * Computed once per process per distinct secret; concurrent callers share one computation.
 *
 * @param secret a secret returned by {@link normalizeSecret}
 * @returns a fresh copy of the psk that the caller may keep or wipe
 * @throws {SecretError} `SECRET_INVALID` when the secret is not 1 to 1024 printable ASCII
 * characters (pass it through {@link normalizeSecret} first)
 */
export async function stretchSecret(secret: string): Promise<Uint8Array> {
  if (
    typeof secret !== "string" || secret.length === 0 || secret.length > MAX_SECRET_LENGTH ||
    describeBadCharacter(secret) !== undefined
  ) {
    throw new SecretError(
      "SECRET_INVALID",
      "Cannot stretch TRUST_ID: it is not normalized, pass it through normalizeSecret() first",
    );
  }
  const id = cacheKeyOf(secret);
  let pending = pskCache.get(id);
  if (pending === undefined) {
    pending = derivePsk(secret);
    pskCache.set(id, pending);
    // A failed computation must not stay cached.
    pending.catch(() => {
      if (pskCache.get(id) === pending) pskCache.delete(id);
    });
  }
  return (await pending).slice();
}

/**
 * Encodes bytes as base32 (RFC 4648 alphabet, lowercase, no padding).
 *
 * @param bytes the bytes to encode
 * @returns the base32 text, `ceil(8 * length / 5)` characters
 */
export function base32(bytes: Uint8Array): string {
  let out = "";
  let buffer = 0;
  let bits = 0;
  for (const byte of bytes) {
    buffer = ((buffer << 8) | byte) & 0xffff;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += BASE32_ALPHABET[(buffer >>> bits) & 0x1f];
    }
  }
  if (bits > 0) out += BASE32_ALPHABET[(buffer << (5 - bits)) & 0x1f];
  return out;
}

/**
 * The operator fingerprint of a psk (PROTOCOL.md §3.4):
 * `base32(HMAC-SHA256(psk, ASCII("trust-rpc/1 fingerprint"))[0..5])`. Compare it out of band
 * when `AUTH_FAILED` appears; never log it or send it over the wire.
 *
 * @param psk the 32-byte psk from {@link stretchSecret}
 * @returns 8 characters of `[a-z2-7]`
 * @throws {RangeError} when `psk` is not 32 bytes
 */
export async function fingerprint(psk: Uint8Array): Promise<string> {
  if (!(psk instanceof Uint8Array) || psk.length !== 32) {
    throw new RangeError("Cannot compute the fingerprint: the psk must be 32 bytes");
  }
  const key = await crypto.subtle.importKey(
    "raw",
    psk.slice(),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const mac = new Uint8Array(
    await crypto.subtle.sign("HMAC", key, encoder.encode(FINGERPRINT_LABEL)),
  );
  return base32(mac.subarray(0, 5));
}

/**
 * Generates a new `TRUST_ID`: 32 random bytes as base64url without padding.
 *
 * @returns 43 printable ASCII characters that pass {@link normalizeSecret}
 */
export function generateSecret(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  bytes.fill(0);
  return btoa(binary).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}
