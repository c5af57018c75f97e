import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter, once } from 'node:events';
import { createHash, randomBytes } from 'node:crypto';
import { createServer, connect, type AddressInfo, type Server, type ServerOpts, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { relay, relayServerOptions, type RelayedConnection, type RelayObserver, type RelayOptions, type RelayStats, type RelayTarget } from '../../balancer/src/tcp/relay.js';
import { blackholePort } from '../helpers/blackhole.js';

const HOST = '127.0.0.1';
const MB = 1024 * 1024;
/** a bound on every test, so that a broken relay fails rather than hangs */
const TEST_TIMEOUT_MS = 20_000;

// ---- observer ------------------------------------------------------------------------------

/**
 * Recorder logs every hook as a line and keeps, per backend, the count a least-connections
 * algorithm would: +1 on connecting, -1 on whichever hook ends that connect or connection.
 */
class Recorder extends EventEmitter implements RelayObserver {
  readonly log: string[] = [];
  readonly stats: RelayStats[] = [];
  readonly open = new Map<string, number>();

  connecting(id: string): void {
    this.note(`connecting ${id}`);
    this.count(id, +1);
  }
  connected(id: string): void {
    this.note(`connected ${id}`);
    this.emit('connected', id);
  }
  connectFailed(id: string, reason: string, detail: string): void {
    this.note(`connectFailed ${id} ${reason} ${detail}`);
    this.count(id, -1);
    this.emit('connectFailed', id);
  }
  connectAbandoned(id: string): void {
    this.note(`connectAbandoned ${id}`);
    this.count(id, -1);
    this.emit('connectAbandoned', id);
  }
  noBackend(): void {
    this.note('noBackend');
  }
  closed(id: string, stats: RelayStats): void {
    this.note(`closed ${id} ${stats.reason}`);
    this.count(id, -1);
    this.stats.push(stats);
    this.emit('closed', stats);
  }
  private note(line: string): void {
    this.log.push(line);
  }
  private count(id: string, delta: number): void {
    this.open.set(id, (this.open.get(id) ?? 0) + delta);
  }
  /** connections: every count back to zero means no connect or connection was left unreported */
  get counts(): number[] {
    return [...this.open.values()];
  }
}

// ---- servers and clients -------------------------------------------------------------------

/** closeSocket destroys a socket and waits for its handle to be closed. */
async function closeSocket(socket: Socket): Promise<void> {
  if (socket.closed) return;
  const closed = once(socket, 'close');
  socket.destroy();
  await closed;
}

/** closeAll: a test's cleanup, which leaves no handle closing while the next test runs. */
async function closeAll(server: Server, sockets: Socket[]): Promise<void> {
  const closed = new Promise((resolve) => server.close(resolve));
  await Promise.all(sockets.map(closeSocket));
  await closed;
}

async function listen(server: Server): Promise<number> {
  server.listen(0, HOST);
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

interface Backend {
  readonly target: RelayTarget;
  /** the backend's side of each connection, in accept order */
  readonly sockets: Socket[];
  /** accepted: the backend's side of its index-th connection (0 first), once accepted */
  accepted(index?: number): Promise<Socket>;
}

/** Arrivals: a list that grows, and a way to wait for its n-th item whether it came already or not. */
class Arrivals<T> extends EventEmitter {
  readonly items: T[] = [];
  add(item: T): void {
    this.items.push(item);
    this.emit('added');
  }
  async nth(index: number): Promise<T> {
    while (this.items.length <= index) await once(this, 'added');
    return this.items[index]!;
  }
}

/** backend starts a half-open capable server; serve is given each accepted socket. */
async function backend(t: TestContext, id: string, serve: (socket: Socket) => void, options: { pauseOnConnect?: boolean } = {}): Promise<Backend> {
  const sockets = new Arrivals<Socket>();
  const server = createServer({ allowHalfOpen: true, ...options }, (socket) => {
    socket.on('error', () => {});
    serve(socket);
    sockets.add(socket);
  });
  const port = await listen(server);
  t.after(() => closeAll(server, sockets.items));
  return { target: { id, host: HOST, port }, sockets: sockets.items, accepted: (index = 0) => sockets.nth(index) };
}

const greeting = (id: string): string => `hello from ${id}\n`;

/** echoBackend greets each connection with its name, then sends back what it gets, half-close included. */
function echoBackend(t: TestContext, id: string): Promise<Backend> {
  return backend(t, id, (socket) => {
    socket.write(greeting(id));
    socket.pipe(socket);
  });
}

/** closedPort: a port nothing listens on, so a connect to it is refused. */
async function closedPort(id: string): Promise<RelayTarget> {
  const server = createServer();
  const port = await listen(server);
  await new Promise((resolve) => server.close(resolve));
  return { id, host: HOST, port };
}

/** blackhole: a backend whose connect never completes (test/helpers/blackhole.ts). */
async function blackhole(t: TestContext, id: string): Promise<RelayTarget> {
  return { id, host: HOST, port: await blackholePort(t) };
}

interface Front {
  readonly port: number;
  readonly recorder: Recorder;
  /** the handle relay() returned for each accepted client, in accept order */
  readonly connections: RelayedConnection[];
  /** the balancer's side of each client connection */
  readonly clients: Socket[];
  /** accepted: resolves once count clients have been handed to relay() */
  accepted(count: number): Promise<void>;
}

type FrontSettings = Partial<Omit<RelayOptions, 'observer' | 'pick'>> & { targets: RelayTarget[]; pick?: RelayOptions['pick'] };

/** front: a server that hands every connection to relay(), picking the first target not yet tried. */
async function front(t: TestContext, settings: FrontSettings, serverOptions: ServerOpts = relayServerOptions): Promise<Front> {
  const recorder = new Recorder();
  const connections = new Arrivals<RelayedConnection>();
  const clients: Socket[] = [];
  const { targets, ...rest } = settings;
  const server = createServer(serverOptions, (socket) => {
    clients.push(socket);
    connections.add(
      relay(socket, {
        pick: (tried) => targets.find((target) => !tried.has(target.id)),
        connectTimeoutMs: 1000,
        attempts: 1,
        idleTimeoutMs: 0,
        proxyProtocol: 'off',
        ...rest,
        observer: recorder,
      }),
    );
  });
  const port = await listen(server);
  t.after(() => closeAll(server, clients));
  return { port, recorder, connections: connections.items, clients, accepted: async (count) => void (await connections.nth(count - 1)) };
}

/** dial: a half-open capable client, destroyed when the test ends whatever happened. */
async function dial(t: TestContext, port: number): Promise<Socket> {
  const socket = connect({ host: HOST, port, allowHalfOpen: true });
  socket.on('error', () => {});
  t.after(() => closeSocket(socket));
  await once(socket, 'connect');
  return socket;
}

/** Collected: what a socket has received so far, and promises on it. */
interface Collected {
  bytes(): Buffer;
  text(): string;
  atLeast(length: number): Promise<void>;
  readonly ended: Promise<void>;
}

function collect(socket: Socket): Collected {
  const chunks: Buffer[] = [];
  let length = 0;
  const waiting: { length: number; resolve: () => void }[] = [];
  socket.on('data', (chunk: Buffer) => {
    chunks.push(chunk);
    length += chunk.length;
    for (const waiter of waiting.filter((w) => w.length <= length)) {
      waiting.splice(waiting.indexOf(waiter), 1);
      waiter.resolve();
    }
  });
  const ended = new Promise<void>((resolve, reject) => {
    socket.once('end', resolve);
    socket.once('close', () => reject(new Error(`closed without an end after ${length} bytes`)));
  });
  ended.catch(() => {});
  return {
    bytes: () => Buffer.concat(chunks),
    text: () => Buffer.concat(chunks).toString(),
    atLeast: (wanted) => (length >= wanted ? Promise.resolve() : new Promise((resolve) => waiting.push({ length: wanted, resolve }))),
    ended,
  };
}

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

/** handles: this thread's open sockets and timers, to show that a test left none behind. */
function handles(): { sockets: number; timers: number } {
  const resources = process.getActiveResourcesInfo();
  return { sockets: resources.filter((r) => r === 'TCPSocketWrap').length, timers: resources.filter((r) => r === 'Timeout').length };
}

/** steadyHandles: the counts once they have stopped changing (a previous test's handles may still be closing). */
async function steadyHandles(): Promise<{ sockets: number; timers: number }> {
  let last = handles();
  for (let unchanged = 0; unchanged < 3; ) {
    await new Promise((resolve) => setImmediate(resolve));
    const now = handles();
    unchanged = now.sockets === last.sockets && now.timers === last.timers ? unchanged + 1 : 0;
    last = now;
  }
  return last;
}

/** backTo waits (bounded) until the open sockets and timers are back to a count taken earlier: handles close asynchronously. */
async function backTo(baseline: { sockets: number; timers: number }): Promise<void> {
  const deadline = performance.now() + 2000;
  while (performance.now() < deadline) {
    const now = handles();
    if (now.sockets === baseline.sockets && now.timers === baseline.timers) return;
    await sleep(10);
  }
  assert.deepEqual(handles(), baseline, 'sockets or timers left behind');
}

function closedOnce(recorder: Recorder): Promise<RelayStats> {
  return once(recorder, 'closed').then(([stats]) => stats as RelayStats);
}

// ---- tests ---------------------------------------------------------------------------------

test('the client is greeted by the backend it reached and 1 MB comes back intact', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const a = await echoBackend(t, 'a');
  const lab = await front(t, { targets: [a.target] });
  const closed = closedOnce(lab.recorder);
  const client = await dial(t, lab.port);
  const got = collect(client);
  const payload = randomBytes(MB);
  client.end(payload);
  await got.ended;
  const received = got.bytes();
  assert.equal(received.subarray(0, greeting('a').length).toString(), greeting('a'));
  assert.equal(sha256(received.subarray(greeting('a').length)), sha256(payload));
  const stats = await closed;
  assert.equal(stats.reason, 'done');
  assert.equal(stats.bytesIn, MB);
  assert.equal(stats.bytesOut, greeting('a').length + MB);
  assert.ok(stats.seconds > 0 && stats.seconds < 10, `${stats.seconds} s`);
  assert.equal(lab.connections[0]!.backendId, 'a');
  assert.deepEqual(lab.recorder.log, ['connecting a', 'connected a', 'closed a done']);
});

test('a refused connect is retried on the next backend; what the client sent meanwhile arrives, half-close too', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const dead = await closedPort('dead');
  const b = await echoBackend(t, 'b');
  const lab = await front(t, { targets: [dead, b.target], attempts: 1 });
  const closed = closedOnce(lab.recorder);
  const client = await dial(t, lab.port);
  const got = collect(client);
  client.end('early');
  await got.ended;
  assert.equal(got.text(), `${greeting('b')}early`);
  await closed;
  assert.deepEqual(lab.recorder.log, ['connecting dead', 'connectFailed dead refused ECONNREFUSED', 'connecting b', 'connected b', 'closed b done']);
});

for (const how of ['reset', 'FIN'] as const) {
  test(`a backend that accepts and closes (${how}) before any byte went either way: the client goes to the next backend`, { timeout: TEST_TIMEOUT_MS }, async (t) => {
    // As a process killed with its listening socket still open does: the kernel completes the handshake, then the socket goes.
    const dying = await backend(t, 'dying', (socket) => (how === 'reset' ? socket.resetAndDestroy() : socket.end()));
    const b = await echoBackend(t, 'b');
    const lab = await front(t, { targets: [dying.target, b.target], attempts: 1 });
    const closedOnB = new Promise<void>((resolve) => lab.recorder.on('closed', (stats: RelayStats) => stats.reason !== 'reset-before-data' && resolve()));
    const client = await dial(t, lab.port);
    const got = collect(client);
    // The client speaks once greeted, as the lab's echo clients do: nothing of it was read before the first backend went.
    await got.atLeast(greeting('b').length);
    client.end('late');
    await got.ended;
    assert.equal(got.text(), `${greeting('b')}late`);
    await closedOnB;
    // A reset may arrive before the handshake is reported (a failed connect) or after (closed before any byte): either way, retried.
    const [first, second] = lab.recorder.log;
    assert.equal(first, 'connecting dying');
    assert.ok(second === 'connected dying' || second!.startsWith('connectFailed dying'), lab.recorder.log.join('; '));
    if (how === 'FIN') assert.ok(lab.recorder.log.includes('closed dying reset-before-data'), lab.recorder.log.join('; '));
    assert.deepEqual(lab.recorder.counts, [0, 0], 'every connected() matched by one closed()');
  });
}

test('every try refused: the client is closed after 1 + attempts tries, and nothing is left open', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const targets = [await closedPort('d1'), await closedPort('d2'), await closedPort('d3')];
  const lab = await front(t, { targets, attempts: 1 });
  const baseline = await steadyHandles();
  const client = await dial(t, lab.port);
  const got = collect(client);
  await got.ended;
  client.destroy();
  assert.equal(got.bytes().length, 0);
  assert.deepEqual(lab.recorder.log, ['connecting d1', 'connectFailed d1 refused ECONNREFUSED', 'connecting d2', 'connectFailed d2 refused ECONNREFUSED']);
  assert.deepEqual(lab.recorder.counts, [0, 0]);
  await backTo(baseline);
});

test('no backend: noBackend is reported once and the client is closed', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const lab = await front(t, { targets: [], pick: () => undefined });
  const baseline = await steadyHandles();
  const client = await dial(t, lab.port);
  const got = collect(client);
  await got.ended;
  client.destroy();
  assert.deepEqual(lab.recorder.log, ['noBackend']);
  assert.equal(lab.connections[0]!.backendId, undefined);
  await backTo(baseline);
});

test('a connect that gets no answer times out and is retried on the next backend', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const hole = await blackhole(t, 'hole');
  const b = await echoBackend(t, 'b');
  const lab = await front(t, { targets: [hole, b.target], connectTimeoutMs: 200, attempts: 1 });
  const started = performance.now();
  const client = await dial(t, lab.port);
  const got = collect(client);
  await got.atLeast(greeting('b').length);
  const waited = performance.now() - started;
  assert.equal(got.text(), greeting('b'));
  assert.ok(waited >= 190, `answered after ${waited.toFixed(0)} ms, before the connect timeout`);
  assert.deepEqual(lab.recorder.log, ['connecting hole', 'connectFailed hole timeout timeout after 200 ms', 'connecting b', 'connected b']);
  const closed = closedOnce(lab.recorder);
  client.end();
  await got.ended;
  await closed;
});

test('close() or the client going away during a connect: the connect is abandoned, nothing leaks', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const hole = await blackhole(t, 'hole');
  const lab = await front(t, { targets: [hole], connectTimeoutMs: 30_000, attempts: 0 });
  const baseline = await steadyHandles();

  const first = await dial(t, lab.port);
  const firstGot = collect(first);
  await lab.accepted(1);
  const abandoned = once(lab.recorder, 'connectAbandoned');
  lab.connections[0]!.close();
  lab.connections[0]!.close();
  await abandoned;
  await firstGot.ended;
  first.destroy();

  const second = await dial(t, lab.port);
  await lab.accepted(2);
  const abandonedAgain = once(lab.recorder, 'connectAbandoned');
  lab.clients[1]!.destroy(); // the listener shutting down, say: the client's socket is destroyed by its owner
  await abandonedAgain;
  second.destroy();

  assert.deepEqual(lab.recorder.log, ['connecting hole', 'connectAbandoned hole', 'connecting hole', 'connectAbandoned hole']);
  assert.deepEqual(lab.recorder.counts, [0]);
  await backTo(baseline);
});

test('half-close, client first: the backend still answers after the client has ended', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const answerer = await backend(t, 'answerer', (socket) => {
    const got = collect(socket);
    void got.ended.then(() => socket.end(`got: ${got.text()}`));
  });
  const lab = await front(t, { targets: [answerer.target] });
  const closed = closedOnce(lab.recorder);
  const client = await dial(t, lab.port);
  const got = collect(client);
  client.end('ping');
  await got.ended;
  assert.equal(got.text(), 'got: ping');
  assert.equal((await closed).reason, 'done');
});

test('half-close works on a server made with the default options too (relay() makes the client half-open)', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const answerer = await backend(t, 'answerer', (socket) => {
    const got = collect(socket);
    void got.ended.then(() => socket.end(`got: ${got.text()}`));
  });
  const lab = await front(t, { targets: [answerer.target] }, {});
  const client = await dial(t, lab.port);
  const got = collect(client);
  client.end('ping');
  await got.ended;
  assert.equal(got.text(), 'got: ping');
});

test('half-close, backend first: the client still sends after the backend has ended', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  let received: Collected | undefined;
  const goodbye = await backend(t, 'goodbye', (socket) => {
    received = collect(socket);
    socket.end('bye\n');
  });
  const lab = await front(t, { targets: [goodbye.target] });
  const closed = closedOnce(lab.recorder);
  const client = await dial(t, lab.port);
  const got = collect(client);
  await got.ended;
  assert.equal(got.text(), 'bye\n');
  assert.ok(!client.destroyed && client.writable, 'the client can still write');
  client.end('still here');
  await received!.ended;
  assert.equal(received!.text(), 'still here');
  const stats = await closed;
  assert.deepEqual([stats.reason, stats.bytesIn, stats.bytesOut], ['done', 'still here'.length, 'bye\n'.length]);
});

test('idle timeout: no byte either way for that long closes both sides', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const a = await echoBackend(t, 'a');
  const lab = await front(t, { targets: [a.target], idleTimeoutMs: 150 });
  const closed = closedOnce(lab.recorder);
  const client = await dial(t, lab.port);
  const got = collect(client);
  const backendSide = a.accepted();
  await got.atLeast(greeting('a').length);
  const quietSince = performance.now();
  const backendGot = collect(await backendSide);
  await got.ended;
  await backendGot.ended;
  const stats = await closed;
  const waited = performance.now() - quietSince;
  assert.equal(stats.reason, 'idle-timeout');
  assert.ok(waited >= 140, `closed after ${waited.toFixed(0)} ms of quiet`);
});

test('idle timeout: bytes in one direction only keep the connection open, either direction', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const ticks = 8;
  const everyMs = 60;
  const idleTimeoutMs = 250;

  // client to backend only: a backend that never writes
  let sinkGot: Collected | undefined;
  const sink = await backend(t, 'sink', (socket) => void (sinkGot = collect(socket)));
  const toSink = await front(t, { targets: [sink.target], idleTimeoutMs });
  const sinkClosed = closedOnce(toSink.recorder);
  const client = await dial(t, toSink.port);
  const clientGot = collect(client);
  for (let tick = 0; tick < ticks; tick++) {
    client.write('x');
    await sleep(everyMs);
  }
  await clientGot.ended;
  assert.equal(sinkGot!.text(), 'x'.repeat(ticks), 'every byte arrived: the connection stayed open while the client sent');
  assert.equal((await sinkClosed).reason, 'idle-timeout');

  // backend to client only: a client that never writes
  const ticker = await backend(t, 'ticker', (socket) => {
    let sent = 0;
    const timer = setInterval(() => {
      if (socket.destroyed) return clearInterval(timer);
      socket.write('y');
      if (++sent === ticks) clearInterval(timer);
    }, everyMs);
  });
  const fromTicker = await front(t, { targets: [ticker.target], idleTimeoutMs });
  const tickerClosed = closedOnce(fromTicker.recorder);
  const listener = await dial(t, fromTicker.port);
  const listenerGot = collect(listener);
  await listenerGot.ended;
  assert.equal(listenerGot.text(), 'y'.repeat(ticks), 'every byte arrived: the connection stayed open while the backend sent');
  assert.equal((await tickerClosed).reason, 'idle-timeout');
});

/**
 * pump writes `total` random bytes to a socket, respecting write() === false; stalled resolves
 * when a 'drain' has not come for STALL_MS, done when everything was written.
 */
const STALL_MS = 300;
function pump(socket: Socket, total: number, sample: () => void) {
  const hash = createHash('sha256');
  let written = 0;
  let stalled!: () => void;
  const stall = new Promise<void>((resolve) => (stalled = resolve));
  const done = new Promise<void>((resolve) => {
    const writeMore = (): void => {
      while (written < total) {
        const chunk = randomBytes(Math.min(64 * 1024, total - written));
        hash.update(chunk);
        written += chunk.length;
        if (!socket.write(chunk)) {
          sample();
          const quiet = setTimeout(stalled, STALL_MS);
          socket.once('drain', () => {
            clearTimeout(quiet);
            writeMore();
          });
          return;
        }
      }
      socket.end();
      resolve();
    };
    writeMore();
  });
  return {
    get written() {
      return written;
    },
    stalled: Promise.race([stall, done.then(() => Promise.reject(new Error(`all ${total} bytes were taken without a stall: something buffers without bound`)))]),
    digest: () => hash.digest('hex'),
  };
}

/** streamedHash: the length and sha256 of everything a socket receives until its end. */
function streamedHash(socket: Socket): Promise<{ length: number; sha256: string }> {
  const hash = createHash('sha256');
  let length = 0;
  socket.on('data', (chunk: Buffer) => {
    hash.update(chunk);
    length += chunk.length;
  });
  return once(socket, 'end').then(() => ({ length, sha256: hash.digest('hex') }));
}

const BACKPRESSURE_TOTAL = 64 * MB;
/** what relay()'s stream buffers may hold for one connection: a few high-water marks, far below the total */
const BUFFER_BOUND = MB;

test('backpressure, backend to client: a client that does not read stops the backend, and nothing piles up here', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  let maxBuffered = 0;
  const sample = (): void => void (maxBuffered = Math.max(maxBuffered, lab.connections[0]?.bufferedBytes ?? 0));
  let started!: (writer: ReturnType<typeof pump>) => void;
  const writing = new Promise<ReturnType<typeof pump>>((resolve) => (started = resolve));
  const fast = await backend(t, 'fast', (socket) => started(pump(socket, BACKPRESSURE_TOTAL, sample)));
  const lab = await front(t, { targets: [fast.target] });
  const client = connect({ host: HOST, port: lab.port });
  client.pause();
  client.on('error', () => {});
  t.after(() => closeSocket(client));
  const writer = await writing;
  await writer.stalled;
  sample();
  t.diagnostic(`the backend stalled after writing ${(writer.written / MB).toFixed(1)} MB; at most ${maxBuffered} bytes buffered in relay()`);
  assert.ok(writer.written < BACKPRESSURE_TOTAL);
  assert.ok(maxBuffered <= BUFFER_BOUND, `relay() held ${maxBuffered} bytes`);

  const closed = closedOnce(lab.recorder);
  const received = streamedHash(client);
  client.resume();
  const { length, sha256: digest } = await received;
  assert.equal(length, BACKPRESSURE_TOTAL);
  assert.equal(digest, writer.digest());
  client.end();
  const stats = await closed;
  assert.deepEqual([stats.reason, stats.bytesIn, stats.bytesOut], ['done', 0, BACKPRESSURE_TOTAL]);
});

test('backpressure, client to backend: a backend that does not read stops the client, and nothing piles up here', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const slow = await backend(t, 'slow', () => {}, { pauseOnConnect: true });
  const lab = await front(t, { targets: [slow.target] });
  let maxBuffered = 0;
  const sample = (): void => void (maxBuffered = Math.max(maxBuffered, lab.connections[0]?.bufferedBytes ?? 0));
  const backendSide = slow.accepted();
  const client = await dial(t, lab.port);
  client.resume();
  const writer = pump(client, BACKPRESSURE_TOTAL, sample);
  await writer.stalled;
  sample();
  t.diagnostic(`the client stalled after writing ${(writer.written / MB).toFixed(1)} MB; at most ${maxBuffered} bytes buffered in relay()`);
  assert.ok(writer.written < BACKPRESSURE_TOTAL);
  assert.ok(maxBuffered <= BUFFER_BOUND, `relay() held ${maxBuffered} bytes`);

  const closed = closedOnce(lab.recorder);
  const socket = await backendSide;
  const received = streamedHash(socket);
  socket.resume();
  const { length, sha256: digest } = await received;
  assert.equal(length, BACKPRESSURE_TOTAL);
  assert.equal(digest, writer.digest());
  socket.end();
  const stats = await closed;
  assert.deepEqual([stats.reason, stats.bytesIn, stats.bytesOut], ['done', BACKPRESSURE_TOTAL, 0]);
});

test('close() ends the connection on both sides; closed() fires once, with the bytes relayed', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const a = await echoBackend(t, 'a');
  const lab = await front(t, { targets: [a.target] });
  const backendSide = a.accepted();
  const client = await dial(t, lab.port);
  const got = collect(client);
  client.write(Buffer.alloc(1000, 'z'));
  await got.atLeast(greeting('a').length + 1000);
  const backendGot = collect(await backendSide);
  const closed = closedOnce(lab.recorder);
  lab.connections[0]!.close();
  lab.connections[0]!.close();
  await Promise.all([got.ended, backendGot.ended]);
  const stats = await closed;
  assert.deepEqual([stats.reason, stats.bytesIn, stats.bytesOut], ['closed', 1000, greeting('a').length + 1000]);
  lab.connections[0]!.close();
  await sleep(20); // a second closed() would be due by now
  assert.deepEqual(lab.recorder.log, ['connecting a', 'connected a', 'closed a closed']);
});

test('a client reset resets the backend connection', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const a = await echoBackend(t, 'a');
  const lab = await front(t, { targets: [a.target] });
  const backendSide = a.accepted();
  const closed = closedOnce(lab.recorder);
  const client = await dial(t, lab.port);
  const got = collect(client);
  await got.atLeast(greeting('a').length);
  const socket = await backendSide;
  const backendError = once(socket, 'error');
  client.resetAndDestroy();
  const [error] = (await backendError) as [NodeJS.ErrnoException];
  assert.equal(error.code, 'ECONNRESET');
  assert.equal((await closed).reason, 'client-error');
  assert.deepEqual(lab.recorder.log, ['connecting a', 'connected a', 'closed a client-error']);
});

test('a client reset while its connect is still in progress: one connected/closed pair, the backend is reset', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const hole = await blackhole(t, 'hole');
  const a = await echoBackend(t, 'a');
  const lab = await front(t, { targets: [hole, a.target], connectTimeoutMs: 150, attempts: 1 });
  const closed = closedOnce(lab.recorder);
  const backendError = a.accepted().then((socket) => once(socket, 'error'));
  const client = await dial(t, lab.port);
  await lab.accepted(1);
  client.resetAndDestroy(); // the relay is paused on it, connecting to the hole: it learns of the reset once it reads
  const stats = await closed;
  const [error] = (await backendError) as [NodeJS.ErrnoException];
  assert.equal(error.code, 'ECONNRESET');
  assert.equal(stats.reason, 'client-error');
  assert.deepEqual(lab.recorder.log, ['connecting hole', 'connectFailed hole timeout timeout after 150 ms', 'connecting a', 'connected a', 'closed a client-error']);
  assert.deepEqual(lab.recorder.counts, [0, 0]);
});

test('a backend reset resets the client connection', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const a = await backend(t, 'a', (socket) => {
    socket.write(greeting('a'));
    socket.once('data', () => socket.resetAndDestroy());
  });
  const lab = await front(t, { targets: [a.target] });
  const closed = closedOnce(lab.recorder);
  const client = await dial(t, lab.port);
  const got = collect(client);
  await got.atLeast(greeting('a').length);
  const clientError = once(client, 'error');
  client.write('boom');
  const [error] = (await clientError) as [NodeJS.ErrnoException];
  assert.equal(error.code, 'ECONNRESET');
  assert.equal((await closed).reason, 'backend-error');
});

test('many connections at once: least-connections counts from the hooks spread them evenly and return to zero', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const backends = [await echoBackend(t, 'a'), await echoBackend(t, 'b'), await echoBackend(t, 'c')];
  let lab: Front | undefined;
  const leastConnections: RelayOptions['pick'] = (tried) => {
    const candidates = backends.map((b) => b.target).filter((target) => !tried.has(target.id));
    return candidates.sort((x, y) => (lab!.recorder.open.get(x.id) ?? 0) - (lab!.recorder.open.get(y.id) ?? 0))[0];
  };
  lab = await front(t, { targets: [], pick: leastConnections });
  const clients = await Promise.all(Array.from({ length: 30 }, () => dial(t, lab!.port)));
  const greetings = await Promise.all(
    clients.map(async (client) => {
      const got = collect(client);
      await got.atLeast('hello from x\n'.length);
      return got;
    }),
  );
  assert.deepEqual(Object.fromEntries(lab.recorder.open), { a: 10, b: 10, c: 10 });
  const closedAll = new Promise<void>((resolve) => lab!.recorder.on('closed', () => lab!.recorder.stats.length === 30 && resolve()));
  for (const client of clients) client.end('bye');
  await Promise.all(greetings.map((got) => got.ended));
  await closedAll;
  assert.deepEqual(Object.fromEntries(lab.recorder.open), { a: 0, b: 0, c: 0 });
  assert.equal(lab.recorder.log.filter((line) => line.startsWith('connected ')).length, 30);
  assert.ok(lab.recorder.stats.every((stats) => stats.reason === 'done' && stats.bytesIn === 3 && stats.bytesOut === 'hello from x\n'.length + 3));
});
