/**
 * Cluster mode (issue 11): a primary and traffic workers, real processes on 127.0.0.1. One metrics
 * view over the workers, passive failures seen across workers, worker supervision and the hitless
 * upgrade (SIGUSR2 and POST /workers/restart) under load.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { once } from 'node:events';
import { startBalancer, startHttpBackend, writeConfigFile, type RunningBalancer } from '../helpers/lab.js';
import { isAlive, startService } from '../helpers/processes.js';
import { sumCounter } from '../helpers/backend.js';
import { getJson, httpRequest, metricValue, waitFor } from '../helpers/http.js';
import { describeFailures, runLoad } from '../helpers/load.js';

interface WorkerView {
  pid: number;
  startedAt: string;
  state: string;
  activeRequests: number;
  totalRequests: number;
  connections: number;
  acceptedConnections: number;
}

const workersOf = (lb: RunningBalancer): Promise<WorkerView[]> => getJson<WorkerView[]>(`${lb.adminUrl}/workers`);

async function threeBackends(t: TestContext): Promise<{ url: string; name: string }[]> {
  const backends = await Promise.all(['c1', 'c2', 'c3'].map((id) => startHttpBackend(t, id)));
  return backends.map((backend) => ({ url: backend.url, name: backend.id }));
}

test('workers: 2: lb_requests_total on /metrics sums to what the client sent at 300 GET/s for 10 s; lb_backend_up is 1 per healthy backend, not 2', async (t) => {
  const lb = await startBalancer(t, { workers: 2, backends: await threeBackends(t) });
  const workers = await workersOf(lb);
  assert.equal(workers.length, 2);
  assert.ok(workers.every((w) => w.state === 'serving' && w.pid !== lb.service.child.pid), JSON.stringify(workers));

  const run = await runLoad({ url: `${lb.url}/sum`, rate: 300, durationMs: 10_000 });
  assert.equal(run.failures().length, 0, describeFailures(run));
  // A request is counted when its response has finished, a moment after the client has read it.
  const { value: counted } = await waitFor('every request to be counted', async () => {
    const total = sumCounter(await lb.metrics(), 'lb_requests_total');
    return total === run.samples.length && total;
  }, 3_000).catch(async () => ({ value: sumCounter(await lb.metrics(), 'lb_requests_total') }));
  assert.equal(counted, run.samples.length, 'lb_requests_total summed over workers');

  // Requests in flight come from the workers' reports (every 50 ms), the counters from the workers themselves.
  await waitFor('the reports to show nothing in flight', async () => sumCounter(await lb.metrics(), 'lb_backend_active_requests') === 0, 2_000, 10);
  const metrics = await lb.metrics();
  for (const id of ['c1', 'c2', 'c3']) {
    assert.equal(metricValue(metrics, 'lb_backend_up', { backend: id }), 1, `lb_backend_up{backend="${id}"}`);
    assert.equal(metricValue(metrics, 'lb_backend_active_requests', { backend: id }), 0);
  }
  assert.equal(sumCounter(metrics, 'lb_request_duration_seconds_count'), run.samples.length, 'histogram counts summed too');
  assert.equal(metricValue(metrics, 'lb_workers'), 2);
  assert.equal(metricValue(metrics, 'lb_worker_restarts_total'), 0);
  assert.equal(metricValue(metrics, 'lb_info', { engine: lb.service.output().match(/engine=(\S+)/)![1]! }), 1, 'lb_info once, not once per worker');
  // Both workers took part, and GET /workers and GET /backends add their counts up (from reports at most 50 ms old).
  const total = (counts: { totalRequests: number }[]): number => counts.reduce((sum, c) => sum + c.totalRequests, 0);
  await waitFor('GET /workers and GET /backends to count every request', async () => total(await workersOf(lb)) === run.samples.length && total(await lb.backends()) === run.samples.length, 2_000).catch(() => undefined);
  const after = await workersOf(lb);
  assert.ok(after.every((w) => w.totalRequests > 0), `both workers served: ${JSON.stringify(after)}`);
  assert.equal(total(after), run.samples.length, 'GET /workers totals');
  assert.equal(total(await lb.backends()), run.samples.length, 'GET /backends totals');
  t.diagnostic(`${run.samples.length} requests sent, ${counted} counted; per worker ${after.map((w) => w.totalRequests).join(' / ')}`);
});

test('workers: 2: consecutive 5xx answers seen by different workers add up to an ejection, which neither worker saw alone', async (t) => {
  const bad = createServer((req, res) => {
    res.statusCode = req.url === '/health' ? 200 : 500;
    res.end();
  });
  bad.listen(0, '127.0.0.1');
  await once(bad, 'listening');
  t.after(() => void bad.close());
  const lb = await startBalancer(t, {
    workers: 2,
    backends: [{ url: `http://127.0.0.1:${(bad.address() as { port: number }).port}`, name: 'bad' }],
    outlierDetection: { consecutiveFailures: 4, baseEjectionTime: '30s', maxEjectionPercent: 100 },
  });
  // Four requests on four connections: round-robin hands connections to the workers in turn.
  for (let i = 0; i < 4; i++) assert.equal((await httpRequest(`${lb.url}/x`)).status, 500);
  const { value: perWorker } = await waitFor('the workers to report the 4 requests', async () => {
    const counts = (await workersOf(lb)).map((w) => w.totalRequests);
    return counts.reduce((sum, n) => sum + n, 0) === 4 && counts;
  }, 2_000, 10);
  assert.ok(perWorker.every((n) => n > 0 && n < 4), `each worker saw fewer than 4 failures: ${perWorker.join(' / ')}`);
  const { ms } = await waitFor('the primary to eject "bad"', async () => (await lb.backends())[0]!.state === 'ejected', 2_000, 20);
  t.diagnostic(`ejected ${ms.toFixed(0)} ms after the 4th failure; the workers saw ${perWorker.join(' + ')}`);
});

test('workers: 2: a backend state change reaches every worker within 100 ms', async (t) => {
  const backends = await threeBackends(t);
  const lb = await startBalancer(t, { workers: 2, backends });
  for (let round = 0; round < 3; round++) {
    const drain = round % 2 === 0;
    const patched = await httpRequest(`${lb.adminUrl}/backends/c1`, { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ drain }) });
    assert.equal(patched.status, 200);
    await new Promise((resolve) => setTimeout(resolve, 100));
    // Twelve requests on twelve connections: round-robin hands them to both workers.
    const served = await Promise.all(Array.from({ length: 12 }, async () => (await httpRequest(`${lb.url}/state`)).headers['x-backend-id']));
    if (drain) assert.ok(!served.includes('c1'), `100 ms after the drain no worker sends to c1: ${served}`);
    else assert.ok(served.includes('c1'), `100 ms after the drain ended c1 takes requests again: ${served}`);
  }
  const perWorker = (await workersOf(lb)).map((w) => w.acceptedConnections);
  assert.ok(perWorker.every((n) => n > 0), `both workers took connections: ${perWorker}`);
});

for (const workers of [2, 1]) {
  test(`workers: ${workers}: 3 × SIGUSR2 under 300 GET/s: 0 client errors, every worker pid new, no old worker left running`, async (t) => {
    const lb = await startBalancer(t, { workers, backends: await threeBackends(t) });
    const first = (await workersOf(lb)).map((w) => w.pid);
    const seen = new Set(first);
    const load = runLoad({ url: `${lb.url}/upgrade`, rate: 300, durationMs: 11_000 });
    // Scraped all along, as Prometheus would (more often): the sum must never go back while workers come and go.
    const totals: number[] = [];
    let scraping = true;
    const scrapes = (async () => {
      while (scraping) {
        totals.push(sumCounter(await lb.metrics(), 'lb_requests_total'));
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    })();
    const upgradeMs: number[] = [];
    for (let i = 0; i < 3; i++) {
      await new Promise((resolve) => setTimeout(resolve, 2_500));
      const serving = new Set((await workersOf(lb)).filter((w) => w.state === 'serving').map((w) => w.pid));
      lb.service.child.kill('SIGUSR2');
      const { ms } = await waitFor(`upgrade ${i + 1}: fresh workers to serve`, async () => {
        const now = (await workersOf(lb)).filter((w) => w.state === 'serving');
        return now.length === workers && now.every((w) => !serving.has(w.pid));
      }, 20_000, 20);
      upgradeMs.push(Math.round(ms));
      for (const w of await workersOf(lb)) seen.add(w.pid);
    }
    const run = await load;
    scraping = false;
    await scrapes;
    const drops = totals.filter((total, i) => i > 0 && total < totals[i - 1]!).length;
    assert.equal(drops, 0, `lb_requests_total went back in ${drops} of ${totals.length} scrapes`);
    await waitFor('only the last workers to be left', async () => (await workersOf(lb)).length === workers, 15_000, 50);
    const last = (await workersOf(lb)).map((w) => w.pid);
    const old = [...seen].filter((pid) => !last.includes(pid));
    await waitFor('every old worker process to be gone', () => old.every((pid) => !isAlive(pid)), 5_000, 50);
    assert.equal(run.failures().length, 0, describeFailures(run));
    assert.equal(last.filter((pid) => first.includes(pid)).length, 0, `every worker is new: first ${first}, last ${last}`);
    assert.equal(old.length, 3 * workers, `${3 * workers} old workers came and went: ${old}`);
    assert.equal(metricValue(await lb.metrics(), 'lb_worker_restarts_total'), 0, 'an upgrade is not a restart');
    assert.equal(sumCounter(await lb.metrics(), 'lb_requests_total'), run.samples.length, 'the counts of drained workers stay in the sums');
    t.diagnostic(`${run.samples.length} requests, 0 errors, p99 ${run.percentile(99).toFixed(1)} ms; fresh workers served ${upgradeMs.join(', ')} ms after each SIGUSR2; ${totals.length} scrapes, the sum never went back`);
  });
}

test('workers: 2: SIGKILL of one worker under 200 GET/s: a new worker within 1 s; errors only for requests on the killed worker', async (t) => {
  const lb = await startBalancer(t, { workers: 2, backends: await threeBackends(t) });
  const load = runLoad({ url: `${lb.url}/kill`, rate: 200, durationMs: 6_000 });
  await new Promise((resolve) => setTimeout(resolve, 2_000));
  const before = await workersOf(lb);
  const victim = before[0]!;
  process.kill(victim.pid, 'SIGKILL');
  const { ms: replacedMs } = await waitFor('a new worker to serve', async () => {
    const now = (await workersOf(lb)).filter((w) => w.state === 'serving');
    return now.length === 2 && now.every((w) => w.pid !== victim.pid);
  }, 5_000, 10);
  const run = await load;
  const failures = run.failures();
  t.diagnostic(`replaced in ${replacedMs.toFixed(0)} ms; the killed worker had ${victim.connections} client connections open and ${victim.activeRequests} requests in flight at its last report; ${failures.length} client errors (${describeFailures(run)})`);
  assert.ok(replacedMs < 1_000, `a new worker served ${replacedMs.toFixed(0)} ms after the kill`);
  // HTTP/1.1 carries at most one request at a time per connection: at most one failure per connection the worker held.
  assert.ok(failures.length <= victim.connections, `${failures.length} errors, more than the ${victim.connections} connections of the killed worker`);
  for (const failure of failures) assert.ok(failure.error !== undefined, `a failure is a broken connection, not an HTTP status: ${failure.status}`);
  const metrics = await lb.metrics();
  assert.equal(metricValue(metrics, 'lb_worker_restarts_total'), 1);
  assert.equal(metricValue(metrics, 'lb_workers'), 2);
  assert.match(lb.service.output(), new RegExp(`worker ${victim.pid} died \\(signal SIGKILL\\)`));
});

test('GET /workers, POST /workers/restart (a write call: the token is needed) and one upgrade at a time', async (t) => {
  const backend = await startHttpBackend(t, 'w1');
  const lb = await startBalancer(t, { workers: 2, admin: { host: '127.0.0.1', port: 0, token: 'secret' }, backends: [{ url: backend.url, name: 'w1' }] });
  const before = await workersOf(lb);
  for (const w of before) {
    assert.deepEqual(Object.keys(w).sort(), ['acceptedConnections', 'activeRequests', 'connections', 'pid', 'startedAt', 'state', 'totalRequests']);
    assert.ok(!Number.isNaN(Date.parse(w.startedAt)));
  }
  const refused = await httpRequest(`${lb.adminUrl}/workers/restart`, { method: 'POST' });
  assert.equal(refused.status, 401);
  assert.deepEqual((await workersOf(lb)).map((w) => w.pid), before.map((w) => w.pid), 'a refused call changes nothing');

  const auth = { authorization: 'Bearer secret' };
  const [one, two] = await Promise.all([
    httpRequest(`${lb.adminUrl}/workers/restart`, { method: 'POST', headers: auth }),
    httpRequest(`${lb.adminUrl}/workers/restart`, { method: 'POST', headers: auth }),
  ]);
  assert.deepEqual([one.status, two.status].sort(), [200, 409], `${one.body} / ${two.body}`);
  const conflict = [one, two].find((answer) => answer.status === 409)!;
  assert.equal(JSON.parse(conflict.body).error.code, 'ADMIN_ERR_CONFLICT');
  const listed = JSON.parse([one, two].find((answer) => answer.status === 200)!.body) as WorkerView[];
  const serving = listed.filter((w) => w.state === 'serving').map((w) => w.pid);
  assert.equal(serving.length, 2);
  assert.ok(serving.every((pid) => !before.some((w) => w.pid === pid)), 'the serving workers are the fresh ones');
  // Right after each upgrade, new connections are answered at once, even those handed out while the
  // idle old workers were leaving (one was once left hanging in the pipe of a worker that had exited).
  for (let i = 0; i < 5; i++) {
    const upgraded = httpRequest(`${lb.adminUrl}/workers/restart`, { method: 'POST', headers: auth });
    const statuses = await Promise.all(Array.from({ length: 4 }, () => httpRequest(`${lb.url}/after`, { timeoutMs: 3_000 }).then((answer) => answer.status)));
    assert.deepEqual(statuses, [200, 200, 200, 200]);
    assert.equal((await upgraded).status, 200);
    const after = await Promise.all(Array.from({ length: 4 }, () => httpRequest(`${lb.url}/after`, { timeoutMs: 3_000 }).then((answer) => answer.status)));
    assert.deepEqual(after, [200, 200, 200, 200], `upgrade ${i + 2}: new connections right after it`);
  }
});

test('workers: a bad value is refused with where and why; "auto" is one per core; a reload cannot change it', async (t) => {
  for (const [value, expected] of [[0, /workers \(line \d+, column \d+\): must be at least 1/], [2.5, /workers.*: workers must be a number from 1 to 64 or "auto", not 2.5/], ['many', /workers.*: workers must be a number from 1 to 64 or "auto", not "many"/]] as const) {
    const file = writeConfigFile({ workers: value, backends: [{ url: 'http://127.0.0.1:1' }] });
    const { service } = await startService('balancer', 'balancer/dist/main.js', { args: ['--config', file, '--check'] });
    assert.equal(await service.exited, 2);
    assert.match(service.output(), expected);
  }
  const auto = writeConfigFile({ workers: 'auto', backends: [{ url: 'http://127.0.0.1:1' }] });
  const { service } = await startService('balancer', 'balancer/dist/main.js', { args: ['--config', auto, '--check'] });
  assert.equal(await service.exited, 0);
  assert.match(service.output(), /\d+ workers?/);

  const backend = await startHttpBackend(t, 'r1');
  const lb = await startBalancer(t, { workers: 1, backends: [{ url: backend.url, name: 'r1' }] });
  const answer = await httpRequest(`${lb.adminUrl}/config`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ workers: 2, listen: { host: '127.0.0.1', port: Number(new URL(lb.url).port) }, admin: { host: '127.0.0.1', port: Number(new URL(lb.adminUrl).port) }, backends: [{ url: backend.url, name: 'r1' }] }),
  });
  assert.equal(answer.status, 400);
  assert.ok((JSON.parse(answer.body).error.problems as { path: string }[]).some((p) => p.path === 'workers'), answer.body);
  assert.equal((await workersOf(lb)).length, 1);
});
