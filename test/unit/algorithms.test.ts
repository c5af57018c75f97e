import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { algorithmNames, createAlgorithm } from '../../balancer/src/algorithms/index.js';
import { ConsistentHash } from '../../balancer/src/algorithms/consistent-hash.js';
import { Backend, Pool } from '../../balancer/src/pool.js';

const options = { hashKey: 'client-address', virtualNodes: 160 };
const poolSettings = { rise: 1, fall: 1, healthChecked: false, outlier: undefined, panicThreshold: 0, slowStart: 0 };

/** testBackends builds available backends named b1..bN with the given weights (Caddy's testPool pattern). */
function testBackends(...weights: number[]): Backend[] {
  const backends = weights.map((weight, i) => new Backend({ url: `http://10.0.0.${i + 1}:80`, name: `b${i + 1}`, weight }, true, 'config'));
  for (const backend of backends) backend.agent.destroy();
  return backends;
}

const fakeRequest = (address = '192.0.2.1', headers: Record<string, string> = {}): IncomingMessage =>
  ({ socket: { remoteAddress: address }, headers }) as unknown as IncomingMessage;

function tally(picks: (Backend | undefined)[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const pick of picks) if (pick) counts[pick.id] = (counts[pick.id] ?? 0) + 1;
  return counts;
}

test('every algorithm returns undefined when no backend is available, and one of the candidates otherwise', () => {
  for (const name of algorithmNames) {
    const algorithm = createAlgorithm(name, options);
    assert.equal(algorithm.pick([], fakeRequest()), undefined, name);
    const backends = testBackends(1, 1, 1);
    for (let i = 0; i < 50; i++) assert.ok(backends.includes(algorithm.pick(backends, fakeRequest(`192.0.2.${i}`))!), name);
  }
});

test('weighted-round-robin is smooth: 3:1:1 gives a b a c a, repeated', () => {
  const backends = testBackends(3, 1, 1);
  const algorithm = createAlgorithm('weighted-round-robin', options);
  const sequence = Array.from({ length: 10 }, () => algorithm.pick(backends, fakeRequest())!.id).join(' ');
  assert.equal(sequence, 'b1 b2 b1 b3 b1 b1 b2 b1 b3 b1');
});

test('least-connections takes the least loaded per unit of weight and breaks ties fairly', () => {
  const [a, b, c] = testBackends(1, 1, 2);
  const algorithm = createAlgorithm('least-connections', options);
  a!.activeRequests = 3;
  b!.activeRequests = 1;
  c!.activeRequests = 4; // 2 per unit of weight
  assert.equal(algorithm.pick([a!, b!, c!], fakeRequest()), b);
  a!.activeRequests = b!.activeRequests = c!.activeRequests = 0;
  const counts = tally(Array.from({ length: 3000 }, () => algorithm.pick([a!, b!, c!], fakeRequest())));
  for (const id of ['b1', 'b2', 'b3']) assert.ok(Math.abs((counts[id] ?? 0) - 1000) < 150, JSON.stringify(counts));
});

test('p2c never picks the most loaded backend, and picks the least loaded most often', () => {
  const backends = testBackends(1, 1, 1);
  backends.forEach((backend, i) => (backend.activeRequests = i * 5));
  const algorithm = createAlgorithm('p2c', options);
  const counts = tally(Array.from({ length: 3000 }, () => algorithm.pick(backends, fakeRequest())));
  assert.equal(counts.b3, undefined);
  assert.ok((counts.b1 ?? 0) > 1800, JSON.stringify(counts));
});

test('random follows the weights', () => {
  const backends = testBackends(3, 1);
  const algorithm = createAlgorithm('random', options);
  const counts = tally(Array.from({ length: 4000 }, () => algorithm.pick(backends, fakeRequest())));
  assert.ok(Math.abs((counts.b1 ?? 0) - 3000) < 200, JSON.stringify(counts));
});

test('ewma prefers the backend that answers faster, and counts requests in flight', () => {
  const backends = testBackends(1, 1);
  const pool = new Pool(poolSettings);
  const now = Date.now();
  pool.observeLatency(backends[0]!, 50, now);
  pool.observeLatency(backends[1]!, 5, now);
  const algorithm = createAlgorithm('ewma', options);
  assert.equal(algorithm.pick(backends, fakeRequest()), backends[1]);
  backends[1]!.activeRequests = 20; // 5 ms × 21 > 50 ms × 1
  assert.equal(algorithm.pick(backends, fakeRequest()), backends[0]);
});

test('ewma does not herd: a slightly slower backend still gets traffic, a much slower one gets none', () => {
  const backends = testBackends(1, 1, 1);
  const pool = new Pool(poolSettings);
  const now = Date.now();
  pool.observeLatency(backends[0]!, 1.0, now);
  pool.observeLatency(backends[1]!, 1.2, now);
  pool.observeLatency(backends[2]!, 50, now);
  const algorithm = createAlgorithm('ewma', options);
  const counts = tally(Array.from({ length: 3000 }, () => algorithm.pick(backends, fakeRequest())));
  assert.ok((counts.b2 ?? 0) > 600, `the 1.2 ms backend got ${counts.b2 ?? 0} of 3000: ${JSON.stringify(counts)}`);
  assert.equal(counts.b3, undefined, JSON.stringify(counts));
});

test('peak EWMA takes a latency spike at once and recovers smoothly', () => {
  const [backend] = testBackends(1);
  const pool = new Pool(poolSettings);
  const t0 = 1_000_000;
  pool.observeLatency(backend!, 10, t0);
  pool.observeLatency(backend!, 200, t0 + 100);
  assert.equal(backend!.latencyEwmaMs, 200);
  pool.observeLatency(backend!, 10, t0 + 1_100);
  assert.ok(backend!.latencyEwmaMs > 150 && backend!.latencyEwmaMs < 200, String(backend!.latencyEwmaMs));
});

test('consistent-hash spreads 10,000 keys evenly and moves only the removed backend\'s keys', () => {
  const backends = testBackends(1, 1, 1, 1, 1);
  const ring = new ConsistentHash('client-address', 160);
  const keys = Array.from({ length: 10_000 }, (_, i) => `key-${i}`);
  const before = keys.map((key) => ring.owner(backends, key)!);
  const counts = tally(before);
  for (const backend of backends) assert.ok(Math.abs((counts[backend.id] ?? 0) - 2000) < 500, JSON.stringify(counts));
  const remaining = backends.filter((backend) => backend.id !== 'b3');
  const after = keys.map((key) => ring.owner(remaining, key)!);
  for (let i = 0; i < keys.length; i++) {
    if (before[i]!.id !== 'b3') assert.equal(after[i], before[i], `${keys[i]} moved from ${before[i]!.id}`);
  }
});

test('consistent-hash reads the configured header, and falls back to the client address', () => {
  const backends = testBackends(1, 1, 1, 1);
  const ring = new ConsistentHash('header:X-User', 160);
  const byHeader = new Set(Array.from({ length: 20 }, (_, i) => ring.pick(backends, fakeRequest(`198.51.100.${i}`, { 'x-user': 'alice' }))!.id));
  assert.equal(byHeader.size, 1, 'one user, one backend, whatever the address');
  assert.equal(ring.key(fakeRequest('198.51.100.9')), '198.51.100.9');
});
