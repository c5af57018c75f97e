import type { ContenderName } from './contenders.js';

/** What a load run records, and the formatting that every table of the bench shares. */

/** One measured load run against one contender. */
export interface RunRecord {
  round: number;
  contender: ContenderName;
  /** concurrent client connections of the load generator */
  connections: number;
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

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

export const integer = (value: number): string => (Number.isFinite(value) ? Math.round(value).toLocaleString('en-US') : '-');
export const fixed = (value: number, digits: number): string =>
  Number.isFinite(value) ? value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits }) : '-';
export const ratio = (value: number | undefined): string => (value === undefined || !Number.isFinite(value) ? '-' : `${value.toFixed(2)}x`);

/** The medians over a set of runs (one contender's, at one concurrency) that the tables show. */
export interface RunMedians {
  runs: number;
  cleanRuns: number;
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  proxyCpuSeconds: number;
  requestsPerCpuSecond: number;
}

export function medians(runs: readonly RunRecord[]): RunMedians {
  return {
    runs: runs.length,
    cleanRuns: runs.filter((run) => run.problems.length === 0).length,
    requestsPerSecond: median(runs.map((run) => run.requestsPerSecond)),
    p50Ms: median(runs.map((run) => run.latencyMs.p50)),
    p99Ms: median(runs.map((run) => run.latencyMs.p99)),
    proxyCpuSeconds: median(runs.map((run) => run.proxyCpuSeconds)),
    requestsPerCpuSecond: median(runs.map((run) => run.requestsPerCpuSecond)),
  };
}

/** The column titles and cells of the medians that both load tables show. */
export const measuredTitles = ['req/s', 'p50 ms', 'p99 ms', 'CPU-s'] as const;
export function measuredCells(summary: RunMedians): string[] {
  return [integer(summary.requestsPerSecond), fixed(summary.p50Ms, 1), fixed(summary.p99Ms, 1), fixed(summary.proxyCpuSeconds, 2)];
}

/** cleanRuns is the `clean runs` cell: clean out of all, MARKED when any run had errors or non-2xx answers. */
export function cleanRuns(summary: RunMedians): string {
  return `${summary.cleanRuns}/${summary.runs}${summary.cleanRuns < summary.runs ? ' MARKED' : ''}`;
}

/** formatRun is the progress line printed after each run; label says which run it was. */
export function formatRun(run: RunRecord, label: string): string {
  return (
    `${label} ${run.contender.padEnd(18)} ${integer(run.requestsPerSecond).padStart(7)} req/s  ` +
    `p50 ${fixed(run.latencyMs.p50, 1)} ms  p99 ${fixed(run.latencyMs.p99, 1)} ms  ` +
    `proxy CPU ${fixed(run.proxyCpuSeconds, 2)} s  ${integer(run.requestsPerCpuSecond)} req/CPU-s` +
    (run.problems.length > 0 ? `  MARKED: ${run.problems.join(', ')}` : '')
  );
}

/** renderTable lays out a fixed-width text table: the first column left-aligned, the others right-aligned. */
export function renderTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
  const line = (cells: readonly string[]): string =>
    cells.map((cell, column) => (column === 0 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!))).join('  ').trimEnd();
  return [line(header), line(widths.map((width) => '-'.repeat(width))), ...rows.map(line)].join('\n');
}
