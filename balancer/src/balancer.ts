import { ConfigError, loadConfigFile, type Config, type ListenerConfig } from './config.js';
import { trafficPort } from './listeners/ports.js';
import { hostPort } from '@lab/common/host-port';
import { ControlPlane, toProblems } from './control-plane.js';
import { AdminError, type Problem } from './errors.js';
import { BalancerMetrics, listenerRegistry } from './metrics.js';
import type { StatusEventKind } from './status-document.js';
import { log } from '@lab/common/log';

/** Where the listeners are served: the workers open a listener added by a reload, and drain and close a removed one. */
export interface ListenerHost {
  /** open resolves once every worker listens on the new listener's port (the plane's boundPort, set by then) */
  open(plane: ControlPlane): Promise<void>;
  /** close resolves once every worker has stopped accepting on the listener and its connections have ended (or been cut at the grace) */
  close(plane: ControlPlane): Promise<void>;
}

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
  private host: ListenerHost | undefined;
  /** reloads one after the other: one that opens a listener takes a while */
  private reloading: Promise<unknown> = Promise.resolve();
  /** called with each listener that a reload adds, before it opens, so that its data plane is wired */
  private readonly added: ((plane: ControlPlane) => void)[] = [];

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

  /** serveWith: the host that opens and closes listeners that reloads add or remove; onAdded: wiring for each added one. */
  serveWith(host: ListenerHost, onAdded: (plane: ControlPlane) => void): void {
    this.host = host;
    this.added.push(onAdded);
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
   * cannot change while running, in any listener, changes nothing anywhere. A listener it adds is
   * health-checked, then opened; one it removes stops accepting and drains, then closes.
   */
  reload(next: Config, origin: string): Promise<string[]> {
    const run = this.reloading.then(() => this.apply(next, origin));
    this.reloading = run.catch(() => undefined);
    return run;
  }

  private async apply(next: Config, origin: string): Promise<string[]> {
    const problems = this.reloadProblems(next);
    const added = next.listeners.filter((listener) => !this.planes.has(listener.name));
    if (problems.length === 0) {
      // A fixed port must be free before anything changes; port 0 gets one when the listener opens.
      for (const listener of added.filter((candidate) => candidate.listen.port !== 0)) {
        const index = next.listeners.indexOf(listener);
        try {
          await trafficPort(listener.listen.host, listener.listen.port);
        } catch (error) {
          problems.push({ path: `listeners[${index}].listen`, message: (error as Error).message });
        }
      }
    }
    if (problems.length > 0) {
      this.recordReloadFailure(origin, problems);
      throw new AdminError('ADMIN_ERR_INVALID', `configuration refused (${origin}); the running configuration stays in force`, problems);
    }
    const names = new Set(next.listeners.map((listener) => listener.name));
    const removed = this.listeners().filter((plane) => !names.has(plane.name));
    this.current = next;
    const several = next.listeners.length > 1 || this.planes.size > 1;
    const changes: string[] = [];
    for (const listener of next.listeners) {
      const plane = this.planes.get(listener.name);
      if (plane) changes.push(...plane.reload(listener, origin).map((change) => (several ? `${listener.name}: ${change}` : change)));
    }
    for (const listener of added) changes.push(await this.open(listener));
    for (const plane of removed) changes.push(await this.close(plane));
    // Listeners in the order of the file, the first one being the one the unprefixed admin calls address.
    const order = next.listeners.map((listener) => this.planes.get(listener.name)!);
    this.planes.clear();
    for (const plane of order) this.planes.set(plane.name, plane);
    this.metrics.configReloads.inc({ result: 'success' });
    return changes;
  }

  private async open(listener: ListenerConfig): Promise<string> {
    const plane = new ControlPlane(listener, listenerRegistry(listener.name, this.current.listenersKey));
    this.planes.set(listener.name, plane);
    for (const wire of this.added) wire(plane);
    await plane.start();
    await this.host?.open(plane);
    const text = `listener ${listener.name} added (${listener.mode} on ${hostPort(listener.listen.host, plane.boundPort)})`;
    this.event('reload', text);
    log.info(text);
    return `added listener ${listener.name}`;
  }

  private async close(plane: ControlPlane): Promise<string> {
    log.info(`listener ${plane.name} removed: it stops accepting and drains`);
    await this.host?.close(plane);
    plane.stop();
    this.planes.delete(plane.name);
    this.event('reload', `listener ${plane.name} removed and drained`);
    return `removed listener ${plane.name}`;
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
    if (next.listenersKey !== now.listenersKey) {
      problems.push({ path: 'listeners', message: `a file ${now.listenersKey ? 'with' : 'without'} listeners: cannot become one ${now.listenersKey ? 'without' : 'with'} while running (the metrics would change their labels); restart the balancer to apply` });
      return problems;
    }
    next.listeners.forEach((listener, index) => {
      const plane = this.planes.get(listener.name);
      if (plane) problems.push(...plane.reloadProblems(listener, next.listenersKey ? `listeners[${index}].` : ''));
      else if (this.listeners().some((running) => running.boundPort === listener.listen.port && listener.listen.port !== 0)) {
        problems.push({ path: `listeners[${index}].listen.port`, message: `port ${listener.listen.port} is still another listener's` });
      }
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
  reloadFile(file: string, origin: string): Promise<string[]> {
    return this.reloadFrom(origin, () => loadConfigFile(file));
  }

  /** reloadFrom applies the configuration that read() returns; if read() finds problems, they are counted and nothing changes. */
  async reloadFrom(origin: string, read: () => Config): Promise<string[]> {
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
