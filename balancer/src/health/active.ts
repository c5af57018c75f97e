import { request } from 'node:http';
import type { Backend, Pool } from '../pool.js';
import type { Metrics } from '../metrics.js';

export interface ActiveCheckSettings {
  path: string;
  /** interval between the end of one check and the start of the next, jittered by ±10% */
  interval: number;
  timeout: number;
}

const JITTER = 0.1;

/**
 * ActiveHealthChecker sends GET <path> to each backend on its own timer, on a fresh connection
 * each time, and reports the result to the pool: 2xx and 3xx pass, anything else fails.
 */
export class ActiveHealthChecker {
  /** Backends being checked, with the promise of their first result. */
  private readonly watched = new Map<Backend, Promise<void>>();
  private readonly timers = new Map<Backend, NodeJS.Timeout>();
  private stopped = false;

  constructor(
    private readonly pool: Pool,
    private readonly metrics: Metrics,
    private settings: ActiveCheckSettings,
  ) {}

  /** configure takes new settings; each backend's next check uses them. */
  configure(settings: ActiveCheckSettings): void {
    this.settings = settings;
  }

  /** start checks every backend at once and resolves when all first results are in. */
  async start(): Promise<void> {
    await Promise.all(this.pool.all().map((backend) => this.watch(backend)));
  }

  /** watch runs the first check of a backend now and keeps checking it until unwatch or stop. */
  watch(backend: Backend): Promise<void> {
    if (this.stopped) return Promise.resolve();
    let first = this.watched.get(backend);
    if (!first) {
      first = this.runAndSchedule(backend);
      this.watched.set(backend, first);
    }
    return first;
  }

  unwatch(backend: Backend): void {
    this.watched.delete(backend);
    clearTimeout(this.timers.get(backend));
    this.timers.delete(backend);
  }

  stop(): void {
    this.stopped = true;
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    this.watched.clear();
  }

  private async runAndSchedule(backend: Backend): Promise<void> {
    const result = await this.check(backend);
    if (this.stopped || !this.watched.has(backend)) return;
    this.metrics.healthChecks.inc({ backend: backend.id, result: result.passed ? 'pass' : 'fail' });
    this.pool.recordCheck(backend, result.passed, result.detail);
    const delay = this.settings.interval * (1 - JITTER + Math.random() * 2 * JITTER);
    const timer = setTimeout(() => void this.runAndSchedule(backend), delay);
    timer.unref();
    this.timers.set(backend, timer);
  }

  /** check performs one health check and never rejects. */
  check(backend: Backend): Promise<{ passed: boolean; detail: string }> {
    return new Promise((resolve) => {
      let settled = false;
      const settle = (passed: boolean, detail: string): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve({ passed, detail });
      };
      const req = request({
        host: backend.target.hostname,
        port: backend.target.port || 80,
        path: this.settings.path,
        method: 'GET',
        agent: false,
        headers: { 'user-agent': 'lb-lab-health-check', connection: 'close' },
      });
      const timer = setTimeout(() => {
        settle(false, `no answer within ${this.settings.timeout} ms`);
        req.destroy();
      }, this.settings.timeout);
      req.on('response', (res) => {
        const status = res.statusCode ?? 0;
        res.resume();
        settle(status >= 200 && status < 400, `HTTP ${status}`);
      });
      req.on('error', (error: NodeJS.ErrnoException) => settle(false, error.code ?? error.message));
      req.end();
    });
  }
}
