import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { copyFile, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, connect, createSecureContext, type TLSSocket } from 'node:tls';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ensureCerts, issueServerCert, LOCAL_NAMES, type CertFiles } from '../../common/src/certs.js';

async function freshDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'lab-certs-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function certOf(file: string): Promise<X509Certificate> {
  return new X509Certificate(await readFile(file));
}

/**
 * handshake serves the server certificate(s) on host (the second one for its names, by SNI) and
 * connects a client that trusts caFile only; resolves with whether it verified, and why not.
 */
async function handshake(t: TestContext, files: CertFiles, caFile: string, host: string, servername?: string): Promise<{ authorized: boolean; error?: string; subject?: string }> {
  const [cert, key] = await Promise.all([readFile(files.cert), readFile(files.key)]);
  const second = files.second && createSecureContext({ cert: await readFile(files.second.cert), key: await readFile(files.second.key) });
  const server = createServer({ cert, key, ...(second ? { SNICallback: (name, done) => done(null, name === 'other.test' ? second : undefined) } : {}) }, (socket) => socket.end());
  server.on('tlsClientError', () => {});
  server.listen(0, host);
  await once(server, 'listening');
  t.after(() => server.close());
  const socket: TLSSocket = connect({ host, port: (server.address() as { port: number }).port, ca: await readFile(caFile), ...(servername ? { servername } : {}) });
  return new Promise((resolve) => {
    socket.once('secureConnect', () => {
      resolve({ authorized: socket.authorized, subject: socket.getPeerX509Certificate()?.subject });
      socket.destroy();
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve({ authorized: false, error: error.code }));
  });
}

test('ensureCerts: a server certificate that verifies against the CA for localhost, 127.0.0.1, ::1 and the extra names', async (t) => {
  const dir = await freshDir(t);
  const files = await ensureCerts(dir, { extraNames: ['balancer'] });
  assert.deepEqual(files, { caCert: path.join(dir, 'ca.pem'), cert: path.join(dir, 'lab.pem'), key: path.join(dir, 'lab-key.pem') });
  const [ca, cert] = await Promise.all([certOf(files.caCert), certOf(files.cert)]);
  assert.equal(ca.ca, true);
  assert.equal(cert.ca, false);
  assert.ok(cert.checkIssued(ca) && cert.verify(ca.publicKey), 'signed by the CA');
  assert.equal(cert.checkHost('localhost'), 'localhost');
  assert.equal(cert.checkHost('balancer'), 'balancer');
  assert.equal(cert.checkIP('127.0.0.1'), '127.0.0.1');
  assert.ok(cert.checkIP('::1'));
  assert.equal(cert.checkHost('example.com'), undefined);
  assert.match(cert.subjectAltName ?? '', /DNS:localhost.*IP Address:127\.0\.0\.1/);
  assert.ok(cert.validToDate.getTime() > Date.now() + 300 * 24 * 3600_000, 'valid for about a year');

  assert.deepEqual(await handshake(t, files, files.caCert, '127.0.0.1'), { authorized: true, subject: 'CN=localhost' });
  assert.equal((await handshake(t, files, files.caCert, '127.0.0.1', 'localhost')).authorized, true);
});

test('ensureCerts: keys are mode 0600', async (t) => {
  const dir = await freshDir(t);
  const files = await ensureCerts(dir, { secondNames: ['other.test'] });
  for (const key of [files.key, files.second!.key, path.join(dir, 'ca-key.pem')]) assert.equal((await stat(key)).mode & 0o777, 0o600, key);
});

test('ensureCerts: a certificate of another CA does not verify', async (t) => {
  const files = await ensureCerts(await freshDir(t));
  const other = await ensureCerts(await freshDir(t));
  assert.deepEqual(await handshake(t, files, other.caCert, '127.0.0.1'), { authorized: false, error: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' });
});

test('ensureCerts: the second certificate is for its names only, and is served by SNI', async (t) => {
  const files = await ensureCerts(await freshDir(t), { secondNames: ['other.test'] });
  const second = await certOf(files.second!.cert);
  assert.equal(second.checkHost('other.test'), 'other.test');
  assert.equal(second.checkIP('127.0.0.1'), undefined);
  assert.equal(second.checkHost('localhost'), undefined);
  assert.ok(second.checkIssued(await certOf(files.caCert)));
  assert.deepEqual(await handshake(t, files, files.caCert, '127.0.0.1', 'other.test'), { authorized: true, subject: 'CN=other.test' });
});

test('ensureCerts: files still good are kept; a missing, foreign or broken one is made again with the same CA', async (t) => {
  const dir = await freshDir(t);
  const first = await ensureCerts(dir);
  const fingerprint = async (file: string): Promise<string> => (await certOf(file)).fingerprint256;
  const [ca, cert] = [await fingerprint(first.caCert), await fingerprint(first.cert)];
  await ensureCerts(dir);
  assert.equal(await fingerprint(first.cert), cert, 'kept');

  await ensureCerts(dir, { extraNames: ['balancer'] });
  assert.notEqual(await fingerprint(first.cert), cert, 'made again for the new name');
  assert.equal(await fingerprint(first.caCert), ca, 'by the same CA');
  assert.ok((await certOf(first.cert)).checkHost('balancer'));

  const other = await ensureCerts(await freshDir(t));
  await copyFile(other.cert, first.cert);
  await ensureCerts(dir);
  assert.ok((await certOf(first.cert)).checkIssued(await certOf(first.caCert)), 'a certificate of another CA is replaced');

  await writeFile(first.key, 'not a key');
  await ensureCerts(dir);
  assert.equal((await handshake(t, first, first.caCert, '127.0.0.1')).authorized, true, 'a broken key is replaced with its certificate');

  await rm(first.caCert);
  await ensureCerts(dir);
  assert.notEqual(await fingerprint(first.caCert), ca, 'a missing CA is made again');
  assert.ok((await certOf(first.cert)).checkIssued(await certOf(first.caCert)), 'and the server certificate with it');
});

test('ensureCerts: an expired server certificate is made again', async (t) => {
  const dir = await freshDir(t);
  const files = await ensureCerts(dir);
  const expired = await issueServerCert(dir, 'expired', LOCAL_NAMES, -1);
  assert.ok((await certOf(expired.cert)).validToDate.getTime() < Date.now());
  assert.deepEqual(await handshake(t, { ...files, ...expired }, files.caCert, '127.0.0.1'), { authorized: false, error: 'CERT_HAS_EXPIRED' });
  await copyFile(expired.cert, files.cert);
  await copyFile(expired.key, files.key);
  await ensureCerts(dir);
  assert.ok((await certOf(files.cert)).validToDate.getTime() > Date.now());
  assert.equal((await handshake(t, files, files.caCert, '127.0.0.1')).authorized, true);
});

test('issueServerCert: refuses the file names of ensureCerts', async (t) => {
  const dir = await freshDir(t);
  await ensureCerts(dir);
  await assert.rejects(issueServerCert(dir, 'lab', ['localhost'], 1), /not a file name of its own/);
  await assert.rejects(issueServerCert(dir, 'ca', ['localhost'], 1), /not a file name of its own/);
});

test('ensureCerts: callers on the same directory at once get one consistent set', async (t) => {
  const dir = await freshDir(t);
  const all = await Promise.all([ensureCerts(dir), ensureCerts(dir), ensureCerts(dir)]);
  assert.deepEqual(all[1], all[0]);
  assert.equal((await handshake(t, all[0]!, all[0]!.caCert, '127.0.0.1')).authorized, true);
});

test('ensureCerts: a name that is neither DNS nor IP is refused', async (t) => {
  await assert.rejects(ensureCerts(await freshDir(t), { extraNames: ['bad name/with slash'] }), /neither a DNS name nor an IP address/);
});

test('ensureCerts needs no openssl command (the lab images have none): it works with nothing on PATH', async (t) => {
  const dir = await freshDir(t);
  const path = process.env.PATH;
  process.env.PATH = '/nonexistent';
  t.after(() => (process.env.PATH = path));
  const files = await ensureCerts(dir);
  assert.ok(new X509Certificate(await readFile(files.cert)).checkIssued(new X509Certificate(await readFile(files.caCert))));
});
