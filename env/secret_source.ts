/**
 * Loads `TRUST_ID` from the environment or from `./.env` (PROTOCOL.md §3.1), using only the
 * permissions `--allow-env=TRUST_ID` and `--allow-read=.env`. Permissions are checked with
 * `Deno.permissions.query` first, so a missing flag is reported and never prompts.
 *
 * Precedence: the environment variable when it is defined (even empty), otherwise `.env` in
 * the current working directory only (no parent directories), when `dotenv` is enabled.
 *
 * @module
 */

import { SecretError } from "../protocol/errors.ts";
import { normalizeSecret } from "../protocol/secret.ts";
import { loadDotenv } from "./dotenv.ts";

/** Options of {@link loadSecret}. */
export interface LoadSecretOptions {
  /** Directory holding `.env` (default: `Deno.cwd()`). */
  cwd?: string;
  /** Read `.env` when the variable is not set (default `false`; the CLIs pass `true`). */
  dotenv?: boolean;
  /** Name of the environment variable and `.env` key (default `TRUST_ID`). */
  envVar?: string;
  /** Test-only: accept secrets shorter than 32 characters. Never set this in production. */
  insecureAllowShortSecret?: boolean;
}

/** What {@link loadSecret} returns. */
export interface LoadedSecret {
  /** The normalized secret. The only place it is ever returned. */
  secret: string;
  /** Where it came from: the environment variable or the `.env` file. */
  source: "env" | "dotenv";
  /** Advice for the operator (for example a `.env` readable by others); print as you like. */
  warnings: string[];
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

function isAbsolute(path: string): boolean {
  return /^(?:\/|[A-Za-z]:[\\/]|\\\\)/.test(path);
}

function joinPath(dir: string, name: string): string {
  const sep = Deno.build.os === "windows" ? "\\" : "/";
  return /[\\/]$/.test(dir) ? dir + name : dir + sep + name;
}

/** The result, with `JSON.stringify` and `console.log` redacting the secret. */
function redacted(result: LoadedSecret): LoadedSecret {
  const safe = () => ({ secret: "[redacted]", source: result.source, warnings: result.warnings });
  Object.defineProperty(result, "toJSON", { value: safe });
  Object.defineProperty(result, Symbol.for("Deno.customInspect"), {
    value: (inspect: (value: unknown, options: unknown) => string, options: unknown) =>
      inspect(safe(), options),
  });
  return result;
}

function normalizeFrom(raw: string, where: string, hint: string, options: LoadSecretOptions) {
  try {
    return normalizeSecret(raw, { insecureAllowShortSecret: options.insecureAllowShortSecret });
  } catch (err) {
    if (!(err instanceof SecretError)) throw err;
    const extra = err.code === "SECRET_EMPTY" ? hint : "";
    throw new SecretError(err.code, `${err.message} (read from ${where}${extra})`, { cause: err });
  }
}

/**
 * Loads and normalizes `TRUST_ID`. Nothing is logged; warnings are returned.
 *
 * @example Load the secret like the CLIs do
 * ```ts
 * import { loadSecret } from "./secret_source.ts";
 * import { SecretError } from "../protocol/errors.ts";
 *
 * try {
 *   const { secret, source, warnings } = await loadSecret({ dotenv: true });
 *   for (const warning of warnings) console.warn(warning);
 *   console.log(`TRUST_ID read from ${source}: ${secret.length} characters`); // never the value
 * } catch (err) {
 *   if (!(err instanceof SecretError)) throw err;
 *   console.error(err.message); // e.g. SECRET_MISSING, with the .env path; never the secret
 * }
 * ```
 *
 * @param options `cwd`, `dotenv`, `envVar` and the test-only `insecureAllowShortSecret`
 * @returns the secret, its source and warnings
 * @throws {SecretError} `PERMISSION_DENIED` (naming the missing flag), `SECRET_MISSING`,
 * `SECRET_EMPTY`, `SECRET_WEAK` or `SECRET_INVALID`
 */
export async function loadSecret(options: LoadSecretOptions = {}): Promise<LoadedSecret> {
  const name = options.envVar ?? "TRUST_ID";
  if (!ENV_NAME.test(name)) {
    throw new TypeError(`Cannot load the secret: invalid environment variable name "${name}"`);
  }
  const envStatus = await Deno.permissions.query({ name: "env", variable: name });
  if (envStatus.state !== "granted") {
    throw new SecretError(
      "PERMISSION_DENIED",
      `Cannot read the ${name} environment variable: permission denied, run again with --allow-env=${name}`,
    );
  }
  const fromEnv = Deno.env.get(name);
  if (fromEnv !== undefined) {
    const hint = options.dotenv ? "; .env is not read when the variable is set, even empty" : "";
    const secret = normalizeFrom(fromEnv, `the ${name} environment variable`, hint, options);
    return redacted({ secret, source: "env", warnings: [] });
  }
  if (!options.dotenv) {
    throw new SecretError(
      "SECRET_MISSING",
      `${name} is not set: set the ${name} environment variable (the CLIs also read ${name}=… from .env in the working directory)`,
    );
  }
  return redacted(await loadFromDotenv(name, options));
}

async function loadFromDotenv(name: string, options: LoadSecretOptions): Promise<LoadedSecret> {
  const processCwd = Deno.cwd();
  const cwd = options.cwd === undefined
    ? processCwd
    : isAbsolute(options.cwd)
    ? options.cwd
    : joinPath(processCwd, options.cwd);
  const path = joinPath(cwd, ".env");
  const flag = path === joinPath(processCwd, ".env") ? ".env" : path;
  const readStatus = await Deno.permissions.query({ name: "read", path });
  if (readStatus.state !== "granted") {
    throw new SecretError(
      "PERMISSION_DENIED",
      `Cannot read ${path}: permission denied, run again with --allow-read=${flag} (${name} is not set in the environment)`,
    );
  }
  let entries: Record<string, string> | undefined;
  try {
    entries = await loadDotenv(path);
  } catch (err) {
    if (err instanceof Deno.errors.PermissionDenied || err instanceof Deno.errors.NotCapable) {
      throw new SecretError(
        "PERMISSION_DENIED",
        `Cannot read ${path}: access denied, check the file's owner and mode`,
        { cause: err },
      );
    }
    throw err;
  }
  const raw = entries?.[name];
  if (raw === undefined) {
    throw new SecretError(
      "SECRET_MISSING",
      `${name} is not set: set the ${name} environment variable or add ${name}=… to ${path}`,
    );
  }
  const secret = normalizeFrom(raw, path, "", options);
  const warnings: string[] = [];
  try {
    const { mode } = await Deno.stat(path);
    if (mode !== null && (mode & 0o077) !== 0) {
      const octal = (mode & 0o777).toString(8).padStart(4, "0");
      warnings.push(
        `${path} is accessible by group or others (mode ${octal}): restrict it with chmod 600 ${path}`,
      );
    }
  } catch {
    // The mode is advisory; a failed stat does not block loading.
  }
  return { secret, source: "dotenv", warnings };
}
