import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { findBinary, repoRoot } from '../test/helpers/processes.js';
import { concurrencyContenders, formatConcurrencyTable, levelsWithin, openFileLimit, planConcurrency, summarizeConcurrency, tooManyMessage } from './concurrency.js';
import {
  contenderNames,
  killAllNow,
  requiredBinary,
  startBackend,
  startContender,
  stopAll,
  type ContenderName,
  type Setup,
} from './contenders.js';
import { clockTicks } from './cpu.js';
import { runAll, type Running } from './load.js';
import { formatPickTables, pickSizes, runPick } from './pick.js';
import { formatTables, planProxies, summarize } from './proxies.js';
import { readSettings, type Settings } from './settings.js';
import { formatTcpTables, runTcp, summarizeTcp, tcpPlanSeconds, TCP_GOAL } from './tcp.js';
import { formatWorkersTables, planWorkers, runWorkers, summarizeWorkers, workersContenders } from './workers.js';

/**
 * npm run bench: five parts, each selectable with BENCH_PARTS. "proxies": the balancer (on each
 * engine) beside bare Node proxies and, where installed, nginx, HAProxy and Caddy, loaded in turn
 * by autocannon over alternating rounds, with each proxy's own CPU time read from /proc. "pick": the
 * cost of one pick per balancing algorithm as the number of backends grows. "concurrency": proxy CPU
 * per request at 10, 100 and 1,000 connections. "workers": the balancer with one and two traffic
 * workers, and how evenly connections and requests spread over them. "tcp": raw TCP throughput
 * through the balancer's tcp listener against a direct connection and a bare Node relay. See bench/README.md.
 */

const settings = ((): Settings => {
  try {
    return readSettings();
  } catch (error) {
    process.stderr.write(`bench: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(2);
  }
})();
const started = Date.now();
const progress = (message: string): void => {
  const elapsed = `${Math.round((Date.now() - started) / 1000)}s`.padStart(4);
  process.stdout.write(`[${elapsed}] ${message}\n`);
};
const has = (part: (typeof settings.parts)[number]): boolean => settings.parts.includes(part);
const print = (text: string): void => void process.stdout.write(`${text}\n`);

function gitCommit(): string {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: repoRoot, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'balancer'], { cwd: repoRoot, encoding: 'utf8' }).trim() !== '';
    return dirty ? `${commit} (balancer/ has uncommitted changes)` : commit;
  } catch {
    return 'unknown';
  }
}

function machine(): Record<string, unknown> {
  const cpus = os.cpus();
  return {
    cores: cpus.length,
    cpuModel: cpus[0]?.model ?? 'unknown',
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    clockTicksPerSecond: clockTicks,
    openFileLimit: openFileLimit(),
    loadAverageAtEnd: os.loadavg(),
  };
}

type Skipped = { contender: ContenderName; reason: string }[];

const inConcurrency = (name: ContenderName): boolean => concurrencyContenders.includes(name);
const inWorkers = (name: ContenderName): boolean => (workersContenders as readonly ContenderName[]).includes(name);
/** The proxies part loads every contender but the cluster ones, which have a part of their own. */
const inProxies = (name: ContenderName): boolean => !inWorkers(name);

/** selectContenders: those the selected parts load, less those skipped by BENCH_SKIP or not installed. */
function selectContenders(): { selected: ContenderName[]; skipped: Skipped } {
  const selected: ContenderName[] = [];
  const skipped: Skipped = [];
  const wanted = (name: ContenderName): boolean =>
    (has('proxies') && inProxies(name)) || (has('concurrency') && inConcurrency(name)) || (has('workers') && inWorkers(name));
  for (const name of contenderNames.filter(wanted)) {
    const binary = requiredBinary[name];
    if (settings.skip.has(name)) skipped.push({ contender: name, reason: 'skipped by BENCH_SKIP' });
    else if (binary && !findBinary(binary)) skipped.push({ contender: name, reason: `not installed (Debian package ${binary}), skipped` });
    else selected.push(name);
  }
  return { selected, skipped };
}

/** announcePlan prints what will run and roughly how long it takes. */
function announcePlan(selected: readonly ContenderName[], levels: readonly number[], tooMany: readonly number[], fileLimit: number): void {
  const run = settings.warmupSeconds + settings.durationSeconds;
  const proxyCount = selected.filter(inProxies).length;
  const workersCount = selected.filter(inWorkers).length;
  const proxies = has('proxies') ? settings.rounds * proxyCount * run : 0;
  const concurrency = settings.concurrencyRounds * selected.filter(inConcurrency).length * levels.length * run;
  const workers = settings.workersRounds * workersCount * run;
  const pick = has('pick') ? 8 * pickSizes.length * (2 * settings.pickSeconds + 0.1) + 10 : 0;
  const tcp = has('tcp') ? tcpPlanSeconds(settings) : 0;
  progress(`bench: parts ${settings.parts.join(', ')}; about ${Math.ceil((proxies + concurrency + workers + pick + tcp) / 10) * 10} s`);
  if (has('proxies')) {
    progress(
      `proxies: ${settings.rounds} rounds x ${proxyCount} contenders, ${settings.warmupSeconds} s warm-up + ${settings.durationSeconds} s measured each, ` +
        `${settings.connections} connections, pipelining ${settings.pipelining}`,
    );
  }
  if (has('concurrency')) {
    const counts = levels.map((level) => level.toLocaleString('en-US')).join('/');
    progress(`concurrency: ${settings.concurrencyRounds} round(s) x ${counts} connections x ${selected.filter(inConcurrency).join(', ')}`);
    if (tooMany.length > 0) progress(tooManyMessage(tooMany, fileLimit));
  }
  if (has('workers')) {
    progress(
      `workers: ${settings.workersRounds} rounds x ${workersCount} contenders, ${settings.warmupSeconds} s warm-up + ${settings.durationSeconds} s measured each, ` +
        `${settings.workersConnections} connections, pipelining ${settings.pipelining}`,
    );
  }
  if (has('tcp')) {
    progress(
      `tcp: ${settings.tcpRounds} rounds x 1 and ${settings.tcpStreams} streams x direct, node-pipe, ${settings.tcpWorkers.map((workers) => `balancer-w${workers}`).join(', ')}, ` +
        `${settings.tcpMegabytes} MB per transfer after a warm-up of a quarter of that`,
    );
  }
}

/** startContenders starts the selected contenders. */
async function startContenders(selected: readonly ContenderName[], setup: Setup): Promise<Running[]> {
  const contenders: Running[] = [];
  for (const name of selected) {
    const contender = await startContender(name, setup);
    contenders.push({ ...contender, name });
    progress(`${name}: ${contender.version} at ${contender.url} (pid ${contender.pid})`);
  }
  return contenders;
}

function writeReport(report: Record<string, unknown> & { date: string }): void {
  const resultsDir = path.join(repoRoot, 'bench', 'results');
  mkdirSync(resultsDir, { recursive: true });
  const file = path.join(resultsDir, `bench-${report.date.replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
  progress(`wrote ${path.relative(repoRoot, file)}`);
}

async function main(dir: string): Promise<void> {
  const loadParts = has('proxies') || has('concurrency') || has('workers');
  if ((loadParts || has('tcp')) && !existsSync(path.join(repoRoot, 'balancer', 'dist', 'main.js'))) {
    throw new Error('balancer/dist/main.js is missing: run `npm run build` (npm run bench does)');
  }
  const { selected, skipped } = selectContenders();
  const fileLimit = openFileLimit();
  const { levels, tooMany } = levelsWithin(has('concurrency') ? settings.concurrencyLevels : [], fileLimit);
  announcePlan(selected, levels, tooMany, fileLimit);
  for (const { contender, reason } of skipped) progress(`${contender}: ${reason}`);

  // The pick part first, while nothing else of the bench runs.
  const pick = has('pick') ? runPick(settings.pickSeconds, progress) : [];

  const backends = loadParts ? [await startBackend('b1'), await startBackend('b2')] : [];
  const contenders = await startContenders(loadParts ? selected : [], { dir, backendPorts: backends.map((backend) => backend.port) });
  const backendProcesses = backends.map((backend) => backend.child);
  const proxyRunning = has('proxies') ? contenders.filter((contender) => inProxies(contender.name)) : [];
  const proxyRuns = await runAll(planProxies(proxyRunning, settings), backendProcesses, progress);
  const concurrencyRunning = contenders.filter((contender) => inConcurrency(contender.name));
  const concurrencyRuns = await runAll(planConcurrency(concurrencyRunning, levels, settings), backendProcesses, progress);
  const workersRunning = contenders.filter((contender) => inWorkers(contender.name));
  const workersRuns = await runWorkers(planWorkers(workersRunning, settings), backendProcesses, progress);
  // The tcp part last, with processes of its own (started and stopped by it), after the HTTP contenders are stopped.
  if (has('tcp')) await stopAll();
  const tcp = has('tcp') ? await runTcp(settings, dir, progress) : undefined;
  const tcpSummary = tcp ? summarizeTcp(tcp) : [];

  const summary = summarize(proxyRunning.map((contender) => contender.name), proxyRuns);
  const concurrencySummary = summarizeConcurrency(concurrencyRunning.map((contender) => contender.name), levels, concurrencyRuns);
  const workersSummary = summarizeWorkers(workersContenders.filter((name) => workersRunning.some((contender) => contender.name === name)), workersRuns);
  if (has('proxies')) {
    print(`\n== proxies: ${settings.connections} connections, medians over ${settings.rounds} rounds\n\n${formatTables(summary)}\n`);
    print(
      'req/CPU-s = responses per CPU-second of the proxy process(es) alone. "vs X" = median over rounds of that number divided by X\'s in the same round ' +
        '(above 1: less CPU per request than X, below 1: more).',
    );
  }
  if (has('pick')) {
    print(`\n== pick: one pick among 3 to 3,000 backends, in this process (${settings.pickSeconds} s per cell)\n\n${formatPickTables(pick)}\n`);
    print(
      'ns per pick: on the same candidates array every time, with the load changes of a request around it (one begins on the backend picked, ' +
        'the oldest of 50 in flight ends; loadChanged for the algorithms that index by load). "3,000 vs 3": growth from 3 to 3,000 backends. ' +
        'First pick on a new array: one pick on a fresh copy, median over copies.',
    );
  }
  if (levels.length > 0) {
    const table = formatConcurrencyTable(concurrencySummary, levels);
    print(`\n== concurrency: proxy CPU per request by concurrent connections (${settings.concurrencyRounds} round(s))\n\n${table}\n`);
    print(`µs CPU/req = proxy CPU-s / responses x 1e6. "vs ${levels[0]} conns" = that divided by the same contender's at ${levels[0]} connections in the same round (above 1: more CPU per request).`);
  }
  if (workersRunning.length > 0) {
    const title = `== workers: the balancer with 1 and 2 traffic workers, ${settings.workersConnections} connections, medians over ${settings.workersRounds} rounds`;
    print(`\n${title}\n\n${formatWorkersTables(workersSummary, workersRuns)}\n`);
    print(
      'CPU-s and req/CPU-s count the primary and its workers; primary CPU-s is the primary alone. "vs balancer-w1-rr" = median over rounds of that number ' +
        'divided by the one-worker balancer\'s in the same round (req/s: the scaling; req/CPU-s: above 1, less CPU per request). Shares: each worker\'s part ' +
        'of the connections accepted and requests answered during the measured seconds, from GET /workers, workers in the order they started.',
    );
  }
  if (tcp) {
    const streams = tcp.streams.join(' and ');
    print(`\n== tcp: ${tcp.megabytes} MB per transfer, directly, through a bare Node relay and through the balancer's tcp listener, ${streams} streams, medians over ${tcp.rounds} rounds\n\n${formatTcpTables(tcpSummary)}\n`);
    print(
      'The client (this process) writes 64 KiB chunks to bench/tcp-sink.ts, which counts the bytes and answers with the count once the client has ended: ' +
        'MB/s = MB / seconds from the first connect to the last count (MB = 2^20 bytes). "vs direct", "vs node-pipe" = median over rounds of MB/s divided by ' +
        'that path\'s at the same streams in the same round. CPU-s/GB: user + system CPU per GB sent of the relay (node-pipe, or the balancer\'s primary and ' +
        'workers), the sink and the client. relay cores: the relay\'s CPU-seconds per second (about 1.00: one busy thread, the limit); machine busy: the whole ' +
        `machine's (/proc/stat: every other process and the kernel's softirq work included). Goal: through the balancer, ${TCP_GOAL.toFixed(2)}x of direct for one stream.`,
    );
  }
  if (tooMany.length > 0) print(tooManyMessage(tooMany, fileLimit));
  for (const { contender, reason } of skipped) print(`${contender}: ${reason}`);
  const marked = [...proxyRuns, ...concurrencyRuns, ...workersRuns, ...(tcp?.runs ?? [])].filter((run) => run.problems.length > 0);
  if (marked.length > 0) print(`${marked.length} run(s) MARKED: errors, non-2xx answers or (tcp) streams not counted in full, see the progress lines above`);

  writeReport({
    date: new Date(started).toISOString(),
    elapsedSeconds: (Date.now() - started) / 1000,
    machine: machine(),
    commit: gitCommit(),
    settings: { ...settings, skip: [...settings.skip] },
    contenders: Object.fromEntries(contenders.map((contender) => [contender.name, contender.version])),
    skipped,
    summary,
    runs: proxyRuns,
    pick: has('pick') ? { sizes: pickSizes, secondsPerCell: settings.pickSeconds, results: pick } : undefined,
    concurrency: has('concurrency') ? { levels, skippedLevels: tooMany, summary: concurrencySummary, runs: concurrencyRuns } : undefined,
    workers: has('workers') ? { connections: settings.workersConnections, rounds: settings.workersRounds, summary: workersSummary, runs: workersRuns } : undefined,
    tcp: tcp ? { ...tcp, summary: tcpSummary } : undefined,
  });
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
