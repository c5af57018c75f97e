import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import { startBalancer } from '../helpers/lab.js';
import { freePort } from '../helpers/processes.js';
import { startBackend } from '../helpers/backend.js';
import { startDnsServer } from '../helpers/dns-server.js';
import { httpRequest, sleep, waitFor } from '../helpers/http.js';

/** A backend process on one loopback address: every address of 127.0.0.0/8 is local on Linux. */
async function backendOn(t: TestContext, host: string, port: number): Promise<void> {
  const backend = await startBackend(host, { HOST: host, PORT: String(port) });
  t.after(() => backend.service.stop('SIGKILL'));
}

test('DNS discovery: A records added and removed change the pool within interval + 1 s; a failing lookup keeps the pool', async (t) => {
  const dns = await startDnsServer(t);
  const port = await freePort();
  await Promise.all(['127.0.0.1', '127.0.0.2', '127.0.0.3'].map((host) => backendOn(t, host, port)));
  dns.setRecords('backend.lab', ['127.0.0.1', '127.0.0.2']);
  const lb = await startBalancer(t, { discovery: { dns: { name: 'backend.lab', port, interval: '500ms', server: dns.address } } });
  const ids = async (): Promise<string[]> => (await lb.backends()).map((b) => b.id).sort();
  assert.deepEqual(await ids(), [`127.0.0.1:${port}`, `127.0.0.2:${port}`]);
  const answer = await httpRequest(`${lb.url}/x`);
  assert.equal(answer.status, 200, 'discovered backends were checked and take traffic from the start');

  dns.setRecords('backend.lab', ['127.0.0.1', '127.0.0.2', '127.0.0.3']);
  const added = await waitFor('the new address to join', async () => (await ids()).includes(`127.0.0.3:${port}`), 5_000, 20);
  t.diagnostic(`added after ${added.ms.toFixed(0)} ms`);
  assert.ok(added.ms <= 1_500);
  await waitFor('the new backend to pass its first check', async () => (await lb.backends()).every((b) => b.state === 'healthy'));

  dns.setRecords('backend.lab', ['127.0.0.2', '127.0.0.3']);
  const removed = await waitFor('the vanished address to leave', async () => !(await ids()).includes(`127.0.0.1:${port}`), 5_000, 20);
  t.diagnostic(`removed after ${removed.ms.toFixed(0)} ms`);
  assert.ok(removed.ms <= 1_500);

  dns.setMode('silent');
  await sleep(2_000);
  assert.deepEqual(await ids(), [`127.0.0.2:${port}`, `127.0.0.3:${port}`], 'a failing lookup keeps the last known pool');
  assert.match(lb.service.output(), /dns discovery: lookup of backend\.lab failed \(ETIMEOUT\); keeping the last 2 addresses/);
  for (let i = 0; i < 5; i++) assert.equal((await httpRequest(`${lb.url}/x`)).status, 200);
});
