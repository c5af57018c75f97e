import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import express, { type Router } from 'express';
import { NO_BACKEND_LABEL } from './metrics.js';
import { EVENT_CAPACITY, type TrafficStats } from './stats.js';
import type { BackendTraffic, StatusBackend, StatusDocument, StatusEvent, StatusListener, StatusListenerMode, StatusWorker } from './status-document.js';

export type { StatusBackend, StatusBackendView, StatusDocument, StatusListener } from './status-document.js';

/** One listener as the status page shows it, read afresh for every poll. */
export interface StatusListenerSource {
  name: string;
  mode: StatusListenerMode;
  /** it terminates TLS */
  tls: boolean;
  /** host:port it listens on */
  address: string;
  algorithm: string;
  engine: string;
  backends: StatusBackend[];
  stats: TrafficStats;
}

/** What the status page shows. */
export interface StatusSource {
  /** every listener, in the order of the configuration; read for every poll */
  listeners(): StatusListenerSource[];
  algorithms: readonly string[];
  workers(): StatusWorker[];
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

/** listenerStatus: one listener's backends as its source reports them, with their traffic. */
function listenerStatus(source: StatusListenerSource, traffic: Record<string, BackendTraffic>): StatusListener {
  const none = idle(source.stats.windowSeconds);
  const refused = traffic[NO_BACKEND_LABEL];
  return {
    name: source.name,
    mode: source.mode,
    tls: source.tls,
    address: source.address,
    algorithm: source.algorithm,
    engine: source.engine,
    // Fields picked one by one: the source may hand over richer objects than the page should see.
    backends: source.backends.map(({ id, url, weight, state, activeRequests, totalRequests }) => {
      const { rps, errorRate, p50Ms, p99Ms, series } = traffic[id] ?? none;
      return { id, url, weight, state, activeRequests, totalRequests, rps, errorRate, p50Ms, p99Ms, series };
    }),
    refused: { rps: refused?.rps ?? 0, series: refused?.series.rps ?? none.series.rps },
  };
}

/** How far apart the copies of one balancer event may be stamped (Balancer.event writes it to every listener in one go). */
const SAME_EVENT_MS = 1000;

/**
 * mergeEvents puts every listener's events into one timeline, newest first. The balancer's own
 * events (worker upgrades and deaths, reloads refused, listeners added or removed) are written to
 * every listener's stats at once: a workers event, or an event without a backend found with the
 * same kind and message in another listener within SAME_EVENT_MS, is listed once without a
 * listener (a listener added by a reload lacks the older ones, so "in every listener" would not
 * do). Every other event names its listener. With one listener nothing is tagged: the list is
 * that listener's, as it always was.
 */
export function mergeEvents(perListener: readonly { name: string; events: readonly StatusEvent[] }[]): StatusEvent[] {
  if (perListener.length === 1) return perListener[0]!.events.slice(0, EVENT_CAPACITY);
  const all = perListener.flatMap(({ name, events }, order) => events.map((event) => ({ event, name, order, ms: Date.parse(event.at), taken: false })));
  // Newest first; at the same time, in the order of the listeners.
  all.sort((a, b) => b.ms - a.ms || a.order - b.order);
  const merged: StatusEvent[] = [];
  for (const entry of all) {
    if (entry.taken) continue;
    entry.taken = true;
    const { event } = entry;
    let balancerWide = event.kind === 'workers';
    if (event.backend === undefined) {
      // At most one copy per other listener.
      const copied = new Set<number>([entry.order]);
      for (const copy of all) {
        if (copy.taken || copied.has(copy.order) || copy.event.backend !== undefined || copy.event.kind !== event.kind || copy.event.message !== event.message) continue;
        if (Math.abs(copy.ms - entry.ms) > SAME_EVENT_MS) continue;
        copy.taken = true;
        copied.add(copy.order);
        balancerWide = true;
      }
    }
    merged.push(balancerWide ? { ...event } : { ...event, listener: entry.name });
  }
  return merged.slice(0, EVENT_CAPACITY);
}

/**
 * statusDocument assembles what the page polls: every listener with its backends and their traffic,
 * the workers and one timeline of events; the top-level algorithm, engine, backends and refused are
 * the first listener's, as they were before there were several.
 */
export function statusDocument(source: StatusSource, now = Date.now()): StatusDocument {
  const sources = source.listeners();
  const snapshots = sources.map((listener) => listener.stats.snapshot(now));
  const listeners = sources.map((listener, i) => listenerStatus(listener, snapshots[i]!.backends));
  const first = listeners[0];
  if (!first) throw new Error('status page: the balancer has no listener');
  return {
    algorithm: first.algorithm,
    algorithms: source.algorithms,
    engine: first.engine,
    tokenRequired: source.tokenRequired,
    backends: first.backends,
    listeners,
    workers: source.workers(),
    refused: first.refused,
    events: mergeEvents(sources.map((listener, i) => ({ name: listener.name, events: snapshots[i]!.events }))),
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
