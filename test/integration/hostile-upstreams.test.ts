/**
 * Misbehaving backends and clients (issue 13): garbage and oversized response heads, truncated
 * bodies, a backend that accepts and never answers, slow readers on either side, and clients that
 * go away mid-request. Each case asserts the exact answer, that nothing is left in flight, and
 * that the balancer meanwhile serves a good backend on a second listener with 0 errors.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { request } from 'node:http';
import { once } from 'node:events';
import { startBalancer, startHttpBackend, type RunningBalancer } from '../helpers/lab.js';
import { getJson, httpRequest, metricValue, sleep, waitFor } from '../helpers/http.js';
import { runLoad, type LoadRun } from '../helpers/load.js';

/** A raw TCP backend: each connection is handed to `serve` (after its /health checks are answered 200). */
async function rawBackend(t: TestContext, serve: (socket: net.Socket, head: string) => void): Promise<string> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let head = '';
    const onData = (chunk: Buffer): void => {
      head += chunk.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      socket.off('data', onData);
      if (head.startsWith('GET /health ')) socket.end('HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok');
      else serve(socket, head);
    };
    socket.on('data', onData);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => {
    for (const socket of sockets) socket.destroy();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
}

interface Lab {
  lb: RunningBalancer;
  /** the listener in front of the misbehaving backend */
  bad: string;
  /** a steady load through the other listener, to a good backend: started by `steady` */
  steady(durationMs: number): Promise<LoadRun>;
}

async function lab(t: TestContext, badUrl: string, extra: Record<string, unknown> = {}): Promise<Lab> {
  const good = await startHttpBackend(t, 'good');
  const lb = await startBalancer(t, {
    retries: { attempts: 0 },
    listeners: [
      { name: 'bad', listen: { host: '127.0.0.1', port: 0 }, backends: [{ url: badUrl, name: 'bad' }], ...extra },
      { name: 'good', listen: { host: '127.0.0.1', port: 0 }, backends: [{ url: good.url, name: 'good' }] },
    ],
  });
  const listeners = await getJson<{ name: string; address: string }[]>(`${lb.adminUrl}/listeners`);
  const url = (name: string): string => `http://${listeners.find((listener) => listener.name === name)!.address}`;
  return { lb, bad: url('bad'), steady: (durationMs) => runLoad({ url: `${url('good')}/steady`, rate: 100, durationMs }) };
}

async function expectNothingInFlight(lb: RunningBalancer): Promise<void> {
  const inFlight = async (): Promise<number | undefined> => metricValue(await lb.metrics(), 'lb_backend_active_requests', { listener: 'bad', backend: 'bad' });
  await waitFor('nothing in flight to the bad backend', async () => (await inFlight()) === 0, 5_000, 50).catch(async (error: Error) => {
    throw new Error(`${error.message}: ${await inFlight()} in flight`);
  });
}

function errorCode(body: string): string | undefined {
  try {
    return (JSON.parse(body) as { error?: { code?: string } }).error?.code;
  } catch {
    return undefined;
  }
}

test('a backend that answers garbage, or a response head over 16 KiB: 502 LB_ERR_UPSTREAM_ERROR; the other listener meets no error', async (t) => {
  const garbage = await rawBackend(t, (socket) => socket.end('THIS IS NOT HTTP\r\n\r\n'));
  const { lb, bad, steady } = await lab(t, garbage);
  const load = steady(2_000);
  const answers = await Promise.all(Array.from({ length: 10 }, () => httpRequest(`${bad}/garbage`)));
  for (const answer of answers) {
    assert.equal(answer.status, 502, answer.body);
    assert.equal(errorCode(answer.body), 'LB_ERR_UPSTREAM_ERROR');
  }
  const huge = await rawBackend(t, (socket) => socket.end(`HTTP/1.1 200 OK\r\nx-huge: ${'a'.repeat(100_000)}\r\ncontent-length: 0\r\n\r\n`));
  const second = await lab(t, huge);
  const big = await httpRequest(`${second.bad}/huge`);
  assert.equal(big.status, 502, big.body);
  assert.equal(errorCode(big.body), 'LB_ERR_UPSTREAM_ERROR');
  console.log(`# garbage: ${answers[0]!.status} ${errorCode(answers[0]!.body)}; 100 KB head: ${big.status} ${errorCode(big.body)}`);
  assert.equal((await load).failures().length, 0);
  await expectNothingInFlight(lb);
  await expectNothingInFlight(second.lb);
});

test('a body cut short by the backend: the client gets the head it sent and then a closed connection, not a hang; counted as 502', async (t) => {
  const truncating = await rawBackend(t, (socket) => socket.end('HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 1000\r\n\r\nonly ten b'));
  const { lb, bad, steady } = await lab(t, truncating);
  const load = steady(2_000);
  const outcome = await new Promise<{ status: number; received: number; aborted: boolean }>((resolve) => {
    const req = request(`${bad}/truncated`, { agent: false }, (res) => {
      let received = 0;
      res.on('data', (chunk: Buffer) => (received += chunk.length));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, received, aborted: false }));
      res.on('error', () => resolve({ status: res.statusCode ?? 0, received, aborted: true }));
      res.on('aborted', () => resolve({ status: res.statusCode ?? 0, received, aborted: true }));
    });
    req.on('error', () => resolve({ status: 0, received: 0, aborted: true }));
    req.end();
  });
  console.log(`# truncated body: status ${outcome.status}, ${outcome.received} of 1000 bytes, then the connection closed`);
  assert.deepEqual(outcome, { status: 200, received: 10, aborted: true });
  assert.equal((await load).failures().length, 0);
  await expectNothingInFlight(lb);
  assert.equal(metricValue(await lb.metrics(), 'lb_requests_total', { listener: 'bad', backend: 'bad', method: 'GET', code: '502' }), 1);
});

test('a backend that accepts and never answers: 504 LB_ERR_UPSTREAM_TIMEOUT after timeouts.perTry, nothing left in flight', async (t) => {
  const silent = await rawBackend(t, () => undefined);
  const { lb, bad, steady } = await lab(t, silent);
  const load = steady(2_000);
  const answers = await Promise.all(Array.from({ length: 5 }, () => httpRequest(`${bad}/hang`)));
  for (const answer of answers) {
    assert.equal(answer.status, 504, answer.body);
    assert.equal(errorCode(answer.body), 'LB_ERR_UPSTREAM_TIMEOUT');
  }
  console.log(`# never answers: ${answers[0]!.status} ${errorCode(answers[0]!.body)} after ${Math.round(Math.min(...answers.map((a) => a.ms)))}-${Math.round(Math.max(...answers.map((a) => a.ms)))} ms (perTry 500 ms)`);
  assert.equal((await load).failures().length, 0);
  await expectNothingInFlight(lb);
});

test('slow readers: a client that stops reading a large response holds the backend back (backpressure), and so does a backend that stops reading an upload', async (t) => {
  // The backend writes 64 KiB chunks as fast as the balancer takes them, and counts what it wrote.
  let written = 0;
  let writing = true;
  const streaming = await rawBackend(t, (socket) => {
    socket.write('HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ntransfer-encoding: chunked\r\n\r\n');
    const chunk = Buffer.alloc(65_536, 'a');
    const pump = (): void => {
      while (writing && socket.write(`${chunk.length.toString(16)}\r\n${chunk.toString('latin1')}\r\n`)) written += chunk.length;
      if (writing) socket.once('drain', pump);
    };
    pump();
  });
  const { lb, bad, steady } = await lab(t, streaming);
  const load = steady(3_000);
  const client = net.connect(Number(new URL(bad).port), '127.0.0.1');
  client.write('GET /big HTTP/1.1\r\nHost: x\r\n\r\n');
  client.pause();
  await sleep(1_500);
  const stalledAt = written;
  await sleep(1_000);
  writing = false;
  console.log(`# a client that does not read: the backend stalled after writing ${(stalledAt / 1e6).toFixed(1)} MB, and wrote ${((written - stalledAt) / 1e6).toFixed(1)} MB more in the next second`);
  assert.ok(stalledAt < 32e6, `the backend wrote ${stalledAt} bytes for a client that reads nothing`);
  assert.equal(written, stalledAt, 'stalled: nothing more was written');
  client.destroy();

  // A backend that reads nothing of an upload: the client's writes stall too.
  const deaf = await rawBackend(t, (socket) => socket.pause());
  const second = await lab(t, deaf, { timeouts: { perTry: '4s' } });
  const uploader = net.connect(Number(new URL(second.bad).port), '127.0.0.1');
  await once(uploader, 'connect');
  uploader.write('POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\n');
  const block = Buffer.alloc(65_536, 'b');
  let sent = 0;
  const deadline = Date.now() + 2_000;
  while (Date.now() < deadline) {
    if (uploader.write(block)) sent += block.length;
    else await Promise.race([once(uploader, 'drain'), sleep(200)]);
  }
  const uploadStalled = uploader.writableLength > 0;
  console.log(`# a backend that does not read: the client got ${(sent / 1e6).toFixed(1)} MB accepted before its writes stalled`);
  assert.ok(uploadStalled && sent < 64e6, `the client could send ${sent} bytes to a backend that reads nothing`);
  uploader.destroy();
  assert.equal((await load).failures().length, 0);
  await expectNothingInFlight(lb);
  // The balancer reads nothing more of that client (backpressure), so it learns that it is gone
  // only when the try's own timeout, timeouts.perTry, answers it.
  await expectNothingInFlight(second.lb);
});

test('clients that go away before their answer: counted as 499, nothing is left in flight, and the balancer keeps serving', async (t) => {
  const slow = await startHttpBackend(t, 'bad', { delayMs: 300 });
  const { lb, bad, steady } = await lab(t, slow.url);
  const load = steady(2_000);
  await Promise.all(
    Array.from({ length: 50 }, async (_, i) => {
      const socket = net.connect(Number(new URL(bad).port), '127.0.0.1');
      socket.on('error', () => {});
      socket.write(`GET /abort/${i} HTTP/1.1\r\nHost: x\r\n\r\n`);
      await sleep(50 + (i % 3) * 100); // before the backend's 300 ms answer
      socket.destroy();
    }),
  );
  await expectNothingInFlight(lb);
  const metrics = await lb.metrics();
  console.log(`# 50 aborted requests: counted as 499 ${metricValue(metrics, 'lb_requests_total', { listener: 'bad', backend: 'bad', method: 'GET', code: '499' }) ?? 0} times; nothing in flight`);
  assert.equal(metricValue(metrics, 'lb_requests_total', { listener: 'bad', backend: 'bad', method: 'GET', code: '499' }), 50);
  assert.equal((await load).failures().length, 0);
  assert.equal((await httpRequest(`${bad}/after`)).status, 200);
});
