import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import express, { type Router } from 'express';
import { NO_BACKEND_LABEL } from './metrics.js';
import type { TrafficStats } from './stats.js';
import type { BackendTraffic, StatusBackend, StatusDocument, StatusWorker } from './status-document.js';

export type { StatusBackend, StatusBackendView, StatusDocument } from './status-document.js';

/** What the status page shows, read afresh for every poll. */
export interface StatusSource {
  backends(): StatusBackend[];
  algorithm(): string;
  algorithms: readonly string[];
  engine(): string;
  workers(): StatusWorker[];
  stats: TrafficStats;
  /** true when admin.token is set: the page then asks for the token before a write call and sends Authorization: Bearer */
  tokenRequired: boolean;
}

/** page.html, page.css and page.js: `npm run build` puts them from src/status-page/ into dist/status-page/, next to this module's build. */
const PAGE_DIR = new URL('./status-page/', import.meta.url);

interface StatusPage {
  html: string;
  contentSecurityPolicy: string;
}

/** Read once, on the first GET / rather than at import: tests import src/ through tsx, and src/ has no page.js. */
let statusPage: StatusPage | undefined;

function readPageFile(name: string): string {
  const url = new URL(name, PAGE_DIR);
  try {
    return readFileSync(url, 'utf8');
  } catch (error) {
    throw new Error(`status page: cannot read ${fileURLToPath(url)}: run \`npm run build\`, which compiles the page into balancer/dist/status-page/`, { cause: error });
  }
}

function replaceTag(html: string, tag: string, replacement: string): string {
  const at = html.indexOf(tag);
  if (at < 0) throw new Error(`status page: page.html has no ${tag}`);
  return html.slice(0, at) + replacement + html.slice(at + tag.length);
}

function cspHash(text: string): string {
  return `'sha256-${createHash('sha256').update(text).digest('base64')}'`;
}

function loadStatusPage(): StatusPage {
  const style = readPageFile('page.css');
  const script = readPageFile('page.js');
  // Inlined, so that the CSP can allow exactly this style and this script by hash.
  let html = readPageFile('page.html');
  html = replaceTag(html, '<link rel="stylesheet" href="page.css">', `<style>${style}</style>`);
  html = replaceTag(html, '<script type="module" src="page.js"></script>', `<script type="module">${script}</script>`);
  return {
    html,
    // Only the page's own inline style and script run, it talks only to its own origin, and no other site may frame it.
    contentSecurityPolicy: [
      "default-src 'none'",
      `script-src ${cspHash(script)}`,
      `style-src ${cspHash(style)}`,
      "connect-src 'self'",
      "img-src 'self' data:",
      "base-uri 'none'",
      "form-action 'none'",
      "frame-ancestors 'none'",
    ].join('; '),
  };
}

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
    engine: source.engine(),
    tokenRequired: source.tokenRequired,
    // Fields picked one by one: the source may hand over richer objects than the page should see.
    backends: source.backends().map(({ id, url, weight, state, activeRequests, totalRequests }) => {
      const { rps, errorRate, p50Ms, p99Ms, series } = traffic[id] ?? none;
      return { id, url, weight, state, activeRequests, totalRequests, rps, errorRate, p50Ms, p99Ms, series };
    }),
    workers: source.workers(),
    refused: { rps: refused?.rps ?? 0, series: refused?.series.rps ?? none.series.rps },
    events,
    generatedAt: new Date(now).toISOString(),
  };
}

/** createStatusRouter serves the live status page at GET / and the JSON it polls at GET /status.json. */
export function createStatusRouter(source: StatusSource): Router {
  const router = express.Router();
  router.get('/', (_req, res) => {
    statusPage ??= loadStatusPage();
    res.set({
      'content-security-policy': statusPage.contentSecurityPolicy,
      'x-content-type-options': 'nosniff',
      'x-frame-options': 'DENY',
      'referrer-policy': 'no-referrer',
      'cache-control': 'no-cache',
    });
    res.type('html').send(statusPage.html);
  });
  router.get('/status.json', (_req, res) => {
    res.set({ 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
    res.json(statusDocument(source));
  });
  return router;
}
