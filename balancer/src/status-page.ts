import { createHash } from 'node:crypto';
import express, { type Router } from 'express';
import { NO_BACKEND_LABEL } from './metrics.js';
import type { BackendTraffic, TrafficStats } from './stats.js';
import { STATUS_PAGE_HTML, STATUS_PAGE_SCRIPT, STATUS_PAGE_STYLE } from './status-page-html.js';

export interface StatusBackend {
  id: string;
  url: string;
  weight: number;
  state: 'healthy' | 'unhealthy' | 'draining' | 'ejected';
  activeRequests: number;
  totalRequests: number;
}

/** What the status page shows, read afresh for every poll. */
export interface StatusSource {
  backends(): StatusBackend[];
  algorithm(): string;
  algorithms: readonly string[];
  stats: TrafficStats;
  /** true when admin.token is set: the page then asks for the token before a write call and sends Authorization: Bearer */
  tokenRequired: boolean;
}

export type StatusBackendView = StatusBackend & BackendTraffic;

/** The body of GET /status.json. */
export interface StatusDocument {
  algorithm: string;
  algorithms: readonly string[];
  tokenRequired: boolean;
  backends: StatusBackendView[];
  /** requests refused for lack of an available backend (counted under the backend label "none") */
  refused: { rps: number; series: number[] };
  /** newest first */
  events: ReturnType<TrafficStats['snapshot']>['events'];
  generatedAt: string;
}

function cspHash(text: string): string {
  return `'sha256-${createHash('sha256').update(text).digest('base64')}'`;
}

/** Only the page's own inline style and script run, it talks only to its own origin, and no other site may frame it. */
const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  `script-src ${cspHash(STATUS_PAGE_SCRIPT)}`,
  `style-src ${cspHash(STATUS_PAGE_STYLE)}`,
  "connect-src 'self'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

function idle(windowSeconds: number): BackendTraffic {
  const zeros = (): number[] => new Array<number>(windowSeconds).fill(0);
  return { rps: 0, errorRate: 0, p50Ms: 0, p99Ms: 0, series: { rps: zeros(), errorRate: zeros(), p99Ms: zeros() } };
}

/** statusDocument assembles what the page polls: the backends as the source reports them, with their traffic. */
export function statusDocument(source: StatusSource, now = Date.now()): StatusDocument {
  const { backends: traffic, events } = source.stats.snapshot(now);
  const none = idle(source.stats.windowSeconds);
  const refused = traffic[NO_BACKEND_LABEL];
  return {
    algorithm: source.algorithm(),
    algorithms: source.algorithms,
    tokenRequired: source.tokenRequired,
    // Fields picked one by one: the source may hand over richer objects than the page should see.
    backends: source.backends().map(({ id, url, weight, state, activeRequests, totalRequests }) => {
      const { rps, errorRate, p50Ms, p99Ms, series } = traffic[id] ?? none;
      return { id, url, weight, state, activeRequests, totalRequests, rps, errorRate, p50Ms, p99Ms, series };
    }),
    refused: { rps: refused?.rps ?? 0, series: refused?.series.rps ?? none.series.rps },
    events,
    generatedAt: new Date(now).toISOString(),
  };
}

/** createStatusRouter serves the live status page at GET / and the JSON it polls at GET /status.json. */
export function createStatusRouter(source: StatusSource): Router {
  const router = express.Router();
  router.get('/', (_req, res) => {
    res.set({
      'content-security-policy': CONTENT_SECURITY_POLICY,
      'x-content-type-options': 'nosniff',
      'x-frame-options': 'DENY',
      'referrer-policy': 'no-referrer',
      'cache-control': 'no-cache',
    });
    res.type('html').send(STATUS_PAGE_HTML);
  });
  router.get('/status.json', (_req, res) => {
    res.set({ 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
    res.json(statusDocument(source));
  });
  return router;
}
