import { Agent } from 'node:http';
import { backendId, type BackendConfig } from './config.js';
import { log } from './log.js';

export type BackendState = 'healthy' | 'unhealthy' | 'draining' | 'ejected';

/** Where a backend came from: the config file (or PUT /config), the admin API, or DNS discovery. */
export type BackendSource = 'config' | 'api' | 'dns';

/** Peak-EWMA time constant: how fast old latency observations fade (Finagle uses 10 s). */
const EWMA_DECAY_MS = 10_000;

/** Idle keep-alive sockets are closed after this, below Node's default server keepAliveTimeout (5 s). */
const IDLE_SOCKET_TIMEOUT_MS = 4_000;

/**
 * Flap damping: a backend that goes down within this long of coming back up is flapping, and the
 * passes its next rise needs double (up to FLAP_MAX_RISE); once it stays up this long, rise applies again.
 */
const FLAP_WINDOW_MS = 10_000;
const FLAP_MAX_RISE = 8;

/** Share of its weight a backend starts slow start with. */
const SLOW_START_FLOOR = 0.1;

/**
 * A backend and everything the balancer knows about it. Fields are read by anyone;
 * they are changed only through the Pool's methods.
 */
export class Backend {
  readonly id: string;
  readonly url: string;
  readonly target: URL;
  /** Keep-alive connections to this backend only, so that removing it can close them. */
  readonly agent: Agent;
  source: BackendSource;
  weight: number;
  /** up: passes its health checks (true from the start when checks are disabled). */
  up: boolean;
  draining = false;
  /** removing: draining, and leaves the pool once its last request has finished. */
  removing = false;
  activeRequests = 0;
  totalRequests = 0;
  /** checked: at least one active health check has completed. */
  checked = false;
  consecutivePasses = 0;
  consecutiveFailures = 0;
  /** When passing checks last brought it up after being down (0: up since its first check, or down). */
  cameUpAt = 0;
  /** Passes needed to come up, raised above `rise` while the backend flaps (0: rise). */
  flapRise = 0;
  /** Outlier detection: failed tries in a row, ejection end time (0: not ejected), ejections in a row. */
  consecutiveErrors = 0;
  ejectedUntil = 0;
  ejections = 0;
  lastEjectionEnd = 0;
  /** Slow start: when the ramp began and ends (0: full weight). */
  slowStartFrom = 0;
  slowStartUntil = 0;
  /** Peak EWMA of response-header latency in milliseconds, and when it was last updated. */
  latencyEwmaMs = 0;
  latencyUpdatedAt = 0;

  constructor(config: BackendConfig, initiallyUp: boolean, source: BackendSource) {
    this.id = backendId(config);
    this.url = config.url;
    this.target = new URL(config.url);
    this.weight = config.weight;
    this.up = initiallyUp;
    this.source = source;
    this.agent = new Agent({ keepAlive: true, maxFreeSockets: 256, scheduling: 'lifo', timeout: IDLE_SOCKET_TIMEOUT_MS });
  }

  get ejected(): boolean {
    return this.ejectedUntil !== 0;
  }

  get state(): BackendState {
    if (this.draining) return 'draining';
    if (!this.up) return 'unhealthy';
    return this.ejected ? 'ejected' : 'healthy';
  }

  /** available: may be given new requests (up, not ejected, not draining, weight above 0). */
  get available(): boolean {
    return this.up && !this.draining && !this.ejected && this.weight > 0;
  }

  /** effectiveWeight: the weight algorithms use; during slow start it ramps from 10% to 100%. */
  effectiveWeight(now = Date.now()): number {
    if (this.slowStartUntil === 0) return this.weight;
    if (now >= this.slowStartUntil) return this.weight;
    const progress = (now - this.slowStartFrom) / (this.slowStartUntil - this.slowStartFrom);
    return this.weight * Math.max(SLOW_START_FLOOR, progress);
  }

  /** latencyScoreMs: the peak EWMA as of now; it fades toward 0 while no responses arrive, so an idle backend is tried again. */
  latencyScoreMs(now: number): number {
    if (this.latencyUpdatedAt === 0) return 0;
    return this.latencyEwmaMs * Math.exp(-(now - this.latencyUpdatedAt) / EWMA_DECAY_MS);
  }

  toConfig(): BackendConfig {
    const name = this.id === this.target.host ? undefined : this.id;
    return name === undefined ? { url: this.url, weight: this.weight } : { url: this.url, weight: this.weight, name };
  }
}

export interface OutlierSettings {
  consecutiveFailures: number;
  baseEjectionTime: number;
  maxEjectionTime: number;
  maxEjectionPercent: number;
}

export interface PoolSettings {
  rise: number;
  fall: number;
  /** healthChecked: active checks run, so backends start unavailable and passive failures may take them down */
  healthChecked: boolean;
  outlier: OutlierSettings | undefined;
  panicThreshold: number;
  slowStart: number;
}

export type PoolEvent =
  | { type: 'state'; backend: Backend; from: BackendState; to: BackendState; why: string }
  | { type: 'added'; backend: Backend }
  | { type: 'removed'; backend: Backend }
  | { type: 'ejected'; backend: Backend; forMs: number; why: string }
  | { type: 'panic'; active: boolean; available: number; total: number };

/** The set of backends and their state: the only place where backend state changes. */
export class Pool {
  private readonly backends = new Map<string, Backend>();
  private availableCache: readonly Backend[] | undefined;
  private readonly listeners: ((event: PoolEvent) => void)[] = [];
  private readonly timers = new Map<Backend, NodeJS.Timeout>();
  private panicking = false;
  /** startup: true until markStarted(); backends that are there when the balancer starts take full weight at once. */
  private startup = true;

  constructor(private settings: PoolSettings) {}

  onEvent(listener: (event: PoolEvent) => void): void {
    this.listeners.push(listener);
  }

  private emit(event: PoolEvent): void {
    for (const listener of this.listeners) listener(event);
  }

  configure(settings: PoolSettings): void {
    this.settings = settings;
    this.invalidate();
  }

  /** add puts a backend in the pool: unavailable until its first health check passes (when checks run). */
  add(config: BackendConfig, source: BackendSource): Backend {
    const backend = new Backend(config, !this.settings.healthChecked, source);
    if (backend.up) this.startSlowStart(backend);
    this.backends.set(backend.id, backend);
    this.invalidate();
    log(`backend ${backend.id} added`, { url: backend.url, weight: backend.weight, source });
    this.emit({ type: 'added', backend });
    return backend;
  }

  /** remove drains a backend and takes it out of the pool once its requests in flight have finished. */
  remove(backend: Backend, why: string): void {
    if (!this.backends.has(backend.id) || backend.removing) return;
    backend.removing = true;
    if (!backend.draining) this.setDraining(backend, true, why);
    this.removeIfIdle(backend);
  }

  private removeIfIdle(backend: Backend): void {
    if (!backend.removing || backend.activeRequests > 0 || this.backends.get(backend.id) !== backend) return;
    this.backends.delete(backend.id);
    clearTimeout(this.timers.get(backend));
    this.timers.delete(backend);
    this.invalidate();
    backend.agent.destroy();
    log(`backend ${backend.id} removed`, { totalRequests: backend.totalRequests });
    this.emit({ type: 'removed', backend });
  }

  /** restore cancels a removal that has not completed yet: the backend stays, and takes traffic again. */
  restore(backend: Backend, why: string): void {
    if (!backend.removing) return;
    backend.removing = false;
    this.setDraining(backend, false, why);
  }

  setDraining(backend: Backend, draining: boolean, why: string): void {
    if (backend.draining === draining || (backend.removing && !draining)) return;
    const from = backend.state;
    backend.draining = draining;
    if (!draining && backend.available) this.startSlowStart(backend);
    this.changed(backend, from, why);
  }

  setWeight(backend: Backend, weight: number): void {
    if (backend.weight === weight) return;
    log(`backend ${backend.id} weight ${backend.weight} → ${weight}`);
    backend.weight = weight;
    this.invalidate();
  }

  get(id: string): Backend | undefined {
    return this.backends.get(id);
  }

  all(): Backend[] {
    return [...this.backends.values()];
  }

  get inPanic(): boolean {
    this.available();
    return this.panicking;
  }

  /**
   * available: the backends that may take new requests; the same array until something changes.
   * Below panicThreshold percent available, every backend that is not draining is used instead
   * (Envoy's panic mode): better to try them all than to refuse every request.
   */
  available(): readonly Backend[] {
    if (this.availableCache) return this.availableCache;
    const all = [...this.backends.values()];
    let chosen = all.filter((backend) => backend.available);
    const available = chosen.length;
    const candidates = all.filter((backend) => !backend.draining && backend.weight > 0);
    const panic = this.settings.panicThreshold > 0 && candidates.length > 0 && (available / candidates.length) * 100 < this.settings.panicThreshold;
    if (panic) chosen = candidates;
    if (panic !== this.panicking) {
      this.panicking = panic;
      log(panic ? 'panic mode: too few backends available, balancing over all of them' : 'panic mode over', { available, total: candidates.length, threshold: `${this.settings.panicThreshold}%` });
      this.emit({ type: 'panic', active: panic, available, total: candidates.length });
    }
    this.availableCache = Object.freeze(chosen);
    return this.availableCache;
  }

  private invalidate(): void {
    this.availableCache = undefined;
  }

  beginRequest(backend: Backend): void {
    backend.activeRequests++;
    backend.totalRequests++;
  }

  endRequest(backend: Backend): void {
    backend.activeRequests--;
    if (backend.removing && backend.activeRequests === 0) this.removeIfIdle(backend);
  }

  /** observeLatency folds one response-header latency into the backend's peak EWMA (Finagle's peak EWMA). */
  observeLatency(backend: Backend, ms: number, now = Date.now()): void {
    if (backend.latencyUpdatedAt === 0 || ms > backend.latencyEwmaMs) {
      backend.latencyEwmaMs = ms;
    } else {
      const w = Math.exp(-(now - backend.latencyUpdatedAt) / EWMA_DECAY_MS);
      backend.latencyEwmaMs = backend.latencyEwmaMs * w + ms * (1 - w);
    }
    backend.latencyUpdatedAt = now;
  }

  /**
   * recordCheck applies one active health check result. The first result decides the state
   * at once; after that, rise consecutive passes bring a backend up and fall failures take it down.
   */
  recordCheck(backend: Backend, passed: boolean, detail: string): void {
    if (this.backends.get(backend.id) !== backend) return;
    if (!backend.checked) {
      backend.checked = true;
      backend.consecutivePasses = passed ? 1 : 0;
      backend.consecutiveFailures = passed ? 0 : 1;
      this.setUp(backend, passed, `first health check ${passed ? 'passed' : 'failed'}: ${detail}`);
      return;
    }
    if (passed) {
      backend.consecutivePasses++;
      backend.consecutiveFailures = 0;
      const rise = Math.max(this.settings.rise, backend.flapRise);
      if (!backend.up && backend.consecutivePasses >= rise) {
        backend.cameUpAt = Date.now();
        this.setUp(backend, true, `${backend.consecutivePasses} consecutive health checks passed`);
      } else if (backend.up && backend.flapRise > 0 && Date.now() - backend.cameUpAt >= FLAP_WINDOW_MS) {
        backend.flapRise = 0;
      }
    } else {
      this.recordFailure(backend, `health check failed: ${detail}`);
    }
  }

  /**
   * recordPassiveFailure counts a failed proxied try (connection refused, connect or per-try
   * timeout) like a failed check, so that a dead backend stops getting traffic before its next check.
   */
  recordPassiveFailure(backend: Backend, detail: string): void {
    if (!this.settings.healthChecked || this.backends.get(backend.id) !== backend) return;
    this.recordFailure(backend, `proxied request failed: ${detail}`);
  }

  /** recordSuccess: a try got an answer below 500, which resets the backend's count for outlier detection. */
  recordSuccess(backend: Backend): void {
    backend.consecutiveErrors = 0;
  }

  /** recordError feeds outlier detection with a 5xx answer or a failed try; enough in a row eject the backend. */
  recordError(backend: Backend, detail: string): void {
    const outlier = this.settings.outlier;
    if (!outlier) return;
    backend.consecutiveErrors++;
    if (backend.consecutiveErrors >= outlier.consecutiveFailures && !backend.ejected && backend.up && !backend.draining) this.eject(backend, outlier, detail);
  }

  private eject(backend: Backend, outlier: OutlierSettings, detail: string): void {
    if (this.backends.get(backend.id) !== backend) return;
    const total = this.backends.size;
    const ejected = this.all().filter((b) => b.ejected).length;
    const allowed = outlier.maxEjectionPercent > 0 ? Math.max(1, Math.floor((total * outlier.maxEjectionPercent) / 100)) : 0;
    if (ejected >= allowed) {
      backend.consecutiveErrors = 0;
      log(`backend ${backend.id} not ejected: ${ejected} of ${total} already ejected (maxEjectionPercent ${outlier.maxEjectionPercent})`);
      return;
    }
    const now = Date.now();
    // Ejections in a row grow longer; a backend that stayed clean for maxEjectionTime starts over.
    if (backend.lastEjectionEnd !== 0 && now - backend.lastEjectionEnd > outlier.maxEjectionTime) backend.ejections = 0;
    backend.ejections++;
    const forMs = Math.min(outlier.baseEjectionTime * backend.ejections, outlier.maxEjectionTime);
    const from = backend.state;
    backend.ejectedUntil = now + forMs;
    backend.consecutiveErrors = 0;
    const why = `${outlier.consecutiveFailures} consecutive failures (last: ${detail}); ejection ${backend.ejections} for ${forMs} ms`;
    this.changed(backend, from, why);
    this.emit({ type: 'ejected', backend, forMs, why });
    const timer = setTimeout(() => this.endEjection(backend), forMs);
    timer.unref();
    this.timers.set(backend, timer);
  }

  private endEjection(backend: Backend): void {
    this.timers.delete(backend);
    if (!backend.ejected) return;
    const from = backend.state;
    backend.ejectedUntil = 0;
    backend.lastEjectionEnd = Date.now();
    if (backend.available) this.startSlowStart(backend);
    this.changed(backend, from, 'ejection time over');
  }

  private recordFailure(backend: Backend, why: string): void {
    backend.consecutiveFailures++;
    backend.consecutivePasses = 0;
    if (backend.up && backend.consecutiveFailures >= this.settings.fall) {
      let flapping = '';
      if (backend.cameUpAt > 0 && Date.now() - backend.cameUpAt < FLAP_WINDOW_MS) {
        backend.flapRise = Math.min(Math.max(this.settings.rise, backend.flapRise) * 2, Math.max(FLAP_MAX_RISE, this.settings.rise));
        flapping = `; flapping (down within ${FLAP_WINDOW_MS / 1000} s of coming up), so its next rise needs ${backend.flapRise} passes`;
      }
      backend.cameUpAt = 0;
      this.setUp(backend, false, `${backend.consecutiveFailures} consecutive failures, last: ${why}${flapping}`);
    }
  }

  private setUp(backend: Backend, up: boolean, why: string): void {
    const from = backend.state;
    const wasAvailable = backend.available;
    backend.up = up;
    if (!wasAvailable && backend.available) this.startSlowStart(backend);
    this.changed(backend, from, why);
  }

  markStarted(): void {
    this.startup = false;
  }

  private startSlowStart(backend: Backend): void {
    if (this.settings.slowStart <= 0 || this.startup) return;
    const now = Date.now();
    backend.slowStartFrom = now;
    backend.slowStartUntil = now + this.settings.slowStart;
  }

  private changed(backend: Backend, from: BackendState, why: string): void {
    this.invalidate();
    const to = backend.state;
    if (from === to) {
      log(`backend ${backend.id} stays ${to}`, { why });
      return;
    }
    log(`backend ${backend.id} ${from} → ${to}`, { why });
    this.emit({ type: 'state', backend, from, to, why });
  }

  close(): void {
    for (const timer of this.timers.values()) clearTimeout(timer);
    for (const backend of this.backends.values()) backend.agent.destroy();
  }
}
