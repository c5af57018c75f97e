import { isDeepStrictEqual } from 'node:util';
import { backendId, ConfigError, deepFreeze, validateAlgorithmChoice, validateBackend, validateBackendPatch, type Config, type ConfigProblem, type ListenerConfig, DEFAULT_LISTENER } from './config.js';
import type { AlgorithmName } from './algorithms/index.js';
import { Pool, type BackendState, type BackendStatus, type PoolSettings } from './backends/pool.js';
import { RiseFall } from './backends/rise-fall.js';
import { OutlierDetector } from './backends/outlier.js';
import type { LoadView } from './backends/view.js';
import { ControlMetrics, listenerRegistry } from './metrics.js';
import type { Registry } from 'prom-client';
import { ActiveHealthChecker, type ActiveCheckSettings } from './health/active.js';
import { AdminError, type Problem } from './errors.js';
import { DnsDiscovery } from './discovery/dns.js';
import { TrafficStats } from './stats.js';
import type { DataPlaneReporter } from './data-plane.js';
import type { FailureKind } from './pipeline/error-mapping.js';
import type { Snapshot } from './snapshot.js';
import { readTlsMaterial, type TlsMaterial } from './tls-material.js';
import { log } from '@lab/common/log';
import { hostPort } from '@lab/common/host-port';

export const VERSION = '0.1.0';

function poolSettings(config: ListenerConfig): PoolSettings {
  return { healthChecked: config.healthCheck.enabled, panicThreshold: config.panicThreshold, slowStart: config.slowStart };
}

export function toProblems(problems: readonly ConfigProblem[]): Problem[] {
  return problems.map((p) => ({ path: p.path, message: p.message, ...(p.position ? { line: p.position.line, column: p.position.column } : {}) }));
}

/** A backend as the admin API shows it. */
export interface BackendView {
  id: string;
  url: string;
  weight: number;
  state: BackendState;
  activeRequests: number;
  totalRequests: number;
}

/** Where the control plane reads the load on a backend: the sum over the workers' reports (cluster/load.ts). */
export type LoadSource = (id: string) => LoadView | undefined;

/**
 * ControlPlane owns one listener's running configuration and every decision about its backends:
 * membership, active health checks and rise/fall, outlier detection, DNS discovery, reloads and
 * admin operations. After every change it publishes a new Snapshot, the only thing the data planes
 * (in the workers) read; what they report back arrives through DataPlaneReporter. The Balancer
 * (balancer.ts) owns the listeners and the whole configuration.
 */
export class ControlPlane implements DataPlaneReporter {
  readonly pool: Pool;
  readonly metrics: ControlMetrics;
  /** Rolling per-second traffic and recent events, for the status page. */
  readonly stats = new TrafficStats();
  private readonly riseFall: RiseFall;
  private readonly outlier: OutlierDetector;
  private readonly health: ActiveHealthChecker;
  private current: ListenerConfig;
  private tls: TlsMaterial;
  private discovery: DnsDiscovery | undefined;
  private load: LoadSource = () => undefined;
  private subscriber: ((snapshot: Snapshot) => void) | undefined;
  private version = 0;
  private publishing = false;
  /** The port the listener actually got (it differs from the config when it says port 0). */
  boundPort = -1;

  /** A whole Config stands for its first listener. */
  constructor(given: ListenerConfig | Config, registry: Registry = listenerRegistry(DEFAULT_LISTENER, false)) {
    const config = 'listeners' in given ? given.listeners[0]! : given;
    this.current = config;
    this.tls = readTlsMaterial(config);
    this.pool = new Pool(poolSettings(config));
    this.riseFall = new RiseFall(this.pool, config.healthCheck);
    this.outlier = new OutlierDetector(this.pool, config.outlierDetection, (id, forMs, why) => {
      this.metrics.ejections.inc({ backend: id });
      this.stats.event('ejection', `${id} ejected for ${forMs} ms: ${why}`, id);
    });
    this.metrics = new ControlMetrics(registry, () => this.backendGauges());
    this.setInfo();
    this.health = new ActiveHealthChecker(this.checkSettings(config), (id, passed, detail) => {
      this.metrics.healthChecks.inc({ backend: id, result: passed ? 'pass' : 'fail' });
      this.riseFall.check(id, passed, detail);
    });
    this.pool.onEvent((event) => {
      if (event.type === 'changed') {
        this.publish();
      } else if (event.type === 'state') {
        this.metrics.stateChanges.inc({ backend: event.id, to: event.to });
        this.stats.event('state', `${event.id}: ${event.from} → ${event.to} (${event.why})`, event.id);
      } else if (event.type === 'added') {
        this.stats.event('backend', `${event.backend.id} added (${event.backend.source})`, event.backend.id);
        if (this.current.healthCheck.enabled) void this.health.watch(event.backend);
      } else if (event.type === 'removed') {
        this.health.unwatch(event.backend.id);
        this.riseFall.forget(event.backend.id);
        this.outlier.forget(event.backend.id);
        this.stats.event('backend', `${event.backend.id} removed`, event.backend.id);
        this.stats.forget(event.backend.id);
      } else {
        this.stats.event('state', event.active ? `panic mode: ${event.available} of ${event.total} available, balancing over all` : 'panic mode over');
      }
    });
  }

  private checkSettings(config: ListenerConfig): ActiveCheckSettings {
    return { ...config.healthCheck, tls: this.tls.upstream };
  }

  get config(): ListenerConfig {
    return this.current;
  }

  get name(): string {
    return this.current.name;
  }

  /** connect wires the data plane: where load is read, and who gets every snapshot (at once, then on every change). */
  connect(load: LoadSource, subscriber: (snapshot: Snapshot) => void): void {
    this.load = load;
    this.subscriber = subscriber;
    this.publish();
  }

  /** start adds the configured backends and waits for the first round of health checks. */
  async start(): Promise<void> {
    for (const backend of this.current.backends) this.pool.add(backend, 'config');
    const dns = this.current.discovery?.dns;
    if (dns) {
      this.discovery = new DnsDiscovery(dns, (addresses) => this.syncDiscovered(addresses, dns.port));
      await this.discovery.start();
    }
    if (this.current.healthCheck.enabled) await this.health.firstResults();
    this.pool.markStarted();
  }

  /** publish builds the snapshot of the state now and hands it to the data plane. */
  private publish(): void {
    if (this.publishing) return;
    this.publishing = true;
    let snapshot: Snapshot;
    try {
      const config = this.current;
      const hashKey = config.hash.key;
      snapshot = deepFreeze({
        version: ++this.version,
        algorithm: config.algorithm,
        virtualNodes: config.hash.virtualNodes,
        hashHeader: hashKey.startsWith('header:') ? hashKey.slice('header:'.length).toLowerCase() : undefined,
        engine: config.engine,
        timeouts: {
          connect: config.timeouts.connect,
          perTry: config.timeouts.perTry,
          request: config.timeouts.request,
          idle: config.timeouts.idle,
          drain: config.timeouts.drain,
          clientHeader: config.timeouts.clientHeader,
          clientIdle: config.timeouts.clientIdle,
        },
        limits: config.limits,
        proxyProtocol: config.proxyProtocol,
        tls: this.tls,
        retryAttempts: config.retries.attempts,
        backends: this.pool.entries(),
      });
      this.subscriber?.(snapshot);
    } finally {
      this.publishing = false;
    }
    // A backend being removed with nothing in flight leaves at once (which publishes again).
    for (const entry of snapshot.backends) if (entry.removing && (this.load(entry.id)?.activeRequests ?? 0) === 0) this.drained(entry.id);
  }

  tryAnswered(id: string, status: number): void {
    if (status < 500) this.outlier.success(id);
    else this.outlier.failure(id, `HTTP ${status}`);
  }

  tryFailed(id: string, kind: FailureKind, detail: string): void {
    if (this.current.healthCheck.enabled && (kind === 'connect' || kind === 'tls' || kind === 'timeout')) this.riseFall.passiveFailure(id, detail);
    this.outlier.failure(id, detail);
  }

  drained(id: string): void {
    this.pool.finishRemoval(id, this.load(id)?.totalRequests ?? 0);
  }

  backendView(backend: BackendStatus): BackendView {
    const load = this.load(backend.id);
    return {
      id: backend.id,
      url: backend.url,
      weight: backend.weight,
      state: backend.state,
      activeRequests: load?.activeRequests ?? 0,
      totalRequests: load?.totalRequests ?? 0,
    };
  }

  backendViews(): BackendView[] {
    return this.pool.all().map((backend) => this.backendView(backend));
  }

  private backendGauges(): { id: string; up: boolean; activeRequests: number }[] {
    return this.pool.all().map((backend) => ({ id: backend.id, up: backend.up, activeRequests: this.load(backend.id)?.activeRequests ?? 0 }));
  }

  private setInfo(): void {
    this.metrics.setInfo({ algorithm: this.current.algorithm, engine: this.current.engine, version: VERSION });
  }

  /** syncDiscovered makes the DNS-found backends match the addresses: new ones are added (checked before traffic), vanished ones drain. */
  private syncDiscovered(addresses: readonly string[], port: number): void {
    const wanted = new Set(addresses.map((address) => hostPort(address, port)));
    for (const backend of this.pool.all()) {
      if (backend.source !== 'dns') continue;
      if (!wanted.has(backend.id)) this.pool.remove(backend.id, 'its address left DNS');
      else if (backend.removing) this.pool.restore(backend.id, 'its address is back in DNS');
    }
    for (const id of wanted) {
      const existing = this.pool.get(id);
      if (!existing) this.pool.add({ url: `${this.current.mode === 'tcp' ? 'tcp' : 'http'}://${id}`, weight: 1 }, 'dns');
      else if (existing.source !== 'dns') log.info(`dns discovery: ${id} is already a configured backend; not added twice`);
    }
  }

  /** effectiveConfig is the listener's configuration in force, with admin API changes: PUT it back and nothing changes. */
  effectiveConfig(): ListenerConfig {
    const backends = this.pool
      .all()
      .filter((backend) => backend.source !== 'dns' && !backend.removing)
      .map((backend) => backend.toConfig());
    return { ...this.current, backends };
  }

  /**
   * reload applies a validated configuration as a diff: unchanged backends keep their state,
   * counters and connections; removed ones drain; added ones are health-checked before they
   * take traffic. The Balancer has checked reloadProblems() of every listener first.
   */
  reload(next: ListenerConfig, origin: string): string[] {
    const changes: string[] = [];
    const previous = this.current;
    this.current = next;
    // The same files, read again: new certificates reach the workers in this reload's snapshot.
    const tls = readTlsMaterial(next);
    if (tls.server && tls.server.cert !== this.tls.server?.cert) changes.push('new TLS certificate');
    this.tls = tls;
    const nextIds = new Map(next.backends.map((backend) => [backendId(backend), backend]));
    for (const backend of this.pool.all()) {
      if (backend.source === 'dns') continue;
      const wanted = nextIds.get(backend.id);
      if (wanted && backend.removing) {
        this.pool.restore(backend.id, `listed again by ${origin}`);
        changes.push(`kept ${backend.id}`);
      }
      if (!wanted) {
        this.pool.remove(backend.id, `removed by ${origin}`);
        changes.push(`removed ${backend.id}`);
      } else if (wanted.weight !== backend.weight) {
        changes.push(`${backend.id} weight ${backend.weight} → ${wanted.weight}`);
        this.pool.setWeight(backend.id, wanted.weight);
      }
    }
    this.riseFall.configure(next.healthCheck);
    this.outlier.configure(next.outlierDetection);
    this.health.configure(this.checkSettings(next));
    for (const [id, backend] of nextIds) {
      if (this.pool.get(id)) continue;
      this.pool.add(backend, 'config');
      changes.push(`added ${id}`);
    }
    if (next.algorithm !== previous.algorithm || !isDeepStrictEqual(next.hash, previous.hash)) {
      changes.push(`algorithm ${previous.algorithm} → ${next.algorithm}`);
      this.setInfo();
    }
    // Timeouts, retries, the algorithm and pool settings reach the data plane in this snapshot.
    this.pool.configure(poolSettings(next));
    this.stats.event('reload', `configuration reloaded (${origin}): ${changes.length > 0 ? changes.join('; ') : 'no changes'}`);
    log.info(`configuration reloaded (${origin})`, { changes: changes.length > 0 ? changes.join('; ') : 'none' });
    return changes;
  }

  /** reloadProblems: what in the next configuration of this listener cannot change while it runs; each path starts with `at` (e.g. "listeners[1]."). */
  reloadProblems(next: ListenerConfig, at: string): Problem[] {
    const problems: Problem[] = [];
    const now = this.current;
    const samePort = next.listen.port === now.listen.port || next.listen.port === this.boundPort;
    if (next.listen.host !== now.listen.host || !samePort) {
      problems.push({ path: `${at}listen`, message: `cannot change while running (${now.listen.host}:${now.listen.port}); restart the balancer to apply` });
    }
    if (next.mode !== now.mode) problems.push({ path: `${at}mode`, message: `cannot change while running (${now.mode}); restart the balancer to apply` });
    if (!isDeepStrictEqual(next.tls, now.tls)) {
      problems.push({ path: `${at}tls`, message: `the TLS files cannot change while running (${now.tls ? `${now.tls.cert}, ${now.tls.key}` : 'none'}); put new certificates in the same files and reload, or restart the balancer` });
    }
    if (!isDeepStrictEqual(next.upstreamTls, now.upstreamTls)) {
      problems.push({ path: `${at}upstreamTls`, message: 'cannot change while running; restart the balancer to apply' });
    }
    if (next.engine !== now.engine) {
      problems.push({ path: `${at}engine`, message: `cannot change while running (${now.engine}); restart the balancer to apply` });
    }
    if (next.healthCheck.enabled !== now.healthCheck.enabled) {
      problems.push({ path: `${at}healthCheck.enabled`, message: 'cannot change while running; restart the balancer to apply' });
    }
    if (!isDeepStrictEqual(next.discovery, now.discovery)) {
      problems.push({ path: 'discovery', message: 'cannot change while running; restart the balancer to apply' });
    }
    next.backends.forEach((backend, index) => {
      const running = this.pool.get(backendId(backend));
      if (running && !running.removing && running.source !== 'dns' && running.url !== backend.url) {
        problems.push({ path: `${at}backends[${index}].url`, message: `backend "${running.id}" runs at ${running.url}; give the new URL another name (a backend's URL cannot change under the same id)` });
      }
      if (running?.source === 'dns') problems.push({ path: `${at}backends[${index}]`, message: `backend "${running.id}" was found by DNS discovery; name this one differently` });
    });
    return problems;
  }

  addBackend(body: unknown): BackendStatus {
    const config = checked(() => validateBackend(body), 'invalid backend; nothing changed');
    const id = backendId(config);
    const scheme = new URL(config.url).protocol;
    if ((scheme === 'tcp:') !== (this.current.mode === 'tcp')) {
      throw new AdminError('ADMIN_ERR_INVALID', 'invalid backend; nothing changed', [{ path: 'url', message: `listener "${this.name}" is in ${this.current.mode} mode: its backends are ${this.current.mode}://host:port` }]);
    }
    if (this.pool.get(id)) throw new AdminError('ADMIN_ERR_CONFLICT', `a backend with id "${id}" already exists`);
    return this.pool.add(config, 'api');
  }

  patchBackend(id: string, body: unknown): BackendStatus {
    const backend = this.findBackend(id);
    const patch = checked(() => validateBackendPatch(body), 'invalid change; nothing changed');
    if (backend.removing && patch.drain === false) {
      throw new AdminError('ADMIN_ERR_INVALID', 'invalid change; nothing changed', [{ path: 'drain', message: `backend "${id}" is being removed and cannot stop draining` }]);
    }
    if (patch.weight !== undefined) this.pool.setWeight(id, patch.weight);
    if (patch.drain !== undefined) this.pool.setDraining(id, patch.drain, patch.drain ? 'drain requested through the admin API' : 'drain cancelled through the admin API');
    return backend;
  }

  removeBackend(id: string): void {
    this.pool.remove(this.findBackend(id).id, 'removed through the admin API');
  }

  setAlgorithm(body: unknown): AlgorithmName {
    const name = checked(() => validateAlgorithmChoice(body), 'unknown algorithm; nothing changed');
    if (name !== this.current.algorithm) {
      log.info(`algorithm ${this.current.algorithm} → ${name}`);
      this.current = Object.freeze({ ...this.current, algorithm: name });
      this.setInfo();
      this.stats.event('algorithm', `algorithm switched to ${name}`);
      this.publish();
    }
    return name;
  }

  findBackend(id: string): BackendStatus {
    const backend = this.pool.get(id);
    if (!backend) throw new AdminError('ADMIN_ERR_NOT_FOUND', `no backend with id "${id}"`);
    return backend;
  }

  stop(): void {
    this.discovery?.stop();
    this.health.stop();
    this.outlier.stop();
  }
}

/** checked runs a validation and turns its ConfigError into the admin API's 400 with every problem. */
function checked<T>(validate: () => T, message: string): T {
  try {
    return validate();
  } catch (error) {
    if (error instanceof ConfigError) throw new AdminError('ADMIN_ERR_INVALID', message, toProblems(error.problems));
    throw error;
  }
}
