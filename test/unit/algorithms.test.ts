import { test } from 'node:test';
import assert from 'node:assert/strict';
import { algorithmNames, createAlgorithm } from '../../balancer/src/algorithms/index.js';
import { ConsistentHash } from '../../balancer/src/algorithms/consistent-hash.js';
import { LoadStats } from '../../balancer/src/backends/load.js';
import type { Candidate, PickContext } from '../../balancer/src/backends/view.js';

const options = { virtualNodes: 160 };

/** A candidate as the data plane hands them to algorithms, with a load the test can set. */
interface TestCandidate extends Candidate {
  readonly load: LoadStats;
}

/** testBackends builds available backends named b1..bN with the given weights (Caddy's testPool pattern). */
function testBackends(...weights: number[]): TestCandidate[] {
  return weights.map((weight, i) => ({ id: `b${i + 1}`, weight, effectiveWeight: () => weight, load: new LoadStats() }));
}

function inFlight(backend: TestCandidate, count: number): void {
  for (let i = 0; i < count; i++) backend.load.begin();
}

const context = (clientAddress = '192.0.2.1', hashKey = clientAddress): PickContext => ({ clientAddress, hashKey });

function tally(picks: (Candidate | undefined)[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const pick of picks) if (pick) counts[pick.id] = (counts[pick.id] ?? 0) + 1;
  return counts;
}

test('every algorithm returns undefined when no backend is available, and one of the candidates otherwise', () => {
  for (const name of algorithmNames) {
    const algorithm = createAlgorithm(name, options);
    assert.equal(algorithm.pick([], context()), undefined, name);
    const backends = testBackends(1, 1, 1);
    for (let i = 0; i < 50; i++) assert.ok(backends.includes(algorithm.pick(backends, context(`192.0.2.${i}`))!), name);
  }
});

test('weighted-round-robin interleaves by weight: 3:1:1 gives a a b a c, repeated', () => {
  const backends = testBackends(3, 1, 1);
  const algorithm = createAlgorithm('weighted-round-robin', options);
  const sequence = Array.from({ length: 10 }, () => algorithm.pick(backends, context())!.id).join(' ');
  assert.equal(sequence, 'b1 b1 b2 b1 b3 b1 b1 b2 b1 b3');
});

test('weighted-round-robin gives every backend its exact share in each period, with weights from 1 to 7 over 30 backends', () => {
  const backends = testBackends(...Array.from({ length: 30 }, (_, i) => 1 + (i % 7)));
  const total = backends.reduce((sum, backend) => sum + backend.weight, 0);
  const algorithm = createAlgorithm('weighted-round-robin', options);
  const counts = tally(Array.from({ length: total * 4 }, () => algorithm.pick(backends, context())));
  for (const backend of backends) assert.equal(counts[backend.id], backend.weight * 4, backend.id);
});

test('weighted-round-robin follows a slow-start ramp: a backend at a tenth of its weight gets a tenth of its share', () => {
  const backends = testBackends(1, 1);
  const ramping: TestCandidate = { ...backends[1]!, effectiveWeight: () => 0.1 };
  const algorithm = createAlgorithm('weighted-round-robin', options);
  const counts = tally(Array.from({ length: 1100 }, () => algorithm.pick([backends[0]!, ramping], context())));
  assert.equal(counts.b2, 100, JSON.stringify(counts));
});

test('least-connections takes the least loaded per unit of weight, and equal backends take turns', () => {
  const [a, b, c] = testBackends(1, 1, 2);
  const algorithm = createAlgorithm('least-connections', options);
  inFlight(a!, 3);
  inFlight(b!, 1);
  inFlight(c!, 4); // 2 per unit of weight
  assert.equal(algorithm.pick([a!, b!, c!], context()), b);
  // Requests start on the pick and end later, as on the request path: the algorithm hears of both.
  const idle = testBackends(1, 1, 1);
  const open: TestCandidate[] = [];
  const picks = Array.from({ length: 3000 }, (_, i) => {
    const picked = algorithm.pick(idle, context())!;
    picked.load.begin();
    algorithm.loadChanged!(picked);
    open.push(picked);
    if (i % 2 === 1) {
      const done = open.shift()!;
      done.load.end();
      algorithm.loadChanged!(done);
    }
    return picked;
  });
  const counts = tally(picks);
  for (const id of ['b1', 'b2', 'b3']) assert.ok(Math.abs((counts[id] ?? 0) - 1000) < 50, JSON.stringify(counts));
  const loads = idle.map((backend) => backend.load.activeRequests);
  assert.ok(Math.max(...loads) - Math.min(...loads) <= 1, `in flight ${loads.join(', ')}: never more than one apart`);
});

test('least-connections: requests that end before the next pick (every load back at 0) still go to every backend in turn', () => {
  const backends = testBackends(1, 1, 1);
  const algorithm = createAlgorithm('least-connections', options);
  const picks = Array.from({ length: 9 }, () => {
    const picked = algorithm.pick(backends, context())!;
    picked.load.begin();
    algorithm.loadChanged!(picked);
    picked.load.end();
    algorithm.loadChanged!(picked);
    return picked.id;
  });
  assert.deepEqual(picks, ['b1', 'b2', 'b3', 'b1', 'b2', 'b3', 'b1', 'b2', 'b3']);
});

test('least-connections follows load changes it is told of: a backend that gets busy stops being picked', () => {
  const backends = testBackends(1, 1, 1);
  const algorithm = createAlgorithm('least-connections', options);
  const first = algorithm.pick(backends, context())!;
  inFlight(first, 5);
  algorithm.loadChanged!(first);
  const counts = tally(Array.from({ length: 20 }, () => algorithm.pick(backends, context())));
  assert.equal(counts[first.id], undefined, JSON.stringify(counts));
});

test('p2c never picks the most loaded backend, and picks the least loaded most often', () => {
  const backends = testBackends(1, 1, 1);
  backends.forEach((backend, i) => inFlight(backend, i * 5));
  const algorithm = createAlgorithm('p2c', options);
  const counts = tally(Array.from({ length: 3000 }, () => algorithm.pick(backends, context())));
  assert.equal(counts.b3, undefined);
  assert.ok((counts.b1 ?? 0) > 1800, JSON.stringify(counts));
});

test('random follows the weights', () => {
  const backends = testBackends(3, 1);
  const algorithm = createAlgorithm('random', options);
  const counts = tally(Array.from({ length: 4000 }, () => algorithm.pick(backends, context())));
  assert.ok(Math.abs((counts.b1 ?? 0) - 3000) < 200, JSON.stringify(counts));
});

test('ewma prefers the backend that answers faster, and counts requests in flight', () => {
  const backends = testBackends(1, 1);
  const now = Date.now();
  backends[0]!.load.observeLatency(50, now);
  backends[1]!.load.observeLatency(5, now);
  const algorithm = createAlgorithm('ewma', options);
  assert.equal(algorithm.pick(backends, context()), backends[1]);
  inFlight(backends[1]!, 20); // 5 ms × 21 > 50 ms × 1
  assert.equal(algorithm.pick(backends, context()), backends[0]);
});

test('ewma does not herd: a slightly slower backend still gets traffic, a much slower one gets none', () => {
  const backends = testBackends(1, 1, 1);
  const now = Date.now();
  backends[0]!.load.observeLatency(1.0, now);
  backends[1]!.load.observeLatency(1.2, now);
  backends[2]!.load.observeLatency(50, now);
  const algorithm = createAlgorithm('ewma', options);
  const counts = tally(Array.from({ length: 3000 }, () => algorithm.pick(backends, context())));
  assert.ok((counts.b2 ?? 0) > 600, `the 1.2 ms backend got ${counts.b2 ?? 0} of 3000: ${JSON.stringify(counts)}`);
  assert.equal(counts.b3, undefined, JSON.stringify(counts));
});

test('ewma assumes a backend that has never answered is as fast as the average of the others', () => {
  const backends = testBackends(1, 1, 1);
  const now = Date.now();
  backends[0]!.load.observeLatency(10, now);
  backends[1]!.load.observeLatency(30, now);
  const algorithm = createAlgorithm('ewma', options);
  const counts = tally(Array.from({ length: 3000 }, () => algorithm.pick(backends, context())));
  // b3 counts as 20 ms: it beats b2 whenever they meet and loses to b1, so it gets about a third.
  assert.ok(Math.abs((counts.b3 ?? 0) - 1000) < 150, JSON.stringify(counts));
});

test('peak EWMA takes a latency spike at once and recovers smoothly', () => {
  const load = new LoadStats();
  const t0 = 1_000_000;
  load.observeLatency(10, t0);
  load.observeLatency(200, t0 + 100);
  assert.equal(load.latencyEwmaMs, 200);
  load.observeLatency(10, t0 + 1_100);
  assert.ok(load.latencyEwmaMs > 150 && load.latencyEwmaMs < 200, String(load.latencyEwmaMs));
});

test('consistent-hash spreads 10,000 keys evenly and moves only the removed backend\'s keys', () => {
  const backends = testBackends(1, 1, 1, 1, 1);
  const ring = new ConsistentHash(160);
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

test('hash algorithms read the pick context, not a request: consistent-hash its hash key, ip-hash the client address', () => {
  const backends = testBackends(1, 1, 1, 1);
  const ring = createAlgorithm('consistent-hash', options);
  const byKey = new Set(Array.from({ length: 20 }, (_, i) => ring.pick(backends, context(`198.51.100.${i}`, 'alice'))!.id));
  assert.equal(byKey.size, 1, 'one key, one backend, whatever the address');
  const ipHash = createAlgorithm('ip-hash', options);
  const byAddress = new Set(Array.from({ length: 20 }, (_, i) => ipHash.pick(backends, context('198.51.100.7', `key-${i}`))!.id));
  assert.equal(byAddress.size, 1, 'one address, one backend, whatever the key');
});

test('consistent-hash: a retry among the backends not tried yet goes to the next owner on the same ring, without a rebuild', () => {
  const backends = testBackends(1, 1, 1, 1, 1);
  const ring = new ConsistentHash(160);
  const keys = Array.from({ length: 2_000 }, (_, i) => `key-${i}`);
  for (const key of keys) {
    const first = ring.owner(backends, key)!;
    const rest = backends.filter((backend) => backend !== first);
    const second = ring.owner(rest, key)!;
    assert.notEqual(second, first);
    // The same as a ring built from the rest alone: removing a backend moves its keys to the next owner.
    assert.equal(second.id, new ConsistentHash(160).owner(rest, key)!.id, key);
  }
});
