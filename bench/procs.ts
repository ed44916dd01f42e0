/**
 * Child processes of `deno task bench`: every process the bench starts (bench servers, the
 * idle-connection client, the peers' clients, npm) is registered here so that the end of the
 * run, an error or the hard time limit stops all of them. Servers keep their stdin piped and
 * exit by themselves when the bench process goes away, however it goes away.
 *
 * @module
 */

const live = new Set<Deno.ChildProcess>();

/** SIGKILLs every child still running, synchronously (for the hard time limit). */
export function killAllNow(): void {
  for (const child of live) {
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
  }
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the child has exited. Never throws. */
export async function stopChild(child: Deno.ChildProcess, graceMs = 2000): Promise<void> {
  try {
    child.kill("SIGTERM");
  } catch { /* already gone */ }
  let timer: ReturnType<typeof setTimeout> | undefined;
  const killed = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch { /* already gone */ }
      resolve();
    }, graceMs);
  });
  await Promise.race([child.status.then(() => {}), killed]);
  clearTimeout(timer);
  await child.status;
}

/** Stops every child still running (SIGTERM, then SIGKILL). */
export async function stopAll(graceMs = 2000): Promise<void> {
  await Promise.all([...live].map((c) => stopChild(c, graceMs)));
}

/**
 * The command and arguments that run `cmd args` with the soft limit on open files raised to
 * `nofile` (or to the hard limit when that is lower). `exec` keeps the pid: it is the pid of
 * `cmd` itself, so its `/proc/<pid>/status` is the one to read.
 */
export function withNofile(cmd: string, args: string[], nofile?: number): [string, string[]] {
  if (!nofile) return [cmd, args];
  const script = 'ulimit -n "$1" 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null; shift; ' +
    'exec "$@"';
  return ["sh", ["-c", script, "sh", String(nofile), cmd, ...args]];
}

/** The soft limit on open files a child started with {@link withNofile}`(…, want)` gets. */
export function effectiveNofile(want: number): number {
  try {
    const out = new Deno.Command("sh", {
      args: [
        "-c",
        'ulimit -n "$1" 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null; ulimit -n',
        "sh",
        String(want),
      ],
      stdout: "piped",
      stderr: "null",
    }).outputSync();
    const n = Number(new TextDecoder().decode(out.stdout).trim());
    return Number.isFinite(n) ? n : 0;
  } catch {
    return 0;
  }
}

/** A spawned bench server. */
export interface ServerProcess {
  /** The addresses it bound, in the order given. */
  addresses: string[];
  /** Its pid. */
  pid: number;
  /** Stops it: SIGTERM, then SIGKILL after `graceMs`. Idempotent, never throws. */
  stop(graceMs?: number): Promise<void>;
}

/** Options of {@link spawnServer}. */
export interface SpawnServerOptions {
  /** Extra environment. */
  env?: Record<string, string>;
  /** Raise the server's open-file limit to this. */
  nofile?: number;
  /** Time allowed to report its addresses (ms). */
  readyMs?: number;
}

/**
 * Spawns `deno run -A <script> <args>` as a separate process and waits (≤ `readyMs`) for the
 * JSON line `{"addresses": [...]}` on its stdout. Its stdin stays piped: it exits when we do.
 */
export async function spawnServer(
  script: URL,
  args: string[],
  options: SpawnServerOptions = {},
): Promise<ServerProcess> {
  const [cmd, argv] = withNofile(
    Deno.execPath(),
    ["run", "-A", script.pathname, ...args],
    options.nofile,
  );
  const child = new Deno.Command(cmd, {
    args: argv,
    env: options.env,
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  live.add(child);
  child.status.then(() => live.delete(child));
  let stopped: Promise<void> | undefined;
  const stop = (graceMs = 2000): Promise<void> => {
    stopped ??= (async () => {
      await stopChild(child, graceMs);
      try {
        await child.stdin.close();
      } catch { /* closed */ }
    })();
    return stopped;
  };
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  let timer: ReturnType<typeof setTimeout> | undefined;
  const readyMs = options.readyMs ?? 30_000;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${script.pathname} did not report its addresses in ${readyMs} ms`)),
      readyMs,
    );
  });
  try {
    while (!text.includes("\n")) {
      const { value, done } = await Promise.race([reader.read(), timeout]);
      if (done) throw new Error(`${script.pathname} exited before it was ready`);
      text += value;
    }
  } catch (err) {
    await stop(500);
    throw err;
  } finally {
    clearTimeout(timer);
  }
  const line = JSON.parse(text.slice(0, text.indexOf("\n"))) as { addresses: string[] };
  // Keep draining stdout so the child never blocks on a full pipe.
  (async () => {
    try {
      while (!(await reader.read()).done) { /* drain */ }
    } catch { /* closed */ }
  })();
  return { addresses: line.addresses, pid: child.pid, stop };
}

/** What {@link runCommand} gives back. */
export interface CommandResult {
  /** Exit code (−1 when it could not be started). */
  code: number;
  /** Everything it wrote on stdout. */
  stdout: string;
  /** Its stderr (the last 4 KiB). */
  stderr: string;
  /** True when it was stopped at its time limit. */
  timedOut: boolean;
  /** Wall time (ms). */
  ms: number;
}

/** Options of {@link runCommand}. */
export interface RunCommandOptions {
  /** Working directory. */
  cwd?: string;
  /** Extra environment. */
  env?: Record<string, string>;
  /** Stopped (SIGTERM, then SIGKILL) after this many ms. */
  timeoutMs: number;
  /** Raise its open-file limit to this. */
  nofile?: number;
}

/**
 * Runs a command to completion, bounded by `timeoutMs`, collecting its output. Its stdin is a
 * pipe that stays open while it runs (the peers' servers exit when their parent's pipe closes).
 */
export async function runCommand(
  cmd: string,
  args: string[],
  options: RunCommandOptions,
): Promise<CommandResult> {
  const t0 = performance.now();
  const [c, argv] = withNofile(cmd, args, options.nofile);
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(c, {
      args: argv,
      cwd: options.cwd,
      env: options.env,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  } catch (err) {
    return { code: -1, stdout: "", stderr: String(err), timedOut: false, ms: 0 };
  }
  live.add(child);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    stopChild(child, 3000);
  }, options.timeoutMs);
  const collect = async (s: ReadableStream<Uint8Array>, keep: number) => {
    let text = "";
    try {
      for await (const chunk of s.pipeThrough(new TextDecoderStream())) {
        text += chunk;
        if (text.length > 2 * keep) text = text.slice(-keep);
      }
    } catch { /* closed */ }
    return text.length > keep ? text.slice(-keep) : text;
  };
  const [stdout, stderr, status] = await Promise.all([
    collect(child.stdout, 1 << 20),
    collect(child.stderr, 4096),
    child.status,
  ]);
  clearTimeout(timer);
  live.delete(child);
  try {
    await child.stdin.close();
  } catch { /* closed */ }
  return { code: status.code, stdout, stderr, timedOut, ms: performance.now() - t0 };
}
