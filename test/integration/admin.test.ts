import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startBalancer, startHttpBackend } from '../helpers/lab.js';
import { httpRequest, metricValue, waitFor, type HttpResult } from '../helpers/http.js';

const TOKEN = 'lab-secret';

function call(url: string, method: string, body?: unknown, token: string | null = TOKEN): Promise<HttpResult> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  return httpRequest(url, { method, headers, body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body) });
}

function errorOf(result: HttpResult): { code: string; message: string; problems?: { path: string; message: string }[] } {
  return (JSON.parse(result.body) as { error: { code: string; message: string; problems?: { path: string; message: string }[] } }).error;
}

test('admin status codes: 401 without token, 400 malformed, 404 unknown, 409 duplicate, 201 created; reads need no token', async (t) => {
  const b1 = await startHttpBackend(t, 'b1');
  const b2 = await startHttpBackend(t, 'b2');
  const lb = await startBalancer(t, { admin: { host: '127.0.0.1', port: 0, token: TOKEN }, backends: [{ url: b1.url, name: 'b1' }] });
  const admin = lb.adminUrl;

  const anonymous = await call(`${admin}/backends`, 'POST', { url: b2.url, name: 'b2' }, null);
  assert.equal(anonymous.status, 401);
  assert.equal(anonymous.headers['www-authenticate'], 'Bearer');
  assert.equal(errorOf(anonymous).code, 'ADMIN_ERR_UNAUTHORIZED');
  assert.equal((await call(`${admin}/backends`, 'POST', { url: b2.url, name: 'b2' }, 'wrong')).status, 401);
  assert.equal((await call(`${admin}/algorithm`, 'PUT', { name: 'p2c' }, null)).status, 401);
  assert.equal((await httpRequest(`${admin}/backends`)).status, 200, 'reads need no token');

  const malformed = await call(`${admin}/backends`, 'POST', '{"url": ');
  assert.equal(malformed.status, 400);
  assert.equal(errorOf(malformed).code, 'ADMIN_ERR_BAD_REQUEST');

  const invalid = await call(`${admin}/backends`, 'POST', { url: 'ftp://x', weight: -1, colour: 'red' });
  assert.equal(invalid.status, 400);
  assert.deepEqual(errorOf(invalid).problems!.map((p) => p.path).sort(), ['colour', 'url', 'weight']);

  assert.equal((await call(`${admin}/backends/nope`, 'PATCH', { weight: 2 })).status, 404);
  assert.equal((await call(`${admin}/backends/nope`, 'DELETE')).status, 404);

  const created = await call(`${admin}/backends`, 'POST', { url: b2.url, name: 'b2', weight: 2 });
  assert.equal(created.status, 201, created.body);
  assert.equal(created.headers.location, '/backends/b2');
  assert.deepEqual(JSON.parse(created.body), { id: 'b2', url: b2.url, weight: 2, state: 'unhealthy', activeRequests: 0, totalRequests: 0 });

  const duplicate = await call(`${admin}/backends`, 'POST', { url: b2.url, name: 'b2' });
  assert.equal(duplicate.status, 409);
  assert.equal(errorOf(duplicate).code, 'ADMIN_ERR_CONFLICT');

  await waitFor('the added backend to pass its first check', async () => (await lb.backends()).find((b) => b.id === 'b2')?.state === 'healthy');
  const bad = await call(`${admin}/backends/b2`, 'PATCH', { weight: 'heavy', drain: 'yes' });
  assert.equal(bad.status, 400);
  assert.equal(errorOf(bad).problems!.length, 2);
  assert.equal((await lb.backends()).find((b) => b.id === 'b2')!.weight, 2, 'a refused change changes nothing');

  const unknownAlgorithm = await call(`${admin}/algorithm`, 'PUT', { name: 'fastest' });
  assert.equal(unknownAlgorithm.status, 400);
  assert.match(errorOf(unknownAlgorithm).problems![0]!.message, /accepted: round-robin, weighted-round-robin, least-connections/);
  const switched = await call(`${admin}/algorithm`, 'PUT', { name: 'least-connections' });
  assert.equal(switched.status, 200);
  assert.equal(metricValue(await lb.metrics(), 'lb_info', { algorithm: 'least-connections' }), 1);
  const config = JSON.parse((await httpRequest(`${admin}/config`)).body) as { algorithm: string; admin: Record<string, unknown> };
  assert.equal(config.algorithm, 'least-connections');
  assert.equal(config.admin.token, undefined, 'GET /config never shows the token');

  assert.equal((await call(`${admin}/backends/b2`, 'DELETE')).status, 204);
  await waitFor('b2 to be gone', async () => !(await lb.backends()).some((b) => b.id === 'b2'));
});

test('draining: PATCH drain stops new requests to a backend while its requests in flight finish and its count falls to 0', async (t) => {
  const slow = await startHttpBackend(t, 'slow', { delayMs: 1_500 });
  const other = await startHttpBackend(t, 'other');
  const lb = await startBalancer(t, {
    backends: [{ url: slow.url, name: 'slow' }, { url: other.url, name: 'other' }],
    timeouts: { connect: '300ms', perTry: '5s', request: '10s' },
  });
  const inFlight = httpRequest(`${lb.url}/long`);
  await waitFor('a request in flight on slow', async () => (await lb.backends()).find((b) => b.id === 'slow')?.activeRequests === 1);

  const drained = await call(`${lb.adminUrl}/backends/slow`, 'PATCH', { drain: true });
  assert.equal(drained.status, 200);
  assert.equal((JSON.parse(drained.body) as { state: string }).state, 'draining');
  const before = slow.requests;
  for (let i = 0; i < 10; i++) assert.equal((await httpRequest(`${lb.url}/x`)).headers['x-backend-id'], 'other');
  assert.equal(slow.requests, before, 'no new request reaches a draining backend');
  const views = await lb.backends();
  assert.equal(views.find((b) => b.id === 'slow')!.activeRequests, 1);

  assert.equal((await inFlight).status, 200, 'the request in flight finishes normally');
  await waitFor('the draining backend to reach 0 active requests', async () => (await lb.backends()).find((b) => b.id === 'slow')?.activeRequests === 0);

  await call(`${lb.adminUrl}/backends/slow`, 'PATCH', { drain: false });
  const back = await Promise.all(Array.from({ length: 4 }, () => httpRequest(`${lb.url}/x`)));
  assert.ok(back.some((r) => r.headers['x-backend-id'] === 'slow'), 'undrained, it takes requests again');
});

test('BALANCER_ADMIN_TOKEN sets the token over the file, and again at every reload of the file', async (t) => {
  const b1 = await startHttpBackend(t, 'b1');
  const lb = await startBalancer(t, { admin: { host: '127.0.0.1', port: 0, token: 'from-the-file' }, backends: [{ url: b1.url, name: 'b1' }] }, { BALANCER_ADMIN_TOKEN: 'from-the-env' });
  const admin = lb.adminUrl;
  assert.equal((await call(`${admin}/algorithm`, 'PUT', { name: 'p2c' }, 'from-the-file')).status, 401, 'the file token is overridden');
  assert.equal((await call(`${admin}/algorithm`, 'PUT', { name: 'p2c' }, 'from-the-env')).status, 200);
  const reload = await call(`${admin}/config/reload`, 'POST', undefined, 'from-the-env');
  assert.equal(reload.status, 200, reload.body);
  assert.equal((await call(`${admin}/algorithm`, 'PUT', { name: 'ewma' }, 'from-the-file')).status, 401, 'a reload of the file keeps the token from the environment');
  const lowercase = await httpRequest(`${admin}/algorithm`, { method: 'PUT', headers: { 'content-type': 'application/json', authorization: 'bearer from-the-env' }, body: '{"name": "ewma"}' });
  assert.equal(lowercase.status, 200, 'the scheme is case-insensitive');
  assert.doesNotMatch((await httpRequest(`${admin}/config`)).body, /from-the-env/, 'GET /config never shows it');
});
