/**
 * A starved host (issue 13): a health check that timed out because the balancer itself was not
 * running says nothing about the backend. The balancer's primary, which runs the checks, is stopped
 * with SIGSTOP while a check is in flight and continued with SIGCONT after its timeout has passed:
 * the check is judged on what the backend did, not on how late the balancer woke up. A backend that
 * is really slow still fails its checks.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type ServerResponse } from 'node:http';
import { once } from 'node:events';
import { startBalancer } from '../helpers/lab.js';
import { metricValue, sleep, waitFor } from '../helpers/http.js';

const TIMEOUT_MS = 300;
const STALL_MS = 1_000;

/** A backend whose /health answers are held by the test: each arrival is announced, and answered when the test says. */
async function startHeldBackend(t: TestContext): Promise<{ url: string; arrivals: ServerResponse[]; nextArrival(): Promise<ServerResponse>; answerFast: boolean }> {
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
