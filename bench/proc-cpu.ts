/**
 * CPU time used by a process and its descendants, from /proc (Linux only; elsewhere: undefined).
 *
 * Why: on a shared, loaded machine throughput says as much about the neighbours as about Postbox,
 * while CPU seconds per delivery barely move with the load. The postmaster's descendants are its
 * backends; a backend that exits is counted in the postmaster's cutime/cstime once reaped.
 */
import { readdirSync, readFileSync } from 'node:fs';

const TICKS_PER_SECOND = 100; // USER_HZ: 100 on every Linux architecture Node runs on

interface Stat {
  ppid: number;
  /** utime + stime, in ticks. */
  own: number;
  /** cutime + cstime: reaped children, in ticks. */
  reaped: number;
}

function readStat(pid: number): Stat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined; // gone, or not Linux
  }
  // Fields after the command name, which is in parentheses and may hold spaces.
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { ppid: Number(f[1]), own: Number(f[11]) + Number(f[12]), reaped: Number(f[13]) + Number(f[14]) };
}

/** Seconds of CPU used so far by `pid`, its live descendants and its reaped children. */
export function treeCpuSeconds(pid: number): number | undefined {
  const root = readStat(pid);
  if (!root) return undefined;
  const children = new Map<number, number[]>();
  const stats = new Map<number, Stat>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = readStat(Number(name));
    if (!stat) continue;
    stats.set(Number(name), stat);
    children.set(stat.ppid, [...(children.get(stat.ppid) ?? []), Number(name)]);
  }
  let ticks = root.own + root.reaped;
  const todo = [...(children.get(pid) ?? [])];
  while (todo.length > 0) {
    const child = todo.pop()!;
    ticks += stats.get(child)?.own ?? 0;
    todo.push(...(children.get(child) ?? []));
  }
  return ticks / TICKS_PER_SECOND;
}

/** Starts a meter over named process trees; `read()` answers the CPU seconds each used since. */
export function cpuMeter(pids: Record<string, number | undefined>) {
  const start = Object.fromEntries(
    Object.entries(pids).map(([name, pid]) => [name, pid === undefined ? undefined : treeCpuSeconds(pid)]),
  );
  return {
    read(): Record<string, number | undefined> {
      return Object.fromEntries(
        Object.entries(pids).map(([name, pid]) => {
          const now = pid === undefined ? undefined : treeCpuSeconds(pid);
          const before = start[name];
          return [name, now === undefined || before === undefined ? undefined : now - before];
        }),
      );
    },
  };
}
