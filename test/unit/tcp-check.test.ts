import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { tcpCheck } from '../../balancer/src/tcp/check.js';

const HOST = '127.0.0.1';

async function listen(server: Server): Promise<number> {
  server.listen(0, HOST);
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

/**
 * blackhole: a port that never answers a connect (as in tcp-relay.test.ts). A worker thread
 * listens with a backlog of 1 and blocks, so nothing is ever accepted; once Linux has queued
 * backlog + 1 connections it drops every further SYN.
 */
async function blackhole(t: TestContext): Promise<number> {
  const release = new Int32Array(new SharedArrayBuffer(4));
  const worker = new Worker(
    `const { createServer } = require('node:net');
     const { parentPort, workerData } = require('node:worker_threads');
     const server = createServer().listen({ host: '127.0.0.1', port: 0, backlog: 1 }, () => {
       parentPort.postMessage(server.address().port);
       Atomics.wait(workerData, 0, 0);
       process.exit(0);
     });`,
    { eval: true, workerData: release },
  );
  const [port] = (await once(worker, 'message')) as [number];
  const fillers: Socket[] = [];
  for (let queued = 0; queued < 2; queued++) {
    const filler = connect({ host: HOST, port });
    filler.on('error', () => {});
    fillers.push(filler);
    await once(filler, 'connect');
  }
  t.after(async () => {
    for (const filler of fillers) filler.destroy();
    Atomics.store(release, 0, 1);
    Atomics.notify(release, 0);
    await once(worker, 'exit');
  });
  return port;
}

test('tcp check: a listening port passes, and the check closes its connection at once', { timeout: 10_000 }, async (t) => {
  const server = createServer();
  const port = await listen(server);
  t.after(() => server.close());
  const accepted = once(server, 'connection') as Promise<[Socket]>;
  assert.deepEqual(await tcpCheck(HOST, port, 1000), { passed: true, detail: 'connected' });
  const [socket] = await accepted;
  socket.resume();
  await once(socket, 'end');
  socket.destroy();
});

test('tcp check: a closed port fails with ECONNREFUSED', { timeout: 10_000 }, async () => {
  const server = createServer();
  const port = await listen(server);
  await new Promise((resolve) => server.close(resolve));
  assert.deepEqual(await tcpCheck(HOST, port, 1000), { passed: false, detail: 'ECONNREFUSED' });
});

test('tcp check: a port that never answers fails after the timeout', { timeout: 10_000 }, async (t) => {
  const port = await blackhole(t);
  const started = performance.now();
  assert.deepEqual(await tcpCheck(HOST, port, 200), { passed: false, detail: 'timeout after 200 ms' });
  const waited = performance.now() - started;
  assert.ok(waited >= 190 && waited < 2000, `${waited.toFixed(0)} ms`);
});

test('tcp check: a bad port fails without throwing', { timeout: 10_000 }, async () => {
  const result = await tcpCheck(HOST, 70_000, 200);
  assert.equal(result.passed, false);
  assert.equal(result.detail, 'ERR_SOCKET_BAD_PORT');
});
