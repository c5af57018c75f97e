import { isDeepStrictEqual } from 'node:util';
import { backendId, ConfigError, loadConfigFile, validateAlgorithmChoice, validateBackend, validateBackendPatch, type Config, type ConfigProblem } from './config.js';
import { createAlgorithm, type AlgorithmName } from './algorithms/index.js';
import { Pool, type Backend, type PoolSettings } from './pool.js';
import { Metrics } from './metrics.js';
import { ActiveHealthChecker } from './health/active.js';
import type { ProxyContext } from './proxy.js';
import { AdminError, type Problem } from './errors.js';
import { DnsDiscovery } from './discovery/dns.js';
import { TrafficStats } from './stats.js';
import { log } from './log.js';

export const VERSION = '0.1.0';

function poolSettings(config: Config): PoolSettings {
  return {
    rise: config.healthCheck.rise,
    fall: config.healthCheck.fall,
    healthChecked: config.healthCheck.enabled,
    outlier: config.outlierDetection,
    panicThreshold: config.panicThreshold,
    slowStart: config.slowStart,
  };
}

export function toProblems(problems: readonly ConfigProblem[]): Problem[] {
  return problems.map((p) => ({ path: p.path, message: p.message, ...(p.position ? { line: p.position.line, column: p.position.column } : {}) }));
}

/**
 * Balancer is the running balancer's state: configuration, pool, health checks, algorithm and
 * the settings the request path reads. Reloads and admin calls change it only through here.
 */
export class Balancer {
  readonly pool: Pool;
  readonly metrics: Metrics;
  readonly health: ActiveHealthChecker;
  readonly context: ProxyContext;
  /** Rolling per-second traffic and recent events, for the status page. */
  readonly stats = new TrafficStats();
  private current: Config;
  private discovery: DnsDiscovery | undefined;
  /** The ports the listeners actually got (they differ from the config when it says port 0). */
  private boundPorts = { listen: -1, admin: -1 };

  constructor(config: Config) {
    this.current = config;
    this.pool = new Pool(poolSettings(config));
    this.metrics = new Metrics(() => this.pool.all());
    this.metrics.setAlgorithm(config.algorithm, VERSION);
    this.health = new ActiveHealthChecker(this.pool, this.metrics, config.healthCheck);
    this.context = {
      pool: this.pool,
      metrics: this.metrics,
      algorithm: createAlgorithm(config.algorithm, { hashKey: config.hash.key, virtualNodes: config.hash.virtualNodes }),
      timeouts: config.timeouts,
      retryAttempts: config.retries.attempts,
      stats: this.stats,
      shuttingDown: false,
    };
    this.pool.onEvent((event) => {
      if (event.type === 'state') {
        this.metrics.stateChanges.inc({ backend: event.backend.id, to: event.to });
        this.stats.event('state', `${event.backend.id}: ${event.from} → ${event.to} (${event.why})`, event.backend.id);
      } else if (event.type === 'ejected') {
        this.metrics.ejections.inc({ backend: event.backend.id });
        this.stats.event('ejection', `${event.backend.id} ejected for ${event.forMs} ms: ${event.why}`, event.backend.id);
      } else if (event.type === 'added') {
        this.stats.event('backend', `${event.backend.id} added (${event.backend.source})`, event.backend.id);
        if (this.current.healthCheck.enabled) void this.health.watch(event.backend);
      } else if (event.type === 'removed') {
        this.health.unwatch(event.backend);
        this.stats.event('backend', `${event.backend.id} removed`, event.backend.id);
        this.stats.forget(event.backend.id);
      } else {
        this.stats.event('state', event.active ? `panic mode: ${event.available} of ${event.total} available, balancing over all` : 'panic mode over');
      }
    });
  }

  setBoundPorts(listen: number, admin: number): void {
    this.boundPorts = { listen, admin };
  }

  get config(): Config {
    return this.current;
  }

  /** start adds the configured backends and waits for the first round of health checks. */
  async start(): Promise<void> {
    for (const backend of this.current.backends) this.pool.add(backend, 'config');
    const dns = this.current.discovery?.dns;
    if (dns) {
      this.discovery = new DnsDiscovery(dns, (addresses) => this.syncDiscovered(addresses, dns.port));
      await this.discovery.start();
    }
    if (this.current.healthCheck.enabled) await this.health.start();
    this.pool.markStarted();
  }

  /** syncDiscovered makes the DNS-found backends match the addresses: new ones are added (checked before traffic), vanished ones drain. */
  private syncDiscovered(addresses: readonly string[], port: number): void {
    const wanted = new Set(addresses.map((address) => `${address.includes(':') ? `[${address}]` : address}:${port}`));
    for (const backend of this.pool.all()) {
      if (backend.source !== 'dns') continue;
      if (!wanted.has(backend.id)) this.pool.remove(backend, 'its address left DNS');
      else if (backend.removing) this.pool.restore(backend, 'its address is back in DNS');
    }
    for (const id of wanted) {
      const existing = this.pool.get(id);
      if (!existing) this.pool.add({ url: `http://${id}`, weight: 1 }, 'dns');
      else if (existing.source !== 'dns') log(`dns discovery: ${id} is already a configured backend; not added twice`);
    }
  }

  /** effectiveConfig is the configuration in force, with admin API changes: PUT it back and nothing changes. */
  effectiveConfig(): Config {
    const backends = this.pool
      .all()
      .filter((backend) => backend.source !== 'dns' && !backend.removing)
      .map((backend) => backend.toConfig());
    const { token: _token, ...admin } = this.current.admin;
    return { ...this.current, admin, backends };
  }

  /**
   * reload applies a validated configuration as a diff: unchanged backends keep their state,
   * counters and connections; removed ones drain; added ones are health-checked before they
   * take traffic. Anything that cannot change while running refuses the whole reload.
   */
  reload(next: Config, origin: string): string[] {
    const problems = this.reloadProblems(next);
    if (problems.length > 0) {
      this.recordReloadFailure(origin, problems);
      throw new AdminError('ADMIN_ERR_INVALID', `configuration refused (${origin}); the running configuration stays in force`, problems);
    }
    const changes: string[] = [];
    const nextIds = new Map(next.backends.map((backend) => [backendId(backend), backend]));
    for (const backend of this.pool.all()) {
      if (backend.source === 'dns') continue;
      const wanted = nextIds.get(backend.id);
      if (wanted && backend.removing) {
        this.pool.restore(backend, `listed again by ${origin}`);
        changes.push(`kept ${backend.id}`);
      }
      if (!wanted) {
        this.pool.remove(backend, `removed by ${origin}`);
        changes.push(`removed ${backend.id}`);
      } else if (wanted.weight !== backend.weight) {
        changes.push(`${backend.id} weight ${backend.weight} → ${wanted.weight}`);
        this.pool.setWeight(backend, wanted.weight);
      }
    }
    this.pool.configure(poolSettings(next));
    this.health.configure(next.healthCheck);
    for (const [id, backend] of nextIds) {
      if (this.pool.get(id)) continue;
      this.pool.add(backend, 'config');
      changes.push(`added ${id}`);
    }
    if (next.algorithm !== this.current.algorithm || !isDeepStrictEqual(next.hash, this.current.hash)) {
      changes.push(`algorithm ${this.current.algorithm} → ${next.algorithm}`);
      this.context.algorithm = createAlgorithm(next.algorithm, { hashKey: next.hash.key, virtualNodes: next.hash.virtualNodes });
      this.metrics.setAlgorithm(next.algorithm, VERSION);
    }
    this.context.timeouts = next.timeouts;
    this.context.retryAttempts = next.retries.attempts;
    this.current = next;
    this.metrics.configReloads.inc({ result: 'success' });
    this.stats.event('reload', `configuration reloaded (${origin}): ${changes.length > 0 ? changes.join('; ') : 'no changes'}`);
    log(`configuration reloaded (${origin})`, { changes: changes.length > 0 ? changes.join('; ') : 'none' });
    return changes;
  }

  private reloadProblems(next: Config): Problem[] {
    const problems: Problem[] = [];
    const now = this.current;
    const samePort = (wanted: number, configured: number, bound: number): boolean => wanted === configured || wanted === bound;
    if (next.listen.host !== now.listen.host || !samePort(next.listen.port, now.listen.port, this.boundPorts.listen)) {
      problems.push({ path: 'listen', message: `cannot change while running (${now.listen.host}:${now.listen.port}); restart the balancer to apply` });
    }
    if (next.admin.host !== now.admin.host || !samePort(next.admin.port, now.admin.port, this.boundPorts.admin)) {
      problems.push({ path: 'admin', message: `the admin listener cannot move while running (${now.admin.host}:${now.admin.port}); restart the balancer to apply` });
    }
    if (next.healthCheck.enabled !== now.healthCheck.enabled) {
      problems.push({ path: 'healthCheck.enabled', message: 'cannot change while running; restart the balancer to apply' });
    }
    if (!isDeepStrictEqual(next.discovery, now.discovery)) {
      problems.push({ path: 'discovery', message: 'cannot change while running; restart the balancer to apply' });
    }
    next.backends.forEach((backend, index) => {
      const running = this.pool.get(backendId(backend));
      if (running && !running.removing && running.source !== 'dns' && running.url !== backend.url) {
        problems.push({ path: `backends[${index}].url`, message: `backend "${running.id}" runs at ${running.url}; give the new URL another name (a backend's URL cannot change under the same id)` });
      }
      if (running?.source === 'dns') problems.push({ path: `backends[${index}]`, message: `backend "${running.id}" was found by DNS discovery; name this one differently` });
    });
    return problems;
  }

  recordReloadFailure(origin: string, problems: readonly Problem[]): void {
    this.metrics.configReloads.inc({ result: 'failure' });
    this.stats.event('reload', `configuration refused (${origin}): ${problems.map((p) => `${p.path || '(top level)'}: ${p.message}`).join('; ')}`);
    log(`configuration refused (${origin}); the running configuration stays in force`, { problems: problems.length });
    for (const problem of problems) {
      const where = problem.line ? ` (line ${problem.line}, column ${problem.column})` : '';
      log(`  - ${problem.path || '(top level)'}${where}: ${problem.message}`);
    }
  }

  /** reloadFile reads the file again and applies it; a file that does not validate changes nothing. */
  reloadFile(file: string, origin: string): string[] {
    return this.reloadFrom(origin, () => loadConfigFile(file));
  }

  /** reloadFrom applies the configuration that read() returns; if read() finds problems, they are counted and nothing changes. */
  reloadFrom(origin: string, read: () => Config): string[] {
    let next: Config;
    try {
      next = read();
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      const problems = toProblems(error.problems);
      this.recordReloadFailure(origin, problems);
      throw new AdminError('ADMIN_ERR_INVALID', `configuration refused (${origin}); the running configuration stays in force`, problems);
    }
    return this.reload(next, origin);
  }

  addBackend(body: unknown): Backend {
    const config = checked(() => validateBackend(body), 'invalid backend; nothing changed');
    const id = backendId(config);
    if (this.pool.get(id)) throw new AdminError('ADMIN_ERR_CONFLICT', `a backend with id "${id}" already exists`);
    return this.pool.add(config, 'api');
  }

  patchBackend(id: string, body: unknown): Backend {
    const backend = this.findBackend(id);
    const patch = checked(() => validateBackendPatch(body), 'invalid change; nothing changed');
    if (backend.removing && patch.drain === false) {
      throw new AdminError('ADMIN_ERR_INVALID', 'invalid change; nothing changed', [{ path: 'drain', message: `backend "${id}" is being removed and cannot stop draining` }]);
    }
    if (patch.weight !== undefined) this.pool.setWeight(backend, patch.weight);
    if (patch.drain !== undefined) this.pool.setDraining(backend, patch.drain, patch.drain ? 'drain requested through the admin API' : 'drain cancelled through the admin API');
    return backend;
  }

  removeBackend(id: string): void {
    this.pool.remove(this.findBackend(id), 'removed through the admin API');
  }

  setAlgorithm(body: unknown): AlgorithmName {
    const name = checked(() => validateAlgorithmChoice(body), 'unknown algorithm; nothing changed');
    if (name !== this.current.algorithm) {
      log(`algorithm ${this.current.algorithm} → ${name}`);
      this.context.algorithm = createAlgorithm(name, { hashKey: this.current.hash.key, virtualNodes: this.current.hash.virtualNodes });
      this.current = Object.freeze({ ...this.current, algorithm: name });
      this.metrics.setAlgorithm(name, VERSION);
      this.stats.event('algorithm', `algorithm switched to ${name}`);
    }
    return name;
  }

  private findBackend(id: string): Backend {
    const backend = this.pool.get(id);
    if (!backend) throw new AdminError('ADMIN_ERR_NOT_FOUND', `no backend with id "${id}"`);
    return backend;
  }

  stop(): void {
    this.discovery?.stop();
    this.health.stop();
    this.pool.close();
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
