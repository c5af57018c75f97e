/**
 * https:// backends, run against every engine: the backend's certificate is verified against the
 * given CA for the backend's own name (never the client's Host), over kept-alive connections; a
 * certificate that does not verify fails the try as a tls failure, answered 502
 * LB_ERR_UPSTREAM_TLS with the reason. Real https servers on 127.0.0.1 with certificates made at
 * run time (common/src/certs.ts).
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { request, createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createTcpServer, type Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { readFileSync } from 'node:fs';
import { once } from 'node:events';
import path from 'node:path';
import { engineNames, type Engine, type EngineName, type TryFailure, type UpstreamTls } from '../../balancer/src/engines/engine.js';
import { createEngine } from '../../balancer/src/engines/index.js';
import { prepareRequest, hasBody } from '../../balancer/src/headers.js';
import { ANSWER_FOR, classifyError, failureDetail } from '../../balancer/src/pipeline/error-mapping.js';
import { sendError } from '../../balancer/src/errors.js';
import { createProxyServer } from 'http-proxy-3';
import { upgradeTarget } from '../../balancer/src/engines/upstream-tls.js';
import { ensureCerts, issueServerCert, LOCAL_NAMES, type CertFiles } from '../../common/src/certs.js';
import { repoRoot } from '../helpers/processes.js';

const CONNECT_TIMEOUT_MS = 300;
const BACKEND_ID = 'b1';

const certs: CertFiles = await ensureCerts(path.join(repoRoot, 'test-results', 'certs'), { secondNames: ['other.test'] });
/** A CA of its own, that signed none of the certificates above. */
const otherCa = await ensureCerts(path.join(repoRoot, 'test-results', 'certs-other-ca'));
const expired = await issueServerCert(path.join(repoRoot, 'test-results', 'certs'), 'expired', LOCAL_NAMES, -1);
const ca = readFileSync(certs.caCert);
const verified: UpstreamTls = { ca, rejectUnauthorized: true };

interface Backend {
  url: string;
  /** TLS connections the backend accepted */
  connections: number;
  /** the SNI name of each request's connection (false: none sent), and its Host header */
  seen: { servername: string | false | null; host: string | undefined }[];
}

async function httpsBackend(t: TestContext, files: { cert: string; key: string } = certs, host = '127.0.0.1'): Promise<Backend> {
  const backend: Backend = { url: '', connections: 0, seen: [] };
  const server = createHttpsServer({ cert: readFileSync(files.cert), key: readFileSync(files.key) }, (req, res) => {
    backend.seen.push({ servername: (req.socket as TLSSocket).servername, host: req.headers.host });
    res.end('hello over TLS');
  });
  server.on('secureConnection', () => backend.connections++);
  server.on('tlsClientError', () => {});
  server.listen(0, host);
  await once(server, 'listening');
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  const address = host.includes(':') ? `[${host}]` : host;
  backend.url = `https://${address}:${(server.address() as { port: number }).port}`;
  return backend;
}

interface Front {
  url: string;
  failures: TryFailure[];
}

/** front forwards every request to the backend with the engine and answers a failure as the pipeline does: the mapped LB_ERR_* JSON. */
async function front(t: TestContext, engine: Engine, backendUrl: string, tls?: UpstreamTls): Promise<Front> {
  const upstream = engine.upstream(backendUrl, tls);
  const failures: TryFailure[] = [];
  const server = createHttpServer((req: IncomingMessage, res: ServerResponse) => {
    prepareRequest(req);
    engine.forward(req, res, upstream, !hasBody(req.headers), {
      onHead() {},
      onFailure(failure) {
        failures.push(failure);
        sendError(res, ANSWER_FOR[failure.kind], failureDetail(BACKEND_ID, failure.kind, failure.cause));
      },
      onBodyError() {},
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
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, failures };
}

/** send makes one request with keep-alive off on the client side and resolves with the whole answer. */
function send(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

function errorOf(body: string): { code: string; message: string } {
  return (JSON.parse(body) as { error: { code: string; message: string } }).error;
}

for (const name of engineNames) {
  const engine = (): Promise<Engine> => createEngine(name as EngineName, { connectTimeout: CONNECT_TIMEOUT_MS });

  test(`${name}: an https backend whose certificate chains to the CA answers, verified for its own name whatever the client's Host`, async (t) => {
    const backend = await httpsBackend(t);
    const proxy = await front(t, await engine(), backend.url, verified);
    const result = await send(proxy.url, { host: 'www.example.com' });
    assert.equal(result.status, 200, result.body);
    assert.equal(result.body, 'hello over TLS');
    assert.deepEqual(backend.seen, [{ servername: false, host: 'www.example.com' }], 'no SNI for an IP address; the Host header passed on as sent');
  });

  test(`${name}: connections to an https backend are kept alive, whatever Host each client sends`, async (t) => {
    const backend = await httpsBackend(t);
    const proxy = await front(t, await engine(), backend.url, verified);
    for (const host of ['a.example', 'b.example', 'a.example', 'localhost']) assert.equal((await send(proxy.url, { host })).status, 200);
    assert.equal(backend.seen.length, 4);
    assert.equal(backend.connections, 1, 'one TLS connection for four requests');
  });

  test(`${name}: an https backend on ::1 is verified for its address`, async (t) => {
    let backend: Backend;
    try {
      backend = await httpsBackend(t, certs, '::1');
    } catch (error) {
      t.skip(`no IPv6 loopback here: ${(error as Error).message}`);
      return;
    }
    const proxy = await front(t, await engine(), backend.url, verified);
    const result = await send(proxy.url);
    assert.equal(result.status, 200, result.body);
  });

  test(`${name}: a certificate from another CA is a tls failure, answered 502 LB_ERR_UPSTREAM_TLS with the reason`, async (t) => {
    const backend = await httpsBackend(t);
    const proxy = await front(t, await engine(), backend.url, { ca: readFileSync(otherCa.caCert), rejectUnauthorized: true });
    const result = await send(proxy.url);
    assert.equal(result.status, 502);
    assert.deepEqual(errorOf(result.body), {
      code: 'LB_ERR_UPSTREAM_TLS',
      message: 'the TLS handshake with the backend failed: b1: unable to verify the first certificate (UNABLE_TO_VERIFY_LEAF_SIGNATURE)',
    });
    assert.equal(proxy.failures[0]!.kind, 'tls');
    assert.equal(backend.seen.length, 0, 'no request reached the backend');
  });

  test(`${name}: without a CA, a certificate of the lab CA does not verify against Node's default store`, async (t) => {
    const backend = await httpsBackend(t);
    const proxy = await front(t, await engine(), backend.url);
    const result = await send(proxy.url);
    assert.equal(result.status, 502);
    assert.equal(errorOf(result.body).code, 'LB_ERR_UPSTREAM_TLS');
    assert.equal((proxy.failures[0]!.cause as NodeJS.ErrnoException).code, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
  });

  test(`${name}: a certificate for another name is a tls failure that names it`, async (t) => {
    const backend = await httpsBackend(t, certs.second);
    const proxy = await front(t, await engine(), backend.url, verified);
    const result = await send(proxy.url, { host: 'other.test' });
    assert.equal(result.status, 502);
    const error = errorOf(result.body);
    assert.equal(error.code, 'LB_ERR_UPSTREAM_TLS');
    assert.equal(error.message, 'the TLS handshake with the backend failed: b1: the certificate is for DNS:other.test, not 127.0.0.1 (ERR_TLS_CERT_ALTNAME_INVALID)');
    assert.equal(proxy.failures[0]!.kind, 'tls');
  });

  test(`${name}: an expired certificate is a tls failure that says so`, async (t) => {
    const backend = await httpsBackend(t, expired);
    const proxy = await front(t, await engine(), backend.url, verified);
    const result = await send(proxy.url);
    assert.equal(result.status, 502);
    assert.deepEqual(errorOf(result.body), { code: 'LB_ERR_UPSTREAM_TLS', message: 'the TLS handshake with the backend failed: b1: certificate has expired (CERT_HAS_EXPIRED)' });
  });

  test(`${name}: upstreamTls servername is the name verified and sent as SNI`, async (t) => {
    const backend = await httpsBackend(t, certs.second);
    const proxy = await front(t, await engine(), backend.url, { ...verified, servername: 'other.test' });
    const result = await send(proxy.url, { host: 'www.example.com' });
    assert.equal(result.status, 200, result.body);
    assert.deepEqual(backend.seen, [{ servername: 'other.test', host: 'www.example.com' }]);
  });

  test(`${name}: rejectUnauthorized false accepts a certificate that does not verify`, async (t) => {
    const backend = await httpsBackend(t, certs.second);
    const proxy = await front(t, await engine(), backend.url, { ca: readFileSync(otherCa.caCert), rejectUnauthorized: false });
    assert.equal((await send(proxy.url)).status, 200);
  });

  test(`${name}: an https:// backend that answers in plain HTTP is a tls failure`, async (t) => {
    const plain = createHttpServer((_req, res) => res.end('plain'));
    plain.listen(0, '127.0.0.1');
    await once(plain, 'listening');
    t.after(() => {
      plain.closeAllConnections();
      plain.close();
    });
    const proxy = await front(t, await engine(), `https://127.0.0.1:${(plain.address() as { port: number }).port}`, verified);
    const result = await send(proxy.url);
    assert.equal(result.status, 502);
    assert.deepEqual(errorOf(result.body).code, 'LB_ERR_UPSTREAM_TLS');
    assert.match(errorOf(result.body).message, /: b1: wrong version number \((EPROTO|ERR_SSL_WRONG_VERSION_NUMBER)\)$/);
  });

  test(`${name}: a backend that accepts the connection but never completes the handshake is a connect failure at the connect timeout`, async (t) => {
    const sockets = new Set<Socket>();
    const silent = createTcpServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => {});
    });
    silent.listen(0, '127.0.0.1');
    await once(silent, 'listening');
    t.after(() => {
      for (const socket of sockets) socket.destroy();
      silent.close();
    });
    const proxy = await front(t, await engine(), `https://127.0.0.1:${(silent.address() as { port: number }).port}`, verified);
    const started = Date.now();
    const result = await send(proxy.url);
    const elapsed = Date.now() - started;
    assert.equal(result.status, 503);
    assert.equal(errorOf(result.body).code, 'LB_ERR_UPSTREAM_UNAVAILABLE');
    assert.equal(proxy.failures[0]!.kind, 'connect', String(proxy.failures[0]!.cause));
    assert.ok(elapsed >= CONNECT_TIMEOUT_MS - 50 && elapsed < 2 * CONNECT_TIMEOUT_MS, `failed after ${elapsed} ms`);
  });
}

/**
 * upgradeVia: an https backend that accepts any Upgrade and echoes, behind a listener that hands
 * Upgrade requests to http-proxy-3 with upgradeTarget, as the pipeline does whatever the engine.
 * http-proxy-3 takes WebSocket upgrades only; the bytes need not be WebSocket frames.
 */
async function upgradeVia(t: TestContext, tls: UpstreamTls): Promise<{ url: string; errors: Error[] }> {
  const backend = createHttpsServer({ cert: readFileSync(certs.cert), key: readFileSync(certs.key) });
  backend.on('upgrade', (_req, socket: Socket) => {
    socket.write('HTTP/1.1 101 Switching Protocols\r\nupgrade: echo\r\nconnection: upgrade\r\n\r\n');
    socket.pipe(socket);
  });
  backend.on('tlsClientError', () => {});
  backend.listen(0, '127.0.0.1');
  await once(backend, 'listening');
  const errors: Error[] = [];
  const proxy = createProxyServer({ xfwd: false, ws: true });
  const listener = createHttpServer();
  const target = upgradeTarget(`https://127.0.0.1:${(backend.address() as { port: number }).port}`, tls);
  listener.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    proxy.ws(req, socket, head, target, (error: Error) => {
      errors.push(error);
      socket.destroy();
    });
  });
  listener.listen(0, '127.0.0.1');
  await once(listener, 'listening');
  t.after(() => {
    proxy.close();
    listener.closeAllConnections();
    listener.close();
    backend.closeAllConnections();
    backend.close();
  });
  return { url: `http://127.0.0.1:${(listener.address() as { port: number }).port}`, errors };
}

/** upgrade asks for an Upgrade with a Host of another name; resolves with what came back through the upgraded connection, or the error. */
function upgrade(url: string): Promise<string> {
  return new Promise((resolve) => {
    const req = request(url, { headers: { host: 'www.example.com', connection: 'upgrade', upgrade: 'websocket' }, agent: false });
    req.on('upgrade', (_res, socket) => {
      socket.once('data', (chunk: Buffer) => {
        resolve(chunk.toString());
        socket.destroy();
      });
      socket.write('ping');
    });
    req.on('error', (error: NodeJS.ErrnoException) => resolve(`error ${error.code}`));
    req.end();
  });
}

test('upgrades: an https backend is reached with the CA, verified for its own name', async (t) => {
  const front = await upgradeVia(t, verified);
  assert.equal(await upgrade(front.url), 'ping');
  assert.deepEqual(front.errors, []);
});

test('upgrades: a certificate from another CA is a tls failure', async (t) => {
  const front = await upgradeVia(t, { ca: readFileSync(otherCa.caCert), rejectUnauthorized: true });
  await upgrade(front.url);
  assert.equal((front.errors[0] as NodeJS.ErrnoException).code, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
  assert.equal(classifyError(front.errors[0]!), 'tls');
});

test('error mapping: the TLS errors of Node and undici are tls failures', () => {
  const error = (code: string): Error => Object.assign(new Error('x'), { code });
  for (const code of ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'CERT_HAS_EXPIRED', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'ERR_TLS_CERT_ALTNAME_INVALID', 'ERR_SSL_WRONG_VERSION_NUMBER', 'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA', 'EPROTO']) {
    assert.equal(classifyError(error(code)), 'tls', code);
  }
  assert.equal(classifyError(error('ECONNREFUSED')), 'connect');
  assert.equal(ANSWER_FOR.tls, 'LB_ERR_UPSTREAM_TLS');
});

test('error mapping: a TLS failure is described by its reason and code, any other by its code', () => {
  const expired = Object.assign(new Error('certificate has expired'), { code: 'CERT_HAS_EXPIRED' });
  assert.equal(failureDetail('b2', 'tls', expired), 'b2: certificate has expired (CERT_HAS_EXPIRED)');
  const alert = Object.assign(new Error('C0:error:0A000418:SSL routines:ssl3_read_bytes:tlsv1 alert unknown ca:ssl/record/rec_layer_s3.c:1605:SSL alert number 48'), {
    code: 'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA',
    reason: 'tlsv1 alert unknown ca',
  });
  assert.equal(failureDetail('b2', 'tls', alert), 'b2: tlsv1 alert unknown ca (ERR_SSL_TLSV1_ALERT_UNKNOWN_CA)');
  assert.equal(failureDetail('b2', 'connect', Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })), 'b2: ECONNREFUSED');
});
