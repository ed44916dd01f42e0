/**
 * A small command-line parser for the two CLIs: `--flag value`, `--flag=value`, boolean
 * flags, repeatable flags, positionals, and `--` to end flags. Unknown flags are errors.
 *
 * @module
 */

/** How each flag is read. */
export interface FlagSpec {
  /** Flags that take a value. */
  string?: readonly string[];
  /** Flags that take a value and may repeat. */
  collect?: readonly string[];
  /** Flags without a value. */
  boolean?: readonly string[];
}

/** Parsed command line. */
export interface ParsedArgs {
  /** Positionals in order. */
  _: string[];
  /** Single-valued flags. */
  strings: Record<string, string | undefined>;
  /** Repeatable flags. */
  lists: Record<string, string[]>;
  /** Boolean flags that were given. */
  flags: Set<string>;
}

/** A usage error: the CLI prints it with the help text and exits 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** Parses `args` according to `spec`. Throws {@link UsageError}. */
export function parseArgs(args: readonly string[], spec: FlagSpec): ParsedArgs {
  const out: ParsedArgs = { _: [], strings: {}, lists: {}, flags: new Set() };
  for (const name of spec.collect ?? []) out.lists[name] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--") {
      out._.push(...args.slice(i + 1));
      break;
    }
    if (!arg.startsWith("--") || arg === "-") {
      if (arg.startsWith("-") && arg.length > 1 && arg !== "-h") {
        throw new UsageError(`Unknown option ${arg}`);
      }
      if (arg === "-h") out.flags.add("help");
      else out._.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
    const inline = eq === -1 ? undefined : arg.slice(eq + 1);
    if (spec.boolean?.includes(name)) {
      if (inline !== undefined) throw new UsageError(`Option --${name} takes no value`);
      out.flags.add(name);
      continue;
    }
    const isString = spec.string?.includes(name);
    const isList = spec.collect?.includes(name);
    if (!isString && !isList) throw new UsageError(`Unknown option --${name}`);
    const value = inline ?? args[++i];
    if (value === undefined) throw new UsageError(`Option --${name} needs a value`);
    if (isList) out.lists[name].push(value);
    else out.strings[name] = value;
  }
  return out;
}

/** Parses a positive integer flag value, or throws {@link UsageError}. */
export function parseMs(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) {
    throw new UsageError(`Option --${name} needs a whole number of milliseconds`);
  }
  return n;
}
