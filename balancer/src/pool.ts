import { Agent } from 'node:http';
import { backendId, type BackendConfig } from './config.js';
import { log } from './log.js';

export type BackendState = 'healthy' | 'unhealthy' | 'draining' | 'ejected';

/** Peak-EWMA time constant: how fast old latency observations fade (Finagle uses 10 s). */
const EWMA_DECAY_MS = 10_000;

/** Idle keep-alive sockets are closed after this, below Node's default server keepAliveTimeout (5 s). */
const IDLE_SOCKET_TIMEOUT_MS = 4_000;

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
  weight: number;
  /** up: passes its health checks (true from the start when checks are disabled). */
  up: boolean;
  draining = false;
  activeRequests = 0;
  totalRequests = 0;
  /** checked: at least one active health check has completed. */
  checked = false;
  consecutivePasses = 0;
  consecutiveFailures = 0;
  lastChange = '';
  /** Peak EWMA of response-header latency in milliseconds, and when it was last updated. */
  latencyEwmaMs = 0;
  latencyUpdatedAt = 0;

  constructor(config: BackendConfig, initiallyUp: boolean) {
    this.id = backendId(config);
    this.url = config.url;
    this.target = new URL(config.url);
    this.weight = config.weight;
    this.up = initiallyUp;
    this.agent = new Agent({ keepAlive: true, maxFreeSockets: 256, scheduling: 'lifo', timeout: IDLE_SOCKET_TIMEOUT_MS });
  }

  get state(): BackendState {
    if (this.draining) return 'draining';
    return this.up ? 'healthy' : 'unhealthy';
  }

  /** available: may be given new requests (up, not draining, weight above 0). */
  get available(): boolean {
    return this.up && !this.draining && this.weight > 0;
  }

  /** latencyScoreMs: the peak EWMA as of now; it fades toward 0 while no responses arrive, so an idle backend is tried again. */
  latencyScoreMs(now: number): number {
    if (this.latencyUpdatedAt === 0) return 0;
    return this.latencyEwmaMs * Math.exp(-(now - this.latencyUpdatedAt) / EWMA_DECAY_MS);
  }
}

export interface HealthThresholds {
  rise: number;
  fall: number;
}

export type StateChangeListener = (backend: Backend, from: BackendState, to: BackendState, why: string) => void;

/** The set of backends and their state: the only place where backend state changes. */
export class Pool {
  private readonly backends = new Map<string, Backend>();
  private availableCache: readonly Backend[] | undefined;
  private readonly listeners: StateChangeListener[] = [];

  constructor(
    configs: readonly BackendConfig[],
    private thresholds: HealthThresholds,
    private readonly healthChecked: boolean,
  ) {
    for (const config of configs) this.add(config);
  }

  onStateChange(listener: StateChangeListener): void {
    this.listeners.push(listener);
  }

  add(config: BackendConfig): Backend {
    const backend = new Backend(config, !this.healthChecked);
    this.backends.set(backend.id, backend);
    this.availableCache = undefined;
    return backend;
  }

  get(id: string): Backend | undefined {
    return this.backends.get(id);
  }

  all(): Backend[] {
    return [...this.backends.values()];
  }

  /** available: the backends that may take new requests; the same array until something changes. */
  available(): readonly Backend[] {
    this.availableCache ??= Object.freeze([...this.backends.values()].filter((backend) => backend.available));
    return this.availableCache;
  }

  beginRequest(backend: Backend): void {
    backend.activeRequests++;
    backend.totalRequests++;
  }

  endRequest(backend: Backend): void {
    backend.activeRequests--;
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
    if (!this.backends.has(backend.id)) return;
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
      if (!backend.up && backend.consecutivePasses >= this.thresholds.rise) {
        this.setUp(backend, true, `${backend.consecutivePasses} consecutive health checks passed`);
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
    if (!this.healthChecked || !this.backends.has(backend.id)) return;
    this.recordFailure(backend, `proxied request failed: ${detail}`);
  }

  private recordFailure(backend: Backend, why: string): void {
    backend.consecutiveFailures++;
    backend.consecutivePasses = 0;
    if (backend.up && backend.consecutiveFailures >= this.thresholds.fall) {
      this.setUp(backend, false, `${backend.consecutiveFailures} consecutive failures, last: ${why}`);
    }
  }

  private setUp(backend: Backend, up: boolean, why: string): void {
    const from = backend.state;
    backend.up = up;
    this.availableCache = undefined;
    backend.lastChange = new Date().toISOString();
    const to = backend.state;
    if (from === to) {
      log(`backend ${backend.id} stays ${to}`, { why });
      return;
    }
    log(`backend ${backend.id} ${from} → ${to}`, { why });
    for (const listener of this.listeners) listener(backend, from, to, why);
  }

  close(): void {
    for (const backend of this.backends.values()) backend.agent.destroy();
  }
}
