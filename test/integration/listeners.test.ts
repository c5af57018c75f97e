/**
 * Several listeners (issue 12): an http and a tcp listener in one balancer, with one and two
 * workers; L4 round-robin, failover of new connections, least-connections by open connections and
 * the PROXY protocol, against real echo servers and backend processes on 127.0.0.1.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import { once } from 'node:events';
import { fastHealth, startBalancer, startHttpBackend, type RunningBalancer } from '../helpers/lab.js';
import { connectTcp, restartablePorts, startEchoServer, startTcpBackend } from '../helpers/tcp.js';
import { getJson, httpRequest, metricValue, sleep, waitFor } from '../helpers/http.js';
import { parseProxyHeader, type ParsedProxyHeader } from '../helpers/proxy-protocol-parser.js';
import { describeFailures, runLoad } from '../helpers/load.js';

interface ListenerView {
  name: string;
  mode: string;
  address: string;
  algorithm: string;
  backends: number;
  healthy: number;
}

const FALL_MS = fastHealth.fall * 1_000;

async function listenerPort(lb: RunningBalancer, name: string): Promise<number> {
  const listener = (await getJson<ListenerView[]>(`${lb.adminUrl}/listeners`)).find((view) => view.name === name);
  assert.ok(listener, `no listener ${name}`);
  return Number(listener.address.split(':').pop());
}

async function echoServers(t: TestContext, ids: readonly string[]): Promise<Awaited<ReturnType<typeof startEchoServer>>[]> {
  const servers = await Promise.all(ids.map((id) => startEchoServer(id)));
  t.after(() => Promise.all(servers.map((server) => server.close())));
  return servers;
}

/** exchange: one connection through the listener: the greeting names the backend, and what is sent comes back. */
async function exchange(port: number, payload = randomBytes(64)): Promise<string> {
  const client = await connectTcp(port);
  try {
    const greeting = await client.greeting();
    client.socket.write(payload);
    const received = await client.waitForBytes(greeting.length + 1 + payload.length);
    assert.ok(received.subarray(greeting.length + 1).equals(payload), 'the echo differs from what was sent');
    client.socket.end();
    return greeting;
  } finally {
    client.socket.destroy();
  }
}

async function tally<T>(count: number, concurrency: number, one: () => Promise<T>): Promise<T[]> {
  const results: T[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        next++;
        results.push(await one());
      }
    }),
  );
  return results;
}

function shares(values: readonly string[]): Record<string, number> {
  const result: Record<string, number> = {};
  for (const value of values) result[value] = (result[value] ?? 0) + 1;
  return result;
}

for (const workers of [1, 2]) {
  test(`workers: ${workers}: an http and a tcp listener side by side, each round-robin 100 ± 2 over 300; greetings name the backend; 1 MB comes back intact`, async (t) => {
    const http = await Promise.all(['h1', 'h2', 'h3'].map((id) => startHttpBackend(t, id)));
    const echo = await echoServers(t, ['e1', 'e2', 'e3']);
    const lb = await startBalancer(t, {
      workers,
      listeners: [
        { name: 'web', listen: { host: '127.0.0.1', port: 0 }, backends: http.map((b) => ({ url: b.url, name: b.id })) },
        { name: 'echo', mode: 'tcp', listen: { host: '127.0.0.1', port: 0 }, backends: echo.map((server, i) => ({ url: server.url, name: `e${i + 1}` })) },
      ],
    });
    const listeners = await getJson<ListenerView[]>(`${lb.adminUrl}/listeners`);
    assert.deepEqual(listeners.map(({ name, mode, backends, healthy }) => ({ name, mode, backends, healthy })), [
      { name: 'web', mode: 'http', backends: 3, healthy: 3 },
      { name: 'echo', mode: 'tcp', backends: 3, healthy: 3 },
    ]);

    const webPort = await listenerPort(lb, 'web');
    const answered = await tally(300, 6, async () => (await httpRequest(`http://127.0.0.1:${webPort}/x`, { headers: { connection: 'close' } })).headers['x-backend-id'] as string);
    const httpShares = shares(answered);
    t.diagnostic(`http shares ${JSON.stringify(httpShares)}`);
    for (const id of ['h1', 'h2', 'h3']) assert.ok(Math.abs((httpShares[id] ?? 0) - 100) <= 2, JSON.stringify(httpShares));

    const echoPort = await listenerPort(lb, 'echo');
    const greetings = await tally(300, 6, () => exchange(echoPort));
    const tcpShares = shares(greetings);
    t.diagnostic(`tcp shares ${JSON.stringify(tcpShares)}`);
    for (const id of ['e1', 'e2', 'e3']) assert.ok(Math.abs((tcpShares[id] ?? 0) - 100) <= 2, JSON.stringify(tcpShares));

    const megabyte = randomBytes(1 << 20);
    const client = await connectTcp(echoPort);
    const greeting = await client.greeting();
    assert.match(greeting, /^e[123]$/);
    client.socket.end(megabyte);
    const back = (await client.ended).subarray(greeting.length + 1);
    assert.equal(createHash('sha256').update(back).digest('hex'), createHash('sha256').update(megabyte).digest('hex'), `${back.length} bytes came back`);

    // The counts reach the primary's /metrics from the workers; the listener label keeps the two apart.
    await waitFor('the tcp counts on /metrics', async () => {
      const metrics = await lb.metrics();
      const ok = ['e1', 'e2', 'e3'].reduce((sum, id) => sum + (metricValue(metrics, 'lb_tcp_connections_total', { listener: 'echo', backend: id, result: 'ok' }) ?? 0), 0);
      return ok === 301;
    });
    const metrics = await lb.metrics();
    assert.ok((metricValue(metrics, 'lb_tcp_bytes_total', { listener: 'echo', direction: 'in' }) ?? 0) > 0);
    assert.equal(metricValue(metrics, 'lb_backend_up', { listener: 'web', backend: 'h1' }), 1);
    assert.equal(metricValue(metrics, 'lb_backend_up', { listener: 'echo', backend: 'e1' }), 1);
  });
}

test('tcp: one of three backends killed: 500 new connections at 50/s all succeed; it is down within fall × interval + 1 s and back after its restart', async (t) => {
  const backends = await Promise.all(['t1', 't2', 't3'].map(async (id) => startTcpBackend(id, await restartablePorts())));
  t.after(() => Promise.all(backends.map((backend) => backend.service.stop('SIGKILL'))));
  const lb = await startBalancer(t, {
    workers: 2,
    listeners: [{ name: 'echo', mode: 'tcp', listen: { host: '127.0.0.1', port: 0 }, backends: backends.map((b) => ({ url: `tcp://127.0.0.1:${b.tcp.port}`, name: b.id })) }],
  });
  const port = await listenerPort(lb, 'echo');
  const victim = backends[1]!;
  const stateOf = async (): Promise<string | undefined> => (await getJson<{ id: string; state: string }[]>(`${lb.adminUrl}/listeners/echo/backends`)).find((b) => b.id === victim.id)?.state;

  const failures: string[] = [];
  const greetings: string[] = [];
  const started = performance.now();
  const load = (async () => {
    const pending: Promise<void>[] = [];
    for (let i = 0; i < 500; i++) {
      await sleep(Math.max(0, started + i * 20 - performance.now()));
      pending.push(exchange(port).then((greeting) => void greetings.push(greeting), (error: Error) => void failures.push(error.message)));
    }
    await Promise.all(pending);
  })();
  await sleep(2_000);
  const killedAt = performance.now();
  await victim.service.stop('SIGKILL');
  const { ms: downMs } = await waitFor(`${victim.id} down`, async () => (await stateOf()) === 'unhealthy', FALL_MS + 3_000, 50);
  t.diagnostic(`${victim.id} down ${Math.round(performance.now() - killedAt)} ms after SIGKILL`);
  assert.ok(downMs <= FALL_MS + 1_000, `down after ${Math.round(downMs)} ms`);
  await load;
  t.diagnostic(`500 connections at 50/s: ${failures.length} failed; shares ${JSON.stringify(shares(greetings))}`);
  assert.deepEqual(failures, []);
  assert.equal(greetings.length, 500);

  const restarted = await startTcpBackend(victim.id, { TCP_PORT: String(victim.tcp.port) });
  t.after(() => restarted.service.stop('SIGKILL'));
  await waitFor(`${victim.id} back`, async () => (await stateOf()) === 'healthy', 10_000, 50);
  const after = shares(await tally(30, 3, () => exchange(port)));
  assert.ok((after[victim.id] ?? 0) >= 8, `back in rotation: ${JSON.stringify(after)}`);
});

test('tcp least-connections: with 30 long-lived connections open on one backend, new connections go to the others', async (t) => {
  const [a, b, c] = await echoServers(t, ['a', 'b', 'c']);
  const lb = await startBalancer(t, {
    listeners: [{ name: 'echo', mode: 'tcp', algorithm: 'least-connections', listen: { host: '127.0.0.1', port: 0 }, backends: [{ url: a!.url, name: 'a' }] }],
  });
  const port = await listenerPort(lb, 'echo');
  const held = await Promise.all(Array.from({ length: 30 }, () => connectTcp(port)));
  t.after(() => held.forEach((client) => client.socket.destroy()));
  for (const client of held) assert.equal(await client.greeting(), 'a');
  for (const [server, name] of [[b!, 'b'], [c!, 'c']] as const) {
    const added = await httpRequest(`${lb.adminUrl}/listeners/echo/backends`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ url: server.url, name }) });
    assert.equal(added.status, 201, added.body);
  }
  await waitFor('b and c healthy', async () => (await getJson<{ state: string }[]>(`${lb.adminUrl}/listeners/echo/backends`)).every((backend) => backend.state === 'healthy'), 10_000, 50);
  // The worker counts exactly; the primary's view is its last report, at most 50 ms old.
  await waitFor('30 connections open on a', async () => (await getJson<{ id: string; activeRequests: number }[]>(`${lb.adminUrl}/listeners/echo/backends`)).find((backend) => backend.id === 'a')?.activeRequests === 30, 2_000, 20);

  const fresh = shares(await tally(20, 1, () => exchange(port)));
  t.diagnostic(`20 new connections: ${JSON.stringify(fresh)}`);
  assert.equal(fresh.a, undefined, JSON.stringify(fresh));
  assert.ok((fresh.b ?? 0) >= 8 && (fresh.c ?? 0) >= 8, JSON.stringify(fresh));
});

/** proxyBackend: a backend that reads the PROXY header, then greets and echoes like the others. */
async function proxyBackend(t: TestContext): Promise<{ url: string; headers: ParsedProxyHeader[] }> {
  const headers: ParsedProxyHeader[] = [];
  const server = net.createServer((socket) => {
    let data = Buffer.alloc(0);
    socket.on('error', () => undefined);
    const onData = (chunk: Buffer): void => {
      data = Buffer.concat([data, chunk]);
      const header = parseProxyHeader(data);
      if (!header) return;
      socket.off('data', onData);
      headers.push(header);
      socket.write('pp\n');
      socket.write(data.subarray(header.length));
      socket.pipe(socket);
    };
    socket.on('data', onData);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => server.close());
  return { url: `tcp://127.0.0.1:${(server.address() as net.AddressInfo).port}`, headers };
}

test('PROXY protocol v1 and v2 towards the backend carry the client address and port', async (t) => {
  const v1 = await proxyBackend(t);
  const v2 = await proxyBackend(t);
  const lb = await startBalancer(t, {
    healthCheck: { ...fastHealth, enabled: false },
    listeners: [
      { name: 'pp1', mode: 'tcp', proxyProtocol: 'v1', listen: { host: '127.0.0.1', port: 0 }, backends: [{ url: v1.url, name: 'v1' }] },
      { name: 'pp2', mode: 'tcp', proxyProtocol: 'v2', listen: { host: '127.0.0.1', port: 0 }, backends: [{ url: v2.url, name: 'v2' }] },
    ],
  });
  for (const [name, backend, version] of [['pp1', v1, 1], ['pp2', v2, 2]] as const) {
    const port = await listenerPort(lb, name);
    const client = await connectTcp(port);
    assert.equal(await client.greeting(), 'pp');
    client.socket.write('hello');
    await client.waitForBytes(3 + 5);
    const header = backend.headers[0];
    assert.ok(header, `${name}: no header received`);
    assert.equal(header.version, version);
    assert.equal(header.family, 'TCP4');
    assert.deepEqual(header.source, { address: '127.0.0.1', port: client.socket.localPort });
    assert.deepEqual(header.destination, { address: '127.0.0.1', port });
    client.socket.destroy();
  }
});

test('the admin API: /listeners, calls under /listeners/:name, the unprefixed ones on the first listener, and mode-checked backends', async (t) => {
  const [web] = await Promise.all([startHttpBackend(t, 'w1')]);
  const [echo] = await echoServers(t, ['x1']);
  const lb = await startBalancer(t, {
    listeners: [
      { name: 'web', listen: { host: '127.0.0.1', port: 0 }, backends: [{ url: web!.url, name: 'w1' }] },
      { name: 'echo', mode: 'tcp', listen: { host: '127.0.0.1', port: 0 }, backends: [{ url: echo!.url, name: 'x1' }] },
    ],
  });
  assert.deepEqual((await lb.backends()).map((b) => b.id), ['w1'], 'GET /backends is the first listener');
  assert.deepEqual((await getJson<{ id: string }[]>(`${lb.adminUrl}/listeners/echo/backends`)).map((b) => b.id), ['x1']);
  assert.equal((await getJson<ListenerView>(`${lb.adminUrl}/listeners/echo`)).mode, 'tcp');

  const missing = await httpRequest(`${lb.adminUrl}/listeners/nope/backends`);
  assert.equal(missing.status, 404);
  assert.match(JSON.parse(missing.body).error.message, /no listener named "nope"; listeners: web, echo/);

  const wrongScheme = await httpRequest(`${lb.adminUrl}/listeners/echo/backends`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ url: 'http://127.0.0.1:9' }) });
  assert.equal(wrongScheme.status, 400);
  assert.match(wrongScheme.body, /listener \\"echo\\" is in tcp mode: its backends are tcp:\/\/host:port/);

  const algorithm = await httpRequest(`${lb.adminUrl}/listeners/echo/algorithm`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'least-connections' }) });
  assert.equal(algorithm.status, 200, algorithm.body);
  const views = await getJson<ListenerView[]>(`${lb.adminUrl}/listeners`);
  assert.deepEqual(views.map((view) => view.algorithm), ['round-robin', 'least-connections']);

  const config = await getJson<{ listeners: { name: string; algorithm: string }[] }>(`${lb.adminUrl}/config`);
  assert.deepEqual(config.listeners.map((listener) => [listener.name, listener.algorithm]), [['web', 'round-robin'], ['echo', 'least-connections']]);
  const putBack = await httpRequest(`${lb.adminUrl}/config`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(config) });
  assert.equal(putBack.status, 200, putBack.body);
  assert.match(putBack.body, /"changes":\[\]/, 'GET /config put back changes nothing');
});

test('reloads add and remove listeners: an added one opens its port, a removed one drains and closes; 0 errors at 200 GET/s on the listener that stays', async (t) => {
  const http = await Promise.all(['r1', 'r2'].map((id) => startHttpBackend(t, id)));
  const [echo] = await echoServers(t, ['y1']);
  const web = { name: 'web', listen: { host: '127.0.0.1', port: 0 }, backends: http.map((b) => ({ url: b.url, name: b.id })) };
  const lb = await startBalancer(t, { workers: 2, listeners: [web] });
  const webPort = await listenerPort(lb, 'web');
  const taken = await startEchoServer('taken');
  t.after(() => taken.close());
  const load = runLoad({ url: `http://127.0.0.1:${webPort}/steady`, rate: 200, durationMs: 8_000 });
  const put = async (listeners: unknown[]): Promise<{ status: number; body: string }> => {
    const config = await getJson<Record<string, unknown>>(`${lb.adminUrl}/config`);
    const answer = await httpRequest(`${lb.adminUrl}/config`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...config, listeners }) });
    return { status: answer.status, body: answer.body };
  };
  await sleep(1_000);

  const echoListener = { name: 'echo', mode: 'tcp', listen: { host: '127.0.0.1', port: 0 }, backends: [{ url: echo!.url, name: 'y1' }] };
  const added = await put([web, echoListener]);
  assert.equal(added.status, 200, added.body);
  assert.match(added.body, /added listener echo/);
  const echoPort = await listenerPort(lb, 'echo');
  assert.equal(await exchange(echoPort), 'y1', 'the added listener serves at once');

  const busy = await put([web, echoListener, { ...echoListener, name: 'clash', listen: { host: '127.0.0.1', port: taken.port } }]);
  assert.equal(busy.status, 400);
  assert.match(busy.body, new RegExp(`listeners\\[2\\]\\.listen.*cannot listen on 127\\.0\\.0\\.1:${taken.port}: EADDRINUSE`));
  assert.deepEqual((await getJson<ListenerView[]>(`${lb.adminUrl}/listeners`)).map((view) => view.name), ['web', 'echo'], 'a refused reload changes nothing');

  // A connection open on the listener being removed keeps working until it ends, within timeouts.drain.
  const held = await connectTcp(echoPort);
  assert.equal(await held.greeting(), 'y1');
  const removing = put([web]);
  await sleep(300);
  held.socket.write('still here');
  await held.waitForBytes(3 + 'still here'.length);
  held.socket.end();
  const removed = await removing;
  assert.equal(removed.status, 200, removed.body);
  assert.match(removed.body, /removed listener echo/);
  await assert.rejects(connectTcp(echoPort), /ECONNREFUSED/, 'the removed listener\'s port is closed');

  const run = await load;
  t.diagnostic(`${run.samples.length} requests on web during both reloads: ${describeFailures(run)}`);
  assert.equal(run.failures().length, 0, describeFailures(run));
});
