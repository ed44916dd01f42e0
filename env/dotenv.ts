/**
 * A small `.env` parser, a stand-in for JSR's `@std/dotenv` (not reachable from our build
 * machines). It has the same shape (`text → Record<string, string>`) so it can be swapped, but
 * it is stricter where a secret is at stake. The rules:
 *
 * - A UTF-8 BOM at the start is ignored; lines end with LF, CRLF or a lone CR.
 * - Blank lines and lines whose first non-blank character is `#` are ignored.
 * - `KEY=VALUE`, optionally prefixed by `export `, with optional spaces or tabs around `=`.
 *   Keys match `[A-Za-z_][A-Za-z0-9_.-]*`.
 * - Unquoted values are trimmed of ASCII whitespace; an inline comment starts at a `#`
 *   preceded by whitespace (`KEY=a#b` keeps `a#b`, `KEY=a #b` gives `a`).
 * - `'single'` quoted values are literal; `"double"` quoted values expand `\n`, `\r`, `\t`,
 *   `\\` and `\"` (any other backslash is kept). A closing quote may be followed by
 *   whitespace and a `# comment`. Values span one line only.
 * - A duplicated key: the last one wins (as in `@std/dotenv`, whose `parse()` assigns each
 *   match in order).
 * - Malformed lines (no `=`, a bad key, an unclosed quote, text after a closing quote) are
 *   skipped: parsing never throws on content.
 *
 * Differences from `@std/dotenv`: no `$VAR` / `${VAR}` expansion (it would silently change a
 * secret holding `$`), a `#` only starts a comment after whitespace (`#` is a valid secret
 * character), no multi-line quoted values, keys may also contain `.` and `-`.
 *
 * @module
 */

const KEY_PATTERN = /^[A-Za-z_][A-Za-z0-9_.-]*$/;
const EXPORT_PREFIX = /^export[ \t]+/;
const ESCAPES: Readonly<Record<string, string>> = Object.assign(Object.create(null), {
  n: "\n",
  r: "\r",
  t: "\t",
  "\\": "\\",
  '"': '"',
});

function isBlank(char: string | undefined): boolean {
  return char === " " || char === "\t" || char === "\r" || char === "\f" || char === "\v";
}

function trimBlank(text: string): string {
  let start = 0;
  let end = text.length;
  while (start < end && isBlank(text[start])) start++;
  while (end > start && isBlank(text[end - 1])) end--;
  return text.slice(start, end);
}

/** True when what follows a closing quote is only whitespace and an optional comment. */
function isCommentTail(tail: string): boolean {
  const rest = trimBlank(tail);
  return rest === "" || rest.startsWith("#");
}

/** Parses a double-quoted value; `text` starts after the opening quote. */
function parseDoubleQuoted(text: string): string | undefined {
  let value = "";
  for (let i = 0; i < text.length; i++) {
    const char = text[i];
    if (char === '"') return isCommentTail(text.slice(i + 1)) ? value : undefined;
    if (char === "\\" && i + 1 < text.length) {
      const escaped = ESCAPES[text[i + 1]];
      if (escaped !== undefined) {
        value += escaped;
        i++;
        continue;
      }
    }
    value += char;
  }
  return undefined; // unclosed
}

function parseUnquoted(text: string): string {
  for (let i = 1; i < text.length; i++) {
    if (text[i] === "#" && isBlank(text[i - 1])) return trimBlank(text.slice(0, i));
  }
  return trimBlank(text);
}

function parseLine(line: string): [string, string] | undefined {
  let rest = trimBlank(line);
  if (rest === "" || rest.startsWith("#")) return undefined;
  const prefix = EXPORT_PREFIX.exec(rest);
  // `export = 1` is the key `export`, not an empty key after the prefix.
  if (prefix !== null && rest[prefix[0].length] !== "=") rest = rest.slice(prefix[0].length);
  const eq = rest.indexOf("=");
  if (eq < 0) return undefined;
  const key = trimBlank(rest.slice(0, eq));
  if (!KEY_PATTERN.test(key)) return undefined;
  const raw = rest.slice(eq + 1);
  const text = raw.replace(/^[ \t]+/, "");
  if (text.startsWith("'")) {
    const close = text.indexOf("'", 1);
    if (close < 0 || !isCommentTail(text.slice(close + 1))) return undefined;
    return [key, text.slice(1, close)];
  }
  if (text.startsWith('"')) {
    const value = parseDoubleQuoted(text.slice(1));
    return value === undefined ? undefined : [key, value];
  }
  // `raw` keeps the blank before a leading `#`, so `KEY= # note` is an empty value.
  return [key, parseUnquoted(raw)];
}

/**
 * Parses the text of a `.env` file (rules in the module documentation). Never throws on
 * content: malformed lines are skipped. A duplicated key keeps its last value.
 *
 * @example Parse a file's text
 * ```ts
 * import { parseDotenv } from "./dotenv.ts";
 * import { assertEquals } from "@std/assert";
 *
 * const env = parseDotenv("# settings\r\nexport TRUST_ID='abc' # comment\r\n");
 * assertEquals(env.TRUST_ID, "abc");
 * ```
 *
 * @param text the file's text
 * @returns the variables, in a null-prototype object
 */
export function parseDotenv(text: string): Record<string, string> {
  const env: Record<string, string> = Object.create(null);
  const body = text.startsWith("\uFEFF") ? text.slice(1) : text;
  for (const line of body.split(/\r\n|\n|\r/)) {
    const entry = parseLine(line);
    if (entry !== undefined) env[entry[0]] = entry[1];
  }
  return env;
}

/**
 * Reads and parses a `.env` file. Needs `--allow-read` for `path`.
 *
 * @param path the file to read
 * @returns the variables (null-prototype object), or `undefined` when the file does not exist
 * @throws {Deno.errors.PermissionDenied} and any other read error except `NotFound`
 */
export async function loadDotenv(path: string): Promise<Record<string, string> | undefined> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw err;
  }
  try {
    return parseDotenv(new TextDecoder("utf-8", { ignoreBOM: true }).decode(bytes));
  } finally {
    bytes.fill(0);
  }
}
