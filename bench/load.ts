import autocannon from 'autocannon';
import type { BenchProcess, Contender, ContenderName } from './contenders.js';
import { cpuSeconds } from './cpu.js';
import { formatRun, type RunRecord } from './report.js';

/** A started contender, by name. */
export type Running = Contender & { name: ContenderName };

export interface LoadPlan {
  round: number;
  connections: number;
  pipelining: number;
  warmupSeconds: number;
  durationSeconds: number;
}

const round3 = (value: number): number => Math.round(value * 1000) / 1000;

function load(url: string, plan: LoadPlan, seconds: number): Promise<autocannon.Result> {
  return autocannon({ url, connections: plan.connections, pipelining: plan.pipelining, duration: seconds, timeout: 10 });
}

/**
 * measure loads one contender through autocannon (warm-up, then the measured run) and reads the CPU
 * time of the proxy and the backends around the measured run. beforeMeasured, if given, runs
 * between the two, before the CPU times are read.
 */
export async function measure(contender: Running, plan: LoadPlan, backends: readonly BenchProcess[], beforeMeasured?: () => Promise<void>): Promise<RunRecord> {
  if (plan.warmupSeconds > 0) await load(contender.url, plan, plan.warmupSeconds);
  await beforeMeasured?.();
  const backendsCpu = (): number => backends.reduce((sum, backend) => sum + cpuSeconds(backend.pid), 0);
  const proxyBefore = cpuSeconds(contender.pid);
  const backendsBefore = backendsCpu();
  const loadgenBefore = process.cpuUsage();
  const startedAt = new Date().toISOString();
  const result = await load(contender.url, plan, plan.durationSeconds);
  // Differences of tick counts: round away the floating-point noise (a tick is 10 ms at CLK_TCK 100).
  const proxyCpuSeconds = round3(cpuSeconds(contender.pid) - proxyBefore);
  const backendsCpuSeconds = round3(backendsCpu() - backendsBefore);
  const loadgen = process.cpuUsage(loadgenBefore);

  const requests = result.requests.total;
  const problems: string[] = [];
  if (result.errors > 0) problems.push(`${result.errors} errors (${result.timeouts} timeouts)`);
  if (result.non2xx > 0) problems.push(`${result.non2xx} non-2xx answers`);
  if (requests === 0) problems.push('no answers');
  return {
    round: plan.round,
    contender: contender.name,
    connections: plan.connections,
    startedAt,
    durationSeconds: result.duration,
    requests,
    requestsPerSecond: requests / result.duration,
    latencyMs: { mean: result.latency.mean, p50: result.latency.p50, p90: result.latency.p90, p99: result.latency.p99, max: result.latency.max },
    proxyCpuSeconds,
    requestsPerCpuSecond: proxyCpuSeconds > 0 ? requests / proxyCpuSeconds : Number.NaN,
    backendsCpuSeconds,
    loadgenCpuSeconds: round3((loadgen.user + loadgen.system) / 1e6),
    errors: result.errors,
    timeouts: result.timeouts,
    non2xx: result.non2xx,
    problems,
  };
}

/** A run to make: which contender, how, and the label of its progress line. */
export interface PlannedRun {
  contender: Running;
  plan: LoadPlan;
  label: string;
}

/** runAll makes the planned runs one after the other, printing a progress line after each. */
export async function runAll(planned: readonly PlannedRun[], backends: readonly BenchProcess[], progress: (message: string) => void): Promise<RunRecord[]> {
  const runs: RunRecord[] = [];
  for (const { contender, plan, label } of planned) {
    const run = await measure(contender, plan, backends);
    runs.push(run);
    progress(formatRun(run, label));
  }
  return runs;
}

/** rotate starts the list `shift` places later, so that from round to round no contender always runs first or after the same neighbour. */
export function rotate<T>(items: readonly T[], shift: number): T[] {
  const start = items.length > 0 ? shift % items.length : 0;
  return [...items.slice(start), ...items.slice(0, start)];
}
