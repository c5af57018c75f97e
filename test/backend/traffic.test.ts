import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { fetchMany, startBackend, sumCounter, type RunningBackend } from '../helpers/backend.js';

describe('backend traffic port', { timeout: 60_000 }, () => {
  let backend: RunningBackend;

  before(async () => {
    backend = await startBackend('b-traffic');
  });
  after(async () => {
    await backend?.service.stop();
  });
  beforeEach(async () => {
    const res = await fetch(`${backend.controlUrl}/chaos`, { method: 'DELETE' });
    assert.equal(res.status, 200);
  });

  test('any method and path answers the identity JSON with x-backend-id', async () => {
    for (const [method, path] of [['GET', '/'], ['POST', '/orders/42'], ['DELETE', '/a/b/c'], ['PATCH', '/chaos']] as const) {
      const res = await fetch(`${backend.url}${path}?unrelated=1`, { method, body: method === 'POST' ? '{"x":1}' : undefined });
      assert.equal(res.status, 200, `${method} ${path}`);
      assert.equal(res.headers.get('x-backend-id'), 'b-traffic');
      assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
      assert.deepEqual(await res.json(), { backend: 'b-traffic', method, path });
    }
  });

  test('/health answers 200, then 503 while made to fail, then 200 again, through the control port', async () => {
    const health = async (): Promise<[number, unknown, string | null]> => {
      const res = await fetch(`${backend.url}/health`);
      return [res.status, await res.json(), res.headers.get('x-backend-id')];
    };
    assert.deepEqual(await health(), [200, { status: 'pass' }, 'b-traffic']);
    assert.equal((await backend.chaos({ health: 'fail' })).health, 'fail');
    assert.deepEqual(await health(), [503, { status: 'fail' }, 'b-traffic']);
    await backend.chaos({ health: 'pass' });
    assert.deepEqual(await health(), [200, { status: 'pass' }, 'b-traffic']);
    assert.match(backend.service.output(), / info chaos changed by PUT \/chaos: health pass -> fail$/m);
  });

  test('latencyMs 200 makes every answer take at least 200 ms', async () => {
    await backend.chaos({ latencyMs: 200 });
    const timings = await Promise.all(
      Array.from({ length: 4 }, async () => {
        const started = performance.now();
        const res = await fetch(`${backend.url}/slow`);
        await res.arrayBuffer();
        assert.equal(res.status, 200);
        return performance.now() - started;
      }),
    );
    for (const ms of timings) assert.ok(ms >= 200, `answer took ${ms.toFixed(1)} ms`);
  });

  test('latencyJitterMs adds up to that much on top of latencyMs', async () => {
    await backend.chaos({ latencyMs: 50, latencyJitterMs: 100 });
    const started = performance.now();
    const res = await fetch(`${backend.url}/jitter`);
    await res.arrayBuffer();
    assert.ok(performance.now() - started >= 50);
    assert.equal((await (await fetch(`${backend.controlUrl}/chaos`)).json() as { latencyJitterMs: number }).latencyJitterMs, 100);
  });

  test('errorRate 0.5 answers between 40% and 60% of 400 requests with errorStatus', async () => {
    await backend.chaos({ errorRate: 0.5, errorStatus: 503 });
    const statuses = await fetchMany(`${backend.url}/flaky`, 400);
    const errors = statuses.filter((s) => s === 503).length;
    assert.equal(errors + statuses.filter((s) => s === 200).length, 400, 'only 200 and 503 answers');
    assert.ok(errors >= 160 && errors <= 240, `${errors} errors of 400`);
    const injected = await fetch(`${backend.url}/flaky`);
    if (injected.status === 503) assert.equal(injected.headers.get('x-backend-id'), 'b-traffic');
    else await injected.arrayBuffer();
  });

  test('hang holds a request open past 1 s and clearing it releases it', async () => {
    await backend.chaos({ hang: true });
    let settled = false;
    const pending = fetch(`${backend.url}/stuck`).then(async (res) => {
      settled = true;
      return { status: res.status, body: await res.json() };
    });
    await new Promise((resolve) => setTimeout(resolve, 1200));
    assert.equal(settled, false, 'the request was answered while hang was set');
    const metrics = await (await fetch(`${backend.controlUrl}/metrics`)).text();
    assert.equal(sumCounter(metrics, 'backend_held_requests'), 1);
    await backend.chaos({ hang: false });
    const released = await pending;
    assert.deepEqual(released, { status: 200, body: { backend: 'b-traffic', method: 'GET', path: '/stuck' } });
  });

  test('?delay=MS delays one answer and ?size=BYTES pads it to that many bytes', async () => {
    const started = performance.now();
    const delayed = await fetch(`${backend.url}/d?delay=150`);
    await delayed.arrayBuffer();
    assert.ok(performance.now() - started >= 150);

    const sized = await fetch(`${backend.url}/s?size=1000`);
    const text = await sized.text();
    assert.equal(Buffer.byteLength(text), 1000);
    assert.equal(sized.headers.get('content-length'), '1000');
    const body = JSON.parse(text) as Record<string, unknown>;
    assert.equal(body.backend, 'b-traffic');
    assert.equal(body.path, '/s');

    const small = await fetch(`${backend.url}/s?size=5`);
    assert.deepEqual(await small.json(), { backend: 'b-traffic', method: 'GET', path: '/s', padding: '' });

    const bad = await fetch(`${backend.url}/s?delay=-1&size=huge`);
    assert.equal(bad.status, 400);
    const problems = ((await bad.json()) as { error: { problems: { path: string }[] } }).error.problems.map((p) => p.path);
    assert.deepEqual(problems, ['delay', 'size']);
  });

  test('/metrics on the control port counts requests by code and shows the active faults', async () => {
    const before = await (await fetch(`${backend.controlUrl}/metrics`)).text();
    await backend.chaos({ errorRate: 1, errorStatus: 502, latencyMs: 5 });
    await fetchMany(`${backend.url}/m`, 3);
    await backend.chaos({ errorRate: 0 });
    await fetchMany(`${backend.url}/m`, 2);
    const metrics = await (await fetch(`${backend.controlUrl}/metrics`)).text();
    const delta = (filter: string): number => sumCounter(metrics, 'backend_requests_total', filter) - sumCounter(before, 'backend_requests_total', filter);
    assert.equal(delta('code="502"'), 3);
    assert.equal(delta('code="200"'), 2);
    assert.equal(
      sumCounter(metrics, 'backend_request_duration_seconds_count') - sumCounter(before, 'backend_request_duration_seconds_count'),
      5,
    );
    assert.match(metrics, /^backend_chaos_latency_seconds\{backend="b-traffic"\} 0\.005$/m);
    assert.match(metrics, /^backend_chaos_error_status\{backend="b-traffic"\} 502$/m);
    assert.match(metrics, /^backend_chaos_hang\{backend="b-traffic"\} 0$/m);
    assert.match(metrics, /^# TYPE backend_request_duration_seconds histogram$/m);
  });
});
