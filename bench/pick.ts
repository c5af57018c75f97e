import { algorithmNames, createAlgorithm, type Algorithm, type AlgorithmName } from '../balancer/src/algorithms/index.js';
import type { Candidate, PickContext } from '../balancer/src/backends/view.js';
import { fixed, integer, median, ratio, renderTable } from './report.js';

/**
 * The pick part: the cost of one `pick` of each balancing algorithm among 3 to 3,000 candidates,
 * timed in this process on plain candidate objects, together with the load changes the data plane
 * makes around it (a request begins on the backend picked, another ends; algorithms that index by
 * load hear of both through loadChanged), and the cost of the first pick after the candidates
 * array changed (consistent-hash rebuilds its ring then, the weighted ones their tables).
 */

export const pickSizes = [3, 30, 300, 3_000] as const;
/** Ring points per unit of weight: the balancer's default hash.virtualNodes. */
const VIRTUAL_NODES = 160;
const KEY_COUNT = 1_024;
/** Requests in flight while picks are timed: the proxies table's 50 connections. */
const IN_FLIGHT = 50;
/** At most this many fresh arrays per cell for the first-pick cost (fewer when they take longer than the cell's time). */
const FIRST_PICK_SAMPLES = 15;

export interface PickCell {
  backends: number;
  /** timed picks, all on the same candidates array */
  picks: number;
  /** per pick, with the begin and end of a request around it */
  nsPerPick: number;
  /** median over fresh copies of the candidates array of the first pick on each */
  firstPickMicros: number;
  firstPickSamples: number;
}

export interface PickResult {
  algorithm: AlgorithmName;
  cells: PickCell[];
  /** nsPerPick at the most backends divided by that at the fewest */
  growth: number;
}

/** A candidate whose load the bench changes as the data plane does. */
interface BenchCandidate extends Candidate {
  readonly load: { activeRequests: number; totalRequests: number; readonly latencyObserved: boolean; latencyScoreMs(now: number): number };
}

/**
 * candidatesOf builds count plain candidates: weights 1 to 5, 0 to 16 requests in flight to begin
 * with, latency scores of 2 to 24 ms, all observed (a steady state). effectiveWeight and
 * latencyScoreMs return stored values, so that the time measured is the algorithm's own.
 */
function candidatesOf(count: number): BenchCandidate[] {
  return Array.from({ length: count }, (_, index) => {
    const weight = 1 + (index % 5);
    const latencyMs = 2 + ((index * 7) % 23);
    return {
      id: `backend-${index}`,
      weight,
      effectiveWeight: () => weight,
      load: { activeRequests: (index * 11) % 17, totalRequests: 1_000 + index * 37, latencyObserved: true, latencyScoreMs: () => latencyMs },
    };
  });
}

/** The client addresses (and hash keys: the balancer hashes the client address by default) the picks go through in turn. */
const contexts: readonly PickContext[] = Array.from({ length: KEY_COUNT }, (_, index) => {
  const address = `10.${(index * 37) & 255}.${index >> 8}.${index & 255}`;
  return { clientAddress: address, hashKey: address };
});

const now = (): bigint => process.hrtime.bigint();

/**
 * requests returns one step of the data plane with IN_FLIGHT requests in flight: pick, begin a
 * request on the backend picked, end the oldest request; loadChanged after each change.
 */
function requests(algorithm: Algorithm, candidates: readonly BenchCandidate[]): (context: PickContext) => void {
  const inFlight: (BenchCandidate | undefined)[] = new Array<BenchCandidate | undefined>(IN_FLIGHT).fill(undefined);
  let oldest = 0;
  return (context) => {
    const picked = algorithm.pick(candidates, context);
    if (picked === undefined) throw new Error('pick returned no backend');
    picked.load.activeRequests++;
    picked.load.totalRequests++;
    algorithm.loadChanged?.(picked);
    const ended = inFlight[oldest];
    inFlight[oldest] = picked;
    oldest = (oldest + 1) % IN_FLIGHT;
    if (ended === undefined) return;
    ended.load.activeRequests--;
    algorithm.loadChanged?.(ended);
  };
}

/** timePicks steps through the contexts over and over until `seconds` have passed; returns picks and ns per pick. */
function timePicks(step: (context: PickContext) => void, seconds: number): { picks: number; nsPerPick: number } {
  const budget = BigInt(Math.round(seconds * 1e9));
  const start = now();
  let picks = 0;
  let elapsed = 0n;
  do {
    for (const context of contexts) step(context);
    picks += contexts.length;
    elapsed = now() - start;
  } while (elapsed < budget);
  return { picks, nsPerPick: Number(elapsed) / picks };
}

/** timeFirstPicks times one pick on each of several fresh copies of the array (the copy itself is not timed); returns the median in µs. */
function timeFirstPicks(algorithm: Algorithm, candidates: readonly Candidate[], seconds: number): { micros: number; samples: number } {
  const deadline = now() + BigInt(Math.round(seconds * 1e9));
  const samples: number[] = [];
  while (samples.length < FIRST_PICK_SAMPLES && (samples.length === 0 || now() < deadline)) {
    const copy = [...candidates];
    const start = now();
    algorithm.pick(copy, contexts[samples.length]!);
    samples.push(Number(now() - start) / 1e3);
  }
  return { micros: median(samples), samples: samples.length };
}

/** runPick measures every algorithm at every size, each cell on new candidates: a warm-up, `seconds` of timed picks, then the first picks on fresh arrays. */
export function runPick(seconds: number, progress: (message: string) => void): PickResult[] {
  return algorithmNames.map((name) => {
    const cells = pickSizes.map((size) => {
      const candidates = candidatesOf(size);
      const algorithm = createAlgorithm(name, { virtualNodes: VIRTUAL_NODES });
      const step = requests(algorithm, candidates);
      timePicks(step, Math.min(0.1, seconds)); // warm-up: the JIT, the in-flight window, and the algorithm's tables
      const { picks, nsPerPick } = timePicks(step, seconds);
      const first = timeFirstPicks(algorithm, candidates, seconds);
      return { backends: size, picks, nsPerPick, firstPickMicros: first.micros, firstPickSamples: first.samples };
    });
    const result = { algorithm: name, cells, growth: cells.at(-1)!.nsPerPick / cells[0]!.nsPerPick };
    progress(`pick ${name.padEnd(20)} ${cells.map((cell) => `${integer(cell.backends)}: ${short(cell.nsPerPick)} ns`).join('  ')}`);
    return result;
  });
}

/** short prints one decimal below 100 and whole numbers above. */
const short = (value: number): string => (value < 100 ? fixed(value, 1) : integer(value));

export function formatPickTables(results: readonly PickResult[]): string {
  const sizes = pickSizes.map((size) => integer(size));
  const perPick = renderTable(
    ['ns per pick', ...sizes, `${sizes.at(-1)} vs ${sizes[0]}`],
    results.map((result) => [result.algorithm, ...result.cells.map((cell) => short(cell.nsPerPick)), ratio(result.growth)]),
  );
  const firstPick = renderTable(
    ['µs, first pick on a new array', ...sizes],
    results.map((result) => [result.algorithm, ...result.cells.map((cell) => short(cell.firstPickMicros))]),
  );
  return `${perPick}\n\n${firstPick}`;
}
