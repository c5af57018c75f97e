import type { ContenderName } from './contenders.js';

/** One measured load run against one contender. */
export interface RunRecord {
  round: number;
  contender: ContenderName;
  startedAt: string;
  durationSeconds: number;
  /** responses received, whatever their status */
  requests: number;
  requestsPerSecond: number;
  latencyMs: { mean: number; p50: number; p90: number; p99: number; max: number };
  /** user + system CPU of the proxy's processes during the run */
  proxyCpuSeconds: number;
  requestsPerCpuSecond: number;
  /** the same for both backends together and for the load generator (this process), for context */
  backendsCpuSeconds: number;
  loadgenCpuSeconds: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  /** why this run does not count as clean (errors, non-2xx answers); empty when it is clean */
  problems: string[];
}

/** Medians over the rounds of one contender; each ratio is the median over rounds of that round's ratio to the reference. */
export interface Summary {
  contender: ContenderName;
  runs: number;
  cleanRuns: number;
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  proxyCpuSeconds: number;
  requestsPerCpuSecond: number;
  vsHttpProxy: number | undefined;
  vsHttpProxy3: number | undefined;
  vsNginx: number | undefined;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

export function summarize(contenders: readonly ContenderName[], runs: readonly RunRecord[]): Summary[] {
  const summaries = contenders.map((contender) => {
    const own = runs.filter((run) => run.contender === contender);
    return {
      contender,
      runs: own.length,
      cleanRuns: own.filter((run) => run.problems.length === 0).length,
      requestsPerSecond: median(own.map((run) => run.requestsPerSecond)),
      p50Ms: median(own.map((run) => run.latencyMs.p50)),
      p99Ms: median(own.map((run) => run.latencyMs.p99)),
      proxyCpuSeconds: median(own.map((run) => run.proxyCpuSeconds)),
      requestsPerCpuSecond: median(own.map((run) => run.requestsPerCpuSecond)),
      vsHttpProxy: ratioTo(contender, 'http-proxy', runs),
      vsHttpProxy3: ratioTo(contender, 'http-proxy-3', runs),
      vsNginx: ratioTo(contender, 'nginx', runs),
    };
  });
  return summaries;
}

/** ratioTo: the median over rounds of contender's requests per CPU-second divided by the reference's in the same round. */
function ratioTo(contender: ContenderName, reference: ContenderName, runs: readonly RunRecord[]): number | undefined {
  const ratios: number[] = [];
  for (const run of runs) {
    if (run.contender !== contender) continue;
    const other = runs.find((candidate) => candidate.contender === reference && candidate.round === run.round);
    if (other && other.requestsPerCpuSecond > 0) ratios.push(run.requestsPerCpuSecond / other.requestsPerCpuSecond);
  }
  return ratios.length > 0 ? median(ratios) : undefined;
}

const integer = (value: number): string => (Number.isFinite(value) ? Math.round(value).toLocaleString('en-US') : '-');
const fixed = (value: number, digits: number): string => (Number.isFinite(value) ? value.toFixed(digits) : '-');
const ratio = (value: number | undefined): string => (value === undefined ? '-' : `${value.toFixed(2)}x`);

/** formatRun is the progress line printed after each run. */
export function formatRun(run: RunRecord, rounds: number): string {
  return (
    `round ${run.round}/${rounds} ${run.contender.padEnd(12)} ${integer(run.requestsPerSecond).padStart(7)} req/s  ` +
    `p50 ${fixed(run.latencyMs.p50, 1)} ms  p99 ${fixed(run.latencyMs.p99, 1)} ms  ` +
    `proxy CPU ${fixed(run.proxyCpuSeconds, 2)} s  ${integer(run.requestsPerCpuSecond)} req/CPU-s` +
    (run.problems.length > 0 ? `  MARKED: ${run.problems.join(', ')}` : '')
  );
}

/** formatTable renders the summaries as a fixed-width text table. */
export function formatTable(summaries: readonly Summary[]): string {
  const header = ['contender', 'req/s', 'p50 ms', 'p99 ms', 'CPU-s', 'req/CPU-s', 'vs http-proxy', 'vs http-proxy-3', 'vs nginx', 'clean runs'];
  const rows = summaries.map((summary) => [
    summary.contender,
    integer(summary.requestsPerSecond),
    fixed(summary.p50Ms, 1),
    fixed(summary.p99Ms, 1),
    fixed(summary.proxyCpuSeconds, 2),
    integer(summary.requestsPerCpuSecond),
    ratio(summary.vsHttpProxy),
    ratio(summary.vsHttpProxy3),
    ratio(summary.vsNginx),
    `${summary.cleanRuns}/${summary.runs}${summary.cleanRuns < summary.runs ? ' MARKED' : ''}`,
  ]);
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
  const line = (cells: string[]): string =>
    cells.map((cell, column) => (column === 0 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!))).join('  ').trimEnd();
  return [line(header), line(widths.map((width) => '-'.repeat(width))), ...rows.map(line)].join('\n');
}
