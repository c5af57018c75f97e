import { setTimeout as sleep } from 'node:timers/promises';
import { REPORT_INTERVAL_MS } from '../balancer/src/cluster/report.js';
import { clusterSetups, httpGet, type BenchProcess, type ContenderName } from './contenders.js';
import { ownCpuSeconds } from './cpu.js';
import { measure, rotate, type PlannedRun, type Running } from './load.js';
import { cleanRuns, fixed, formatRun, integer, measuredCells, measuredTitles, median, medians, ratio, renderTable, type RunMedians, type RunRecord } from './report.js';
import type { Settings } from './settings.js';

/**
 * The workers part: the balancer with one traffic worker and with two (connections handed out by
 * the primary, node:cluster's round-robin, or spread by the kernel over SO_REUSEPORT sockets),
 * loaded in turn over alternating rounds. Beside rates and CPU per request (the primary counted),
 * it reads GET /workers around every measured run: each worker's share of the connections
 * accepted and of the requests answered.
 */

type ClusterName = keyof typeof clusterSetups;

/** The contenders of the workers table, in table order; the first is the base of the ratios. */
export const workersContenders = Object.keys(clusterSetups) as ClusterName[];
const base: ClusterName = 'balancer-w1-rr';

const isCluster = (name: ContenderName): name is ClusterName => name in clusterSetups;

/** What one worker did during one measured run, from the difference of GET /workers before and after. */
export interface WorkerCounts {
  pid: number;
  acceptedConnections: number;
  requests: number;
}

export interface WorkersRunRecord extends RunRecord {
  /** the primary's own CPU time during the run (its workers' is the rest of proxyCpuSeconds) */
  primaryCpuSeconds: number;
  /** per worker, in the order they started */
  workers: WorkerCounts[];
}

/** One worker as GET /workers lists it (the fields the bench reads). */
interface WorkerView {
  pid: number;
  state: string;
  totalRequests: number;
  acceptedConnections: number;
}

async function readWorkers(adminUrl: string): Promise<WorkerView[]> {
  const { status, body } = await httpGet(`${adminUrl}/workers`);
  if (status !== 200) throw new Error(`GET ${adminUrl}/workers: status ${status} ${body}`);
  return JSON.parse(body) as WorkerView[];
}

/** Workers report their counts to the primary every REPORT_INTERVAL_MS: wait a few intervals for the last report of a run. */
const settle = (): Promise<void> => sleep(3 * REPORT_INTERVAL_MS);

/** planWorkers: settings.workersRounds rounds; each loads every cluster contender once, starting one contender later than the round before. */
export function planWorkers(contenders: readonly Running[], settings: Settings): PlannedRun[] {
  const planned: PlannedRun[] = [];
  const rounds = settings.workersRounds;
  for (let round = 1; round <= rounds; round++) {
    for (const contender of rotate(contenders, round - 1)) {
      planned.push({ contender, plan: { ...settings, connections: settings.workersConnections, round }, label: `workers ${round}/${rounds}` });
    }
  }
  return planned;
}

/** runWorkers makes the planned runs one after the other, reading GET /workers and the primary's CPU around each measured run. */
export async function runWorkers(planned: readonly PlannedRun[], backends: readonly BenchProcess[], progress: (message: string) => void): Promise<WorkersRunRecord[]> {
  const runs: WorkersRunRecord[] = [];
  for (const { contender, plan, label } of planned) {
    const adminUrl = contender.adminUrl!;
    let before: WorkerView[] = [];
    let primaryBefore = 0;
    const run = await measure(contender, plan, backends, async () => {
      await settle(); // the warm-up's last report
      before = await readWorkers(adminUrl);
      primaryBefore = ownCpuSeconds(contender.pid);
    });
    const primaryCpuSeconds = Math.round((ownCpuSeconds(contender.pid) - primaryBefore) * 1000) / 1000;
    await settle();
    const after = await readWorkers(adminUrl);
    const record: WorkersRunRecord = { ...run, primaryCpuSeconds, workers: countsDuring(before, after) };
    record.problems.push(...workerProblems(contender.name, before, after));
    runs.push(record);
    progress(`${formatRun(record, label)}  primary CPU ${fixed(primaryCpuSeconds, 2)} s  workers: conns ${shares(record.workers, 'acceptedConnections')}, reqs ${shares(record.workers, 'requests')}`);
  }
  return runs;
}

/** countsDuring subtracts the counts before from those after, per worker; a worker started in between counts from 0. */
function countsDuring(before: readonly WorkerView[], after: readonly WorkerView[]): WorkerCounts[] {
  return after.map((worker) => {
    const earlier = before.find((candidate) => candidate.pid === worker.pid);
    return {
      pid: worker.pid,
      acceptedConnections: worker.acceptedConnections - (earlier?.acceptedConnections ?? 0),
      requests: worker.totalRequests - (earlier?.totalRequests ?? 0),
    };
  });
}

/** workerProblems: a run counts as clean only if the configured number of workers served it from start to end. */
function workerProblems(name: ContenderName, before: readonly WorkerView[], after: readonly WorkerView[]): string[] {
  const expected = isCluster(name) ? clusterSetups[name].workers : 1;
  const serving = (views: readonly WorkerView[]): number => views.filter((view) => view.state === 'serving').length;
  const problems: string[] = [];
  if (serving(before) !== expected || serving(after) !== expected) problems.push(`${serving(before)} workers serving before, ${serving(after)} after, expected ${expected}`);
  const pids = (views: readonly WorkerView[]): string => views.map((view) => view.pid).join(',');
  if (pids(before) !== pids(after)) problems.push(`workers changed during the run (pids ${pids(before)} before, ${pids(after)} after)`);
  return problems;
}

/** shares is each worker's share of a count, in start order: "50.0% / 50.0%". */
function shares(workers: readonly WorkerCounts[], field: 'acceptedConnections' | 'requests'): string {
  const total = workers.reduce((sum, worker) => sum + worker[field], 0);
  if (workers.length === 0 || total === 0) return '-';
  return workers.map((worker) => `${((100 * worker[field]) / total).toFixed(1)}%`).join(' / ');
}

export type WorkersSummary = RunMedians & {
  contender: ClusterName;
  workers: number;
  scheduling: string;
  primaryCpuSeconds: number;
  /** median over rounds of req/s divided by the base's (one worker) in the same round */
  scaling: number | undefined;
  /** the same for req/CPU-s: above 1, less CPU per request than with one worker */
  efficiency: number | undefined;
};

export function summarizeWorkers(contenders: readonly ClusterName[], runs: readonly WorkersRunRecord[]): WorkersSummary[] {
  return contenders.map((contender) => {
    const own = runs.filter((run) => run.contender === contender);
    return {
      contender,
      ...clusterSetups[contender],
      ...medians(own),
      primaryCpuSeconds: median(own.map((run) => run.primaryCpuSeconds)),
      scaling: ratioToBase(own, runs, (run) => run.requestsPerSecond),
      efficiency: ratioToBase(own, runs, (run) => run.requestsPerCpuSecond),
    };
  });
}

function ratioToBase(own: readonly WorkersRunRecord[], runs: readonly WorkersRunRecord[], value: (run: RunRecord) => number): number | undefined {
  const ratios = own.flatMap((run) => {
    const other = runs.find((candidate) => candidate.contender === base && candidate.round === run.round);
    return other && value(other) > 0 ? [value(run) / value(other)] : [];
  });
  return ratios.length > 0 ? median(ratios) : undefined;
}

/** The spread of one contender with more than one worker: one row per round and one for all rounds together (counts summed per worker in start order). */
function spreadRows(contender: ClusterName, runs: readonly WorkersRunRecord[]): string[][] {
  const own = runs.filter((run) => run.contender === contender);
  const row = (round: string, workers: readonly WorkerCounts[]): string[] => {
    const total = (field: 'acceptedConnections' | 'requests'): string => integer(workers.reduce((sum, worker) => sum + worker[field], 0));
    return [contender, round, total('acceptedConnections'), shares(workers, 'acceptedConnections'), total('requests'), shares(workers, 'requests')];
  };
  const summed: WorkerCounts[] = [];
  for (const run of own) {
    for (const [index, worker] of run.workers.entries()) {
      const sum = (summed[index] ??= { pid: worker.pid, acceptedConnections: 0, requests: 0 });
      sum.acceptedConnections += worker.acceptedConnections;
      sum.requests += worker.requests;
    }
  }
  return [...own.map((run) => row(String(run.round), run.workers)), row('all', summed)];
}

/** formatWorkersTables renders the measurements, the ratios to one worker, then the spread over the workers. */
export function formatWorkersTables(summaries: readonly WorkersSummary[], runs: readonly WorkersRunRecord[]): string {
  const measured = renderTable(
    ['contender', 'workers', 'scheduling', ...measuredTitles, 'primary CPU-s', 'req/CPU-s', 'clean runs'],
    summaries.map((summary) => [
      summary.contender,
      String(summary.workers),
      summary.scheduling,
      ...measuredCells(summary),
      fixed(summary.primaryCpuSeconds, 2),
      integer(summary.requestsPerCpuSecond),
      cleanRuns(summary),
    ]),
  );
  const compared = summaries.filter((summary) => summary.contender !== base);
  const ratios = renderTable(
    [`vs ${base}`, 'req/s (scaling)', 'req/CPU-s (efficiency)'],
    compared.map((summary) => [summary.contender, ratio(summary.scaling), ratio(summary.efficiency)]),
  );
  const spread = renderTable(
    ['spread over workers', 'round', 'accepted', 'connection shares', 'requests', 'request shares'],
    summaries.filter((summary) => summary.workers > 1).flatMap((summary) => spreadRows(summary.contender, runs)),
  );
  return `${measured}\n\n${ratios}\n\n${spread}`;
}
