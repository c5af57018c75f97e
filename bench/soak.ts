/**
 * npm run soak: the balancer under a long steady load, to see whether anything grows. For
 * SOAK_MINUTES (10) it carries SOAK_RATE (500) GET/s on keep-alive connections, plus a churn of
 * SOAK_CHURN (20) new connections/s that each send one request and close. Once a minute it
 * reloads its configuration (SIGHUP, the algorithm switched) and one backend is killed (SIGKILL)
 * and restarted 5 s later. Every 5 s it samples the balancer's processes (RSS and open fds from
 * /proc, the primary and its workers summed), heap and event-loop lag from its /metrics, and the
 * p99 of the requests sent in that window. It writes bench/results/soak-<time>.json and .svg.
 *
 * Goal: RSS and fds flat after warm-up (under 10% growth from minute 2 to the end), and 0 errors
 * outside the kill windows (from a kill to 1 s after the backend is back in rotation).
 */
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { startBackend, type RunningBackend } from '../test/helpers/backend.js';
import { getJson, httpRequest, sleep, waitFor } from '../test/helpers/http.js';
import { percentileOf, runLoad, type LoadRun, type LoadSample } from '../test/helpers/load.js';
import { childrenOf, freePort, repoRoot, startService } from '../test/helpers/processes.js';

function envNumber(name: string, fallback: number, min: number): number {
  const text = process.env[name];
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!Number.isFinite(value) || value < min) {
    process.stderr.write(`soak: ${name}=${JSON.stringify(text)}: expected a number of at least ${min}\n`);
    process.exit(2);
  }
  return value;
}

const MINUTES = envNumber('SOAK_MINUTES', 10, 1);
const RATE = envNumber('SOAK_RATE', 500, 1);
const CHURN = envNumber('SOAK_CHURN', 20, 0);
const SAMPLE_MS = 5_000;
const KILL_AT_S = 20; // into each minute
const RESTART_AFTER_MS = 5_000;
const RELOAD_AT_S = 40;
const HEALTH = { interval: '1s', timeout: '500ms', rise: 2, fall: 2 };
const BACKENDS = ['backend-1', 'backend-2', 'backend-3'] as const;

interface Sample {
  atS: number;
  rssMb: number;
  fds: number;
  heapMb: number | undefined;
  loopLagMs: number | undefined;
  requests: number;
  errors: number;
  p99Ms: number | undefined;
}

const started = performance.now();
const elapsedS = (): number => (performance.now() - started) / 1000;
const progress = (message: string): void => void process.stdout.write(`[${Math.round(elapsedS()).toString().padStart(4)}s] ${message}\n`);

/** The balancer's processes: the primary and every child of it. */
const processTree = (pid: number): number[] => [pid, ...childrenOf(pid)];

function rssBytes(pid: number): number {
  try {
    const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'));
    return line ? Number(line.split(/\s+/)[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

function openFds(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return 0;
  }
}

/** sumMetric adds every series of a metric in the exposition (the primary's and the workers'). */
function sumMetric(text: string, name: string): number | undefined {
  let sum: number | undefined;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name} `) && !line.startsWith(`${name}{`)) continue;
    sum = (sum ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

function configFor(ports: readonly number[], listen: number, admin: number, algorithm: string): string {
  return JSON.stringify({
    listen: { host: '127.0.0.1', port: listen },
    admin: { host: '127.0.0.1', port: admin },
    algorithm,
    workers: 1,
    healthCheck: HEALTH,
    retries: { attempts: 2 },
    timeouts: { connect: '300ms', perTry: '1s', request: '10s' },
    backends: BACKENDS.map((id, i) => ({ url: `http://127.0.0.1:${ports[i]}`, name: id })),
  });
}

/** chartSvg: one small panel per figure over the run's minutes, the kill windows shaded. */
function chartSvg(samples: readonly Sample[], windows: readonly [number, number][], minutes: number): string {
  const panels: [string, (s: Sample) => number | undefined][] = [
    ['RSS (MB, all balancer processes)', (s) => s.rssMb],
    ['open fds', (s) => s.fds],
    ['heap used (MB)', (s) => s.heapMb],
    ['event-loop lag (ms)', (s) => s.loopLagMs],
    ['p99 latency (ms, per 5 s)', (s) => s.p99Ms],
    ['errors (per 5 s)', (s) => s.errors],
  ];
  const width = 900;
  const panelHeight = 120;
  const left = 70;
  const plotWidth = width - left - 20;
  const totalS = minutes * 60;
  const x = (s: number): number => left + (s / totalS) * plotWidth;
  const parts: string[] = [];
  panels.forEach(([title, value], index) => {
    const top = 30 + index * (panelHeight + 30);
    const points = samples.map((s) => [s.atS, value(s)] as const).filter((p): p is readonly [number, number] => p[1] !== undefined);
    const max = (Math.max(0, ...points.map((p) => p[1])) || 1) * 1.1;
    const y = (v: number): number => top + panelHeight - (v / max) * panelHeight;
    for (const [from, to] of windows) parts.push(`<rect x="${x(from).toFixed(1)}" y="${top}" width="${(x(to) - x(from)).toFixed(1)}" height="${panelHeight}" fill="#f4d7d7"/>`);
    parts.push(`<rect x="${left}" y="${top}" width="${plotWidth}" height="${panelHeight}" fill="none" stroke="#999"/>`);
    parts.push(`<text x="${left}" y="${top - 6}" font-size="13">${title}</text>`);
    parts.push(`<text x="${left - 6}" y="${top + 10}" font-size="11" text-anchor="end">${Number(max.toPrecision(3))}</text>`, `<text x="${left - 6}" y="${top + panelHeight}" font-size="11" text-anchor="end">0</text>`);
    if (points.length > 1) parts.push(`<polyline fill="none" stroke="#2a6fdb" stroke-width="1.5" points="${points.map(([s, v]) => `${x(s).toFixed(1)},${y(v).toFixed(1)}`).join(' ')}"/>`);
  });
  const bottom = 30 + panels.length * (panelHeight + 30) - 10;
  for (let m = 0; m <= minutes; m++) parts.push(`<text x="${x(m * 60).toFixed(1)}" y="${bottom}" font-size="11" text-anchor="middle">${m}m</text>`);
  parts.push(`<text x="${width - 20}" y="18" font-size="11" text-anchor="end">shaded: from a backend kill to 1 s after it is back in rotation</text>`);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${bottom + 20}" font-family="sans-serif"><rect width="100%" height="100%" fill="white"/>${parts.join('')}</svg>\n`;
}

async function main(): Promise<void> {
  progress(`soak: ${MINUTES} min at ${RATE} GET/s with ${CHURN} new connections/s; a reload and a backend kill every minute`);
  const ports = await Promise.all(BACKENDS.map(() => freePort()));
  const backends = new Map<string, RunningBackend>();
  const startOne = async (i: number): Promise<void> => void backends.set(BACKENDS[i]!, await startBackend(BACKENDS[i]!, { PORT: String(ports[i]) }));
  await Promise.all(BACKENDS.map((_, i) => startOne(i)));
  const [listen, admin] = [await freePort(), await freePort()];
  const dir = path.join(repoRoot, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const configFile = path.join(dir, `.soak-config-${process.pid}.json`);
  let algorithm = 'round-robin';
  writeFileSync(configFile, configFor(ports, listen, admin, algorithm));
  const { service: balancer } = await startService('balancer', 'balancer/dist/main.js', { args: ['--config', configFile], ready: 'balancer' });
  const proxyUrl = `http://127.0.0.1:${listen}`;
  const adminUrl = `http://127.0.0.1:${admin}`;
  await waitFor('3 healthy backends', async () => (await getJson<{ state: string }[]>(`${adminUrl}/backends`)).every((b) => b.state === 'healthy'), 10_000, 100);

  const durationMs = MINUTES * 60_000;
  const loads: Promise<LoadRun>[] = [runLoad({ url: `${proxyUrl}/soak`, rate: RATE, durationMs, maxSockets: 200 })];
  if (CHURN > 0) loads.push(runLoad({ url: `${proxyUrl}/churn`, rate: CHURN, durationMs, headers: () => ({ connection: 'close' }) }));
  const windows: [number, number][] = [];
  const events: { atS: number; event: string }[] = [];
  const samples: Sample[] = [];

  const sampleNow = async (): Promise<void> => {
    const pids = processTree(balancer.child.pid!);
    const metrics = (await httpRequest(`${adminUrl}/metrics`, { timeoutMs: 3_000 }).catch(() => undefined))?.body ?? '';
    const heap = sumMetric(metrics, 'nodejs_heap_size_used_bytes');
    const lag = sumMetric(metrics, 'nodejs_eventloop_lag_p99_seconds');
    samples.push({
      atS: elapsedS(),
      rssMb: pids.reduce((sum, pid) => sum + rssBytes(pid), 0) / 1e6,
      fds: pids.reduce((sum, pid) => sum + openFds(pid), 0),
      heapMb: heap === undefined ? undefined : heap / 1e6,
      loopLagMs: lag === undefined ? undefined : (lag * 1000) / Math.max(1, pids.length),
      requests: 0,
      errors: 0,
      p99Ms: undefined,
    });
  };
  const sampler = setInterval(() => void sampleNow(), SAMPLE_MS);
  const loadStarted = elapsedS();

  for (let minute = 0; minute < MINUTES; minute++) {
    const base = loadStarted + minute * 60;
    await sleep(Math.max(0, (base + KILL_AT_S - elapsedS()) * 1000));
    const victim = BACKENDS[minute % BACKENDS.length]!;
    const killedAt = elapsedS();
    await backends.get(victim)!.service.stop('SIGKILL');
    events.push({ atS: killedAt, event: `SIGKILL ${victim}` });
    await sleep(RESTART_AFTER_MS);
    await startOne(BACKENDS.indexOf(victim));
    const back = await waitFor(`${victim} back in rotation`, async () => (await getJson<{ id: string; state: string }[]>(`${adminUrl}/backends`)).find((b) => b.id === victim)?.state === 'healthy', 15_000, 100).catch(() => undefined);
    windows.push([killedAt, elapsedS() + 1]);
    progress(`minute ${minute + 1}/${MINUTES}: ${victim} killed and restarted, back in rotation ${back ? `${((elapsedS() - killedAt) * 1000).toFixed(0)} ms after the kill` : 'NOT within 15 s'}; RSS ${samples.at(-1)?.rssMb.toFixed(1) ?? '?'} MB, fds ${samples.at(-1)?.fds ?? '?'}`);
    await sleep(Math.max(0, (base + RELOAD_AT_S - elapsedS()) * 1000));
    algorithm = algorithm === 'round-robin' ? 'least-connections' : 'round-robin';
    writeFileSync(configFile, configFor(ports, listen, admin, algorithm));
    balancer.child.kill('SIGHUP');
    events.push({ atS: elapsedS(), event: `reload: ${algorithm}` });
  }
  const runs = await Promise.all(loads);
  clearInterval(sampler);
  await sampleNow();

  // Requests by the sample window they were sent in, on the script's clock.
  const all: (LoadSample & { atS: number })[] = runs.flatMap((run) => run.samples.map((s) => ({ ...s, atS: loadStarted + s.at / 1000 })));
  const failed = (s: LoadSample): boolean => s.error !== undefined || s.status === 0 || s.status >= 500;
  for (const sample of samples) {
    const inWindow = all.filter((s) => s.atS > sample.atS - SAMPLE_MS / 1000 && s.atS <= sample.atS);
    sample.requests = inWindow.length;
    sample.errors = inWindow.filter(failed).length;
    sample.p99Ms = inWindow.length > 0 ? percentileOf(inWindow.map((s) => s.ms), 99) : undefined;
  }
  const inKillWindow = (atS: number): boolean => windows.some(([from, to]) => atS >= from && atS <= to);
  const errorsOutside = all.filter((s) => failed(s) && !inKillWindow(s.atS)).length;
  const errorsInside = all.filter((s) => failed(s) && inKillWindow(s.atS)).length;
  const at = (minute: number): Sample | undefined => samples.find((s) => s.atS >= loadStarted + minute * 60);
  const from = at(2) ?? samples[0]!;
  const to = samples.at(-1)!;
  const growth = (a: number, b: number): number => (b - a) / a;
  const summary = {
    minutes: MINUTES,
    rate: RATE,
    churn: CHURN,
    requests: all.length,
    errorsOutsideKillWindows: errorsOutside,
    errorsInsideKillWindows: errorsInside,
    minute2: { rssMb: from.rssMb, fds: from.fds, heapMb: from.heapMb, p99Ms: from.p99Ms },
    end: { rssMb: to.rssMb, fds: to.fds, heapMb: to.heapMb, p99Ms: to.p99Ms },
    rssGrowth: growth(from.rssMb, to.rssMb),
    fdGrowth: growth(from.fds, to.fds),
    goal: 'RSS and fds grow under 10% from minute 2 to the end; 0 errors outside the kill windows',
  };
  const met = summary.rssGrowth < 0.1 && summary.fdGrowth < 0.1 && errorsOutside === 0;
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const base = path.join(dir, `soak-${stamp}`);
  writeFileSync(`${base}.json`, `${JSON.stringify({ summary, events, windows, samples }, null, 2)}\n`);
  writeFileSync(`${base}.svg`, chartSvg(samples.map((s) => ({ ...s, atS: s.atS - loadStarted })), windows.map(([a, b]) => [a - loadStarted, b - loadStarted]), MINUTES));
  await balancer.stop('SIGTERM');
  await Promise.all([...backends.values()].map((b) => b.service.stop('SIGTERM')));
  const fmt = (value: number | undefined, digits = 1): string => (value === undefined ? '?' : value.toFixed(digits));
  process.stdout.write(
    [
      '',
      `| | minute 2 | minute ${MINUTES} | growth |`,
      '| --- | --- | --- | --- |',
      `| RSS (MB) | ${fmt(from.rssMb)} | ${fmt(to.rssMb)} | ${(summary.rssGrowth * 100).toFixed(1)}% |`,
      `| open fds | ${from.fds} | ${to.fds} | ${(summary.fdGrowth * 100).toFixed(1)}% |`,
      `| heap used (MB) | ${fmt(from.heapMb)} | ${fmt(to.heapMb)} | |`,
      `| p99 (ms, 5 s window) | ${fmt(from.p99Ms)} | ${fmt(to.p99Ms)} | |`,
      '',
      `${all.length} requests; errors outside the kill windows: ${errorsOutside}, inside: ${errorsInside}. Goal ${met ? 'met' : 'NOT met'}: ${summary.goal}.`,
      `Written: ${path.relative(repoRoot, `${base}.json`)} and ${path.relative(repoRoot, `${base}.svg`)}`,
      '',
    ].join('\n'),
  );
  rmSync(configFile, { force: true });
}

main().catch((error: unknown) => {
  process.stderr.write(`soak: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
