import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Agent } from 'node:http';
import { startBalancer, startHttpBackend, counts } from '../helpers/lab.js';
import { httpRequest, waitFor } from '../helpers/http.js';
import { runLoad, describeFailures } from '../helpers/load.js';

async function sequentialBackends(url: string, count: number, headers?: (i: number) => Record<string, string>): Promise<string[]> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const order: string[] = [];
  for (let i = 0; i < count; i++) {
    const result = await httpRequest(`${url}/item/${i}`, { agent, headers: headers?.(i) });
    assert.equal(result.status, 200, `request ${i}: ${result.body}`);
    order.push(String(result.headers['x-backend-id']));
  }
  agent.destroy();
  return order;
}

test('round-robin over 3 backends: 300 requests give each 100 ± 2', async (t) => {
  const backends = await Promise.all(['b1', 'b2', 'b3'].map((id) => startHttpBackend(t, id)));
  const lb = await startBalancer(t, { algorithm: 'round-robin', backends: backends.map((b) => ({ url: b.url, name: b.id })) });
  const share = counts(await sequentialBackends(lb.url, 300));
  for (const b of backends) assert.ok(Math.abs((share[b.id] ?? 0) - 100) <= 2, `${b.id} got ${share[b.id]}: ${JSON.stringify(share)}`);
});

test('weighted-round-robin 3:1:1 over 500 requests: 300/100/100 ± 5, never 3 in a row', async (t) => {
  const [a, b, c] = await Promise.all(['heavy', 'light1', 'light2'].map((id) => startHttpBackend(t, id)));
  const lb = await startBalancer(t, {
    algorithm: 'weighted-round-robin',
    backends: [
      { url: a!.url, name: a!.id, weight: 3 },
      { url: b!.url, name: b!.id, weight: 1 },
      { url: c!.url, name: c!.id, weight: 1 },
    ],
  });
  const order = await sequentialBackends(lb.url, 500);
  const share = counts(order);
  assert.ok(Math.abs((share.heavy ?? 0) - 300) <= 5, JSON.stringify(share));
  assert.ok(Math.abs((share.light1 ?? 0) - 100) <= 5, JSON.stringify(share));
  assert.ok(Math.abs((share.light2 ?? 0) - 100) <= 5, JSON.stringify(share));
  let longestRun = 1;
  for (let i = 1, run = 1; i < order.length; i++) {
    run = order[i] === order[i - 1] ? run + 1 : 1;
    longestRun = Math.max(longestRun, run);
  }
  assert.ok(longestRun <= 2, `one backend got ${longestRun} requests in a row`);
});

for (const algorithm of ['least-connections', 'ewma'] as const) {
  test(`${algorithm}: a backend answering 200 ms slower gets under 15% of concurrent traffic`, async (t) => {
    const fast1 = await startHttpBackend(t, 'fast1');
    const fast2 = await startHttpBackend(t, 'fast2');
    const slow = await startHttpBackend(t, 'slow', { delayMs: 200 });
    const lb = await startBalancer(t, { algorithm, backends: [fast1, fast2, slow].map((b) => ({ url: b.url, name: b.id })) });
    const run = await runLoad({ url: `${lb.url}/work`, rate: 200, durationMs: 3_000 });
    assert.equal(run.failures().length, 0, describeFailures(run));
    const share = run.byBackend();
    const slowShare = (share.slow ?? 0) / run.samples.length;
    t.diagnostic(`${algorithm} shares: ${JSON.stringify(share)}, slow ${(slowShare * 100).toFixed(1)}%`);
    assert.ok(slowShare < 0.15, `slow backend got ${(slowShare * 100).toFixed(1)}%: ${JSON.stringify(share)}`);
  });
}

test('consistent-hash: removing 1 of 5 backends moves at most 25% of 1,000 keys, and none of the keys on the other four', async (t) => {
  const backends = await Promise.all(['c1', 'c2', 'c3', 'c4', 'c5'].map((id) => startHttpBackend(t, id)));
  const lb = await startBalancer(t, {
    algorithm: 'consistent-hash',
    hash: { key: 'header:x-user-id' },
    backends: backends.map((b) => ({ url: b.url, name: b.id })),
  });
  const keyHeader = (i: number): Record<string, string> => ({ 'x-user-id': `user-${i}` });
  const before = await sequentialBackends(lb.url, 1000, keyHeader);
  assert.ok(Object.keys(counts(before)).length === 5, `keys reached ${JSON.stringify(counts(before))}`);

  const removed = backends[2]!;
  await removed.close();
  await waitFor('the removed backend to be marked down', async () => (await lb.backends()).find((b) => b.id === removed.id)?.state === 'unhealthy');

  const after = await sequentialBackends(lb.url, 1000, keyHeader);
  let moved = 0;
  let movedFromOthers = 0;
  for (let i = 0; i < 1000; i++) {
    if (before[i] === after[i]) continue;
    moved++;
    if (before[i] !== removed.id) movedFromOthers++;
  }
  t.diagnostic(`moved ${moved} of 1000 keys; ${counts(before)[removed.id]} were on ${removed.id}`);
  assert.ok(moved <= 250, `${moved} keys moved`);
  assert.equal(movedFromOthers, 0, 'keys of the four remaining backends must stay where they were');
  assert.ok(!after.includes(removed.id));
});

test('ip-hash: one client address always reaches the same backend', async (t) => {
  const backends = await Promise.all(['i1', 'i2', 'i3'].map((id) => startHttpBackend(t, id)));
  const lb = await startBalancer(t, { algorithm: 'ip-hash', backends: backends.map((b) => ({ url: b.url, name: b.id })) });
  const share = counts(await sequentialBackends(lb.url, 30));
  assert.equal(Object.keys(share).length, 1, JSON.stringify(share));
});

for (const algorithm of ['random', 'p2c'] as const) {
  test(`${algorithm}: every backend takes part, none is starved`, async (t) => {
    const backends = await Promise.all(['r1', 'r2', 'r3'].map((id) => startHttpBackend(t, id)));
    const lb = await startBalancer(t, { algorithm, backends: backends.map((b) => ({ url: b.url, name: b.id })) });
    const share = counts(await sequentialBackends(lb.url, 300));
    for (const b of backends) assert.ok((share[b.id] ?? 0) >= 60, `${b.id} got ${share[b.id]}: ${JSON.stringify(share)}`);
  });
}
