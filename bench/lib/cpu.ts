/**
 * CPU time of processes, read from /proc (Linux), in microseconds. CPU per unit of work is the figure
 * a bench on a shared machine can report robustly: wall-clock throughput moves with whatever else runs,
 * the CPU a request costs much less.
 *
 * - A Node process: utime + stime of /proc/<pid>/stat (every thread of the process).
 * - PostgreSQL: the postmaster and every process below it (backends, checkpointer, walwriter, ...),
 *   each with cutime + cstime too: a backend that exited (its connection closed) was reaped by the
 *   postmaster, so its CPU moved into the postmaster's cutime/cstime instead of vanishing.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** Clock ticks per second (`getconf CLK_TCK`): 100 on every Linux we run on. */
const TICKS_PER_SEC = 100;
const US_PER_TICK = 1_000_000 / TICKS_PER_SEC;

interface Stat {
  ppid: number;
  /** stime alone (kernel: syscalls, network stack), ticks. */
  sys: number;
  /** utime + stime, ticks. */
  own: number;
  /** cutime + cstime (reaped children), ticks. */
  children: number;
}

function readStat(pid: number): Stat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined; // exited
  }
  // The command name may hold spaces and parentheses: fields are counted after its last ')'.
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // f[0] is field 3 (state): ppid is field 4, utime..cstime are fields 14..17.
  return {
    ppid: Number(f[1]),
    sys: Number(f[12]),
    own: Number(f[11]) + Number(f[12]),
    children: Number(f[13]) + Number(f[14]),
  };
}

/** CPU used so far by one process (all its threads), µs; 0 once it has exited. */
export function processCpuUs(pid: number): number {
  const s = readStat(pid);
  return s ? s.own * US_PER_TICK : 0;
}

/** Kernel CPU (stime) used so far by one process, µs: its syscalls, and the loopback network stack. */
export function processSysUs(pid: number): number {
  const s = readStat(pid);
  return s ? s.sys * US_PER_TICK : 0;
}

/** CPU used so far by a process, every live descendant, and every reaped one, µs. */
export function treeCpuUs(rootPid: number): number {
  const parents = new Map<number, number>();
  const stats = new Map<number, Stat>();
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid)) continue;
    const s = readStat(pid);
    if (!s) continue;
    stats.set(pid, s);
    parents.set(pid, s.ppid);
  }
  let ticks = 0;
  for (const [pid, s] of stats) {
    for (let p: number | undefined = pid; p !== undefined && p > 1; p = parents.get(p)) {
      if (p === rootPid) {
        ticks += s.own + s.children;
        break;
      }
    }
  }
  return ticks * US_PER_TICK;
}

/** The postmaster's pid of a server on this machine: the first line of <data_directory>/postmaster.pid. */
export function postmasterPid(dataDirectory: string): number {
  return Number(readFileSync(join(dataDirectory, 'postmaster.pid'), 'utf8').split('\n')[0]);
}

/** Named CPU counters (µs so far), read together; `since(mark)` gives what each used in between. */
export class CpuMeter {
  constructor(private readonly sources: Record<string, () => number>) {}

  read(): Record<string, number> {
    return Object.fromEntries(Object.entries(this.sources).map(([name, read]) => [name, read()]));
  }

  since(mark: Record<string, number>): Record<string, number> {
    const now = this.read();
    return Object.fromEntries(Object.entries(now).map(([name, us]) => [name, us - (mark[name] ?? 0)]));
  }
}

/** µs of CPU per unit of work, rounded (null when no work was done). */
export function perUnit(us: number, units: number): number | null {
  return units > 0 ? Math.round(us / units) : null;
}

/** The bench's own CPU (load generator, receiver), µs. */
export function selfCpuUs(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}
