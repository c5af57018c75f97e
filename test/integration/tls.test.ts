/**
 * TLS (issue 12): an HTTPS listener, TLS over a tcp listener, https:// backends verified against a
 * CA, a plain HTTP request on the TLS port, and certificates swapped by a reload without dropping a
 * connection. The certificates are made at run time in test-results/ (no key is committed).
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, readFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import path from 'node:path';
import { once } from 'node:events';
import { ensureCerts, issueServerCert, LOCAL_NAMES } from '../../common/src/certs.js';
import { startBalancer, startHttpBackend } from '../helpers/lab.js';
import { startEchoServer } from '../helpers/tcp.js';
import { getJson, waitFor } from '../helpers/http.js';
import { repoRoot } from '../helpers/processes.js';

const dir = path.join(repoRoot, 'test-results', 'certs-listeners');
const certs = await ensureCerts(dir);
const otherCa = await ensureCerts(path.join(repoRoot, 'test-results', 'certs-listeners-other-ca'));
const ca = readFileSync(certs.caCert);

const fingerprint = (file: string): string => new X509Certificate(readFileSync(file)).fingerprint256;

interface Answer {
  status: number;
  body: string;
  fingerprint: string;
  socket: tls.TLSSocket;
}

function httpsGet(port: number, agent: https.Agent | false = false, requestPath = '/x'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = https.get({ host: '127.0.0.1', port, path: requestPath, ca, servername: 'localhost', agent }, (res) => {
      const socket = res.socket as tls.TLSSocket;
      const peer = socket.getPeerX509Certificate()?.fingerprint256 ?? '';
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, fingerprint: peer, socket }));
    });
    req.on('error', reject);
  });
}

async function listenerPort(adminUrl: string, name: string): Promise<number> {
  const listener = (await getJson<{ name: string; address: string }[]>(`${adminUrl}/listeners`)).find((view) => view.name === name)!;
  return Number(listener.address.split(':').pop());
}

test('HTTPS listener: a client that trusts the CA gets 200 and the listener certificate; plain HTTP on the TLS port gets 400 LB_ERR_TLS_REQUIRED', async (t) => {
  const backend = await startHttpBackend(t, 's1');
  const lb = await startBalancer(t, { listeners: [{ name: 'secure', listen: { host: '127.0.0.1', port: 0 }, tls: { cert: certs.cert, key: certs.key }, backends: [{ url: backend.url, name: 's1' }] }] });
  assert.match(lb.url, /^https:\/\//);
  const port = await listenerPort(lb.adminUrl, 'secure');
  const answer = await httpsGet(port);
  assert.equal(answer.status, 200, answer.body);
  assert.equal(JSON.parse(answer.body).backend, 's1');
  assert.equal(answer.fingerprint, fingerprint(certs.cert));
  assert.equal(JSON.parse(answer.body).headers['x-forwarded-proto'], 'https', 'the backend is told the client used https');

  const plain = net.connect(port, '127.0.0.1');
  plain.write('GET / HTTP/1.1\r\nhost: x\r\n\r\n');
  let text = '';
  plain.on('data', (chunk: Buffer) => (text += chunk.toString()));
  await once(plain, 'close');
  assert.match(text, /^HTTP\/1\.1 400 /);
  assert.match(text, /"code":"LB_ERR_TLS_REQUIRED"/);

  const untrusting = await new Promise<Error>((resolve) => https.get({ host: '127.0.0.1', port, agent: false }, () => resolve(new Error('answered'))).on('error', resolve));
  assert.match(untrusting.message, /self-signed certificate in certificate chain|unable to verify/);
});

test('https:// backends: verified against upstreamTls.ca; with the wrong CA the balancer answers 502 LB_ERR_UPSTREAM_TLS saying why', async (t) => {
  const server = https.createServer({ cert: readFileSync(certs.cert), key: readFileSync(certs.key) }, (req, res) => {
    req.resume();
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ backend: 'tls-backend' }));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => server.close());
  const url = `https://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  const lb = await startBalancer(t, {
    healthCheck: { enabled: false },
    listeners: [
      { name: 'right', listen: { host: '127.0.0.1', port: 0 }, upstreamTls: { ca: certs.caCert }, backends: [{ url, name: 'b1' }] },
      { name: 'wrong', listen: { host: '127.0.0.1', port: 0 }, upstreamTls: { ca: otherCa.caCert }, backends: [{ url, name: 'b1' }] },
    ],
  });
  const right = await fetch(`http://127.0.0.1:${await listenerPort(lb.adminUrl, 'right')}/x`);
  assert.equal(right.status, 200);
  assert.deepEqual(await right.json(), { backend: 'tls-backend' });
  const wrong = await fetch(`http://127.0.0.1:${await listenerPort(lb.adminUrl, 'wrong')}/x`);
  assert.equal(wrong.status, 502);
  const body = (await wrong.json()) as { error: { code: string; message: string } };
  assert.equal(body.error.code, 'LB_ERR_UPSTREAM_TLS');
  assert.match(body.error.message, /b1: .*(verify|signature|self-signed)/i, body.error.message);
});

test('TLS over a tcp listener: the relay sees the decrypted stream', async (t) => {
  const [echo] = await Promise.all([startEchoServer('e1')]);
  t.after(() => echo!.close());
  const lb = await startBalancer(t, { listeners: [{ name: 'echo', mode: 'tcp', listen: { host: '127.0.0.1', port: 0 }, tls: { cert: certs.cert, key: certs.key }, backends: [{ url: echo!.url, name: 'e1' }] }] });
  assert.match(lb.url, /^tls:\/\//);
  const socket = tls.connect({ host: '127.0.0.1', port: await listenerPort(lb.adminUrl, 'echo'), ca, servername: 'localhost' });
  await once(socket, 'secureConnect');
  socket.end('hello over tls');
  let text = '';
  socket.on('data', (chunk: Buffer) => (text += chunk.toString()));
  await once(socket, 'end');
  assert.equal(text, 'e1\nhello over tls');
});

/** A TLS echo backend: greets with its id, then sends back what it gets, half-close included. */
async function startTlsEchoServer(t: TestContext, id: string): Promise<{ url: string; handshakes: () => number }> {
  let handshakes = 0;
  const server = tls.createServer({ cert: readFileSync(certs.cert), key: readFileSync(certs.key), allowHalfOpen: true }, (socket) => {
    handshakes++;
    socket.on('error', () => {});
    socket.write(`${id}\n`);
    socket.pipe(socket);
  });
  server.on('tlsClientError', () => {});
  // Every TCP connection, handshake done or not (the balancer's checks keep coming until it stops): close() waits for them all.
  const sockets = new Set<net.Socket>();
  server.on('connection', (socket: net.Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => {
    for (const socket of sockets) socket.destroy();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { url: `tls://localhost:${(server.address() as net.AddressInfo).port}`, handshakes: () => handshakes };
}

test('tls:// backends of a tcp listener: the balancer speaks TLS to them, verified against upstreamTls.ca; with the wrong CA they are down, saying why, and a client gets no connection', async (t) => {
  const good = await startTlsEchoServer(t, 't1');
  const lb = await startBalancer(t, {
    listeners: [
      { name: 'good', mode: 'tcp', listen: { host: '127.0.0.1', port: 0 }, upstreamTls: { ca: certs.caCert }, backends: [{ url: good.url, name: 't1' }], healthCheck: { type: 'tcp' } },
      { name: 'wrong-ca', mode: 'tcp', listen: { host: '127.0.0.1', port: 0 }, upstreamTls: { ca: otherCa.caCert }, backends: [{ url: good.url, name: 't1' }], healthCheck: { type: 'tcp' } },
    ],
  });
  // A plain client; the relay encrypts towards the backend. Half-close passes through TLS both ways.
  const plain = net.connect({ host: '127.0.0.1', port: await listenerPort(lb.adminUrl, 'good'), allowHalfOpen: true });
  let text = '';
  plain.on('data', (chunk: Buffer) => (text += chunk.toString()));
  plain.end('plain to the balancer, TLS beyond');
  await once(plain, 'end');
  assert.equal(text, 't1\nplain to the balancer, TLS beyond');

  await waitFor('the wrong-CA listener to show its backend down', async () => (await getJson<{ state: string }[]>(`${lb.adminUrl}/listeners/wrong-ca/backends`))[0]?.state === 'unhealthy');
  assert.match(lb.service.output(), /backend t1 stays unhealthy: its first health check failed why=UNABLE_TO_VERIFY_LEAF_SIGNATURE/, 'the log says why');
  const handshakesBefore = good.handshakes();
  const refused = net.connect({ host: '127.0.0.1', port: await listenerPort(lb.adminUrl, 'wrong-ca') });
  refused.on('error', () => {});
  let got = '';
  refused.on('data', (chunk: Buffer) => (got += chunk.toString()));
  await once(refused, 'close');
  assert.equal(got, '', 'no byte of the backend reaches a client when its certificate does not verify');
  assert.equal(good.handshakes(), handshakesBefore, 'no handshake completed with the backend');
});

test('new certificate files, then a SIGHUP or nothing: new handshakes get the new certificate, and a connection open across the swap keeps working', async (t) => {
  const backend = await startHttpBackend(t, 's1');
  // Copies that this test may overwrite; the other tests keep using the originals.
  const live = { cert: path.join(dir, 'swap.pem'), key: path.join(dir, 'swap-key.pem') };
  copyFileSync(certs.cert, live.cert);
  copyFileSync(certs.key, live.key);
  const lb = await startBalancer(t, { workers: 2, listeners: [{ name: 'secure', listen: { host: '127.0.0.1', port: 0 }, tls: live, backends: [{ url: backend.url, name: 's1' }] }] });
  const port = await listenerPort(lb.adminUrl, 'secure');
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
  t.after(() => agent.destroy());
  const before = await httpsGet(port, agent);
  assert.equal(before.fingerprint, fingerprint(certs.cert));

  await issueServerCert(dir, 'swap', LOCAL_NAMES, 30);
  const fresh = fingerprint(live.cert);
  assert.notEqual(fresh, before.fingerprint);
  lb.service.child.kill('SIGHUP');
  await waitFor('a new handshake with the new certificate', async () => (await httpsGet(port)).fingerprint === fresh, 5_000, 50);

  const after = await httpsGet(port, agent);
  assert.equal(after.status, 200);
  assert.equal(after.socket, before.socket, 'the same connection, open across the swap');
  assert.equal(after.fingerprint, before.fingerprint, 'it keeps the certificate it was made with');

  // Without a signal: the balancer watches the files of its listeners.
  await issueServerCert(dir, 'swap', LOCAL_NAMES, 30);
  const third = fingerprint(live.cert);
  await waitFor('the certificate written without a signal', async () => (await httpsGet(port)).fingerprint === third, 5_000, 100);
});

test('a reload may not change a listener\'s TLS files, and unreadable or mismatched files are refused with the reason', async (t) => {
  const backend = await startHttpBackend(t, 's1');
  const lb = await startBalancer(t, { listeners: [{ name: 'secure', listen: { host: '127.0.0.1', port: 0 }, tls: { cert: certs.cert, key: certs.key }, backends: [{ url: backend.url, name: 's1' }] }] });
  const config = await getJson<{ listeners: Record<string, unknown>[] }>(`${lb.adminUrl}/config`);
  const put = async (tlsFiles: unknown): Promise<{ status: number; body: string }> => {
    const listeners = [{ ...config.listeners[0], tls: tlsFiles }];
    const response = await fetch(`${lb.adminUrl}/config`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...config, listeners }) });
    return { status: response.status, body: await response.text() };
  };
  const moved = await put({ cert: otherCa.cert, key: otherCa.key });
  assert.equal(moved.status, 400);
  assert.match(moved.body, /listeners\[0\]\.tls.*the TLS files cannot change while running/);
  const missing = await put({ cert: path.join(dir, 'nope.pem'), key: certs.key });
  assert.match(missing.body, /listeners\[0\]\.tls\.cert.*cannot read .*nope\.pem: ENOENT/);
  const mismatched = await put({ cert: certs.cert, key: otherCa.key });
  assert.match(mismatched.body, /listeners\[0\]\.tls.*are not a certificate and its key/);
  assert.equal((await httpsGet(await listenerPort(lb.adminUrl, 'secure'))).status, 200, 'still serving with the files it had');
});
