/**
 * A starved host (issue 13): a health check or a proxied try that timed out because the balancer
 * itself was not running says nothing about the backend. The process that runs them (the primary
 * for checks, the worker for tries) is stopped with SIGSTOP while they are in flight and continued
 * with SIGCONT after their timeout has passed: they are judged on what the backend did, not on how
 * late the balancer woke up. A backend that is really slow still fails, actively and passively.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type ServerResponse } from 'node:http';
import { once } from 'node:events';
import { startBalancer } from '../helpers/lab.js';
import { getJson, httpRequest, metricValue, sleep, waitFor } from '../helpers/http.js';

const TIMEOUT_MS = 300;
const STALL_MS = 1_000;

/** A backend whose /health answers are held by the test: each arrival is announced, and answered when the test says. */
interface HeldBackend {
  url: string;
  arrivals: ServerResponse[];
  nextArrival(): Promise<ServerResponse>;
  answerFast: boolean;
}

async function startHeldBackend(t: TestContext): Promise<HeldBackend> {
  const waiting: ((res: ServerResponse) => void)[] = [];
  const backend = {
    url: '',
    arrivals: [] as ServerResponse[],
    answerFast: true,
    nextArrival: () => new Promise<ServerResponse>((resolve) => waiting.push(resolve)),
  };
  const server = createServer((req, res) => {
    req.resume();
    const announce = waiting.shift();
    if (announce) announce(res);
    else if (backend.answerFast) res.end('ok');
    else backend.arrivals.push(res);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  backend.url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  return backend;
}

test('health checks on a starved balancer: a check in flight while the primary is stopped longer than its timeout is judged on the backend, not on the stall; a slow backend still fails', async (t) => {
  const backend = await startHeldBackend(t);
  const lb = await startBalancer(t, {
    healthCheck: { interval: '200ms', timeout: `${TIMEOUT_MS}ms`, rise: 1, fall: 1 },
    backends: [{ url: backend.url, name: 'b1' }],
  });
  const primary = lb.service.child.pid!;
  const downs = async (): Promise<number> => metricValue(await lb.metrics(), 'lb_backend_state_changes_total', { backend: 'b1', to: 'unhealthy' }) ?? 0;
  const stall = async (): Promise<void> => {
    process.kill(primary, 'SIGSTOP');
    await sleep(STALL_MS);
    process.kill(primary, 'SIGCONT');
  };

  // 1. The answer reaches the balancer's socket during the stall: it is read before the late timeout is believed.
  for (let round = 0; round < 3; round++) {
    const res = await backend.nextArrival();
    process.kill(primary, 'SIGSTOP');
    res.end('ok');
    await sleep(STALL_MS);
    process.kill(primary, 'SIGCONT');
    await sleep(300);
  }
  assert.equal(await downs(), 0, `b1 was marked down after a stall with its answer waiting:\n${lb.service.output().slice(-2_000)}`);

  // 2. The backend answers only after the stall: the timed-out check is set aside and run again, and the rerun passes.
  for (let round = 0; round < 3; round++) {
    const res = await backend.nextArrival();
    await stall();
    await sleep(100);
    res.end('ok');
    await sleep(300);
  }
  assert.equal(await downs(), 0, `b1 was marked down after a stall with no answer yet:\n${lb.service.output().slice(-2_000)}`);
  assert.match(lb.service.output(), /health check set aside: the balancer itself was late/);
  const backends = (await lb.backends()) as { id: string; state: string }[];
  assert.equal(backends.find((b) => b.id === 'b1')?.state, 'healthy');

  // 3. No stall, and a backend that does not answer within the timeout: that is a failed check, as before.
  backend.answerFast = false;
  await waitFor('b1 marked down by its own slowness', async () => (await downs()) === 1, 5_000);
  assert.match(lb.service.output(), /no answer within 300 ms/);
  for (const res of backend.arrivals) res.end('ok');
});

test('proxied tries on a starved balancer: tries that time out while the worker is stopped are retried and not held against their backends; a slow backend is still marked down by its failed tries', async (t) => {
  const b1 = await startHeldBackend(t);
  const b2 = await startHeldBackend(t);
  const lb = await startBalancer(t, {
    // Checks every 30 s: after the first (passed) check, only failed tries can mark a backend down (fall 2).
    healthCheck: { interval: '30s', timeout: '500ms', rise: 1, fall: 2 },
    timeouts: { connect: '300ms', perTry: '600ms', request: '10s', shutdown: '5s' },
    backends: [
      { url: b1.url, name: 'b1' },
      { url: b2.url, name: 'b2' },
    ],
  });
  const healthy = async (): Promise<string[]> => (await lb.backends()).filter((b) => b.state === 'healthy').map((b) => b.id);
  await waitFor('both backends healthy', async () => (await healthy()).length === 2, 5_000);
  const [worker] = await getJson<{ pid: number }[]>(`${lb.adminUrl}/workers`);
  const downs = async (id: string): Promise<number> => metricValue(await lb.metrics(), 'lb_backend_state_changes_total', { backend: id, to: 'unhealthy' }) ?? 0;

  // 1. Eight requests are held by the backends (4 tries each, twice the fall) while the worker is stopped for 2.5 perTry.
  b1.answerFast = false;
  b2.answerFast = false;
  const answers = Array.from({ length: 8 }, () => httpRequest(`${lb.url}/item`));
  await waitFor('8 tries held by the backends', () => b1.arrivals.length + b2.arrivals.length === 8, 5_000, 10);
  process.kill(worker!.pid, 'SIGSTOP');
  await sleep(1_500);
  b1.answerFast = true;
  b2.answerFast = true;
  process.kill(worker!.pid, 'SIGCONT');
  const statuses = (await Promise.all(answers)).map((answer) => answer.status);
  for (const res of [...b1.arrivals, ...b2.arrivals]) res.end('late');
  b1.arrivals.length = 0;
  b2.arrivals.length = 0;
  assert.deepEqual(statuses, Array(8).fill(200), 'each timed-out try was retried on the other backend');
  // The worker reports its tries to the primary in batches, with the backends' loads: once the primary has all 16 tries (8 timed out, 8 retries), it has their outcomes.
  const triesSeen = async (): Promise<number> => (await lb.backends()).reduce((sum, b) => sum + b.totalRequests, 0);
  await waitFor('the primary to see the 16 tries', async () => (await triesSeen()) === 16, 5_000, 20);
  assert.deepEqual(await healthy(), ['b1', 'b2'], `a backend was marked down by tries the stall timed out:\n${lb.service.output().slice(-2_000)}`);
  assert.equal((await downs('b1')) + (await downs('b2')), 0);
  assert.match(lb.service.output(), /failed try set aside: the balancer itself was late/);

  // 2. No stall, and b1 holds every request past perTry: its failed tries mark it down, and b2 answers the retries.
  b1.answerFast = false;
  for (let sent = 0; sent < 10 && (await downs('b1')) === 0; sent++) assert.equal((await httpRequest(`${lb.url}/item`)).status, 200);
  assert.equal(await downs('b1'), 1, `b1 was not marked down by its own slowness:\n${lb.service.output().slice(-2_000)}`);
  assert.match(lb.service.output(), /b1 healthy → unhealthy why="2 consecutive failures, last: proxied request failed: b1: LB_PER_TRY_TIMEOUT"/);
  assert.equal(await downs('b2'), 0);
  for (const res of b1.arrivals) res.end('late');
});
