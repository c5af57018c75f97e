import { connect } from 'node:net';
import { performance } from 'node:perf_hooks';
import { fillTemplate, packageVersion, startNode, TSX_ENV, waitForHealthyBackends, writeFile, type BenchProcess } from './contenders.js';
import { cpuSeconds, machineCpuSeconds } from './cpu.js';
import { rotate } from './load.js';
import { fixed, integer, median, ratio, renderTable } from './report.js';
import type { Settings } from './settings.js';

/**
 * The tcp part: raw TCP throughput through the balancer's tcp listener against a direct
 * connection to the same backend and through a bare Node relay (bench/tcp-relay.ts, the reference
 * for what relaying in Node costs at all), measured side by side in every round. The backend is a sink
 * (bench/tcp-sink.ts, its own process): it counts what it reads and, once the client has ended
 * its side, answers with the count. The client (this process) writes 64 KiB chunks with
 * backpressure; a transfer is done when the sink's count arrives and matches. One stream sends
 * the whole amount on one connection; the many-streams shape splits the same amount over that
 * many connections opened at once, and its rate is the total over the time until the last count.
 */

/** MB here is 2^20 bytes and GB 2^30, for sizes and rates alike. */
const MB = 2 ** 20;
const GB = 2 ** 30;
/** What the client writes at a time: the size of one read of a Node socket, as the balancer reads. */
export const TCP_CHUNK_BYTES = 64 * 1024;
const chunk = Buffer.alloc(TCP_CHUNK_BYTES, 'relay me ');
/** The warm-up before each measured transfer, the same shape with this share of the bytes. */
const WARMUP_SHARE = 0.25;

/** Where a transfer goes: the sink itself, or a relay (the bare one, or a balancer with a tcp listener) in front of it. */
export interface TcpTarget {
  readonly name: string;
  /** traffic workers of the balancer; 0 for the direct connection */
  readonly workers: number;
  readonly port: number;
  /** the relay's process (a balancer's primary: its workers are its descendants); undefined for the direct connection */
  readonly pid: number | undefined;
  readonly version: string;
}

/** One measured transfer: one shape (streams) against one target. */
export interface TcpRunRecord {
  round: number;
  target: string;
  workers: number;
  streams: number;
  /** bytes sent in all, over every stream; every one was counted by the sink in a clean run */
  bytes: number;
  startedAt: string;
  /** from the first connect to the last count received */
  seconds: number;
  megabytesPerSecond: number;
  /** the slowest and the fastest stream's own seconds (equal with one stream) */
  streamSeconds: { min: number; max: number };
  /** user + system CPU during the transfer: the relay's processes (a balancer's primary and workers; null when direct), the sink, this process */
  relayCpuSeconds: number | null;
  sinkCpuSeconds: number;
  clientCpuSeconds: number;
  /** CPU time of the whole machine during the transfer (/proc/stat, every process and the kernel's softirq work) */
  machineBusyCpuSeconds: number;
  /** why this run does not count as clean: a stream that failed or was not counted in full; empty when clean */
  problems: string[];
}

const round3 = (value: number): number => Math.round(value * 1000) / 1000;

interface StreamResult {
  seconds: number;
  problem: string | undefined;
}

/** sendStream opens one connection, writes `bytes` with backpressure, ends its side and waits for the sink's count. */
function sendStream(port: number, bytes: number, timeoutMs: number): Promise<StreamResult> {
  return new Promise((resolve) => {
    const started = performance.now();
    const socket = connect({ host: '127.0.0.1', port, allowHalfOpen: true, noDelay: true });
    let remaining = bytes;
    let answer = '';
    let settled = false;
    const finish = (problem?: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      const counted = answer.trim();
      const short = counted === String(bytes) ? undefined : `the sink counted ${counted === '' ? 'nothing' : counted} of ${bytes} bytes`;
      resolve({ seconds: (performance.now() - started) / 1000, problem: problem ?? short });
    };
    const timer = setTimeout(() => finish(`no count within ${timeoutMs / 1000} s`), timeoutMs);
    const write = (): void => {
      while (remaining > 0) {
        const size = Math.min(chunk.length, remaining);
        remaining -= size;
        if (!socket.write(size === chunk.length ? chunk : chunk.subarray(0, size))) {
          socket.once('drain', write);
          return;
        }
      }
      socket.end();
    };
    socket.once('connect', write);
    socket.setEncoding('utf8');
    socket.on('data', (text: string) => (answer += text));
    socket.on('end', () => finish());
    socket.on('error', (error: NodeJS.ErrnoException) => finish(error.code ?? error.message));
    socket.on('close', () => finish('closed before the sink answered'));
  });
}

/** transfer sends `bytes` over `streams` connections at once (the first takes the remainder) and resolves when every count is in. */
async function transfer(port: number, bytes: number, streams: number): Promise<{ seconds: number; streams: StreamResult[] }> {
  const share = Math.floor(bytes / streams);
  const timeoutMs = Math.max(60_000, (bytes / MB) * 200);
  const started = performance.now();
  const results = await Promise.all(Array.from({ length: streams }, (_, index) => sendStream(port, index === 0 ? bytes - share * (streams - 1) : share, timeoutMs)));
  return { seconds: (performance.now() - started) / 1000, streams: results };
}

/** measureTcp makes one warm-up transfer and one measured transfer of the shape, reading CPU times around the measured one. */
async function measureTcp(target: TcpTarget, sink: BenchProcess, streams: number, bytes: number, round: number): Promise<TcpRunRecord> {
  await transfer(target.port, Math.max(streams, Math.round(bytes * WARMUP_SHARE)), streams);
  const relayCpu = (): number => (target.pid === undefined ? 0 : cpuSeconds(target.pid));
  const relayBefore = relayCpu();
  const sinkBefore = cpuSeconds(sink.pid);
  const machineBefore = machineCpuSeconds();
  const clientBefore = process.cpuUsage();
  const startedAt = new Date().toISOString();
  const result = await transfer(target.port, bytes, streams);
  const client = process.cpuUsage(clientBefore);
  const machine = machineCpuSeconds();
  const problems = result.streams.flatMap((stream, index) => (stream.problem ? [`stream ${index + 1}: ${stream.problem}`] : []));
  const failed = problems.length;
  if (failed > 3) problems.splice(3, problems.length, `${failed - 3} more streams failed`);
  const seconds = result.streams.map((stream) => stream.seconds);
  return {
    round,
    target: target.name,
    workers: target.workers,
    streams,
    bytes,
    startedAt,
    seconds: round3(result.seconds),
    megabytesPerSecond: failed > 0 ? Number.NaN : bytes / MB / result.seconds,
    streamSeconds: { min: round3(Math.min(...seconds)), max: round3(Math.max(...seconds)) },
    // Differences of tick counts: round away the floating-point noise (a tick is 10 ms at CLK_TCK 100).
    relayCpuSeconds: target.pid === undefined ? null : round3(relayCpu() - relayBefore),
    sinkCpuSeconds: round3(cpuSeconds(sink.pid) - sinkBefore),
    clientCpuSeconds: round3((client.user + client.system) / 1e6),
    machineBusyCpuSeconds: round3(machine.busy - machineBefore.busy),
    problems,
  };
}

/** startTcpSink starts bench/tcp-sink.ts in its own process. */
async function startTcpSink(): Promise<{ child: BenchProcess; port: number }> {
  const { child, fields } = await startNode('tcp-sink', 'bench/tcp-sink.ts', [], 'tcp-sink', TSX_ENV);
  return { child, port: Number(fields.port) };
}

/** startTcpRelay starts bench/tcp-relay.ts in front of the sink. */
async function startTcpRelay(sinkPort: number): Promise<{ child: BenchProcess; target: TcpTarget }> {
  const { child, fields } = await startNode('node-pipe', 'bench/tcp-relay.ts', ['--backend', String(sinkPort)], 'tcp-relay', TSX_ENV);
  const version = `bench/tcp-relay.ts: net.Server + net.connect, pipe() both ways, on Node ${process.version}`;
  return { child, target: { name: 'node-pipe', workers: 0, port: Number(fields.port), pid: child.pid, version } };
}

/** startTcpBalancer runs balancer/dist/main.js on bench/configs/balancer-tcp.yaml with `workers` traffic workers, in front of the sink. */
async function startTcpBalancer(dir: string, sinkPort: number, workers: number): Promise<{ child: BenchProcess; target: TcpTarget }> {
  const name = `balancer-w${workers}`;
  const text = fillTemplate('balancer-tcp.yaml', { backends: `  - { url: tcp://127.0.0.1:${sinkPort}, name: sink }`, workers: String(workers) });
  const file = writeFile({ dir, backendPorts: [sinkPort] }, `${name}-tcp.yaml`, text);
  const { child, fields } = await startNode(name, 'balancer/dist/main.js', ['--config', file], 'balancer', { LB_SCHEDULING: 'rr' });
  await waitForHealthyBackends(fields.admin!);
  const port = Number(new URL(fields.proxy!).port);
  const version = `balancer ${packageVersion('balancer')}, tcp listener, workers: ${workers}, LB_SCHEDULING=rr`;
  return { child, target: { name, workers, port, pid: child.pid, version } };
}

export interface TcpPart {
  megabytes: number;
  streams: number[];
  rounds: number;
  workers: number[];
  chunkBytes: number;
  warmupShare: number;
  /** GLIBC_TUNABLES as every process of the part inherited it (malloc's trimming changes the figures: see bench/README.md); null when unset */
  glibcTunables: string | null;
  /** what each target is, with versions */
  targets: Record<string, string>;
  runs: TcpRunRecord[];
}

/** tcpPlanSeconds guesses the part's length for the plan line, at a rate of about 500 MB/s. */
export function tcpPlanSeconds(settings: Settings): number {
  const transfers = settings.tcpRounds * 2 * (2 + settings.tcpWorkers.length);
  return 5 + (transfers * settings.tcpMegabytes * (1 + WARMUP_SHARE)) / 500;
}

/**
 * runTcp starts the sink, the bare relay and one balancer per workers setting, then, in every round, for one
 * stream and for the many-streams shape, loads every target once (starting one later than the
 * round before), and stops what it started.
 */
export async function runTcp(settings: Settings, dir: string, progress: (message: string) => void): Promise<TcpPart> {
  const bytes = Math.round(settings.tcpMegabytes * MB);
  const shapes = [...new Set([1, settings.tcpStreams])];
  const started: BenchProcess[] = [];
  try {
    const sink = await startTcpSink();
    started.push(sink.child);
    const targets: TcpTarget[] = [{ name: 'direct', workers: 0, port: sink.port, pid: undefined, version: `bench/tcp-sink.ts on Node ${process.version}, connected to directly` }];
    progress(`tcp: sink at tcp://127.0.0.1:${sink.port} (pid ${sink.child.pid})`);
    const starts = [() => startTcpRelay(sink.port), ...settings.tcpWorkers.map((workers) => () => startTcpBalancer(dir, sink.port, workers))];
    for (const start of starts) {
      const relay = await start();
      started.push(relay.child);
      targets.push(relay.target);
      progress(`${relay.target.name}: ${relay.target.version} at tcp://127.0.0.1:${relay.target.port} (pid ${relay.child.pid})`);
    }
    const runs: TcpRunRecord[] = [];
    for (let round = 1; round <= settings.tcpRounds; round++) {
      for (const streams of shapes) {
        for (const target of rotate(targets, round - 1)) {
          const run = await measureTcp(target, sink.child, streams, bytes, round);
          runs.push(run);
          progress(formatTcpRun(run, `tcp ${round}/${settings.tcpRounds}`));
        }
      }
    }
    return {
      megabytes: settings.tcpMegabytes,
      streams: shapes,
      rounds: settings.tcpRounds,
      workers: settings.tcpWorkers,
      chunkBytes: TCP_CHUNK_BYTES,
      warmupShare: WARMUP_SHARE,
      glibcTunables: process.env.GLIBC_TUNABLES ?? null,
      targets: Object.fromEntries(targets.map((target) => [target.name, target.version])),
      runs,
    };
  } finally {
    await Promise.all(started.map((child) => child.stop()));
  }
}

const perGB = (cpu: number, run: TcpRunRecord): number => cpu / (run.bytes / GB);

function formatTcpRun(run: TcpRunRecord, label: string): string {
  const streams = `${run.streams} stream${run.streams === 1 ? '' : 's'}`;
  return (
    `${label} ${run.target.padEnd(12)} ${streams.padStart(10)}  ${integer(run.megabytesPerSecond).padStart(6)} MB/s  ${fixed(run.seconds, 2)} s  ` +
    `CPU-s: relay ${run.relayCpuSeconds === null ? '-' : fixed(run.relayCpuSeconds, 2)}, sink ${fixed(run.sinkCpuSeconds, 2)}, ` +
    `client ${fixed(run.clientCpuSeconds, 2)}, machine ${fixed(run.machineBusyCpuSeconds, 2)}` +
    (run.problems.length > 0 ? `  MARKED: ${run.problems.join(', ')}` : '')
  );
}

/** The medians of one target at one shape over the rounds. */
export interface TcpSummary {
  target: string;
  workers: number;
  streams: number;
  runs: number;
  cleanRuns: number;
  megabytesPerSecond: number;
  seconds: number;
  /** median over rounds of MB/s divided by the direct connection's at the same shape in the same round */
  vsDirect: number | undefined;
  /** the same, divided by the bare Node relay's */
  vsNodePipe: number | undefined;
  /** CPU-seconds per GB sent: the relay's (NaN when direct), the sink's, the client's */
  relayCpuSecondsPerGB: number;
  sinkCpuSecondsPerGB: number;
  clientCpuSecondsPerGB: number;
  /** CPU-seconds per second: of the relay alone (about 1: its one busy thread is the limit), of the relay, the sink and the client together, and of the whole machine */
  relayCores: number;
  coresBusy: number;
  machineCoresBusy: number;
}

/** ratioTo: median over rounds of a clean run's MB/s divided by the base target's clean run at the same shape in the same round. */
function ratioTo(base: string, own: readonly TcpRunRecord[], runs: readonly TcpRunRecord[]): number | undefined {
  const ratios = own.flatMap((run) => {
    const other = runs.find((candidate) => candidate.target === base && candidate.streams === run.streams && candidate.round === run.round && candidate.problems.length === 0);
    return other ? [run.megabytesPerSecond / other.megabytesPerSecond] : [];
  });
  return ratios.length > 0 ? median(ratios) : undefined;
}

export function summarizeTcp(part: TcpPart): TcpSummary[] {
  const summaries: TcpSummary[] = [];
  for (const streams of part.streams) {
    for (const target of Object.keys(part.targets)) {
      const own = part.runs.filter((run) => run.target === target && run.streams === streams);
      if (own.length === 0) continue;
      const clean = own.filter((run) => run.problems.length === 0);
      summaries.push({
        target,
        workers: own[0]!.workers,
        streams,
        runs: own.length,
        cleanRuns: clean.length,
        megabytesPerSecond: median(clean.map((run) => run.megabytesPerSecond)),
        seconds: median(clean.map((run) => run.seconds)),
        vsDirect: ratioTo('direct', clean, part.runs),
        vsNodePipe: ratioTo('node-pipe', clean, part.runs),
        relayCpuSecondsPerGB: median(clean.flatMap((run) => (run.relayCpuSeconds === null ? [] : [perGB(run.relayCpuSeconds, run)]))),
        sinkCpuSecondsPerGB: median(clean.map((run) => perGB(run.sinkCpuSeconds, run))),
        clientCpuSecondsPerGB: median(clean.map((run) => perGB(run.clientCpuSeconds, run))),
        relayCores: median(clean.flatMap((run) => (run.relayCpuSeconds === null ? [] : [run.relayCpuSeconds / run.seconds]))),
        coresBusy: median(clean.map((run) => ((run.relayCpuSeconds ?? 0) + run.sinkCpuSeconds + run.clientCpuSeconds) / run.seconds)),
        machineCoresBusy: median(clean.map((run) => run.machineBusyCpuSeconds / run.seconds)),
      });
    }
  }
  return summaries;
}

/** The goal of issue 12: through the balancer, one stream at least this share of the direct connection's rate. */
export const TCP_GOAL = 0.8;

export function formatTcpTables(summaries: readonly TcpSummary[]): string {
  const table = renderTable(
    ['path', 'workers', 'streams', 'MB/s', 'vs direct', 'vs node-pipe', 's/run', 'relay CPU-s/GB', 'relay cores', 'sink CPU-s/GB', 'client CPU-s/GB', 'machine busy', 'clean runs'],
    summaries.map((summary) => [
      summary.target,
      summary.workers === 0 ? '-' : String(summary.workers),
      String(summary.streams),
      integer(summary.megabytesPerSecond),
      ratio(summary.vsDirect),
      summary.target === 'direct' ? '-' : ratio(summary.vsNodePipe),
      fixed(summary.seconds, 2),
      fixed(summary.relayCpuSecondsPerGB, 2),
      fixed(summary.relayCores, 2),
      fixed(summary.sinkCpuSecondsPerGB, 2),
      fixed(summary.clientCpuSecondsPerGB, 2),
      fixed(summary.machineCoresBusy, 2),
      `${summary.cleanRuns}/${summary.runs}${summary.cleanRuns < summary.runs ? ' MARKED' : ''}`,
    ]),
  );
  const goals = summaries
    .filter((summary) => summary.target.startsWith('balancer') && summary.streams === 1)
    .map((summary) => {
      const verdict = summary.vsDirect === undefined ? 'no clean pair of runs' : summary.vsDirect >= TCP_GOAL ? 'met' : 'NOT met';
      return `  ${summary.target}, 1 stream vs direct >= ${TCP_GOAL.toFixed(2)}x: ${ratio(summary.vsDirect)}: ${verdict}`;
    });
  return goals.length > 0 ? `${table}\n\ngoals:\n${goals.join('\n')}` : table;
}
