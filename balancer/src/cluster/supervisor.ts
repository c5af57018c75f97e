import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry } from 'prom-client';
import type { Balancer, ListenerHost } from '../balancer.js';
import type { ControlPlane } from '../control-plane.js';
import { AdminError } from '../errors.js';
import type { Snapshot } from '../snapshot.js';
import type { StatusWorker } from '../status-document.js';
import { log } from '@lab/common/log';
import { ClusterLoad } from './load.js';
import type { DrainMode, FromWorker, ListenerStart, MetricsJson, ToWorker, TryOutcome, WorkerReport } from './messages.js';
import { trafficPort } from '../listeners/ports.js';

/** A worker that has not said it listens by then has failed to start. */
const START_TIMEOUT_MS = 20_000;
/** How long a scrape waits for a worker's metrics before it uses the worker's last answer. */
const METRICS_TIMEOUT_MS = 1_000;
/** A replacement that dies before it listens is tried again after this, not in a tight loop. */
const RESTART_BACKOFF_MS = 1_000;
/** How many retired workers' metrics are kept apart before they are summed into one. */
const RETIRED_FOLD_AT = 16;
/** Beyond timeouts.shutdown, how long a draining worker may take to exit before it is killed. */
const EXIT_MARGIN_MS = 2_000;

/**
 * The workers' young generation, fixed: V8's semi-spaces (MB), the most it grows them to under load.
 * Left to V8 they grow and shrink with the allocation rate, and a worker's RSS moved with them by
 * 15-30 MB, in steps a minute or two apart, with the heap flat (npm run soak, sampling V8's heap
 * spaces). At its working size from the start, memory stays flat; the flags the balancer itself was
 * started with come after these, so an operator's own --max-semi-space-size wins.
 */
const SEMI_SPACE_MB = 16;
const workerExecArgv = (own: readonly string[]): string[] => [`--min-semi-space-size=${SEMI_SPACE_MB}`, `--max-semi-space-size=${SEMI_SPACE_MB}`, ...own];

/** A worker as GET /workers and the status page show it. */
export type WorkerView = StatusWorker;
type WorkerState = StatusWorker['state'];

type Purpose = 'initial' | 'upgrade' | 'replacement';

class WorkerProcess {
  readonly startedAt = new Date();
  state: WorkerState = 'starting';
  /** by listener, as of the worker's last report for it */
  readonly countsBy = new Map<string, WorkerReport['worker']>();
  /** the last metrics it sent; used when it does not answer a scrape in time, and kept when it dies */
  lastMetrics: MetricsJson = [];
  /** its counters are in the retired sums (it sent its final metrics, or it exited): scrapes leave it out */
  retired = false;
  sentStart = false;
  readonly ready: Promise<void>;
  resolveReady!: () => void;
  rejectReady!: (error: Error) => void;
  readonly pendingMetrics = new Map<number, (metrics: MetricsJson) => void>();
  /** answers awaited to listen and unlisten, by "listening:<name>" or "unlistened:<name>" */
  readonly pendingAnswers = new Map<string, (error?: string) => void>();

  constructor(
    readonly worker: Worker,
    readonly purpose: Purpose,
  ) {
    this.ready = new Promise((resolve, reject) => {
      this.resolveReady = resolve;
      this.rejectReady = reject;
    });
    this.ready.catch(() => undefined);
  }

  get pid(): number {
    return this.worker.process.pid ?? 0;
  }

  /** counts: over all its listeners */
  get counts(): WorkerReport['worker'] {
    const sum = { active: 0, total: 0, connections: 0, accepted: 0 };
    for (const counts of this.countsBy.values()) {
      sum.active += counts.active;
      sum.total += counts.total;
      sum.connections += counts.connections;
      sum.accepted += counts.accepted;
    }
    return sum;
  }

  send(message: ToWorker): void {
    if (this.worker.isConnected()) this.worker.send(message);
  }
}

/**
 * Supervisor is the primary's side of cluster mode. It forks the traffic workers and replaces any
 * that dies, sends them the configuration and every snapshot, feeds what they report into the
 * control plane (passive health, outlier detection, load, status page statistics), sums their
 * metrics for /metrics, and upgrades them without refusing a request: fresh workers first, then
 * the old ones drain.
 */
export class Supervisor implements ListenerHost {
  /** the load on each listener's backends, summed over the workers */
  private readonly loads = new Map<string, ClusterLoad>();
  private readonly workers = new Map<number, WorkerProcess>();
  private readonly snapshots = new Map<string, Snapshot>();
  /**
   * Counters and histograms of workers that have gone, so that the sums never go back. Changed
   * only synchronously, so that a scrape reads it and the live workers' answers as of one moment.
   */
  private retiredParts: MetricsJson[] = [];
  private folding = false;
  private upgrading = false;
  private stopping = false;
  private started = false;
  private metricsRequest = 0;
  private ports = new Map<string, number>();

  constructor(
    private readonly balancer: Balancer,
    private readonly count: number,
  ) {
    cluster.schedulingPolicy = cluster.SCHED_RR;
    cluster.setupPrimary({ execArgv: workerExecArgv(process.execArgv) });
  }

  /** load: the load on one listener's backends, summed over the workers. */
  load(listener: string): ClusterLoad {
    let load = this.loads.get(listener);
    if (!load) {
      const created = (load = new ClusterLoad());
      this.loads.set(listener, created);
      this.balancer.listener(listener).pool.onEvent((event) => {
        if (event.type === 'removed') created.forget(event.backend.id);
      });
    }
    return load;
  }

  /** open: every worker serves a listener that a reload added; resolves once each of them listens. */
  async open(plane: ControlPlane): Promise<void> {
    plane.boundPort = await trafficPort(plane.config.listen.host, plane.config.listen.port);
    this.ports.set(plane.name, plane.boundPort);
    const listener = this.listenerStart(plane);
    const workers = [...this.workers.values()].filter((proc) => proc.sentStart && proc.state !== 'draining');
    await Promise.all(workers.map((proc) => this.ask(proc, `listening:${plane.name}`, { type: 'listen', listener }, START_TIMEOUT_MS)));
  }

  /** close: every worker stops accepting on a listener that a reload removed and drains it (tcp: timeouts.drain, http: timeouts.shutdown). */
  async close(plane: ControlPlane): Promise<void> {
    const graceMs = plane.config.mode === 'tcp' ? plane.config.timeouts.drain : plane.config.timeouts.shutdown;
    const workers = [...this.workers.values()].filter((proc) => proc.sentStart);
    await Promise.all(workers.map((proc) => this.ask(proc, `unlistened:${plane.name}`, { type: 'unlisten', listener: plane.name, graceMs }, graceMs + EXIT_MARGIN_MS).catch(() => undefined)));
    this.snapshots.delete(plane.name);
    this.ports.delete(plane.name);
    this.loads.delete(plane.name);
  }

  /** ask sends a message and resolves with the worker's answer; rejects on an error answer, its exit, or the timeout. */
  private ask(proc: WorkerProcess, answer: string, message: ToWorker, timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => settle(`worker ${proc.pid} did not answer within ${timeoutMs} ms`), timeoutMs);
      const settle = (error?: string): void => {
        clearTimeout(timer);
        proc.pendingAnswers.delete(answer);
        if (error === undefined) resolve();
        else reject(new Error(error));
      };
      proc.pendingAnswers.set(answer, settle);
      proc.send(message);
    });
  }

  private listenerStart(plane: ControlPlane): ListenerStart {
    return { config: plane.config, labelled: this.balancer.config.listenersKey, port: this.ports.get(plane.name)!, snapshot: this.snapshots.get(plane.name)! };
  }

  /** publish sends a listener's snapshot to every worker (and to the ones that start later). */
  publish(listener: string, snapshot: Snapshot): void {
    this.snapshots.set(listener, snapshot);
    for (const proc of this.workers.values()) if (proc.sentStart) proc.send({ type: 'snapshot', listener, snapshot });
  }

  /** start forks the workers on these ports (by listener) and resolves once every one of them listens. */
  async start(ports: Map<string, number>): Promise<void> {
    this.ports = ports;
    const procs = Array.from({ length: this.count }, () => this.fork('initial'));
    await Promise.all(procs.map((proc) => proc.ready));
    this.started = true;
    this.updateGauge();
  }

  views(): WorkerView[] {
    return [...this.workers.values()]
      .sort((a, b) => a.startedAt.getTime() - b.startedAt.getTime())
      .map((proc) => ({
        pid: proc.pid,
        startedAt: proc.startedAt.toISOString(),
        state: proc.state,
        activeRequests: proc.counts.active,
        totalRequests: proc.counts.total,
        connections: proc.counts.connections,
        acceptedConnections: proc.counts.accepted,
      }));
  }

  /**
   * upgrade starts a fresh set of workers (their code read from disk again), and once every one
   * listens, drains the ones that served until now. If a fresh one fails, the old ones go on.
   */
  async upgrade(origin: string): Promise<WorkerView[]> {
    if (this.stopping) throw new AdminError('ADMIN_ERR_CONFLICT', 'the balancer is shutting down');
    if (!this.started) throw new AdminError('ADMIN_ERR_CONFLICT', 'the balancer is still starting; try again once it listens');
    if (this.upgrading) throw new AdminError('ADMIN_ERR_CONFLICT', 'an upgrade is already in progress; try again when it has finished');
    this.upgrading = true;
    try {
      const old = [...this.workers.values()].filter((proc) => proc.state !== 'draining');
      log.info(`${origin}: upgrading the workers`, { old: old.map((proc) => proc.pid).join(','), fresh: this.count });
      const fresh = Array.from({ length: this.count }, () => this.fork('upgrade'));
      try {
        await Promise.all(fresh.map((proc) => proc.ready));
      } catch (error) {
        // Those that did start leave as drained workers do, not as deaths to be replaced.
        for (const proc of fresh) this.drain(proc, 'stop', 0);
        this.balancer.event('workers', `upgrade (${origin}) failed: ${(error as Error).message}; the running workers keep serving`);
        throw new AdminError('ADMIN_ERR_UPGRADE_FAILED', `the new workers did not start (${(error as Error).message}); the running ones keep serving`);
      }
      for (const proc of old) this.drain(proc, 'upgrade');
      this.updateGauge();
      const pids = (procs: WorkerProcess[]): string => procs.map((proc) => proc.pid).join(', ');
      this.balancer.event('workers', `upgrade (${origin}): workers ${pids(fresh)} serve; ${pids(old)} drain`);
      log.info(`${origin}: fresh workers serve; the old ones drain`, { fresh: fresh.map((proc) => proc.pid).join(','), draining: old.map((proc) => proc.pid).join(',') });
      return this.views();
    } finally {
      this.upgrading = false;
    }
  }

  /** stop drains every worker (idle connections closed at once) and resolves when all have exited. */
  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    const exits = [...this.workers.values()].map((proc) => new Promise<void>((resolve) => (proc.worker.isDead() ? resolve() : proc.worker.once('exit', () => resolve()))));
    for (const proc of this.workers.values()) this.drain(proc, 'stop', graceMs);
    await Promise.all(exits);
  }

  /** metricsText: the primary's own metrics and the workers', summed (counters, histograms) or combined as each metric says. */
  async metricsText(): Promise<string> {
    const live = [...this.workers.values()].filter((proc) => !proc.retired && proc.sentStart);
    const own = (await Promise.all([this.balancer.metrics.registry, ...this.balancer.listeners().map((plane) => plane.metrics.registry)].map((registry) => registry.getMetricsAsJSON()))).flat();
    const answers = await Promise.all(live.map(async (proc) => ({ proc, metrics: await this.askMetrics(proc) })));
    // A worker that retired while the scrape waited is in retiredParts now: counted there, not twice.
    const current = answers.filter(({ proc }) => !proc.retired).map(({ metrics }) => metrics);
    return AggregatorRegistry.aggregate([own, ...this.retiredParts, ...current]).metrics();
  }

  /** inFlight: requests in flight over every worker, as of their last reports. */
  inFlight(): number {
    let sum = 0;
    for (const proc of this.workers.values()) sum += proc.counts.active;
    return sum;
  }

  get contentType(): string {
    return this.balancer.metrics.registry.contentType;
  }

  private fork(purpose: Purpose): WorkerProcess {
    const proc = new WorkerProcess(cluster.fork(), purpose);
    this.workers.set(proc.worker.id, proc);
    const timer = setTimeout(() => proc.rejectReady(new Error(`worker ${proc.pid} did not listen within ${START_TIMEOUT_MS / 1000} s`)), START_TIMEOUT_MS);
    void proc.ready.then(
      () => clearTimeout(timer),
      () => clearTimeout(timer),
    );
    proc.worker.on('message', (message: FromWorker) => this.onMessage(proc, message));
    proc.worker.on('exit', (code, signal) => this.onExit(proc, code, signal));
    return proc;
  }

  private onMessage(proc: WorkerProcess, message: FromWorker): void {
    switch (message.type) {
      case 'waiting': {
        // Those that have a port: one that a reload is adding gets its own listen message once it has.
        const listeners = this.balancer.listeners().filter((plane) => this.ports.has(plane.name)).map((plane) => this.listenerStart(plane));
        proc.send({ type: 'start', listeners, graceMs: this.graceMs() });
        proc.sentStart = true;
        break;
      }
      case 'report':
        this.applyReport(proc, message);
        break;
      case 'listening':
        proc.pendingAnswers.get(`listening:${message.listener}`)?.(message.error);
        break;
      case 'unlistened':
        proc.countsBy.delete(message.listener);
        proc.pendingAnswers.get(`unlistened:${message.listener}`)?.();
        break;
      case 'ready':
        if (proc.state === 'starting') proc.state = 'serving';
        proc.resolveReady();
        this.updateGauge();
        break;
      case 'closing':
        proc.send({ type: 'closed' });
        break;
      case 'metrics':
        proc.lastMetrics = message.metrics;
        proc.pendingMetrics.get(message.id)?.(message.metrics);
        proc.pendingMetrics.delete(message.id);
        break;
      case 'final':
        proc.lastMetrics = message.metrics;
        this.retire(proc);
        if (message.abandoned > 0) log.warn(`worker ${proc.pid}: ${message.abandoned} requests still in flight at the end of the grace period were cut off`);
        break;
    }
  }

  /** applyReport passes a worker's batch on: tries to passive health and outlier detection, requests to the statistics, load to ClusterLoad. */
  private applyReport(proc: WorkerProcess, report: WorkerReport & { listener: string }): void {
    proc.countsBy.set(report.listener, report.worker);
    const load = this.loads.get(report.listener);
    if (!load) return;
    load.update(proc.worker.id, report);
    const control = this.balancer.listener(report.listener);
    for (const [id, backend] of Object.entries(report.backends)) {
      if (backend.tries) replayTries(control, id, backend.tries);
      const requests = backend.requests;
      if (requests) for (let i = 0; i < requests.length; i += 2) control.stats.record(id, requests[i]!, requests[i + 1]! / 1000);
      if (backend.drained && (load.view(id)?.activeRequests ?? 0) === 0) control.drained(id);
    }
  }

  /** graceMs: how long stopping may wait for requests in flight: the longest timeouts.shutdown of the listeners. */
  private graceMs(): number {
    return Math.max(...this.balancer.listeners().map((plane) => plane.config.timeouts.shutdown));
  }

  private drain(proc: WorkerProcess, mode: DrainMode, graceMs = this.graceMs()): void {
    if (proc.state === 'draining') return;
    proc.state = 'draining';
    // One that has not been given its start yet has nothing to drain.
    if (!proc.sentStart) proc.worker.process.kill('SIGKILL');
    else proc.send({ type: 'drain', mode, graceMs });
    const timer = setTimeout(() => {
      if (proc.worker.isDead()) return;
      log.warn(`worker ${proc.pid} did not exit ${EXIT_MARGIN_MS} ms after its grace period; killing it`);
      proc.worker.process.kill('SIGKILL');
    }, graceMs + EXIT_MARGIN_MS);
    timer.unref();
  }

  private onExit(proc: WorkerProcess, code: number | null, signal: string | null): void {
    this.workers.delete(proc.worker.id);
    for (const load of this.loads.values()) load.workerGone(proc.worker.id);
    for (const resolve of proc.pendingMetrics.values()) resolve(proc.lastMetrics);
    for (const settle of proc.pendingAnswers.values()) settle(`worker ${proc.pid} exited`);
    this.retire(proc);
    const how = signal ? `signal ${signal}` : `exit code ${code}`;
    const wasReady = proc.state !== 'starting';
    proc.rejectReady(new Error(`worker ${proc.pid} exited (${how}) before it listened`));
    this.updateGauge();
    if (proc.state === 'draining') {
      log.info(`worker ${proc.pid} drained and exited`);
      return;
    }
    if (this.stopping || !this.started || proc.purpose === 'upgrade' && !wasReady) return;
    this.balancer.metrics.workerRestarts.inc();
    log.warn(`worker ${proc.pid} died (${how}) with ${proc.counts.active} requests in flight; starting another`, { inFlight: proc.counts.active });
    this.balancer.event('workers', `worker ${proc.pid} died (${how}) with ${proc.counts.active} requests in flight; replaced`);
    const replace = (): void => {
      if (this.stopping) return;
      const next = this.fork('replacement');
      next.ready.catch((error: unknown) => log.error(`replacement worker failed: ${(error as Error).message}`));
    };
    if (wasReady) replace();
    else setTimeout(replace, RESTART_BACKOFF_MS).unref();
  }

  private askMetrics(proc: WorkerProcess): Promise<MetricsJson> {
    const id = ++this.metricsRequest;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        proc.pendingMetrics.delete(id);
        resolve(proc.lastMetrics);
      }, METRICS_TIMEOUT_MS);
      proc.pendingMetrics.set(id, (metrics) => {
        clearTimeout(timer);
        resolve(metrics);
      });
      proc.send({ type: 'metrics', id });
    });
  }

  /** retire adds a worker's last counters and histograms to the retired sums, once (its gauges no longer mean anything). */
  private retire(proc: WorkerProcess): void {
    if (proc.retired) return;
    proc.retired = true;
    // prom-client's types declare `type` as a numeric enum; at run time it is the name ("counter").
    const lasting = proc.lastMetrics.filter((metric) => ['counter', 'histogram'].includes(metric.type as unknown as string));
    if (lasting.length > 0) this.retiredParts.push(lasting);
    if (this.retiredParts.length >= RETIRED_FOLD_AT && !this.folding) void this.foldRetired();
  }

  /** foldRetired sums the retired parts into one, so that a long run of upgrades does not grow every scrape. */
  private async foldRetired(): Promise<void> {
    this.folding = true;
    const parts = this.retiredParts;
    try {
      const folded = await AggregatorRegistry.aggregate(parts).getMetricsAsJSON();
      // Parts retired meanwhile were pushed after these.
      this.retiredParts = [folded, ...this.retiredParts.slice(parts.length)];
    } finally {
      this.folding = false;
    }
  }

  private updateGauge(): void {
    let serving = 0;
    for (const proc of this.workers.values()) if (proc.state === 'serving') serving++;
    this.balancer.metrics.workers.set(serving);
  }
}

/** replayTries hands a worker's try outcomes to the control plane in the order the worker saw them. */
function replayTries(control: ControlPlane, id: string, tries: readonly TryOutcome[]): void {
  for (const outcome of tries) {
    if (typeof outcome !== 'number') control.tryFailed(id, outcome[0], outcome[1]);
    else if (outcome >= 500) control.tryAnswered(id, outcome);
    else for (let n = outcome; n < 0; n++) control.tryAnswered(id, 200);
  }
}
