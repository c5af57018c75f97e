import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startBalancer, startBackendProcess, startHttpBackend, fastHealth } from '../helpers/lab.js';
import { freePort } from '../helpers/processes.js';
import { httpRequest, metricValue, sleep, waitFor } from '../helpers/http.js';
import { runLoad, describeFailures } from '../helpers/load.js';

const interval = 1000;
const timeout = 500;

/** Every try that started has ended: the balancer's in-flight accounting is back to zero. */
async function expectNoActiveRequests(lb: { backends(): Promise<{ id: string; activeRequests: number }[]> }): Promise<void> {
  await waitFor('active requests to fall back to 0', async () => (await lb.backends()).every((b) => b.activeRequests === 0), 5_000);
}

async function upValue(lb: { metrics(): Promise<string> }, backend: string): Promise<number | undefined> {
  return metricValue(await lb.metrics(), 'lb_backend_up', { backend });
}

test('a backend killed with SIGKILL under 200 GET/s: 0 client errors, marked down in time, back in rotation after restart', async (t) => {
  const ports = await Promise.all([freePort(), freePort(), freePort()]);
  const backends = await Promise.all(ports.map((port, i) => startBackendProcess(t, `k${i + 1}`, port)));
  const lb = await startBalancer(t, { algorithm: 'round-robin', backends: backends.map((b, i) => ({ url: b.url, name: `k${i + 1}` })) });

  const loadStarted = performance.now();
  const loadRun = runLoad({ url: `${lb.url}/work`, rate: 200, durationMs: 8_000 });
  await sleep(1_500);

  await backends[1]!.service.stop('SIGKILL');
  const down = await waitFor('k2 to be reported down', async () => (await upValue(lb, 'k2')) === 0, 10_000, 20);
  t.diagnostic(`k2 down ${down.ms.toFixed(0)} ms after SIGKILL (limit ${fastHealth.fall * interval + timeout + 1000} ms)`);
  assert.ok(down.ms <= fastHealth.fall * interval + timeout + 1000);

  await sleep(500);
  const restarted = await startBackendProcess(t, 'k2', ports[1]);
  const restartedAt = performance.now() - loadStarted;
  const up = await waitFor('k2 to be healthy again', async () => (await upValue(lb, 'k2')) === 1, 10_000, 20);
  t.diagnostic(`k2 healthy ${up.ms.toFixed(0)} ms after its restart (limit ${fastHealth.rise * interval + 1000} ms)`);
  assert.ok(up.ms <= fastHealth.rise * interval + 1000);

  const run = await loadRun;
  assert.equal(run.failures().length, 0, `client errors: ${describeFailures(run)}`);
  const afterRestart = run.samples.filter((s) => s.at > restartedAt + up.ms && s.backend === 'k2').length;
  t.diagnostic(`${run.samples.length} requests, 0 errors, p99 ${run.percentile(99).toFixed(1)} ms; k2 served ${afterRestart} after recovery; shares ${JSON.stringify(run.byBackend())}`);
  assert.ok(afterRestart > 0, 'the restarted backend gets traffic again');
  assert.ok(restarted.service.child.exitCode === null);
  await expectNoActiveRequests(lb);
});

test('a backend stopped with SIGSTOP (black hole) under 200 GET/s: 0 client errors thanks to per-try timeouts; SIGCONT brings it back', async (t) => {
  const backends = await Promise.all(['s1', 's2', 's3'].map((id) => startBackendProcess(t, id)));
  const lb = await startBalancer(t, { algorithm: 'round-robin', backends: backends.map((b, i) => ({ url: b.url, name: `s${i + 1}` })) });
  t.after(() => backends[1]!.service.child.kill('SIGCONT'));

  const loadStarted = performance.now();
  const loadRun = runLoad({ url: `${lb.url}/work`, rate: 200, durationMs: 8_000 });
  await sleep(1_500);
  backends[1]!.service.child.kill('SIGSTOP');
  const down = await waitFor('s2 to be reported down', async () => (await upValue(lb, 's2')) === 0, 10_000, 20);
  t.diagnostic(`s2 down ${down.ms.toFixed(0)} ms after SIGSTOP`);
  await sleep(1_500);
  backends[1]!.service.child.kill('SIGCONT');
  const resumedAt = performance.now() - loadStarted;
  const up = await waitFor('s2 to be healthy again', async () => (await upValue(lb, 's2')) === 1, 10_000, 20);
  t.diagnostic(`s2 healthy ${up.ms.toFixed(0)} ms after SIGCONT`);

  const run = await loadRun;
  assert.equal(run.failures().length, 0, `client errors: ${describeFailures(run)}`);
  const retries = metricValue(await lb.metrics(), 'lb_retries_total', { backend: 's2' }) ?? 0;
  t.diagnostic(`${run.samples.length} requests, 0 errors, p99 ${run.percentile(99).toFixed(1)} ms, ${retries} retries away from s2`);
  assert.ok(retries > 0, 'requests caught in the black hole were retried elsewhere');
  assert.ok(run.samples.some((s) => s.at > resumedAt + up.ms && s.backend === 's2'), 's2 gets traffic again');
  await expectNoActiveRequests(lb);
});

test('all backends down: every answer is a 503 JSON with an LB_ERR_ code within 100 ms', async (t) => {
  const backends = await Promise.all(['d1', 'd2'].map((id) => startBackendProcess(t, id)));
  const lb = await startBalancer(t, {
    backends: backends.map((b, i) => ({ url: b.url, name: `d${i + 1}` })),
    healthCheck: { ...fastHealth, interval: '5s' },
  });
  await Promise.all(backends.map((b) => b.service.stop('SIGKILL')));
  // Until the passive failures have marked both down (the worker reports them every 50 ms, and
  // refused connects answer in a few ms each), then 10 more: at most 200 requests.
  const answers = [];
  let refusedAtOnce = 0;
  while (answers.length < 200 && refusedAtOnce < 10) {
    const answer = await httpRequest(`${lb.url}/x`, { timeoutMs: 2_000 });
    answers.push(answer);
    if (answer.body.includes('"LB_ERR_NO_BACKEND"')) refusedAtOnce++;
  }
  const codes = new Set<string>();
  for (const answer of answers) {
    assert.equal(answer.status, 503, answer.body);
    assert.equal(answer.headers['content-type'], 'application/json');
    const code = (JSON.parse(answer.body) as { error: { code: string } }).error.code;
    assert.match(code, /^LB_ERR_/);
    codes.add(code);
    assert.ok(answer.ms < 100, `answer took ${answer.ms.toFixed(1)} ms`);
  }
  t.diagnostic(`${answers.length} answers, codes seen: ${[...codes].join(', ')}; slowest ${Math.max(...answers.map((a) => a.ms)).toFixed(1)} ms`);
  assert.ok(codes.has('LB_ERR_NO_BACKEND'), 'once both are marked down, the balancer refuses at once');
});

test('a POST to a backend that dies mid-request gets a 502 and is never replayed; a GET in the same spot is retried', async (t) => {
  const dying = await startBackendProcess(t, 'dying');
  const survivor = await startHttpBackend(t, 'survivor');
  const lb = await startBalancer(t, {
    algorithm: 'round-robin',
    backends: [{ url: dying.url, name: 'dying' }, { url: survivor.url, name: 'survivor' }],
    timeouts: { connect: '300ms', perTry: '5s', request: '10s' },
  });
  const dyingActive = async (): Promise<number | undefined> => (await lb.backends()).find((b) => b.id === 'dying')?.activeRequests;

  // Round-robin sends the first request to the first backend; ?delay keeps it there until the kill.
  const post = httpRequest(`${lb.url}/orders?delay=4000`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"item": 1}' });
  await waitFor('the POST to reach the dying backend', async () => (await dyingActive()) === 1);
  await dying.service.stop('SIGKILL');
  const answer = await post;
  assert.equal(answer.status, 502, answer.body);
  assert.match(answer.body, /"code":"LB_ERR_UPSTREAM_RESET"/);
  assert.equal(survivor.requests, 0, 'the POST must not be replayed on another backend');

  const restarted = await startBackendProcess(t, 'dying', dying.port);
  await waitFor('dying to take requests again', async () => (await lb.backends()).find((b) => b.id === 'dying')?.state === 'healthy', 10_000);
  let get: Promise<{ status: number; headers: Record<string, unknown> }> | undefined;
  for (let i = 0; i < 3 && !get; i++) {
    const survivorBefore = survivor.requests;
    const pending = httpRequest(`${lb.url}/orders/1?delay=4000`);
    const landed = await waitFor('a GET in flight', async () =>
      (await dyingActive()) === 1 ? 'dying' : survivor.requests > survivorBefore ? 'survivor' : undefined,
    );
    if (landed.value === 'dying') get = pending;
    else await pending;
  }
  assert.ok(get, `no GET reached the dying backend; balancer log:\n${lb.service.output()}`);
  await restarted.service.stop('SIGKILL');
  const retried = await get;
  assert.equal(retried.status, 200);
  assert.equal(retried.headers['x-backend-id'], 'survivor');
  await expectNoActiveRequests(lb);
});
