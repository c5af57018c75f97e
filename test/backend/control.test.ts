import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend, type RunningBackend } from '../helpers/backend.js';
import { startService } from '../helpers/processes.js';

interface Refusal {
  error: { code: string; message: string; problems: { path: string; message: string }[] };
}

describe('backend control port', { timeout: 60_000 }, () => {
  let backend: RunningBackend;

  before(async () => {
    backend = await startBackend('b-control');
  });
  after(async () => {
    await backend?.service.stop();
  });

  const getChaos = async (): Promise<unknown> => (await fetch(`${backend.controlUrl}/chaos`)).json();

  test('an invalid chaos body is refused with every problem listed, and nothing changes', async () => {
    await backend.chaos({ errorStatus: 503 });
    const state = await getChaos();
    const bodies: [string, string[]][] = [
      ['{"health":"fail","latencyMs":-5,"errorRate":2,"hang":"yes","errorStatus":200,"bogus":1}', ['bogus', 'latencyMs', 'errorRate', 'errorStatus', 'hang']],
      ['{"latencyJitterMs":"10"}', ['latencyJitterMs']],
      ['[{"hang":true}]', ['body']],
      ['{"hang": tru', ['body']],
      ['"hang"', ['body']],
    ];
    for (const [body, paths] of bodies) {
      const res = await fetch(`${backend.controlUrl}/chaos`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body });
      assert.equal(res.status, 400, body);
      const refusal = (await res.json()) as Refusal;
      assert.equal(refusal.error.code, 'BACKEND_ERR_INVALID_CHAOS');
      assert.deepEqual(refusal.error.problems.map((p) => p.path), paths, body);
    }
    assert.deepEqual(await getChaos(), state);
    const health = await fetch(`${backend.url}/health`);
    assert.equal(health.status, 200, 'the valid field of a refused body was not applied');
    await health.arrayBuffer();
  });

  test('PUT sets only the fields given, DELETE clears every fault, and curl-style bodies without a JSON content type work', async () => {
    await backend.chaos({ latencyMs: 10 });
    const res = await fetch(`${backend.controlUrl}/chaos`, { method: 'PUT', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: '{"errorRate":0.25}' });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { latencyMs: 10, latencyJitterMs: 0, errorRate: 0.25, errorStatus: 503, health: 'pass', hang: false });
    const cleared = await fetch(`${backend.controlUrl}/chaos`, { method: 'DELETE' });
    assert.deepEqual(await cleared.json(), { latencyMs: 0, latencyJitterMs: 0, errorRate: 0, errorStatus: 500, health: 'pass', hang: false });
    assert.match(backend.service.output(), / info chaos changed by DELETE \/chaos: latencyMs 10 -> 0, errorRate 0.25 -> 0, errorStatus 503 -> 500$/m);
  });

  test('the traffic port ignores chaos commands: they are ordinary requests there', async () => {
    const before = await getChaos();
    for (const [method, path, body] of [
      ['PUT', '/chaos', '{"hang":true,"health":"fail"}'],
      ['DELETE', '/chaos', undefined],
      ['POST', '/chaos/crash', undefined],
    ] as const) {
      const res = await fetch(`${backend.url}${path}`, { method, headers: { 'content-type': 'application/json' }, body });
      assert.equal(res.status, 200);
      assert.deepEqual(await res.json(), { backend: 'b-control', method, path });
    }
    assert.deepEqual(await getChaos(), before);
    assert.equal(backend.service.child.exitCode, null, 'still running');
    const health = await fetch(`${backend.url}/health`);
    assert.equal(health.status, 200);
    await health.arrayBuffer();
  });

  test('unknown control routes answer 404 JSON', async () => {
    const res = await fetch(`${backend.controlUrl}/nope`);
    assert.equal(res.status, 404);
    assert.equal(((await res.json()) as Refusal).error.code, 'BACKEND_ERR_NOT_FOUND');
  });
});

describe('backend process lifecycle', { timeout: 60_000 }, () => {
  test('the ready line names the id and both real ports', async (t) => {
    const backend = await startBackend('b-ready');
    t.after(() => backend.service.stop());
    assert.match(backend.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.match(backend.controlUrl, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.notEqual(backend.url, backend.controlUrl);
    const res = await fetch(backend.url);
    assert.equal(res.headers.get('x-backend-id'), 'b-ready');
    await res.arrayBuffer();
  });

  test('POST /chaos/crash answers, then the process exits non-zero', async (t) => {
    const backend = await startBackend('b-crash');
    t.after(() => backend.service.stop('SIGKILL'));
    const res = await fetch(`${backend.controlUrl}/chaos/crash`, { method: 'POST' });
    assert.equal(res.status, 202);
    assert.deepEqual(await res.json(), { backend: 'b-crash', crashing: true, exitCode: 1 });
    assert.equal(await backend.service.exited, 1);
    await assert.rejects(fetch(backend.url), 'the traffic port is gone');
    assert.match(backend.service.output(), / warn crashing on request/);
  });

  test('SIGTERM stops accepting, finishes the request in flight, and exits 0', async (t) => {
    const backend = await startBackend('b-term');
    t.after(() => backend.service.stop('SIGKILL'));
    const inFlight = fetch(`${backend.url}/slow?delay=600`);
    await new Promise((resolve) => setTimeout(resolve, 150));
    backend.service.child.kill('SIGTERM');
    await backend.service.waitForLine(/SIGTERM: closing listeners, draining 1 in-flight requests/);
    await assert.rejects(fetch(`${backend.url}/new`, { headers: { connection: 'close' } }), 'a new connection is refused while draining');
    const res = await inFlight;
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('connection'), 'close');
    assert.deepEqual(await res.json(), { backend: 'b-term', method: 'GET', path: '/slow' });
    assert.equal(await backend.service.exited, 0);
  });

  test('SIGTERM releases requests held by hang and still exits 0', async (t) => {
    const backend = await startBackend('b-term-hang');
    t.after(() => backend.service.stop('SIGKILL'));
    await backend.chaos({ hang: true });
    const held = fetch(`${backend.url}/held`);
    await new Promise((resolve) => setTimeout(resolve, 150));
    backend.service.child.kill('SIGTERM');
    const res = await held;
    assert.equal(res.status, 200);
    await res.arrayBuffer();
    assert.equal(await backend.service.exited, 0);
  });

  test('a bad environment variable is named, and the process exits 2 without listening', async () => {
    const { service } = await startService('backend bad env', 'backend/dist/main.js', { env: { PORT: 'eighty', CONTROL_PORT: '0', BACKEND_ID: 'x' } });
    assert.equal(await service.exited, 2);
    assert.match(service.output(), /PORT must be a whole number from 0 to 65535; got "eighty"/);
  });
});
