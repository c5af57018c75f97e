import { readFileSync } from 'node:fs';
import type { ContenderName } from './contenders.js';
import { rotate, type PlannedRun, type Running } from './load.js';
import { cleanRuns, fixed, integer, measuredCells, measuredTitles, median, medians, ratio, renderTable, type RunMedians, type RunRecord } from './report.js';
import type { Settings } from './settings.js';

/**
 * The concurrency part: proxy CPU per request at 10, 100 and 1,000 concurrent client
 * connections, each level against the same contender's lowest level in the same round.
 */

/** The contenders of the concurrency table, when selected and available. */
export const concurrencyContenders: readonly ContenderName[] = ['balancer', 'balancer-undici', 'http-proxy-3', 'nginx'];

/** Open files one level needs in one process: a proxy holds a client and an upstream socket per connection, plus its own files. */
const filesNeeded = (connections: number): number => 2 * connections + 256;

/** openFileLimit is this process's soft limit on open files (Node raises it to the hard limit at start; children inherit it). */
export function openFileLimit(): number {
  const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((text) => text.startsWith('Max open files'));
  const soft = line?.split(/\s+/)[3];
  return soft === undefined || soft === 'unlimited' ? Infinity : Number(soft);
}

/** levelsWithin splits the levels into those the open-file limit allows and those it does not. */
export function levelsWithin(levels: readonly number[], limit: number): { levels: number[]; tooMany: number[] } {
  return { levels: levels.filter((level) => filesNeeded(level) <= limit), tooMany: levels.filter((level) => filesNeeded(level) > limit) };
}

export function tooManyMessage(tooMany: readonly number[], limit: number): string {
  const needed = filesNeeded(Math.max(...tooMany));
  return `concurrency: ${tooMany.map((level) => level.toLocaleString('en-US')).join(', ')} connections skipped: they need about ${needed} open files per process, the limit is ${limit} (raise it, e.g. \`ulimit -n ${needed}\` before npm run bench)`;
}

/** planConcurrency: each round runs every level, ascending, with every contender; the contender order rotates from level to level and round to round. */
export function planConcurrency(contenders: readonly Running[], levels: readonly number[], settings: Settings): PlannedRun[] {
  const planned: PlannedRun[] = [];
  const rounds = settings.concurrencyRounds;
  for (let round = 1; round <= rounds; round++) {
    for (const [index, connections] of levels.entries()) {
      const label = `${integer(connections).padStart(5)} conns ${round}/${rounds}`;
      for (const contender of rotate(contenders, round - 1 + index)) planned.push({ contender, plan: { ...settings, round, connections }, label });
    }
  }
  return planned;
}

export interface ConcurrencySummary extends RunMedians {
  contender: ContenderName;
  connections: number;
  /** proxy CPU per response, µs: CPU-s / requests × 1e6 */
  cpuMicrosPerRequest: number;
  /** median over rounds of cpuMicrosPerRequest divided by the same contender's at the lowest level in the same round */
  vsLowest: number | undefined;
}

const microsPerRequest = (run: RunRecord): number => (run.requests > 0 ? (run.proxyCpuSeconds / run.requests) * 1e6 : Number.NaN);

export function summarizeConcurrency(contenders: readonly ContenderName[], levels: readonly number[], runs: readonly RunRecord[]): ConcurrencySummary[] {
  return contenders.flatMap((contender) =>
    levels.map((connections) => {
      const own = runs.filter((run) => run.contender === contender && run.connections === connections);
      const ratios = own.flatMap((run) => {
        const base = runs.find((other) => other.contender === contender && other.round === run.round && other.connections === levels[0]);
        return base && microsPerRequest(base) > 0 ? [microsPerRequest(run) / microsPerRequest(base)] : [];
      });
      return {
        contender,
        connections,
        ...medians(own),
        cpuMicrosPerRequest: median(own.map(microsPerRequest)),
        vsLowest: ratios.length > 0 ? median(ratios) : undefined,
      };
    }),
  );
}

export function formatConcurrencyTable(summaries: readonly ConcurrencySummary[], levels: readonly number[]): string {
  return renderTable(
    ['contender', 'connections', ...measuredTitles, 'µs CPU/req', `vs ${integer(levels[0]!)} conns`, 'clean runs'],
    summaries.map((summary) => [
      summary.contender,
      integer(summary.connections),
      ...measuredCells(summary),
      fixed(summary.cpuMicrosPerRequest, 1),
      ratio(summary.vsLowest),
      cleanRuns(summary),
    ]),
  );
}
