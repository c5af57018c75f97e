import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend, sumCounter } from '../helpers/backend.js';
import { startService } from '../helpers/processes.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

test('continuous mode serves /metrics whose counters match what the server saw, and its rate changes at run time', { timeout: 30_000 }, async (t) => {
  const backend = await startBackend('b-continuous');
  t.after(() => backend.service.stop());
  const { service: loadgen, ready } = await startService('loadgen continuous', 'loadgen/dist/main.js', {
    env: { TARGET_URL: `${backend.url}/steady`, RATE: '200', CONNECTIONS: '4', METRICS_PORT: '0', METRICS_HOST: '127.0.0.1' },
    ready: 'loadgen',
  });
  t.after(() => loadgen.stop('SIGKILL'));
  const { metrics: metricsUrl, ...run } = ready!;
  assert.deepEqual(run, { target: `${backend.url}/steady`, method: 'GET', rate: '200', connections: '4' });
  assert.match(metricsUrl, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
  const base = new URL(metricsUrl).origin;
  const scrape = async (): Promise<string> => (await fetch(`${base}/metrics`)).text();

  await sleep(1500);
  assert.match(await scrape(), /^loadgen_target_rate 200$/m);

  const paused = await fetch(`${base}/rate`, { method: 'PUT', body: '{"rate": 0}' });
  assert.deepEqual(await paused.json(), { rate: 0, previous: 200 });
  await loadgen.waitForLine(/ info rate changed by PUT \/rate: 200 -> 0 req\/s$/, 1000).catch(() => undefined);
  let metrics = await scrape();
  for (let i = 0; i < 50 && sumCounter(metrics, 'loadgen_in_flight_requests') > 0; i++) {
    await sleep(50);
    metrics = await scrape();
  }
  assert.match(metrics, /^loadgen_target_rate 0$/m);
  assert.match(metrics, /^loadgen_in_flight_requests 0$/m);
  const sent = sumCounter(metrics, 'loadgen_requests_total');
  const counted = await backend.requestsCounted();
  t.diagnostic(`loadgen counted ${sent} requests, the backend ${counted}`);
  assert.ok(sent > 150, `only ${sent} requests in 1.5 s at 200 req/s`);
  assert.equal(sent, counted);
  assert.equal(sumCounter(metrics, 'loadgen_requests_total', 'code="200"'), counted);
  assert.equal(sumCounter(metrics, 'loadgen_requests_total', 'code="error"'), 0);
  assert.equal(sumCounter(metrics, 'loadgen_backend_responses_total', 'backend="b-continuous"'), counted);
  assert.equal(sumCounter(metrics, 'loadgen_request_duration_seconds_count'), counted);
  await sleep(300);
  assert.equal(sumCounter(await scrape(), 'loadgen_requests_total'), sent, 'nothing is sent while paused');

  const bad = await fetch(`${base}/rate`, { method: 'PUT', body: '{"rate": "fast"}' });
  assert.equal(bad.status, 400);
  assert.equal(((await bad.json()) as { error: { code: string } }).error.code, 'LOADGEN_ERR_INVALID_RATE');
  assert.deepEqual(await (await fetch(`${base}/rate`)).json(), { rate: 0 });

  await fetch(`${base}/rate`, { method: 'PUT', body: '{"rate": 50}' });
  await sleep(400);
  assert.ok(sumCounter(await scrape(), 'loadgen_requests_total') > sent, 'sending again after the rate went back up');

  loadgen.child.kill('SIGTERM');
  assert.equal(await loadgen.exited, 0);
  const stopped = loadgen.output().match(/ info stopped after (\d+) requests \(0 errors\)$/m);
  assert.ok(stopped, loadgen.output());
  assert.equal(Number(stopped[1]), await backend.requestsCounted(), 'after SIGTERM the totals still match');
});
