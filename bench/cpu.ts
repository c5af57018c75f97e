import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/** Kernel clock ticks per second, the unit of utime and stime in /proc/PID/stat (`getconf CLK_TCK`, default 100). */
export const clockTicks = ((): number => {
  try {
    const ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    return Number.isInteger(ticks) && ticks > 0 ? ticks : 100;
  } catch {
    return 100;
  }
})();

interface Stat {
  ppid: number;
  /** utime + stime of every thread of the process, in clock ticks */
  ticks: number;
}

function readStat(pid: number): Stat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined; // gone
  }
  // The command name (field 2) may contain spaces and parentheses: the fields that follow start after the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { ppid: Number(fields[1]), ticks: Number(fields[11]) + Number(fields[12]) };
}

/** processTree lists pid and all its descendants (nginx's workers, for instance). */
export function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readStat(Number(entry));
    if (!stat) continue;
    const siblings = children.get(stat.ppid) ?? [];
    siblings.push(Number(entry));
    children.set(stat.ppid, siblings);
  }
  const tree: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    const next = queue.shift()!;
    tree.push(next);
    queue.push(...(children.get(next) ?? []));
  }
  return tree;
}

/** cpuSeconds is the user + system CPU time consumed so far by pid and its descendants. */
export function cpuSeconds(pid: number): number {
  let ticks = 0;
  for (const member of processTree(pid)) ticks += readStat(member)?.ticks ?? 0;
  return ticks / clockTicks;
}

/** ownCpuSeconds is the user + system CPU time consumed so far by pid alone, without its descendants. */
export function ownCpuSeconds(pid: number): number {
  return (readStat(pid)?.ticks ?? 0) / clockTicks;
}

/**
 * machineCpuSeconds is the CPU time of the whole machine so far from the first line of /proc/stat:
 * busy (user, nice, system, irq, softirq, steal) and all (busy plus idle and iowait), over every core.
 * A difference of two readings over a run says how busy the cores were, whoever used them.
 */
export function machineCpuSeconds(): { busy: number; all: number } {
  let fields: number[];
  try {
    fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1, 9).map(Number);
  } catch {
    return { busy: Number.NaN, all: Number.NaN };
  }
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = fields;
  const busy = user + nice + system + irq + softirq + steal;
  return { busy: busy / clockTicks, all: (busy + idle + iowait) / clockTicks };
}
