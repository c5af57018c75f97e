import type { ContenderName } from './contenders.js';
import { rotate, type PlannedRun, type Running } from './load.js';
import { cleanRuns, integer, measuredCells, measuredTitles, median, medians, ratio, renderTable, type RunMedians, type RunRecord } from './report.js';
import type { Settings } from './settings.js';

/**
 * The proxies part: every contender loaded in turn at the same concurrency, over alternating
 * rounds; the tables show medians over rounds and each contender's CPU per request relative to
 * the references measured in the same round.
 */

/** The references of the ratio columns: the JSON field, the column title and the contender. */
const references = [
  { key: 'vsHttpProxy', title: 'vs http-proxy', contender: 'http-proxy' },
  { key: 'vsHttpProxy3', title: 'vs http-proxy-3', contender: 'http-proxy-3' },
  { key: 'vsUndici', title: 'vs undici', contender: 'undici' },
  { key: 'vsReplyFrom', title: 'vs reply-from', contender: 'fastify-reply-from' },
  { key: 'vsNginx', title: 'vs nginx', contender: 'nginx' },
] as const satisfies readonly { key: string; title: string; contender: ContenderName }[];

type RatioKey = (typeof references)[number]['key'];

/** The goals the ratio table is read against: contender's ratio to the reference should be at least `atLeast`. */
const goals = [
  { contender: 'balancer-undici', key: 'vsReplyFrom', atLeast: 1.0 },
  { contender: 'balancer', key: 'vsHttpProxy3', atLeast: 0.95 },
] as const satisfies readonly { contender: ContenderName; key: RatioKey; atLeast: number }[];

/** Medians over the rounds of one contender; each ratio is the median over rounds of that round's ratio to the reference. */
export type Summary = { contender: ContenderName } & RunMedians & Record<RatioKey, number | undefined>;

/** planProxies: settings.rounds rounds; each loads every contender once, starting one contender later than the round before. */
export function planProxies(contenders: readonly Running[], settings: Settings): PlannedRun[] {
  const planned: PlannedRun[] = [];
  for (let round = 1; round <= settings.rounds; round++) {
    for (const contender of rotate(contenders, round - 1)) planned.push({ contender, plan: { ...settings, round }, label: `round ${round}/${settings.rounds}` });
  }
  return planned;
}

export function summarize(contenders: readonly ContenderName[], runs: readonly RunRecord[]): Summary[] {
  return contenders.map((contender) => {
    const ratios = Object.fromEntries(references.map((reference) => [reference.key, ratioTo(contender, reference.contender, runs)]));
    return { contender, ...medians(runs.filter((run) => run.contender === contender)), ...(ratios as Record<RatioKey, number | undefined>) };
  });
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

/** formatTables renders the measurements, then the ratios (one table would be too wide), then the goals. */
export function formatTables(summaries: readonly Summary[]): string {
  const measured = renderTable(
    ['contender', ...measuredTitles, 'req/CPU-s', 'clean runs'],
    summaries.map((summary) => [summary.contender, ...measuredCells(summary), integer(summary.requestsPerCpuSecond), cleanRuns(summary)]),
  );
  const ratios = renderTable(
    ['req/CPU-s ratio', ...references.map((reference) => reference.title)],
    summaries.map((summary) => [summary.contender, ...references.map((reference) => ratio(summary[reference.key]))]),
  );
  return `${measured}\n\n${ratios}\n\n${formatGoals(summaries)}`;
}

function formatGoals(summaries: readonly Summary[]): string {
  const lines = goals.map((goal) => {
    const title = references.find((reference) => reference.key === goal.key)!.title;
    const value = summaries.find((summary) => summary.contender === goal.contender)?.[goal.key];
    const verdict = value === undefined ? 'not measured' : `${ratio(value)}: ${value >= goal.atLeast ? 'met' : 'NOT met'}`;
    return `  ${goal.contender} ${title} >= ${goal.atLeast.toFixed(2)}x: ${verdict}`;
  });
  return ['goals:', ...lines].join('\n');
}
