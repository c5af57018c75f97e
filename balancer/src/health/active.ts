import { request } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { UpstreamTls } from '../engines/engine.js';
import { tlsConnectOptions } from '../engines/upstream-tls.js';
import { tcpCheck } from '../tcp/check.js';
import { log } from '@lab/common/log';
import { loopLateness, lostMostOf } from './loop-lateness.js';

/** A backend to check: its id and base URL. */
export interface CheckTarget {
  readonly id: string;
  readonly url: string;
}

export interface ActiveCheckSettings {
  /** http: GET path, 2xx and 3xx pass; tcp: a connect that succeeds passes */
  type: 'http' | 'tcp';
  /** the port to check, when not the backend's own */
  port?: number | undefined;
  path: string;
  /** how https:// and tls:// backends are verified */
  tls?: UpstreamTls | undefined;
  /** interval between the end of one check and the start of the next, jittered by ±10% */
  interval: number;
  timeout: number;
}

const JITTER = 0.1;

/** What one check found; timedOut: it failed by its timeout, not by an answer or an error. */
export interface CheckResult {
  passed: boolean;
  detail: string;
  timedOut: boolean;
}

/**
 * ActiveHealthChecker checks each backend on its own timer, on a fresh connection each time, and
 * reports each result: for http checks, GET <path> answered 2xx or 3xx passes; for tcp checks, a
 * connect that succeeds within the timeout. A timeout during which the balancer's own event loop
 * was late (a starved host) is not a result: that check is run again at once.
 */
export class ActiveHealthChecker {
  /** Backends being checked, by id, with the promise of their first result. */
  private readonly watched = new Map<string, Promise<void>>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private stopped = false;

  constructor(
    private settings: ActiveCheckSettings,
    private readonly onResult: (id: string, passed: boolean, detail: string) => void,
  ) {}

  /** configure takes new settings; each backend's next check uses them. */
  configure(settings: ActiveCheckSettings): void {
    this.settings = settings;
  }

  /** firstResults resolves when every watched backend's first check is in. */
  async firstResults(): Promise<void> {
    await Promise.all(this.watched.values());
  }

  /** watch runs the first check of a backend now and keeps checking it until unwatch or stop. */
  watch(backend: CheckTarget): Promise<void> {
    if (this.stopped) return Promise.resolve();
    let first = this.watched.get(backend.id);
    if (!first) {
      first = this.runAndSchedule({ id: backend.id, target: new URL(backend.url) });
      this.watched.set(backend.id, first);
    }
    return first;
  }

  unwatch(id: string): void {
    this.watched.delete(id);
    clearTimeout(this.timers.get(id));
    this.timers.delete(id);
  }

  stop(): void {
    this.stopped = true;
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    this.watched.clear();
  }

  private async runAndSchedule(backend: { id: string; target: URL }): Promise<void> {
    let result: CheckResult;
    for (;;) {
      const lostBefore = loopLateness.lost();
      result = await this.check(backend.target);
      if (this.stopped || !this.watched.has(backend.id)) return;
      const lostMs = loopLateness.lost() - lostBefore;
      // Set aside and run again: a timeout the balancer's own stall explains says nothing of the backend.
      if (!result.timedOut || !lostMostOf(lostMs, this.settings.timeout)) break;
      log.warn('health check set aside: the balancer itself was late', { backend: backend.id, lostMs: Math.round(lostMs), timeoutMs: this.settings.timeout });
    }
    this.onResult(backend.id, result.passed, result.detail);
    const delay = this.settings.interval * (1 - JITTER + Math.random() * 2 * JITTER);
    const timer = setTimeout(() => void this.runAndSchedule(backend), delay);
    timer.unref();
    this.timers.set(backend.id, timer);
  }

  /** check performs one health check and never rejects. */
  check(target: URL): Promise<CheckResult> {
    const port = this.settings.port ?? Number(target.port || (target.protocol === 'https:' ? 443 : 80));
    if (this.settings.type === 'tcp') {
      // A tls:// backend's own port is checked with a handshake; a health port of its own, with a connect.
      const tls = target.protocol === 'tls:' && this.settings.port === undefined ? tlsConnectOptions(target, this.settings.tls) : undefined;
      return tcpCheck(target.hostname, port, this.settings.timeout, tls);
    }
    return new Promise((resolve) => {
      let settled = false;
      const settle = (passed: boolean, detail: string, timedOut = false): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve({ passed, detail, timedOut });
      };
      const https = target.protocol === 'https:';
      const req = (https ? httpsRequest : request)({
        ...(https ? tlsConnectOptions(target, this.settings.tls) : {}),
        host: target.hostname,
        port,
        path: this.settings.path,
        method: 'GET',
        agent: false,
        headers: { 'user-agent': 'lb-lab-health-check', connection: 'close' },
      });
      // Timers run before the loop reads its sockets: after a stall, an answer that came in the
      // meantime is read first (setImmediate) and wins.
      const timer = setTimeout(() => {
        setImmediate(() => {
          settle(false, `no answer within ${this.settings.timeout} ms`, true);
          req.destroy();
        });
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
