import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Page } from 'playwright-core';
import { fastHealth, fastTimeouts, startBackendProcess, startBalancer, startHttpBackend, testEngine, type RunningBalancer } from '../helpers/lab.js';
import { repoRoot } from '../helpers/processes.js';
import { getJson, httpRequest, metricValue, waitFor } from '../helpers/http.js';
import type { StatusWorker } from '../../balancer/src/status-document.js';

/** Debian's chromium (apt-get install -y chromium); playwright-core cannot download browsers here. */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync'];
const IN_CI = process.env.CI !== undefined && process.env.CI !== '' && process.env.CI !== 'false' && process.env.CI !== '0';
const CHROMIUM_MISSING = !existsSync(CHROMIUM);
/** Without Chromium the tests are skipped on a developer's machine, and fail in CI. */
const skip = CHROMIUM_MISSING && !IN_CI ? `no Chromium at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_PATH); with CI=true this is a failure` : false;

const RESULTS_DIR = path.join(repoRoot, 'test-results');
const HEALTH_INTERVAL_MS = 1000;
const HEALTH_TIMEOUT_MS = 500;
const POLL_MS = 1000;
/** fall × interval + timeout + 1 s of slack, plus one poll of the page. */
const RED_WITHIN_MS = fastHealth.fall * HEALTH_INTERVAL_MS + HEALTH_TIMEOUT_MS + 1000 + POLL_MS;

function requireChromium(): void {
  assert.ok(!CHROMIUM_MISSING, `no Chromium at ${CHROMIUM}: .ci/run must apt-get install -y chromium`);
}

async function openStatusPage(t: TestContext, lb: RunningBalancer): Promise<Page> {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true, timeout: 30_000 });
  t.after(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1280, height: 720 }, colorScheme: 'light' });
  const pageErrors: string[] = [];
  page.on('pageerror', (error) => pageErrors.push(error.message));
  page.on('console', (message) => {
    // Failed requests are logged too (a 401, the balancer gone): those are expected; script errors and CSP refusals are not.
    if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) pageErrors.push(message.text());
  });
  t.after(() => assert.deepEqual(pageErrors, [], 'the page ran without script errors or CSP violations'));
  const response = await page.goto(`${lb.adminUrl}/`);
  assert.equal(response?.status(), 200);
  assert.match(response?.headers()['content-type'] ?? '', /^text\/html/);
  return page;
}

async function rowIds(page: Page): Promise<string[]> {
  return page.locator('#backend-rows tr').evaluateAll((rows) => rows.map((row) => row.getAttribute('data-backend') ?? ''));
}

/** The workers table's rows, top to bottom: pid and state. */
async function workerRows(page: Page): Promise<{ pid: number; state: string }[]> {
  return page.locator('#worker-rows tr').evaluateAll((rows) => rows.map((row) => ({ pid: Number(row.getAttribute('data-pid')), state: row.getAttribute('data-state') ?? '' })));
}

/** The balancer's own list of its traffic workers, oldest first. */
function workersOf(lb: RunningBalancer): Promise<StatusWorker[]> {
  return getJson<StatusWorker[]>(`${lb.adminUrl}/workers`);
}

const pidsOf = (workers: readonly { pid: number }[]): number[] => workers.map((w) => w.pid);

/** The balancer's own answer to "which algorithm is in use": GET /config, or lb_info in /metrics. */
async function algorithmInUse(lb: RunningBalancer): Promise<string | undefined> {
  const config = await getJson<{ algorithm?: string; config?: { algorithm?: string } }>(`${lb.adminUrl}/config`).catch(() => undefined);
  const fromConfig = config?.algorithm ?? config?.config?.algorithm;
  if (fromConfig) return fromConfig;
  return (await lb.metrics()).match(/^lb_info\{[^}]*algorithm="([^"]+)"/m)?.[1];
}

/** Steady GETs through the balancer so that the rows have traffic to show; stop() waits for the last answers. */
function backgroundLoad(url: string, perSecond: number, timeoutMs = 3_000): { stop(): Promise<void> } {
  const pending = new Set<Promise<unknown>>();
  const timer = setInterval(() => {
    const request = httpRequest(url, { timeoutMs }).catch(() => undefined);
    pending.add(request);
    void request.finally(() => pending.delete(request));
  }, 1000 / perSecond);
  return {
    async stop() {
      clearInterval(timer);
      await Promise.all(pending);
    },
  };
}

/** Runs in the page (the DOM types are not part of this project's compilation). */
const backgroundOf = (element: { ownerDocument: { defaultView: { getComputedStyle(e: unknown): { backgroundColor: string } } | null } }): string =>
  element.ownerDocument.defaultView!.getComputedStyle(element).backgroundColor;

function isReddish(color: string): boolean {
  const [r = 0, g = 0, b = 0] = (color.match(/\d+/g) ?? []).map(Number);
  return r > g + 20 && r > b + 20;
}

test('the status page: one row per backend, a switch through the page takes effect, a killed backend turns red in time', { skip, timeout: 90_000 }, async (t) => {
  requireChromium();
  const backends = await Promise.all(['s1', 's2', 's3'].map((id) => startBackendProcess(t, id)));
  const lb = await startBalancer(t, { algorithm: 'round-robin', backends: backends.map((b, i) => ({ url: b.url, name: `s${i + 1}` })) });
  const load = backgroundLoad(`${lb.url}/page-test`, 40);
  t.after(() => load.stop());
  const page = await openStatusPage(t, lb);

  await waitFor('three backend rows', async () => (await rowIds(page)).length === 3, 10_000);
  assert.deepEqual(await rowIds(page), ['s1', 's2', 's3']);
  assert.deepEqual(await page.locator('#backend-rows tr').evaluateAll((rows) => rows.map((row) => row.getAttribute('data-state'))), ['healthy', 'healthy', 'healthy']);
  assert.equal(await page.locator('#backend-rows tr[data-backend="s1"] td.url').textContent(), backends[0]!.url);
  await waitFor('traffic to show as requests/s', async () => (await page.locator('#backend-rows tr[data-backend="s1"] td.rps').textContent()) !== '0', 5_000, 100);
  assert.equal(await page.locator('#algorithm-current').textContent(), 'round-robin');
  assert.equal(await page.locator('#engine-current').textContent(), testEngine);
  // One traffic worker by default: the workers table lists it as GET /workers does.
  const workers = await workersOf(lb);
  assert.equal(workers.length, 1);
  await waitFor('the worker row', async () => JSON.stringify(pidsOf(await workerRows(page))) === JSON.stringify(pidsOf(workers)), 3_000, 100);

  // Switch through the page's own control.
  const target = 'least-connections';
  assert.ok((await page.locator('#algorithm-select option').allTextContents()).includes(target));
  await page.selectOption('#algorithm-select', target);
  await page.click('#algorithm-apply');
  await page.locator('#algorithm-message[data-kind="ok"]').waitFor({ timeout: 5_000 });
  const switched = await waitFor(`the balancer to report algorithm ${target}`, async () => (await algorithmInUse(lb)) === target, 5_000, 50);
  t.diagnostic(`algorithm switched through the page; the balancer reports it ${switched.ms.toFixed(0)} ms after the page's confirmation`);
  assert.equal(metricValue(await lb.metrics(), 'lb_info', { algorithm: target }), 1);
  await waitFor('the page to show the new algorithm', async () => (await page.locator('#algorithm-current').textContent()) === target, 3_000, 50);
  await waitFor('the switch to be listed in the events', async () => (await page.locator('#events li[data-kind="algorithm"]').count()) > 0, 3_000, 100);

  // Kill one backend: its row turns red within the detection time.
  const killed = page.locator('#backend-rows tr[data-backend="s2"]');
  const healthyBackground = await page.locator('#backend-rows tr[data-backend="s1"]').evaluate(backgroundOf);
  const killedAt = performance.now();
  await backends[1]!.service.stop('SIGKILL');
  await page.locator('#backend-rows tr[data-backend="s2"][data-state="unhealthy"]').waitFor({ timeout: RED_WITHIN_MS + 2_000 });
  const redAfterMs = performance.now() - killedAt;
  t.diagnostic(`s2's row turned red ${redAfterMs.toFixed(0)} ms after SIGKILL (limit ${RED_WITHIN_MS} ms)`);
  assert.ok(redAfterMs <= RED_WITHIN_MS, `row red after ${redAfterMs.toFixed(0)} ms, limit ${RED_WITHIN_MS} ms`);
  assert.equal(await killed.locator('.badge').textContent(), 'unhealthy');
  await page.waitForTimeout(400); // the row's colour fades in over 0.3 s
  const killedBackground = await killed.evaluate(backgroundOf);
  assert.ok(isReddish(killedBackground) && killedBackground !== healthyBackground, `unhealthy row background ${killedBackground}`);
  assert.deepEqual(await page.locator('#backend-rows tr').evaluateAll((rows) => rows.map((row) => row.getAttribute('data-state'))), ['healthy', 'unhealthy', 'healthy']);
  await waitFor('the state change to be listed in the events', async () => (await page.locator('#events li[data-kind="state"]', { hasText: 's2' }).count()) > 0, 3_000, 100);

  mkdirSync(RESULTS_DIR, { recursive: true });
  await page.screenshot({ path: path.join(RESULTS_DIR, 'status-page.png'), fullPage: true });

  // The balancer goes away: the page says so instead of showing stale numbers as live.
  await load.stop();
  await lb.service.stop('SIGKILL');
  await page.locator('body[data-connection="disconnected"]').waitFor({ timeout: 2 * POLL_MS + 3_000 });
  assert.ok(await page.locator('#disconnected').isVisible());
  assert.equal(await page.locator('#connection').textContent(), 'disconnected');
  await page.screenshot({ path: path.join(RESULTS_DIR, 'status-page-disconnected.png'), fullPage: true });
});

test('with admin.token set, the page asks for the token once, shows the API\'s refusals, and switches with the right token', { skip, timeout: 60_000 }, async (t) => {
  requireChromium();
  const token = 'status-page-test-token';
  const backend = await startHttpBackend(t, 'only');
  const lb = await startBalancer(t, { algorithm: 'round-robin', admin: { host: '127.0.0.1', port: 0, token }, backends: [{ url: backend.url, name: 'only' }] });
  const page = await openStatusPage(t, lb);
  await waitFor('the backend row', async () => (await rowIds(page)).length === 1, 10_000);
  const message = page.locator('#algorithm-message');

  // No token yet: the page asks for it and sends nothing.
  await page.selectOption('#algorithm-select', 'random');
  await page.click('#algorithm-apply');
  await page.locator('#admin-token').waitFor({ state: 'visible', timeout: 2_000 });
  assert.equal(await message.getAttribute('data-kind'), 'error');
  assert.equal(await algorithmInUse(lb), 'round-robin');

  // A wrong token: the API's own message is shown.
  const refusal = await httpRequest(`${lb.adminUrl}/algorithm`, { method: 'PUT', headers: { 'content-type': 'application/json', authorization: 'Bearer wrong' }, body: '{"name":"random"}' });
  assert.equal(refusal.status, 401);
  const refusalMessage = (JSON.parse(refusal.body) as { error: { message: string } }).error.message;
  await page.fill('#admin-token', 'wrong');
  await page.click('#algorithm-apply');
  await waitFor('the 401 message on the page', async () => (await message.textContent())?.includes(refusalMessage), 3_000, 50);
  assert.equal(await algorithmInUse(lb), 'round-robin');

  // The right token: the switch takes effect.
  await page.fill('#admin-token', token);
  await page.click('#algorithm-apply');
  await page.locator('#algorithm-message[data-kind="ok"]').waitFor({ timeout: 3_000 });
  await waitFor('the balancer to use random', async () => (await algorithmInUse(lb)) === 'random', 3_000, 50);

  // Asked once: after a reload the token is remembered for the session.
  await page.reload();
  await waitFor('the page to show random', async () => (await page.locator('#algorithm-current').textContent()) === 'random', 5_000, 50);
  assert.equal(await page.locator('#admin-token').isVisible(), false);
  assert.equal(await page.locator('#token-saved').isVisible(), true);
  await page.selectOption('#algorithm-select', 'p2c');
  await page.click('#algorithm-apply');
  await page.locator('#algorithm-message[data-kind="ok"]').waitFor({ timeout: 3_000 });
  await waitFor('the balancer to use p2c', async () => (await algorithmInUse(lb)) === 'p2c', 3_000, 50);

  // A name the API refuses (only reachable by editing the page): its 400 message is shown, nothing changes.
  await page.locator('#algorithm-select').evaluate((select) => {
    const option = select.ownerDocument.createElement('option');
    option.value = option.textContent = 'fastest';
    select.append(option);
  });
  await page.selectOption('#algorithm-select', 'fastest');
  await page.click('#algorithm-apply');
  await page.locator('#algorithm-message[data-kind="error"]').waitFor({ timeout: 3_000 });
  assert.match((await message.textContent()) ?? '', /fastest/);
  assert.equal(await algorithmInUse(lb), 'p2c');
});

test('the status page lists the workers (workers: 2) as GET /workers does, and shows an upgrade: the old ones draining, then gone', { skip, timeout: 90_000 }, async (t) => {
  requireChromium();
  const backend = await startHttpBackend(t, 'only');
  // perTry well above the slow answers below, so that they are answered, not retried.
  const lb = await startBalancer(t, { algorithm: 'round-robin', workers: 2, timeouts: { ...fastTimeouts, perTry: '8s' }, backends: [{ url: backend.url, name: 'only' }] });
  const load = backgroundLoad(`${lb.url}/workers-test`, 20, 10_000);
  t.after(() => load.stop());
  const page = await openStatusPage(t, lb);

  const before = await workersOf(lb);
  assert.equal(before.length, 2);
  assert.deepEqual(before.map((w) => w.state), ['serving', 'serving']);
  await waitFor('two worker rows', async () => (await workerRows(page)).length === 2, 10_000, 100);
  assert.deepEqual(await workerRows(page), before.map((w) => ({ pid: w.pid, state: 'serving' })));
  assert.deepEqual(await page.locator('#worker-rows .badge').allTextContents(), ['serving', 'serving']);
  for (const started of await page.locator('#worker-rows td.started').allTextContents()) assert.match(started, /^\d+ (s|min) ago$/);
  assert.equal(await page.locator('#no-workers').isVisible(), false);
  // Connections are spread over both workers: each row counts requests and accepted connections.
  await waitFor('requests counted on both worker rows', async () => (await page.locator('#worker-rows td.requests').allTextContents()).every((text) => Number(text.replace(/,/g, '')) > 0), 10_000, 100);
  for (const text of await page.locator('#worker-rows td.connections').allTextContents()) {
    const [open, accepted] = (text.match(/^(\d[\d,]*) \/ (\d[\d,]*)$/) ?? []).slice(1).map((n) => Number(n.replace(/,/g, '')));
    assert.ok(open !== undefined && accepted !== undefined && accepted > 0 && open <= accepted, `connections cell ${JSON.stringify(text)}`);
  }

  // An upgrade while slow answers are in flight: the old workers drain for a few seconds, and the page shows it.
  backend.delayMs = 4_000;
  await waitFor('requests in flight at both workers', async () => (await workersOf(lb)).every((w) => w.activeRequests > 0), 5_000, 100);
  const restart = await httpRequest(`${lb.adminUrl}/workers/restart`, { method: 'POST', timeoutMs: 30_000 });
  assert.equal(restart.status, 200, restart.body);
  const fresh = pidsOf((JSON.parse(restart.body) as StatusWorker[]).filter((w) => w.state === 'serving'));
  assert.equal(fresh.length, 2);
  assert.ok(fresh.every((pid) => !pidsOf(before).includes(pid)), `fresh workers ${fresh.join(', ')} are new`);
  const draining = page.locator('#worker-rows tr[data-state="draining"]');
  await draining.first().waitFor({ timeout: 3_000 });
  const drainingPids = pidsOf((await workerRows(page)).filter((row) => row.state === 'draining'));
  assert.ok(drainingPids.every((pid) => pidsOf(before).includes(pid)), `draining rows ${drainingPids.join(', ')} are old workers`);
  assert.equal(await draining.first().locator('.badge').textContent(), 'draining');
  await page.waitForTimeout(400); // the row's colour fades in over 0.3 s
  const drainingBackground = await draining.first().evaluate(backgroundOf);
  const servingBackground = await page.locator('#worker-rows tr[data-state="serving"]').first().evaluate(backgroundOf);
  assert.notEqual(drainingBackground, servingBackground, 'a draining worker\'s row stands out');
  mkdirSync(RESULTS_DIR, { recursive: true });
  await page.screenshot({ path: path.join(RESULTS_DIR, 'status-page-workers.png'), fullPage: true });

  // Once the old workers have finished their requests and exited, only the fresh ones are listed.
  backend.delayMs = 0;
  await waitFor('the page to list only the fresh workers', async () => JSON.stringify(await workerRows(page)) === JSON.stringify(fresh.map((pid) => ({ pid, state: 'serving' }))), 15_000, 100);
  assert.deepEqual(pidsOf(await workersOf(lb)), fresh);
  await waitFor('the upgrade to be listed in the events', async () => (await page.locator('#events li[data-kind="workers"]', { hasText: 'upgrade' }).count()) > 0, 3_000, 100);
});
