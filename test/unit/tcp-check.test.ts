import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { tcpCheck } from '../../balancer/src/tcp/check.js';
import { blackholePort as blackhole } from '../helpers/blackhole.js';

const HOST = '127.0.0.1';

async function listen(server: Server): Promise<number> {
  server.listen(0, HOST);
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}


test('tcp check: a listening port passes, and the check closes its connection at once', { timeout: 10_000 }, async (t) => {
  const server = createServer();
  const port = await listen(server);
  t.after(() => server.close());
  const accepted = once(server, 'connection') as Promise<[Socket]>;
  assert.deepEqual(await tcpCheck(HOST, port, 1000), { passed: true, detail: 'connected', timedOut: false });
  const [socket] = await accepted;
  socket.resume();
  await once(socket, 'end');
  socket.destroy();
});

test('tcp check: a closed port fails with ECONNREFUSED', { timeout: 10_000 }, async () => {
  const server = createServer();
  const port = await listen(server);
  await new Promise((resolve) => server.close(resolve));
  assert.deepEqual(await tcpCheck(HOST, port, 1000), { passed: false, detail: 'ECONNREFUSED', timedOut: false });
});

test('tcp check: a port that never answers fails after the timeout', { timeout: 10_000 }, async (t) => {
  const port = await blackhole(t);
  const started = performance.now();
  assert.deepEqual(await tcpCheck(HOST, port, 200), { passed: false, detail: 'timeout after 200 ms', timedOut: true });
  const waited = performance.now() - started;
  assert.ok(waited >= 190 && waited < 2000, `${waited.toFixed(0)} ms`);
});

test('tcp check: a bad port fails without throwing', { timeout: 10_000 }, async () => {
  const result = await tcpCheck(HOST, 70_000, 200);
  assert.equal(result.passed, false);
  assert.equal(result.detail, 'ERR_SOCKET_BAD_PORT');
});
