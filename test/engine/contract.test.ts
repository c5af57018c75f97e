/**
 * The engine contract, run against every engine: one try to one backend reports the response
 * head, or a classified failure with its cause, and streams both ways without buffering. Real
 * backends on 127.0.0.1 (node:http and raw node:net), a real listener in front that hands each
 * request to the engine as the pipeline does.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createTcpServer, connect, type Socket } from 'node:net';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createHash } from 'node:crypto';
import { engineNames, type Engine, type EngineName, type EngineTry, type TryFailure } from '../../balancer/src/engines/engine.js';
import { createEngine } from '../../balancer/src/engines/index.js';
import { prepareRequest, hasBody } from '../../balancer/src/headers.js';
import { freePort } from '../helpers/processes.js';

const CONNECT_TIMEOUT_MS = 300;

/** What the engine reported for one try. */
interface Outcome {
  head?: { status: number; headers: IncomingHttpHeaders };
  failure?: TryFailure;
  bodyError?: Error;
}

interface Front {
  url: string;
  /** the outcome of each request, in order */
  outcomes: Outcome[];
  /** the try in progress of the latest request */
  latest(): EngineTry | undefined;
  /** resolves when the latest request's try has reported a head or a failure */
  settled(): Promise<Outcome>;
}

/** front starts a listener that forwards every request to the backend with the engine, as the pipeline does, and answers 599 on a failure. */
async function front(t: TestContext, engine: Engine, backendUrl: string): Promise<Front> {
  const upstream = engine.upstream(backendUrl);
  const outcomes: Outcome[] = [];
  let current: EngineTry | undefined;
  let waiters: ((outcome: Outcome) => void)[] = [];
  const settle = (outcome: Outcome): void => {
    for (const waiter of waiters) waiter(outcome);
    waiters = [];
  };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const outcome: Outcome = {};
    outcomes.push(outcome);
    prepareRequest(req);
    current = engine.forward(req, res, upstream, !hasBody(req.headers), {
      onHead(status, headers) {
        outcome.head = { status, headers: { ...headers } };
        settle(outcome);
      },
      onFailure(failure) {
        outcome.failure = failure;
        res.writeHead(599).end(failure.kind);
        settle(outcome);
      },
      onBodyError(cause) {
        outcome.bodyError = cause;
      },
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => {
    upstream.close();
    engine.close();
    server.closeAllConnections();
    server.close();
  });
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    outcomes,
    latest: () => current,
    settled: () => new Promise((resolve) => waiters.push(resolve)),
  };
}

async function httpBackend(t: TestContext, handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const server = createServer(handler);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`;
}

/** tcpBackend: a raw TCP server, for backends that break HTTP on purpose. */
async function tcpBackend(t: TestContext, onConnection: (socket: Socket) => void): Promise<string> {
  const sockets = new Set<Socket>();
  const server = createTcpServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    onConnection(socket);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => {
    for (const socket of sockets) socket.destroy();
    server.close();
  });
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`;
}

interface ClientResult {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  trailers: Record<string, string | undefined>;
  /** the response ended with an error or without its end (the connection was closed) */
  broken: boolean;
}

/** send makes one request on a fresh connection and resolves when the response ends or breaks. */
function send(url: string, options: { method?: string; headers?: Record<string, string>; body?: Buffer | ((req: ReturnType<typeof request>) => void) } = {}): Promise<ClientResult> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: options.method ?? 'GET', headers: options.headers, agent: false });
    req.on('error', reject);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      let broken = false;
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', () => (broken = true));
      res.on('aborted', () => (broken = true));
      res.on('close', () => {
        broken ||= !res.complete;
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), trailers: res.trailers, broken });
      });
    });
    if (typeof options.body === 'function') options.body(req);
    else req.end(options.body);
  });
}

for (const name of engineNames) {
  const engine = (): Promise<Engine> => createEngine(name as EngineName, { connectTimeout: CONNECT_TIMEOUT_MS });

  test(`${name}: connect refused is a connect failure with ECONNREFUSED`, async (t) => {
    const proxy = await front(t, await engine(), `http://127.0.0.1:${await freePort()}`);
    const result = await send(proxy.url);
    assert.equal(result.status, 599);
    assert.equal(proxy.outcomes[0]!.failure!.kind, 'connect');
    assert.equal((proxy.outcomes[0]!.failure!.cause as NodeJS.ErrnoException).code, 'ECONNREFUSED');
  });

  test(`${name}: a connect that gets no answer within the connect timeout is a connect failure`, async (t) => {
    // A stopped process whose accept queue is full: the kernel drops further SYNs, so connects hang.
    const child = spawn(process.execPath, ['-e', "const s=require('net').createServer();s.listen({port:0,host:'127.0.0.1',backlog:1},()=>console.log(s.address().port))"], { stdio: ['ignore', 'pipe', 'inherit'] });
    t.after(() => child.kill('SIGKILL'));
    const [line] = (await once(child.stdout!, 'data')) as [Buffer];
    const port = Number(String(line).trim());
    process.kill(child.pid!, 'SIGSTOP');
    const fillers = [connect(port, '127.0.0.1'), connect(port, '127.0.0.1'), connect(port, '127.0.0.1')];
    for (const filler of fillers) filler.on('error', () => {});
    t.after(() => fillers.forEach((filler) => filler.destroy()));
    await new Promise((resolve) => setTimeout(resolve, 100));
    const proxy = await front(t, await engine(), `http://127.0.0.1:${port}`);
    const started = Date.now();
    const result = await send(proxy.url);
    const elapsed = Date.now() - started;
    assert.equal(result.status, 599);
    assert.equal(proxy.outcomes[0]!.failure!.kind, 'connect', String(proxy.outcomes[0]!.failure!.cause));
    assert.ok(elapsed >= CONNECT_TIMEOUT_MS - 50, `failed after ${elapsed} ms, before the connect timeout`);
    // Well before a per-try timeout of twice the connect timeout would fire and turn it into a timeout failure.
    assert.ok(elapsed < 2 * CONNECT_TIMEOUT_MS, `failed after ${elapsed} ms: the connect timeout is late`);
  });

  test(`${name}: a try aborted for its per-try timeout before any response header is a timeout failure`, async (t) => {
    let requestsSeen = 0;
    const backend = await tcpBackend(t, (socket) => socket.once('data', () => requestsSeen++));
    const proxy = await front(t, await engine(), backend);
    const pending = send(proxy.url);
    const settled = proxy.settled();
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(requestsSeen, 1, 'the request reached the backend');
    proxy.latest()!.abort('timeout', Object.assign(new Error('no response headers within 200 ms'), { code: 'LB_PER_TRY_TIMEOUT' }));
    const outcome = await settled;
    assert.equal(outcome.failure!.kind, 'timeout');
    assert.equal((await pending).status, 599);
  });

  test(`${name}: a backend that closes the connection before any response byte is a reset failure`, async (t) => {
    const backend = await tcpBackend(t, (socket) => socket.once('data', () => socket.destroy()));
    const proxy = await front(t, await engine(), backend);
    const result = await send(proxy.url);
    assert.equal(result.status, 599);
    assert.equal(proxy.outcomes[0]!.failure!.kind, 'reset', String(proxy.outcomes[0]!.failure!.cause));
  });

  test(`${name}: a backend that dies mid-body gets the client connection closed, not hung`, async (t) => {
    const backend = await tcpBackend(t, (socket) =>
      socket.once('data', () => {
        socket.write('HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n');
        socket.write(Buffer.alloc(1000, 'x'), () => setTimeout(() => socket.destroy(), 50));
      }),
    );
    const proxy = await front(t, await engine(), backend);
    const result = await send(proxy.url);
    assert.equal(result.status, 200);
    assert.equal(result.broken, true, 'the client sees the response cut off');
    assert.ok(result.body.length < 100_000);
    assert.ok(proxy.outcomes[0]!.head);
    assert.ok(proxy.outcomes[0]!.bodyError, 'the engine reported the body error');
    assert.equal(proxy.outcomes[0]!.failure, undefined);
  });

  test(`${name}: HEAD gets the head with its content-length and no body`, async (t) => {
    const backend = await httpBackend(t, (req, res) => {
      res.writeHead(200, { 'content-length': '1234', 'x-method': req.method });
      res.end(req.method === 'HEAD' ? undefined : Buffer.alloc(1234));
    });
    const proxy = await front(t, await engine(), backend);
    const result = await send(proxy.url, { method: 'HEAD' });
    assert.equal(result.status, 200);
    assert.equal(result.headers['content-length'], '1234');
    assert.equal(result.headers['x-method'], 'HEAD');
    assert.equal(result.body.length, 0);
    assert.equal(result.broken, false);
  });

  test(`${name}: a chunked response streams through with its trailers`, async (t) => {
    const backend = await httpBackend(t, (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', trailer: 'x-checksum' });
      const parts = ['one ', 'two ', 'three'];
      const next = (): void => {
        const part = parts.shift();
        if (part !== undefined) {
          res.write(part);
          setTimeout(next, 10);
        } else {
          res.addTrailers({ 'x-checksum': 'sha256-abc' });
          res.end();
        }
      };
      next();
    });
    const proxy = await front(t, await engine(), backend);
    const result = await send(proxy.url);
    assert.equal(result.status, 200);
    assert.equal(result.headers['transfer-encoding'], 'chunked');
    assert.equal(result.body.toString(), 'one two three');
    assert.equal(result.trailers['x-checksum'], 'sha256-abc');
  });

  test(`${name}: a large upload streams to the backend as it arrives, not buffered`, async (t) => {
    const CHUNK = 1 << 20;
    const CHUNKS = 32;
    let received = 0;
    let clientDone = false;
    let receivedBeforeClientDone = 0;
    const hash = createHash('sha256');
    const backend = await httpBackend(t, (req, res) => {
      req.on('data', (chunk: Buffer) => {
        received += chunk.length;
        hash.update(chunk);
        if (!clientDone) receivedBeforeClientDone = received;
      });
      req.on('end', () => res.end(JSON.stringify({ received, sha256: hash.digest('hex') })));
    });
    const proxy = await front(t, await engine(), backend);
    const sent = createHash('sha256');
    const result = await send(proxy.url, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body: (req) => {
        let written = 0;
        const write = (): void => {
          while (written < CHUNKS) {
            const chunk = Buffer.alloc(CHUNK, written % 251);
            sent.update(chunk);
            written++;
            if (!req.write(chunk)) {
              req.once('drain', write);
              return;
            }
          }
          // The last chunk goes only once the backend has seen most of the others: a proxy that buffered the whole body would deadlock here.
          const waitForBackend = (): void => {
            if (received >= (CHUNKS - 4) * CHUNK) {
              clientDone = true;
              req.end();
            } else setTimeout(waitForBackend, 5);
          };
          waitForBackend();
        };
        write();
      },
    });
    const answer = JSON.parse(result.body.toString()) as { received: number; sha256: string };
    assert.equal(answer.received, CHUNK * CHUNKS);
    assert.equal(answer.sha256, sent.digest('hex'));
    assert.ok(receivedBeforeClientDone >= (CHUNKS - 4) * CHUNK, `backend had ${receivedBeforeClientDone} bytes before the client finished`);
  });

  test(`${name}: Expect: 100-continue: the client gets its 100, the backend the body`, async (t) => {
    const backend = await httpBackend(t, (req, res) => {
      let length = 0;
      req.on('data', (chunk: Buffer) => (length += chunk.length));
      req.on('end', () => res.end(JSON.stringify({ length, expect: req.headers.expect ?? null })));
    });
    const proxy = await front(t, await engine(), backend);
    let continued = false;
    const body = Buffer.alloc(5000, 'b');
    const result = await send(proxy.url, {
      method: 'PUT',
      headers: { expect: '100-continue', 'content-length': String(body.length) },
      body: (req) => {
        req.on('continue', () => {
          continued = true;
          req.end(body);
        });
      },
    });
    assert.equal(continued, true, 'the client got 100 Continue');
    assert.equal(result.status, 200);
    assert.deepEqual(JSON.parse(result.body.toString()), { length: 5000, expect: null });
  });
}
