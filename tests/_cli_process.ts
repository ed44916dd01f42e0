/**
 * A spawned `deno run -A <script> …` of this repository's CLIs (`server.ts`, `client.ts`) for
 * end-to-end tests: stdout kept line by line while it runs, stdin optionally writable, every
 * wait bounded, and disposal that kills and awaits the child.
 */
import { denoCommand } from "./_helpers.ts";

const ROOT = new URL("../", import.meta.url).pathname;

/** Bound of every wait for a process or an event (generous: CI machines can be slow). */
export const WAIT_MS = 20_000;

/** Rejects with `what` when `promise` has not settled within `ms`; the timer never leaks. */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** How a {@link CliProcess} ended: its exit code and its whole output. */
export interface Exit {
  /** The exit code. */
  code: number;
  /** Everything printed on stdout. */
  stdout: string;
  /** Everything printed on stderr. */
  stderr: string;
}

/** A spawned `deno run -A <script> …`: stdout kept line by line, stdin writable if piped. */
export interface CliProcess extends AsyncDisposable {
  /** The child process. */
  child: Deno.ChildProcess;
  /** Every stdout line so far (read or not with {@link line}). */
  readonly lines: readonly string[];
  /** Lines printed and not read yet with {@link line}. */
  readonly unread: number;
  /** The next unread stdout line (waits at most `ms`); throws when stdout ended first. */
  line(ms?: number): Promise<string>;
  /** Waits (at most `ms`) for a stdout line matching `pattern`; returns it. */
  expect(pattern: RegExp, ms?: number): Promise<string>;
  /** Waits (at most `ms`) until `condition` holds on the stdout lines. */
  until(condition: (lines: readonly string[]) => boolean, what: string, ms?: number): Promise<void>;
  /** Writes `text` to stdin (only with the `stdin` option). */
  write(text: string): Promise<void>;
  /** Closes stdin (EOF); a no-op without the `stdin` option. */
  end(): Promise<void>;
  /** Resolves with the exit status and the whole output once the process has exited. */
  exited(ms?: number): Promise<Exit>;
  /** Sends `signal` (if still running), then {@link exited}. */
  stop(signal?: Deno.Signal, ms?: number): Promise<Exit>;
}

/** Options of {@link spawnCli}. */
export interface SpawnCliOptions {
  /** Extra environment (on top of `NO_COLOR`; the rest is cleared). */
  env?: Record<string, string>;
  /** Pipe stdin so that {@link CliProcess.write} and {@link CliProcess.end} work. */
  stdin?: boolean;
  /** Default bound of every wait of the process, in ms ({@link WAIT_MS} unless set). */
  waitMs?: number;
}

/** Spawns `deno run -A <repo root>/<script> …args` through `denoCommand`. */
export function spawnCli(
  script: string,
  args: string[],
  options: SpawnCliOptions = {},
): CliProcess {
  const waitMs = options.waitMs ?? WAIT_MS;
  const child = denoCommand(["run", "-A", `${ROOT}${script}`, ...args], {
    env: options.env,
    stdin: options.stdin ? "piped" : "null",
  }).spawn();
  const writer = options.stdin ? child.stdin.getWriter() : undefined;
  const stderr = new Response(child.stderr).text();
  let stdout = "";
  let partial = "";
  const lines: string[] = [];
  let read = 0;
  let ended = false;
  let changed = Promise.withResolvers<void>();
  const pump = (async () => {
    try {
      for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
        stdout += chunk;
        partial += chunk;
        const parts = partial.split("\n");
        partial = parts.pop()!;
        lines.push(...parts);
        changed.resolve();
        changed = Promise.withResolvers();
      }
    } finally {
      ended = true;
      changed.resolve();
    }
  })();
  let exit: Promise<Exit> | undefined;
  const finished = () =>
    exit ??= (async () => {
      const status = await child.status;
      await pump;
      return { code: status.code, stdout, stderr: await stderr };
    })();
  const toExit = `${script} ${args.join(" ")} to exit`;
  const kill = (signal: Deno.Signal) => {
    try {
      child.kill(signal);
    } catch {
      // Already exited.
    }
  };
  const closeStdin = async () => {
    await writer?.close().catch(() => {});
  };
  const until = async (
    condition: (lines: readonly string[]) => boolean,
    what: string,
    ms = waitMs,
  ) => {
    const deadline = Date.now() + ms;
    while (!condition(lines)) {
      if (ended) {
        const out = await within(finished(), ms, `${script} to exit`);
        throw new Error(
          `stdout ended before ${what} (exit ${out.code}):\n${out.stdout}\n${out.stderr}`,
        );
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${ms} ms: ${what}; stdout:\n${stdout}`);
      await within(changed.promise, left, what).catch(() => {});
    }
  };
  return {
    child,
    lines,
    get unread() {
      return lines.length - read;
    },
    async line(ms = waitMs) {
      const deadline = Date.now() + ms;
      while (read === lines.length) {
        if (ended) {
          const out = await within(finished(), ms, toExit);
          throw new Error(`stdout ended without a line (exit ${out.code}):\n${out.stderr}`);
        }
        await within(changed.promise, Math.max(1, deadline - Date.now()), "a line on stdout");
      }
      return lines[read++];
    },
    until,
    async expect(pattern, ms = waitMs) {
      await until((seen) => seen.some((l) => pattern.test(l)), `a line ${pattern}`, ms);
      return lines.find((l) => pattern.test(l))!;
    },
    async write(text) {
      if (writer === undefined) throw new Error(`${script}: spawned without the stdin option`);
      await within(writer.write(new TextEncoder().encode(text)), waitMs, "writing stdin");
    },
    end: closeStdin,
    exited: (ms = waitMs) => within(finished(), ms, toExit),
    async stop(signal: Deno.Signal = "SIGTERM", ms = waitMs) {
      kill(signal);
      return await within(finished(), ms, `${script} to exit on ${signal}`);
    },
    async [Symbol.asyncDispose]() {
      kill("SIGKILL");
      await closeStdin();
      await finished();
    },
  };
}
