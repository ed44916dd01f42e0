/**
 * One small leveled logger. Lines are `time LEVEL event key=value …`; values are escaped and
 * truncated. Repeated warnings of one kind are rate-limited (one line per second per key, then
 * a "suppressed N" count). The secret, keys and proofs are never passed to it.
 *
 * @module
 */

import { escapeForLog } from "./alerts.ts";

/** Log levels, most verbose first. */
export type LogLevel = "debug" | "info" | "warn" | "error" | "silent";

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 99 };

/** Fields of a log line. */
export type LogFields = Record<string, string | number | boolean | undefined>;

/** Where lines go. */
export type LogSink = (level: Exclude<LogLevel, "silent">, line: string) => void;

/** The logger interface the library writes to. */
export interface Logger {
  /** Current level. */
  readonly level: LogLevel;
  /** Debug line. */
  debug(event: string, fields?: LogFields): void;
  /** Info line. */
  info(event: string, fields?: LogFields): void;
  /** Warning line. */
  warn(event: string, fields?: LogFields): void;
  /** Error line. */
  error(event: string, fields?: LogFields): void;
  /** A line at `level`, at most once per second per `key` (then a suppressed count). */
  limited(level: Exclude<LogLevel, "silent">, key: string, event: string, fields?: LogFields): void;
}

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  /** Lowest level written. @default "info" */
  level?: LogLevel;
  /** Where lines go. @default console.error */
  sink?: LogSink;
  /** Clock (tests). */
  now?: () => number;
}

function format(level: string, event: string, fields: LogFields | undefined, now: number): string {
  let line = `${new Date(now).toISOString()} ${level.toUpperCase()} ${event}`;
  if (fields) {
    for (const [key, value] of Object.entries(fields)) {
      if (value === undefined) continue;
      const text = escapeForLog(String(value), 200);
      line += ` ${key}=${/[\s"=]/.test(text) ? JSON.stringify(text) : text}`;
    }
  }
  return line;
}

/**
 * Creates a logger.
 *
 * @example
 * ```ts
 * import { createLogger } from "@trust/rpc";
 * const log = createLogger({ level: "debug" });
 * log.info("listening", { address: "tcp://127.0.0.1:8888" });
 * ```
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? "info";
  const min = RANK[level];
  const sink: LogSink = options.sink ?? ((_, line) => console.error(line));
  const now = options.now ?? Date.now;
  const windows = new Map<string, { until: number; suppressed: number }>();
  const write = (lvl: Exclude<LogLevel, "silent">, event: string, fields?: LogFields) => {
    if (RANK[lvl] >= min) sink(lvl, format(lvl, event, fields, now()));
  };
  return {
    level,
    debug: (event, fields) => write("debug", event, fields),
    info: (event, fields) => write("info", event, fields),
    warn: (event, fields) => write("warn", event, fields),
    error: (event, fields) => write("error", event, fields),
    limited(lvl, key, event, fields) {
      if (RANK[lvl] < min) return;
      const t = now();
      const w = windows.get(key);
      if (w && t < w.until) {
        w.suppressed++;
        return;
      }
      const suppressed = w?.suppressed ?? 0;
      windows.set(key, { until: t + 1000, suppressed: 0 });
      if (windows.size > 1024) windows.delete(windows.keys().next().value!);
      write(lvl, event, suppressed > 0 ? { ...fields, suppressed } : fields);
    },
  };
}

/** A logger that writes nothing. */
export const silentLogger: Logger = createLogger({ level: "silent" });
