/**
 * The status page with several listeners (issue 12): status.json lists every listener with its
 * backends (the top-level fields stay the first listener's), one timeline of events names each
 * event's listener and lists the balancer's own once; in headless Chromium there is one section per
 * listener, a tcp listener counts connections, and a switch goes to /listeners/<name>/algorithm.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Page } from 'playwright-core';
import { startBalancer, startHttpBackend, testEngine, type RunningBalancer } from '../helpers/lab.js';
import { connectTcp, startEchoServer, type TcpClient } from '../helpers/tcp.js';
import { repoRoot } from '../helpers/processes.js';
import { getJson, httpRequest, waitFor } from '../helpers/http.js';
import { TrafficStats } from '../../balancer/src/stats.js';
import { mergeEvents, statusDocument, type StatusListenerSource } from '../../balancer/src/status-page.js';
import type { StatusDocument, StatusEvent } from '../../balancer/src/status-document.js';

/** Debian's chromium (apt-get install -y chromium); playwright-core cannot download browsers here. */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync'];
const IN_CI = process.env.CI !== undefined && process.env.CI !== '' && process.env.CI !== 'false' && process.env.CI !== '0';
const CHROMIUM_MISSING = !existsSync(CHROMIUM);
/** Without Chromium the browser test is skipped on a developer's machine, and fails in CI. */
const skip = CHROMIUM_MISSING && !IN_CI ? `no Chromium at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_PATH); with CI=true this is a failure` : false;
const RESULTS_DIR = path.join(repoRoot, 'test-results');

interface ListenerView {
  name: string;
  mode: string;
  address: string;
  algorithm: string;
}

function listenerSource(name: string, mode: 'http' | 'tcp', ids: readonly string[], stats = new TrafficStats()): StatusListenerSource {
  return {
    name,
    mode,
    tls: false,
    address: `127.0.0.1:${name.length}`,
    algorithm: 'round-robin',
    engine: 'http-proxy',
    backends: ids.map((id) => ({ id, url: mode === 'tcp' ? `tcp://${id}:1` : `http://${id}:1`, weight: 1, state: 'healthy', activeRequests: 0, totalRequests: 0 })),
    stats,
  };
}

test('status.json: one listener keeps the document as it was (no listener on events); several are listed, the top level is the first one\'s', () => {
  const stats = new TrafficStats();
  stats.record('a', 200, 0.01, Date.now() - 2000);
  stats.event('state', 'a: unhealthy → healthy', 'a');
  const one = statusDocument({ listeners: () => [listenerSource('default', 'http', ['a'], stats)], algorithms: ['round-robin'], workers: () => [], tokenRequired: false });
  assert.deepEqual(Object.keys(one).sort(), ['algorithm', 'algorithms', 'backends', 'engine', 'events', 'generatedAt', 'listeners', 'refused', 'tokenRequired', 'workers']);
  assert.deepEqual(one.backends, one.listeners[0]!.backends);
  assert.deepEqual(one.events.map((e) => e.listener), [undefined]);
  assert.ok(one.backends[0]!.rps > 0);

  const secure = { ...listenerSource('echo', 'tcp', ['e1', 'e2']), tls: true };
  const two = statusDocument({ listeners: () => [listenerSource('web', 'http', ['h1']), secure], algorithms: ['round-robin'], workers: () => [], tokenRequired: true });
  assert.deepEqual(two.listeners.map((l) => [l.name, l.mode, l.tls, l.backends.map((b) => b.id)]), [['web', 'http', false, ['h1']], ['echo', 'tcp', true, ['e1', 'e2']]]);
  assert.deepEqual(two.backends.map((b) => b.id), ['h1']);
  assert.equal(two.algorithm, 'round-robin');
});

test('mergeEvents: one timeline, newest first; an event in every listener within a second is listed once, without a listener', () => {
  const at = (ms: number): string => new Date(Date.UTC(2026, 0, 1, 12, 0, 0, ms)).toISOString();
  const web: StatusEvent[] = [
    { at: at(5000), kind: 'workers', message: 'worker 7 died (SIGKILL) with 0 requests in flight; replaced' },
    { at: at(3000), kind: 'state', message: 'h1: healthy → unhealthy (timeout)', backend: 'h1' },
    { at: at(1000), kind: 'reload', message: 'configuration reloaded (SIGHUP): no changes' },
  ];
  const echo: StatusEvent[] = [
    { at: at(5002), kind: 'workers', message: 'worker 7 died (SIGKILL) with 0 requests in flight; replaced' },
    { at: at(4000), kind: 'algorithm', message: 'algorithm switched to least-connections' },
    { at: at(1000), kind: 'reload', message: 'configuration reloaded (SIGHUP): added e3' },
  ];
  const merged = mergeEvents([
    { name: 'web', events: web },
    { name: 'echo', events: echo },
  ]);
  assert.deepEqual(
    merged.map((e) => [e.kind, e.listener ?? '(balancer)']),
    [
      ['workers', '(balancer)'],
      ['algorithm', 'echo'],
      ['state', 'web'],
      ['reload', 'web'],
      ['reload', 'echo'],
    ],
  );
  // A listener added by a reload lacks the balancer's older events: two copies are enough, and a workers event is the balancer's even alone.
  const added = mergeEvents([
    { name: 'web', events: [web[0]!, { at: at(900), kind: 'reload', message: 'configuration refused (SIGHUP): workers: cannot change while running' }] },
    { name: 'echo', events: [echo[0]!, { at: at(901), kind: 'reload', message: 'configuration refused (SIGHUP): workers: cannot change while running' }] },
    { name: 'extra', events: [{ at: at(6000), kind: 'workers', message: 'worker 8 died (SIGKILL) with 0 requests in flight; replaced' }] },
  ]);
  assert.deepEqual(added.map((e) => [e.kind, e.listener ?? '(balancer)']), [['workers', '(balancer)'], ['workers', '(balancer)'], ['reload', '(balancer)']]);
  // The same message a second apart in one listener only is two events of that listener.
  const again = mergeEvents([
    { name: 'web', events: [web[2]!, { ...web[2]!, at: at(500) }] },
    { name: 'echo', events: [] },
  ]);
  assert.deepEqual(again.map((e) => e.listener), ['web', 'web']);
});

async function openStatusPage(t: TestContext, lb: RunningBalancer): Promise<{ page: Page; writes: string[] }> {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true, timeout: 30_000 });
  t.after(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1280, height: 720 }, colorScheme: 'light' });
  const pageErrors: string[] = [];
  page.on('pageerror', (error) => pageErrors.push(error.message));
  page.on('console', (message) => {
    if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) pageErrors.push(message.text());
  });
  t.after(() => assert.deepEqual(pageErrors, [], 'the page ran without script errors or CSP violations'));
  // Every write call the page makes, as METHOD path.
  const writes: string[] = [];
  page.on('request', (request) => {
    if (request.method() !== 'GET') writes.push(`${request.method()} ${new URL(request.url()).pathname}`);
  });
  const response = await page.goto(`${lb.adminUrl}/`);
  assert.equal(response?.status(), 200);
  return { page, writes };
}

/** The rows of one listener's backends table, top to bottom. */
function rowsOf(page: Page, listener: string): Promise<{ id: string; state: string }[]> {
  return page
    .locator(`section.listener[data-listener="${listener}"] tbody[data-part="backend-rows"] tr`)
    .evaluateAll((rows) => rows.map((row) => ({ id: row.getAttribute('data-backend') ?? '', state: row.getAttribute('data-state') ?? '' })));
}

/** One TCP exchange through the listener: greeting, a few bytes echoed, closed. */
async function exchange(port: number): Promise<void> {
  const client = await connectTcp(port);
  try {
    const greeting = await client.greeting();
    client.socket.write('ping');
    await client.waitForBytes(greeting.length + 1 + 4);
    client.socket.end();
  } finally {
    client.socket.destroy();
  }
}

test('the status page with an http and a tcp listener: one section each, connections counted in the tcp one, a switch goes to /listeners/<name>/algorithm', { skip, timeout: 90_000 }, async (t) => {
  assert.ok(!CHROMIUM_MISSING, `no Chromium at ${CHROMIUM}: .ci/run must apt-get install -y chromium`);
  const http = await Promise.all(['h1', 'h2'].map((id) => startHttpBackend(t, id)));
  const echo = await Promise.all(['e1', 'e2'].map((id) => startEchoServer(id)));
  t.after(() => Promise.all(echo.map((server) => server.close())));
  const token = 'listeners-page-token';
  const auth = { authorization: `Bearer ${token}` };
  const lb = await startBalancer(t, {
    algorithm: 'round-robin',
    admin: { host: '127.0.0.1', port: 0, token },
    listeners: [
      { name: 'web', listen: { host: '127.0.0.1', port: 0 }, backends: http.map((b) => ({ url: b.url, name: b.id })) },
      { name: 'echo', mode: 'tcp', listen: { host: '127.0.0.1', port: 0 }, backends: echo.map((server, i) => ({ url: server.url, name: `e${i + 1}` })) },
    ],
  });
  const views = await getJson<ListenerView[]>(`${lb.adminUrl}/listeners`);
  const portOf = (name: string): number => Number(views.find((view) => view.name === name)!.address.split(':').pop());

  // The document: both listeners with their backends; the top-level fields are the first listener's.
  const doc = await getJson<StatusDocument>(`${lb.adminUrl}/status.json`);
  assert.deepEqual(
    doc.listeners.map(({ name, mode, tls, address, algorithm, backends }) => ({ name, mode, tls, address, algorithm, backends: backends.map((b) => b.id) })),
    [
      { name: 'web', mode: 'http', tls: false, address: views[0]!.address, algorithm: 'round-robin', backends: ['h1', 'h2'] },
      { name: 'echo', mode: 'tcp', tls: false, address: views[1]!.address, algorithm: 'round-robin', backends: ['e1', 'e2'] },
    ],
  );
  assert.deepEqual(doc.listeners[1]!.backends.map((b) => b.url), echo.map((server) => server.url));
  assert.deepEqual(doc.backends, doc.listeners[0]!.backends);
  assert.equal(doc.algorithm, 'round-robin');
  assert.equal(doc.engine, testEngine);
  assert.deepEqual(new Set(doc.events.filter((e) => e.kind === 'backend').map((e) => `${e.listener}/${e.backend}`)), new Set(['web/h1', 'web/h2', 'echo/e1', 'echo/e2']));

  // Traffic on both: HTTP requests, TCP connections that end, and two that stay open.
  let stopped = false;
  const webPort = portOf('web');
  const echoPort = portOf('echo');
  const load = (async () => {
    while (!stopped) {
      await Promise.all([httpRequest(`http://127.0.0.1:${webPort}/page`).catch(() => undefined), exchange(echoPort).catch(() => undefined)]);
      await new Promise((resolve) => setTimeout(resolve, 40));
    }
  })();
  t.after(async () => {
    stopped = true;
    await load;
  });
  const held: TcpClient[] = [];
  for (let i = 0; i < 2; i++) {
    const client = await connectTcp(echoPort);
    await client.greeting();
    held.push(client);
  }
  t.after(() => held.forEach((client) => client.socket.destroy()));

  const { page, writes } = await openStatusPage(t, lb);
  const web = page.locator('section.listener[data-listener="web"]');
  const tcp = page.locator('section.listener[data-listener="echo"]');
  await waitFor('both sections with their rows', async () => (await rowsOf(page, 'web')).length === 2 && (await rowsOf(page, 'echo')).length === 2, 10_000, 100);
  assert.deepEqual(await page.locator('section.listener').evaluateAll((sections) => sections.map((s) => [s.getAttribute('data-listener'), s.getAttribute('data-mode')])), [
    ['web', 'http'],
    ['echo', 'tcp'],
  ]);
  assert.deepEqual(await rowsOf(page, 'web'), [{ id: 'h1', state: 'healthy' }, { id: 'h2', state: 'healthy' }]);
  assert.deepEqual(await rowsOf(page, 'echo'), [{ id: 'e1', state: 'healthy' }, { id: 'e2', state: 'healthy' }]);
  // Each section's heading: name, mode, address; its algorithm; the engine only where it forwards HTTP.
  for (const [section, view] of [[web, views[0]!], [tcp, views[1]!]] as const) {
    assert.ok(await section.locator('.listener-head').isVisible());
    assert.equal(await section.locator('[data-part="listener-name"]').textContent(), view.name);
    assert.equal(await section.locator('[data-part="listener-mode"]').textContent(), view.mode);
    assert.equal(await section.locator('[data-part="listener-address"]').textContent(), view.address);
    assert.equal(await section.locator('[data-part="algorithm-current"]').textContent(), 'round-robin');
  }
  assert.equal(await web.locator('[data-part="engine-current"]').textContent(), testEngine);
  assert.equal(await tcp.locator('[data-part="engine-field"]').isVisible(), false);
  // The first listener's elements keep the ids the page always had.
  assert.equal(await page.locator('#backend-rows').getAttribute('data-part'), 'backend-rows');
  assert.equal(await web.locator('#backend-rows').count(), 1);
  assert.equal(await tcp.locator('#algorithm-select--echo').count(), 1);

  // The tcp section counts connections: its own headings, no error column, open connections.
  const headings = async (section: typeof web): Promise<string[]> => (await section.locator('thead th:visible').allTextContents()).map((text) => text.trim());
  assert.deepEqual(await headings(web), ['Backend', 'URL', 'State', 'Weight', 'Active', 'Req/s', 'Errors', 'p50', 'p99', 'Last 60 s']);
  assert.deepEqual(await headings(tcp), ['Backend', 'URL', 'State', 'Weight', 'Open', 'Conn/s', 'p50 time', 'p99 time', 'Last 60 s']);
  assert.deepEqual((await tcp.locator('.summary .card:visible .label').allTextContents()).map((text) => text.trim()), ['Backends healthy', 'Connections/s (last 10 s)', 'Open connections', 'Connections opened']);
  assert.equal(await tcp.locator('td.errors:visible').count(), 0);
  assert.match((await tcp.locator('svg.spark').first().getAttribute('aria-label')) ?? '', /^Connections per second/);
  await waitFor('connections/s on the tcp rows', async () => (await tcp.locator('td.rps').allTextContents()).every((text) => text !== '0'), 10_000, 100);
  await waitFor('requests/s on the http rows', async () => (await web.locator('td.rps').allTextContents()).every((text) => text !== '0'), 10_000, 100);
  await waitFor('the open connections in the summary', async () => Number(await tcp.locator('[data-part="summary-open"]').textContent()) >= 2, 5_000, 100);

  // Workers and events are there once, for the whole balancer; each event names its listener.
  assert.equal(await page.locator('#worker-rows tr').count(), 1);
  assert.equal(await page.locator('#events').count(), 1);
  await waitFor('events tagged with their listener', async () => (await page.locator('#events li[data-listener="echo"] .listener-tag').count()) > 0 && (await page.locator('#events li[data-listener="web"]').count()) > 0, 3_000, 100);

  // Switch the tcp listener's algorithm through its own form (the token field, one for all, is in the header):
  // the call goes to /listeners/echo/algorithm and web keeps its own.
  assert.equal(await page.locator('header.top #admin-token').isVisible(), true);
  await page.fill('#admin-token', token);
  await page.selectOption('#algorithm-select--echo', 'least-connections');
  await page.click('#algorithm-apply--echo');
  await tcp.locator('[data-part="algorithm-message"][data-kind="ok"]').waitFor({ timeout: 5_000 });
  assert.deepEqual(writes, ['PUT /listeners/echo/algorithm']);
  assert.equal(await page.locator('header.top #token-saved').isVisible(), true);
  const after = await getJson<ListenerView[]>(`${lb.adminUrl}/listeners`);
  assert.deepEqual(after.map((view) => [view.name, view.algorithm]), [['web', 'round-robin'], ['echo', 'least-connections']]);
  await waitFor('the tcp section to show least-connections', async () => (await tcp.locator('[data-part="algorithm-current"]').textContent()) === 'least-connections', 3_000, 50);
  assert.equal(await web.locator('[data-part="algorithm-current"]').textContent(), 'round-robin');
  await page.locator('#events li[data-kind="algorithm"][data-listener="echo"]').waitFor({ timeout: 3_000 });

  // An event of the balancer's own (a refused reload) is listed once, with no listener.
  const refused = await httpRequest(`${lb.adminUrl}/config`, { method: 'PUT', headers: { 'content-type': 'application/json', ...auth }, body: '{"listeners": 1}' });
  assert.equal(refused.status, 400, refused.body);
  const events = (await getJson<StatusDocument>(`${lb.adminUrl}/status.json`)).events.filter((e) => e.kind === 'reload');
  assert.equal(events.length, 1, JSON.stringify(events));
  assert.equal(events[0]!.listener, undefined);
  await waitFor('the refused reload on the page, once', async () => (await page.locator('#events li[data-kind="reload"]').count()) === 1, 3_000, 100);
  assert.equal(await page.locator('#events li[data-kind="reload"] .listener-tag').count(), 0);

  mkdirSync(RESULTS_DIR, { recursive: true });
  await page.screenshot({ path: path.join(RESULTS_DIR, 'status-page-listeners.png'), fullPage: true });

  // A reload that adds a listener adds its section; one that removes it takes the section away.
  const config = await getJson<{ listeners: unknown[] }>(`${lb.adminUrl}/config`);
  const put = async (listeners: unknown[]): Promise<void> => {
    const answer = await httpRequest(`${lb.adminUrl}/config`, { method: 'PUT', headers: { 'content-type': 'application/json', ...auth }, body: JSON.stringify({ ...config, listeners }) });
    assert.equal(answer.status, 200, answer.body);
  };
  await put([...config.listeners, { name: 'extra', listen: { host: '127.0.0.1', port: 0 }, backends: [{ url: http[0]!.url, name: 'h1' }] }]);
  await page.locator('section.listener[data-listener="extra"] tbody tr[data-backend="h1"]').waitFor({ timeout: 10_000 });
  assert.deepEqual(await page.locator('section.listener').evaluateAll((sections) => sections.map((s) => s.getAttribute('data-listener'))), ['web', 'echo', 'extra']);
  assert.equal(await page.locator('#algorithm-select--extra').count(), 1);
  assert.equal(await page.locator('#backend-rows').count(), 1, 'only the first listener has the unsuffixed ids');
  await put(config.listeners);
  await waitFor('the extra section to go', async () => (await page.locator('section.listener[data-listener="extra"]').count()) === 0, 5_000, 100);
  const reloads = (await getJson<StatusDocument>(`${lb.adminUrl}/status.json`)).events.filter((e) => /^listener extra (added|removed)/.test(e.message));
  assert.deepEqual(reloads.map((e) => [e.message.split(' ')[2], e.listener]), [['removed', undefined], ['added', undefined]], JSON.stringify(reloads));
});

test('a file without listeners: the page shows no listener heading and keeps the algorithm switch in the header', { skip, timeout: 60_000 }, async (t) => {
  assert.ok(!CHROMIUM_MISSING, `no Chromium at ${CHROMIUM}: .ci/run must apt-get install -y chromium`);
  const backend = await startHttpBackend(t, 'only');
  const lb = await startBalancer(t, { algorithm: 'round-robin', backends: [{ url: backend.url, name: 'only' }] });
  const doc = await getJson<StatusDocument>(`${lb.adminUrl}/status.json`);
  assert.deepEqual(doc.listeners.map((l) => [l.name, l.mode]), [['default', 'http']]);
  assert.ok(doc.events.every((e) => e.listener === undefined));
  const { page, writes } = await openStatusPage(t, lb);
  await page.locator('#backend-rows tr[data-backend="only"]').waitFor({ timeout: 10_000 });
  assert.equal(await page.locator('section.listener').count(), 1);
  assert.equal(await page.locator('.listener-head').isVisible(), false);
  assert.equal(await page.locator('header.top #algorithm-form').count(), 1);
  await page.selectOption('#algorithm-select', 'random');
  await page.click('#algorithm-apply');
  await page.locator('#algorithm-message[data-kind="ok"]').waitFor({ timeout: 5_000 });
  assert.deepEqual(writes, ['PUT /listeners/default/algorithm']);
  assert.equal((await getJson<{ algorithm: string }>(`${lb.adminUrl}/config`)).algorithm, 'random');
  mkdirSync(RESULTS_DIR, { recursive: true });
  await page.screenshot({ path: path.join(RESULTS_DIR, 'status-page-single.png'), fullPage: true });
});
