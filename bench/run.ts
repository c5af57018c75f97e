import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';
import { findBinary, repoRoot } from '../test/helpers/processes.js';
import { clockTicks, cpuSeconds } from './cpu.js';
import {
  contenderNames,
  killAllNow,
  requiredBinary,
  startBackend,
  startContender,
  stopAll,
  type BenchProcess,
  type Contender,
  type ContenderName,
} from './contenders.js';
import { formatRun, formatTable, summarize, type RunRecord } from './report.js';

/**
 * npm run bench: the balancer beside bare http-proxy, bare http-proxy-3 and, where installed,
 * nginx and HAProxy, each loaded in turn by autocannon over several alternating rounds, with
 * the proxy's own CPU time read from /proc. See bench/README.md.
 */

function envNumber(name: string, fallback: number, min: number): number {
  const text = process.env[name];
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!Number.isFinite(value) || value < min) throw new Error(`${name}=${JSON.stringify(text)}: expected a number of at least ${min}`);
  return value;
}

function envSkip(): Set<ContenderName> {
  const names = (process.env.BENCH_SKIP ?? '').split(',').map((name) => name.trim()).filter(Boolean);
  for (const name of names) {
    if (!(contenderNames as readonly string[]).includes(name)) {
      throw new Error(`BENCH_SKIP: unknown contender ${JSON.stringify(name)}; accepted: ${contenderNames.join(', ')}`);
    }
  }
  return new Set(names as ContenderName[]);
}

const settings = {
  /** BENCH_ROUNDS: rounds; each round loads every contender once (default 3) */
  rounds: envNumber('BENCH_ROUNDS', 3, 1),
  /** BENCH_DURATION: seconds of measured load per run (default 6) */
  durationSeconds: envNumber('BENCH_DURATION', 6, 1),
  /** BENCH_WARMUP: seconds of unmeasured load before each run (default 1) */
  warmupSeconds: envNumber('BENCH_WARMUP', 1, 0),
  /** BENCH_CONNECTIONS: concurrent keep-alive connections of the load generator (default 50) */
  connections: envNumber('BENCH_CONNECTIONS', 50, 1),
  pipelining: 1,
  skip: envSkip(),
};

const started = Date.now();
const progress = (message: string): void => {
  const elapsed = `${Math.round((Date.now() - started) / 1000)}s`.padStart(4);
  process.stdout.write(`[${elapsed}] ${message}\n`);
};

const round3 = (value: number): number => Math.round(value * 1000) / 1000;

function load(url: string, seconds: number): Promise<autocannon.Result> {
  return autocannon({ url, connections: settings.connections, pipelining: settings.pipelining, duration: seconds, timeout: 10 });
}

async function measure(contender: Contender & { name: ContenderName }, round: number, backends: readonly BenchProcess[]): Promise<RunRecord> {
  if (settings.warmupSeconds > 0) await load(contender.url, settings.warmupSeconds);
  const backendsCpu = (): number => backends.reduce((sum, backend) => sum + cpuSeconds(backend.pid), 0);
  const proxyBefore = cpuSeconds(contender.pid);
  const backendsBefore = backendsCpu();
  const loadgenBefore = process.cpuUsage();
  const startedAt = new Date().toISOString();
  const result = await load(contender.url, settings.durationSeconds);
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
    round,
    contender: contender.name,
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

function gitCommit(): string {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: repoRoot, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'balancer'], { cwd: repoRoot, encoding: 'utf8' }).trim() !== '';
    return dirty ? `${commit} (balancer/ has uncommitted changes)` : commit;
  } catch {
    return 'unknown';
  }
}

async function main(dir: string): Promise<void> {
  if (!existsSync(path.join(repoRoot, 'balancer', 'dist', 'main.js'))) throw new Error('balancer/dist/main.js is missing: run `npm run build` (npm run bench does)');

  const selected: ContenderName[] = [];
  const skipped: { contender: ContenderName; reason: string }[] = [];
  for (const name of contenderNames) {
    const binary = requiredBinary[name];
    if (settings.skip.has(name)) skipped.push({ contender: name, reason: 'skipped by BENCH_SKIP' });
    else if (binary && !findBinary(binary)) skipped.push({ contender: name, reason: `not installed (Debian package ${binary}), skipped` });
    else selected.push(name);
  }
  const runSeconds = settings.warmupSeconds + settings.durationSeconds;
  progress(
    `bench: ${settings.rounds} rounds x ${selected.length} contenders, ${settings.warmupSeconds} s warm-up + ${settings.durationSeconds} s measured each ` +
      `(about ${Math.ceil((settings.rounds * selected.length * runSeconds) / 10) * 10} s), ${settings.connections} connections, pipelining ${settings.pipelining}`,
  );
  for (const { contender, reason } of skipped) progress(`${contender}: ${reason}`);

  const backends = [await startBackend('b1'), await startBackend('b2')];
  const setup = { dir, backendPorts: backends.map((backend) => backend.port) };
  const contenders: (Contender & { name: ContenderName })[] = [];
  for (const name of selected) {
    const contender = await startContender(name, setup);
    contenders.push({ ...contender, name });
    progress(`${name}: ${contender.version} at ${contender.url} (pid ${contender.pid})`);
  }

  const runs: RunRecord[] = [];
  for (let round = 1; round <= settings.rounds; round++) {
    // Each round starts one contender later, so that no contender always runs first or right after the same neighbour.
    const shift = (round - 1) % contenders.length;
    for (const contender of [...contenders.slice(shift), ...contenders.slice(0, shift)]) {
      const run = await measure(contender, round, backends.map((backend) => backend.child));
      runs.push(run);
      progress(formatRun(run, settings.rounds));
    }
  }

  const summaries = summarize(selected, runs);
  process.stdout.write(`\n${formatTable(summaries)}\n\n`);
  process.stdout.write(
    'Medians over rounds. req/CPU-s = responses per CPU-second of the proxy process(es) alone; "vs X" = median over rounds of that number divided by X\'s in the same round ' +
      '(above 1: less CPU per request than X, below 1: more).\n',
  );
  for (const { contender, reason } of skipped) process.stdout.write(`${contender}: ${reason}\n`);
  const marked = runs.filter((run) => run.problems.length > 0);
  if (marked.length > 0) process.stdout.write(`${marked.length} run(s) MARKED: errors or non-2xx answers, see the progress lines above\n`);

  const cpus = os.cpus();
  const report = {
    date: new Date(started).toISOString(),
    elapsedSeconds: (Date.now() - started) / 1000,
    machine: {
      cores: cpus.length,
      cpuModel: cpus[0]?.model ?? 'unknown',
      memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
      kernel: `${os.type()} ${os.release()}`,
      node: process.version,
      clockTicksPerSecond: clockTicks,
      loadAverageAtEnd: os.loadavg(),
    },
    commit: gitCommit(),
    settings: { ...settings, skip: [...settings.skip] },
    contenders: Object.fromEntries(contenders.map((contender) => [contender.name, contender.version])),
    skipped,
    summary: summaries,
    runs,
  };
  const resultsDir = path.join(repoRoot, 'bench', 'results');
  mkdirSync(resultsDir, { recursive: true });
  const file = path.join(resultsDir, `bench-${report.date.replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
  progress(`wrote ${path.relative(repoRoot, file)}`);
}

const dir = mkdtempSync(path.join(os.tmpdir(), 'lb-bench-'));
const cleanUp = async (): Promise<void> => {
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
};
process.on('exit', killAllNow);
let interrupted = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    progress(`${signal}: stopping every child process`);
    void cleanUp().finally(() => process.exit(130));
  });
}

let exitCode = 0;
try {
  await main(dir);
} catch (error) {
  process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  exitCode = 1;
}
await cleanUp();
progress(`done in ${Math.round((Date.now() - started) / 1000)} s`);
process.exit(exitCode);
