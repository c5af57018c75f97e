import { ConfigError, loadConfigFile, type Config } from './config.js';
import { ControlPlane, toProblems } from './control-plane.js';
import { AdminError, type Problem } from './errors.js';
import { BalancerMetrics, listenerRegistry } from './metrics.js';
import type { StatusEventKind } from './status-document.js';
import { log } from '@lab/common/log';

/**
 * Balancer owns the whole running configuration and the listeners' control planes, one per
 * listener, in the order of the file. It applies reloads to all of them at once, or to none, and
 * keeps what belongs to the balancer as a whole: the admin settings, reload and worker metrics.
 */
export class Balancer {
  readonly metrics = new BalancerMetrics();
  private current: Config;
  private readonly planes = new Map<string, ControlPlane>();
  /** The port the admin listener actually got (it differs from the config when it says port 0). */
  boundAdminPort = -1;

  constructor(config: Config) {
    this.current = config;
    for (const listener of config.listeners) this.planes.set(listener.name, new ControlPlane(listener, listenerRegistry(listener.name, config.listenersKey)));
  }

  get config(): Config {
    return this.current;
  }

  /** listeners: every listener's control plane, in the order of the configuration. */
  listeners(): ControlPlane[] {
    return [...this.planes.values()];
  }

  /** first: the first listener, which the admin API's unprefixed calls address. */
  get first(): ControlPlane {
    return this.planes.values().next().value!;
  }

  listener(name: string): ControlPlane {
    const plane = this.planes.get(name);
    if (!plane) throw new AdminError('ADMIN_ERR_NOT_FOUND', `no listener named "${name}"; listeners: ${[...this.planes.keys()].join(', ')}`);
    return plane;
  }

  /** start adds every listener's backends and waits for their first round of health checks. */
  async start(): Promise<void> {
    await Promise.all(this.listeners().map((plane) => plane.start()));
  }

  stop(): void {
    for (const plane of this.planes.values()) plane.stop();
  }

  /** event puts a balancer-wide event (a reload, a worker) on every listener's status page. */
  event(kind: StatusEventKind, text: string): void {
    for (const plane of this.planes.values()) plane.stats.event(kind, text);
  }

  /** effectiveConfig is the configuration in force, with admin API changes and without the token: PUT it back and nothing changes. */
  effectiveConfig(): Record<string, unknown> {
    const { listeners: _listeners, listenersKey, admin: { token: _token, ...admin }, ...rest } = this.current;
    if (!listenersKey) {
      const { backends, algorithm } = this.first.effectiveConfig();
      return { ...rest, admin, algorithm, backends };
    }
    return { ...rest, admin, listeners: this.listeners().map((plane) => withoutDiscovery(plane.effectiveConfig())) };
  }

  /**
   * reload applies a validated configuration to every listener, or refuses it whole: anything that
   * cannot change while running, in any listener, changes nothing anywhere.
   */
  reload(next: Config, origin: string): string[] {
    const problems = this.reloadProblems(next);
    if (problems.length > 0) {
      this.recordReloadFailure(origin, problems);
      throw new AdminError('ADMIN_ERR_INVALID', `configuration refused (${origin}); the running configuration stays in force`, problems);
    }
    this.current = next;
    const several = this.planes.size > 1;
    const changes = next.listeners.flatMap((listener) => this.planes.get(listener.name)!.reload(listener, origin).map((change) => (several ? `${listener.name}: ${change}` : change)));
    this.metrics.configReloads.inc({ result: 'success' });
    return changes;
  }

  private reloadProblems(next: Config): Problem[] {
    const problems: Problem[] = [];
    const now = this.current;
    if (next.admin.host !== now.admin.host || (next.admin.port !== now.admin.port && next.admin.port !== this.boundAdminPort)) {
      problems.push({ path: 'admin', message: `the admin listener cannot move while running (${now.admin.host}:${now.admin.port}); restart the balancer to apply` });
    }
    if (next.workers !== now.workers) {
      problems.push({ path: 'workers', message: `cannot change while running (${now.workers}); restart the balancer to apply` });
    }
    const names = next.listeners.map((listener) => listener.name);
    const running = [...this.planes.keys()];
    const added = names.filter((name) => !this.planes.has(name));
    const removed = running.filter((name) => !names.includes(name));
    if (added.length > 0 || removed.length > 0) {
      const what = [added.length > 0 ? `adds ${added.join(', ')}` : '', removed.length > 0 ? `removes ${removed.join(', ')}` : ''].filter(Boolean).join(' and ');
      problems.push({ path: 'listeners', message: `this reload ${what}: adding or removing listeners needs a restart of the balancer (running: ${running.join(', ')})` });
      return problems;
    }
    next.listeners.forEach((listener, index) => {
      problems.push(...this.planes.get(listener.name)!.reloadProblems(listener, next.listenersKey ? `listeners[${index}].` : ''));
    });
    return problems;
  }

  recordReloadFailure(origin: string, problems: readonly Problem[]): void {
    this.metrics.configReloads.inc({ result: 'failure' });
    this.event('reload', `configuration refused (${origin}): ${problems.map((p) => `${p.path || '(top level)'}: ${p.message}`).join('; ')}`);
    log.warn(`configuration refused (${origin}); the running configuration stays in force`, { problems: problems.length });
    for (const problem of problems) {
      const where = problem.line ? ` (line ${problem.line}, column ${problem.column})` : '';
      log.warn(`  - ${problem.path || '(top level)'}${where}: ${problem.message}`);
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
}

/** A listener as GET /config shows it: discovery is a top-level key. */
function withoutDiscovery<T extends { discovery?: unknown }>(listener: T): Omit<T, 'discovery'> {
  const { discovery: _discovery, ...rest } = listener;
  return rest;
}
