/**
 * The facts printed at the top of a bench run: machine, versions, load average, command.
 *
 * @module
 */

function run(cmd: string, args: string[]): string | undefined {
  try {
    const out = new Deno.Command(cmd, { args, stdout: "piped", stderr: "null" }).outputSync();
    return out.success ? new TextDecoder().decode(out.stdout).trim() : undefined;
  } catch {
    return undefined;
  }
}

/** The machine and the runtimes. */
export interface MachineFacts {
  nproc: string;
  cpu: string;
  memory: string;
  kernel: string;
  deno: string;
  node: string;
  nofile: string;
}

/** Reads the machine facts (Linux /proc where available). */
export function machineFacts(): MachineFacts {
  let cpu = "?";
  let memory = "?";
  try {
    cpu = /model name\s*:\s*(.*)/.exec(Deno.readTextFileSync("/proc/cpuinfo"))?.[1] ?? "?";
    const kb = Number(/MemTotal:\s+(\d+)/.exec(Deno.readTextFileSync("/proc/meminfo"))?.[1]);
    if (kb) memory = `${(kb / 1024 / 1024).toFixed(1)} GiB`;
  } catch { /* not Linux */ }
  return {
    nproc: run("nproc", []) ?? String(navigator.hardwareConcurrency),
    cpu,
    memory,
    kernel: Deno.osRelease(),
    deno: `${Deno.version.deno} (V8 ${Deno.version.v8}, TypeScript ${Deno.version.typescript})`,
    node: run("node", ["--version"]) ?? "not installed",
    nofile: run("sh", ["-c", "echo $(ulimit -n) soft / $(ulimit -Hn) hard"]) ?? "?",
  };
}

/** The 1/5/15-minute load average, or "?". */
export function loadAverage(): string {
  try {
    return Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
  } catch {
    return "?";
  }
}

/** The command line of this run, as it can be typed again. */
export function commandLine(args: string[]): string {
  const quote = (a: string) => /^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", "'\\''")}'`;
  return ["deno", "run", "-A", "bench/run.ts", ...args].map(quote).join(" ");
}
