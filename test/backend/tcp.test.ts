import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import { once } from 'node:events';
import { sumCounter } from '../helpers/backend.js';
import { startService } from '../helpers/processes.js';
import { connectTcp, startTcpBackend, type TcpBackend } from '../helpers/tcp.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

describe('backend TCP echo port', { timeout: 60_000 }, () => {
  let backend: TcpBackend;

  before(async () => {
    backend = await startTcpBackend('b-tcp');
  });
  after(async () => {
    await backend?.service.stop();
  });
  beforeEach(async () => {
    const res = await fetch(`${backend.controlUrl}/chaos`, { method: 'DELETE' });
    assert.equal(res.status, 200);
  });

  test('the ready line names the real TCP port, and each connection is greeted with the backend id', async () => {
    assert.equal(backend.tcp.host, '127.0.0.1');
    assert.ok(backend.tcp.port > 0, `port ${backend.tcp.port}`);
    const client = await connectTcp(backend.tcp.port);
    assert.equal(await client.greeting(), 'b-tcp');
    assert.equal(client.received().toString(), 'b-tcp\n', 'nothing but the greeting before the client sends');
    client.socket.write('ping');
    assert.equal((await client.waitForBytes(10)).toString(), 'b-tcp\nping');
    client.socket.end();
    await client.ended;
  });

  test('1 MiB sent comes back intact, then the backend ends after the client ends', async () => {
    const payload = randomBytes(1024 * 1024);
    const client = await connectTcp(backend.tcp.port);
    await client.greeting();
    client.socket.end(payload);
    const received = await client.ended;
    const echo = received.subarray('b-tcp\n'.length);
    assert.equal(echo.length, payload.length);
    assert.equal(sha256(echo), sha256(payload));
    assert.equal(await client.closed, false, 'closed without an error');
  });

  test('half-close: after the client ends its side, it still gets the whole echo and then the end', async () => {
    await backend.chaos({ latencyMs: 100 });
    const client = await connectTcp(backend.tcp.port);
    await client.greeting();
    client.socket.write('first ');
    client.socket.end('and last');
    const started = performance.now();
    const received = await client.ended;
    assert.equal(received.toString(), 'b-tcp\nfirst and last');
    assert.ok(performance.now() - started >= 90, 'the end came after the delayed echo, not before');
  });

  // Through the delay line the echo is at most MAX_DELAYED_BYTES per latency, so less is sent there.
  for (const [latencyMs, mib] of [[0, 160], [20, 64]] as const) {
    test(`a client that does not read is not buffered for without bound, and gets every byte once it reads (latencyMs ${latencyMs})`, async (t) => {
      await backend.chaos({ latencyMs });
      const total = mib * 1024 * 1024;
      const chunk = randomBytes(64 * 1024);
      const client = await connectTcp(backend.tcp.port);
      await client.greeting();
      client.socket.pause();
      const hash = createHash('sha256');
      let flushed = 0;
      let sent = 0;
      let stalled = false;
      const writer = (async () => {
        while (sent < total) {
          hash.update(chunk);
          sent += chunk.length;
          const more = client.socket.write(chunk, () => (flushed += chunk.length));
          if (!more) await new Promise((resolve) => client.socket.once('drain', resolve));
        }
        client.socket.end();
      })();
      // Wait until the bytes handed to the kernel stop growing: everything between the client's send buffer and its unread receive buffer is full.
      let last = -1;
      for (let i = 0; i < 100 && !stalled; i++) {
        await sleep(100);
        stalled = flushed === last;
        last = flushed;
      }
      t.diagnostic(`the writes stalled after ${(flushed / 1024 / 1024).toFixed(1)} MiB`);
      assert.ok(stalled, `the client kept writing (${flushed} bytes) although it read nothing`);
      assert.ok(flushed < total / 2, `${flushed} of ${total} bytes were taken in while the client read nothing`);

      // The greeting was read already; from here on, hash the echo instead of keeping it.
      const echo = createHash('sha256');
      let echoed = 0;
      client.socket.removeAllListeners('data');
      client.socket.on('data', (data: Buffer) => {
        echoed += data.length;
        echo.update(data);
      });
      const ended = new Promise((resolve) => client.socket.once('end', resolve));
      client.socket.resume();
      await writer;
      await ended;
      assert.equal(echoed, total);
      assert.equal(echo.digest('hex'), hash.digest('hex'));
    });
  }

  test('latencyMs delays every echo and keeps the byte order', async () => {
    await backend.chaos({ latencyMs: 250 });
    const client = await connectTcp(backend.tcp.port);
    const greeted = performance.now();
    assert.equal(await client.greeting(), 'b-tcp');
    assert.ok(performance.now() - greeted < 200, 'the greeting is not delayed');
    const started = performance.now();
    client.socket.write('one,');
    await sleep(20);
    client.socket.write('two,');
    await sleep(20);
    client.socket.write('three');
    const all = await client.waitForBytes('b-tcp\none,two,three'.length, 3000);
    const elapsed = performance.now() - started;
    assert.equal(all.toString(), 'b-tcp\none,two,three');
    assert.ok(elapsed >= 250, `echoed after ${elapsed.toFixed(1)} ms`);
    client.socket.end();
    await client.ended;
  });

  test('latency delays the bytes, not the stream: 1 MiB through latencyMs 200 plus jitter comes back intact and in order, in well under a second', async () => {
    await backend.chaos({ latencyMs: 200, latencyJitterMs: 100 });
    const payload = randomBytes(1024 * 1024);
    const client = await connectTcp(backend.tcp.port);
    await client.greeting();
    const started = performance.now();
    for (let offset = 0; offset < payload.length; offset += 4096) client.socket.write(payload.subarray(offset, offset + 4096));
    client.socket.end();
    const echo = (await client.ended).subarray('b-tcp\n'.length);
    const elapsed = performance.now() - started;
    assert.equal(sha256(echo), sha256(payload));
    assert.ok(elapsed >= 200 && elapsed < 1500, `took ${elapsed.toFixed(0)} ms`);
  });

  test('hang accepts connections but neither greets nor echoes, and clearing it releases them', async () => {
    await backend.chaos({ latencyMs: 0 });
    const open = await connectTcp(backend.tcp.port);
    assert.equal(await open.greeting(), 'b-tcp');
    await backend.chaos({ hang: true });
    const fresh = await connectTcp(backend.tcp.port);
    fresh.socket.write('held');
    open.socket.write('also held');
    await sleep(800);
    assert.equal(fresh.received().length, 0, 'no greeting while hang is set');
    assert.equal(open.received().toString(), 'b-tcp\n', 'no echo while hang is set');
    const metrics = await (await fetch(`${backend.controlUrl}/metrics`)).text();
    assert.equal(sumCounter(metrics, 'backend_held_requests'), 2, 'one connection before its greeting, one echo');
    assert.equal(sumCounter(metrics, 'backend_tcp_active_connections'), 2);

    await backend.chaos({ hang: false });
    assert.equal((await fresh.waitForBytes(10)).toString(), 'b-tcp\nheld');
    assert.equal((await open.waitForBytes(15)).toString(), 'b-tcp\nalso held');
    for (const client of [open, fresh]) {
      client.socket.end();
      await client.ended;
    }
  });

  test('/metrics counts the TCP connections accepted', async () => {
    const count = async (): Promise<number> => sumCounter(await (await fetch(`${backend.controlUrl}/metrics`)).text(), 'backend_tcp_connections_total');
    const before = await count();
    for (let i = 0; i < 3; i++) {
      const client = await connectTcp(backend.tcp.port);
      await client.greeting();
      client.socket.end();
      await client.ended;
    }
    assert.equal(await count(), before + 3);
  });
});

describe('backend TCP port lifecycle', { timeout: 60_000 }, () => {
  test('SIGTERM echoes what was read (delayed or not), ends open connections, closes the port and exits 0', async (t) => {
    const backend = await startTcpBackend('b-tcp-term');
    t.after(() => backend.service.stop('SIGKILL'));
    const client = await connectTcp(backend.tcp.port);
    await client.greeting();
    client.socket.write('before,');
    await client.waitForBytes('b-tcp-term\nbefore,'.length);
    await backend.chaos({ latencyMs: 300 });
    client.socket.write('delayed');
    await sleep(50);
    backend.service.child.kill('SIGTERM');
    await backend.service.waitForLine(/SIGTERM: closing listeners, draining 0 in-flight requests and 1 TCP connections/);
    assert.equal((await client.ended).toString(), 'b-tcp-term\nbefore,delayed', 'the backend echoed what it had read, then ended its side');
    client.socket.end();
    assert.equal(await backend.service.exited, 0);
    await assert.rejects(connectTcp(backend.tcp.port), /ECONNREFUSED/, 'the TCP port is closed');
    assert.match(backend.service.output(), / info stopped$/m);
  });

  test('SIGTERM releases a connection held by hang and still exits 0', async (t) => {
    const backend = await startTcpBackend('b-tcp-term-hang');
    t.after(() => backend.service.stop('SIGKILL'));
    await backend.chaos({ hang: true });
    const client = await connectTcp(backend.tcp.port);
    await sleep(150);
    backend.service.child.kill('SIGTERM');
    assert.equal((await client.ended).length, 0, 'ended without a greeting');
    client.socket.end();
    assert.equal(await backend.service.exited, 0);
  });

  test('a client that never closes is dropped at SHUTDOWN_TIMEOUT_MS', async (t) => {
    const backend = await startTcpBackend('b-tcp-stuck', { SHUTDOWN_TIMEOUT_MS: '500' });
    t.after(() => backend.service.stop('SIGKILL'));
    const client = await connectTcp(backend.tcp.port);
    await client.greeting();
    const started = performance.now();
    backend.service.child.kill('SIGTERM');
    await client.ended;
    // The client keeps its side open (allowHalfOpen), so only the shutdown timeout closes the connection.
    assert.equal(await backend.service.exited, 1);
    assert.ok(performance.now() - started >= 450, 'closed by the timeout, not before');
    assert.match(backend.service.output(), /shutdown timeout \(500 ms\).* 1 TCP connections still open/);
    client.socket.destroy();
  });

  test('POST /chaos/crash drops the TCP connections with the process', async (t) => {
    const backend = await startTcpBackend('b-tcp-crash');
    t.after(() => backend.service.stop('SIGKILL'));
    const client = await connectTcp(backend.tcp.port);
    await client.greeting();
    const res = await fetch(`${backend.controlUrl}/chaos/crash`, { method: 'POST' });
    assert.equal(res.status, 202);
    await res.arrayBuffer();
    assert.equal(await backend.service.exited, 1);
    assert.equal((await client.ended).toString(), 'b-tcp-crash\n', 'the connection ended with the process');
    await assert.rejects(connectTcp(backend.tcp.port), /ECONNREFUSED/);
  });

  test('a TCP_PORT already taken is named, and the process exits 1', async (t) => {
    const taken = net.createServer();
    taken.listen(0, '127.0.0.1');
    await once(taken, 'listening');
    t.after(() => taken.close());
    const { port } = taken.address() as net.AddressInfo;
    const { service } = await startService('backend taken tcp port', 'backend/dist/main.js', { env: { PORT: '0', CONTROL_PORT: '0', TCP_PORT: String(port), HOST: '127.0.0.1', BACKEND_ID: 'x' } });
    assert.equal(await service.exited, 1);
    assert.match(service.output(), new RegExp(` error cannot listen: TCP_PORT=${port}: listen EADDRINUSE`));
  });

  test('a bad TCP_PORT is named, and the process exits 2', async () => {
    const { service } = await startService('backend bad tcp port', 'backend/dist/main.js', { env: { PORT: '0', CONTROL_PORT: '0', TCP_PORT: '70000', BACKEND_ID: 'x' } });
    assert.equal(await service.exited, 2);
    assert.match(service.output(), /TCP_PORT must be a whole number from 0 to 65535; got "70000"/);
  });
});
