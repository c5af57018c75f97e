import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request } from 'node:http';
import { once } from 'node:events';
import type { Socket } from 'node:net';
import { startBalancer, startHttpBackend, testEngine } from '../helpers/lab.js';
import { httpRequest, metricValue, sleep, waitFor } from '../helpers/http.js';

test('forwarding headers are added, X-Request-Id is kept or created, hop-by-hop headers are stripped both ways', async (t) => {
  const upstream = createServer((req, res) => {
    res.setHeader('keep-alive', 'timeout=99');
    res.setHeader('x-upstream-private', 'hop');
    res.setHeader('connection', 'x-upstream-private');
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(req.headers));
  });
  upstream.listen(0, '127.0.0.1');
  await once(upstream, 'listening');
  t.after(() => upstream.close());
  const url = `http://127.0.0.1:${(upstream.address() as { port: number }).port}`;
  const lb = await startBalancer(t, { backends: [{ url, name: 'echo' }], healthCheck: { enabled: false } });

  const sent = await httpRequest(`${lb.url}/h`, {
    headers: { 'x-request-id': 'client-id-1', 'x-forwarded-for': '203.0.113.7', connection: 'x-secret, keep-alive', 'x-secret': 'do-not-forward', te: 'trailers', 'keep-alive': 'timeout=5' },
  });
  const seen = JSON.parse(sent.body) as Record<string, string>;
  assert.equal(seen['x-request-id'], 'client-id-1');
  assert.equal(seen['x-forwarded-for'], '203.0.113.7, 127.0.0.1');
  assert.equal(seen['x-forwarded-proto'], 'http');
  assert.equal(seen['x-forwarded-host'], new URL(lb.url).host);
  assert.equal(seen['x-secret'], undefined, 'a header named by Connection is hop-by-hop');
  assert.equal(seen.te, undefined);
  assert.equal(seen['keep-alive'], undefined);
  assert.equal(sent.headers['x-request-id'], 'client-id-1');
  assert.equal(sent.headers['keep-alive'], 'timeout=5', 'the balancer\'s own idle timeout, not the upstream\'s 99 s');
  assert.equal(sent.headers.connection, 'keep-alive');
  assert.equal(sent.headers['x-upstream-private'], undefined, 'a response header named by Connection is hop-by-hop');

  const created = await httpRequest(`${lb.url}/h`);
  const createdId = (JSON.parse(created.body) as Record<string, string>)['x-request-id'];
  assert.match(createdId ?? '', /^[0-9a-f-]{36}$/);
  assert.equal(created.headers['x-request-id'], createdId);
});

test('WebSocket upgrades are proxied and both directions flow', async (t) => {
  const upstream = createServer((_req, res) => res.end('plain'));
  upstream.on('upgrade', (req, socket: Socket) => {
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nupgrade: ${req.headers.upgrade}\r\nconnection: Upgrade\r\nx-backend-id: ws1\r\n\r\n`);
    socket.on('data', (chunk) => socket.write(`echo:${chunk.toString()}`));
    socket.on('end', () => socket.end());
  });
  upstream.listen(0, '127.0.0.1');
  await once(upstream, 'listening');
  t.after(() => {
    upstream.closeAllConnections();
    upstream.close();
  });
  const lb = await startBalancer(t, { backends: [{ url: `http://127.0.0.1:${(upstream.address() as { port: number }).port}`, name: 'ws1' }], healthCheck: { enabled: false } });

  const req = request(`${lb.url}/socket`, { headers: { connection: 'Upgrade', upgrade: 'websocket' } });
  req.end();
  const [res, socket] = (await once(req, 'upgrade')) as [{ statusCode: number; headers: Record<string, string> }, Socket];
  assert.equal(res.statusCode, 101);
  assert.equal(res.headers['x-backend-id'], 'ws1');
  socket.write('hello');
  const [reply] = (await once(socket, 'data')) as [Buffer];
  assert.equal(reply.toString(), 'echo:hello');
  // The primary hears of a worker's load in its next report, within 50 ms.
  await waitFor('the open WebSocket to count as an active request', async () => (await lb.backends())[0]!.activeRequests === 1, 2_000, 10);
  socket.destroy();
  await waitFor('the closed WebSocket to leave the count', async () => (await lb.backends())[0]!.activeRequests === 0);
});

test('a backend that sends no headers within perTry gets 504 LB_ERR_UPSTREAM_TIMEOUT after every attempt', async (t) => {
  const slow1 = await startHttpBackend(t, 'slow1', { delayMs: 2_000 });
  const slow2 = await startHttpBackend(t, 'slow2', { delayMs: 2_000 });
  const lb = await startBalancer(t, {
    backends: [slow1, slow2].map((b) => ({ url: b.url, name: b.id })),
    timeouts: { connect: '300ms', perTry: '300ms', request: '5s' },
    retries: { attempts: 1 },
    healthCheck: { enabled: false },
  });
  const answer = await httpRequest(`${lb.url}/slow`);
  assert.equal(answer.status, 504);
  assert.match(answer.body, /LB_ERR_UPSTREAM_TIMEOUT/);
  assert.ok(answer.ms >= 550 && answer.ms < 1_500, `two tries of 300 ms took ${answer.ms.toFixed(0)} ms`);
  assert.equal(slow1.requests + slow2.requests, 2, 'one try on each backend');
  const metrics = await lb.metrics();
  assert.equal((metricValue(metrics, 'lb_retries_total', { backend: 'slow1' }) ?? 0) + (metricValue(metrics, 'lb_retries_total', { backend: 'slow2' }) ?? 0), 1);
});

test('timeouts.request bounds the whole request, retries included: 504 LB_ERR_REQUEST_TIMEOUT', async (t) => {
  const slow = await startHttpBackend(t, 'slow', { delayMs: 3_000 });
  const lb = await startBalancer(t, {
    backends: [{ url: slow.url, name: 'slow' }],
    timeouts: { connect: '300ms', perTry: '2s', request: '400ms' },
    healthCheck: { enabled: false },
  });
  const answer = await httpRequest(`${lb.url}/slow`);
  assert.equal(answer.status, 504);
  assert.match(answer.body, /LB_ERR_REQUEST_TIMEOUT/);
});

test('every metric of the contract is exposed on the admin listener, with /healthz and /backends', async (t) => {
  const b1 = await startHttpBackend(t, 'm1');
  const lb = await startBalancer(t, { backends: [{ url: b1.url, name: 'm1' }, { url: 'http://127.0.0.1:1', name: 'gone' }] });
  for (let i = 0; i < 5; i++) await httpRequest(`${lb.url}/x`);
  const metrics = await lb.metrics();
  for (const name of ['lb_requests_total', 'lb_request_duration_seconds', 'lb_backend_up', 'lb_backend_active_requests', 'lb_retries_total', 'lb_health_checks_total', 'lb_config_reloads_total', 'lb_info']) {
    assert.match(metrics, new RegExp(`^# TYPE ${name} `, 'm'), `${name} missing`);
  }
  assert.equal(metricValue(metrics, 'lb_requests_total', { backend: 'm1', method: 'GET', code: '200' }), 5);
  assert.equal(metricValue(metrics, 'lb_request_duration_seconds_count', { backend: 'm1' }), 5);
  assert.equal(metricValue(metrics, 'lb_backend_up', { backend: 'm1' }), 1);
  assert.equal(metricValue(metrics, 'lb_backend_up', { backend: 'gone' }), 0);
  assert.equal(metricValue(metrics, 'lb_health_checks_total', { backend: 'gone', result: 'fail' }), 1);
  assert.equal(metricValue(metrics, 'lb_info', { algorithm: 'round-robin', engine: testEngine }), 1);
  assert.equal((await httpRequest(`${lb.adminUrl}/healthz`)).status, 200);
  const views = await lb.backends();
  assert.deepEqual(views.map((b) => [b.id, b.state, b.weight]), [['m1', 'healthy', 1], ['gone', 'unhealthy', 1]]);
  // GET /backends adds up the workers' reports, sent every 50 ms.
  await waitFor('GET /backends to count the 5 requests', async () => (await lb.backends())[0]!.totalRequests === 5, 2_000, 10);
});

test('requests refused for lack of a backend count under backend="none"', async (t) => {
  const lb = await startBalancer(t, { backends: [{ url: 'http://127.0.0.1:1', name: 'gone' }] });
  const answer = await httpRequest(`${lb.url}/x`);
  assert.equal(answer.status, 503);
  assert.deepEqual(JSON.parse(answer.body), { error: { code: 'LB_ERR_NO_BACKEND', message: 'no backend is available to take the request' } });
  assert.equal(metricValue(await lb.metrics(), 'lb_requests_total', { backend: 'none', code: '503' }), 1);
});

test('SIGTERM: the balancer stops accepting, finishes the request in flight, and exits 0', async (t) => {
  const slow = await startHttpBackend(t, 'slow', { delayMs: 800 });
  const lb = await startBalancer(t, {
    backends: [{ url: slow.url, name: 'slow' }],
    healthCheck: { enabled: false },
    timeouts: { perTry: '5s', request: '10s', shutdown: '5s' },
  });
  const inFlight = httpRequest(`${lb.url}/long`);
  await waitFor('the request to reach the backend', async () => (await lb.backends())[0]!.activeRequests === 1);
  lb.service.child.kill('SIGTERM');
  await sleep(100);
  await assert.rejects(httpRequest(`${lb.url}/late`, { timeoutMs: 1_000 }), /ECONNREFUSED/);
  const answer = await inFlight;
  assert.equal(answer.status, 200);
  assert.equal(answer.headers.connection, 'close');
  assert.equal(await lb.service.exited, 0);
  assert.match(lb.service.output(), /SIGTERM: shutting down inFlight=1/);
});
