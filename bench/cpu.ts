/**
 * CPU time of a process (all its threads: the main thread, Deno's blocking pool where Web
 * Crypto runs, the I/O threads), from Linux `/proc/<pid>/stat`, to show how much of the
 * machine a scenario used. NaN where `/proc` is not there.
 *
 * @module
 */

/** Clock ticks per second of `/proc/<pid>/stat` (`getconf CLK_TCK`, 100 on Linux). */
const TICKS_PER_SECOND = 100;

/** User + system CPU seconds of process `pid` (this process by default) so far. */
export function cpuSeconds(pid: number | "self" = "self"): number {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // The fields after the command name (which may hold spaces) start after its ")".
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
  } catch {
    return NaN;
  }
}

/** The vCPUs the machine has (what "cores used" is out of). */
export function vcpus(): number {
  return navigator.hardwareConcurrency;
}
