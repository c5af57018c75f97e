import { contenderNames, type ContenderName } from './contenders.js';

/** The benchmark's settings, from BENCH_* environment variables (see bench/README.md). */

export const partNames = ['proxies', 'pick', 'concurrency', 'workers', 'tcp'] as const;
export type PartName = (typeof partNames)[number];

function envNumber(name: string, fallback: number, min: number): number {
  const text = process.env[name];
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!Number.isFinite(value) || value < min) throw new Error(`${name}=${JSON.stringify(text)}: expected a number of at least ${min}`);
  return value;
}

function envInteger(name: string, fallback: number, min: number): number {
  const value = envNumber(name, fallback, min);
  if (!Number.isInteger(value)) throw new Error(`${name}=${JSON.stringify(process.env[name])}: expected a whole number`);
  return value;
}

/** envList reads a comma-separated list; an empty or unset variable gives the fallback. */
function envList(name: string, fallback: readonly string[]): string[] {
  const names = (process.env[name] ?? '').split(',').map((item) => item.trim()).filter(Boolean);
  return names.length > 0 ? names : [...fallback];
}

function envNames<T extends string>(name: string, accepted: readonly T[], fallback: readonly T[]): T[] {
  const names = envList(name, fallback);
  for (const item of names) {
    if (!(accepted as readonly string[]).includes(item)) {
      throw new Error(`${name}: unknown name ${JSON.stringify(item)}; accepted: ${accepted.join(', ')}`);
    }
  }
  return [...new Set(names)] as T[];
}

function envLevels(name: string, fallback: readonly number[]): number[] {
  const levels = envList(name, fallback.map(String)).map(Number);
  if (levels.some((level) => !Number.isInteger(level) || level < 1)) throw new Error(`${name}: expected whole numbers of at least 1, e.g. 10,100,1000`);
  return [...new Set(levels)].sort((a, b) => a - b);
}

/** readSettings reads the BENCH_* variables; it throws on a value it cannot use. */
export function readSettings() {
  return {
    /** BENCH_PARTS: which parts run (default all five; the tables always print in the order proxies, pick, concurrency, workers, tcp) */
    parts: envNames('BENCH_PARTS', partNames, partNames),
    /** BENCH_SKIP: contenders to leave out of every part */
    skip: new Set<ContenderName>(envNames('BENCH_SKIP', contenderNames, [])),
    /** BENCH_ROUNDS: rounds of the proxies table; each round loads every contender once (default 3) */
    rounds: envNumber('BENCH_ROUNDS', 3, 1),
    /** BENCH_DURATION: seconds of measured load per run, in every load part (default 6) */
    durationSeconds: envNumber('BENCH_DURATION', 6, 1),
    /** BENCH_WARMUP: seconds of unmeasured load before each run (default 1) */
    warmupSeconds: envNumber('BENCH_WARMUP', 1, 0),
    /** BENCH_CONNECTIONS: concurrent keep-alive connections of the proxies table (default 50) */
    connections: envNumber('BENCH_CONNECTIONS', 50, 1),
    pipelining: 1,
    /** BENCH_CONCURRENCY: connection counts of the concurrency table (default 10,100,1000) */
    concurrencyLevels: envLevels('BENCH_CONCURRENCY', [10, 100, 1000]),
    /** BENCH_CONCURRENCY_ROUNDS: rounds of the concurrency table; each runs every contender at every level (default 1) */
    concurrencyRounds: envNumber('BENCH_CONCURRENCY_ROUNDS', 1, 1),
    /** BENCH_WORKERS_ROUNDS: rounds of the workers table; each round loads every cluster contender once (default 3) */
    workersRounds: envNumber('BENCH_WORKERS_ROUNDS', 3, 1),
    /** BENCH_WORKERS_CONNECTIONS: concurrent keep-alive connections of the workers table; enough for the spread over workers to mean something (default 100) */
    workersConnections: envNumber('BENCH_WORKERS_CONNECTIONS', 100, 1),
    /** BENCH_PICK_SECONDS: timed seconds per cell of the pick table (default 0.3) */
    pickSeconds: envNumber('BENCH_PICK_SECONDS', 0.3, 0.01),
    /** BENCH_TCP_MB: MB (2^20 bytes) sent per measured transfer of the tcp part, over one stream or split over the streams (default 512) */
    tcpMegabytes: envNumber('BENCH_TCP_MB', 512, 1),
    /** BENCH_TCP_STREAMS: connections at once of the tcp part's second shape; the first is always one stream (default 50) */
    tcpStreams: envInteger('BENCH_TCP_STREAMS', 50, 1),
    /** BENCH_TCP_ROUNDS: rounds of the tcp part; each makes every transfer once (default 5: the transfers are short) */
    tcpRounds: envInteger('BENCH_TCP_ROUNDS', 5, 1),
    /** BENCH_TCP_WORKERS: the balancers of the tcp part, by their traffic workers (default 1,2) */
    tcpWorkers: envLevels('BENCH_TCP_WORKERS', [1, 2]),
  };
}

export type Settings = ReturnType<typeof readSettings>;
