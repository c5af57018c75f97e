import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Pool, type PoolSettings } from '../../balancer/src/pool.js';

function testPool(healthChecked = true, extra: Partial<PoolSettings> = {}): Pool {
  const pool = new Pool({ rise: 2, fall: 3, healthChecked, outlier: undefined, panicThreshold: 0, slowStart: 0, ...extra });
  pool.add({ url: 'http://127.0.0.1:1', name: 'a', weight: 1 }, 'config');
  pool.add({ url: 'http://127.0.0.1:2', name: 'b', weight: 0 }, 'config');
  pool.markStarted();
  for (const backend of pool.all()) backend.agent.destroy();
  return pool;
}

test('with health checks, backends start unavailable and the first check decides at once', () => {
  const pool = testPool();
  const a = pool.get('a')!;
  assert.equal(a.state, 'unhealthy');
  pool.recordCheck(a, true, 'HTTP 200');
  assert.equal(a.state, 'healthy');
  assert.deepEqual(pool.available(), [a]);
});

test('fall consecutive failures take a backend down, rise consecutive passes bring it back; a pass resets the failures', () => {
  const pool = testPool();
  const a = pool.get('a')!;
  const changes: string[] = [];
  pool.onEvent((event) => {
    if (event.type === 'state') changes.push(`${event.backend.id} ${event.from}→${event.to}`);
  });
  pool.recordCheck(a, true, 'HTTP 200');
  pool.recordCheck(a, false, 'HTTP 503');
  pool.recordCheck(a, false, 'HTTP 503');
  pool.recordCheck(a, true, 'HTTP 200');
  pool.recordCheck(a, false, 'timeout');
  pool.recordCheck(a, false, 'timeout');
  assert.equal(a.state, 'healthy', 'the pass in between reset the count');
  pool.recordCheck(a, false, 'timeout');
  assert.equal(a.state, 'unhealthy');
  pool.recordCheck(a, true, 'HTTP 200');
  assert.equal(a.state, 'unhealthy');
  pool.recordCheck(a, true, 'HTTP 200');
  assert.equal(a.state, 'healthy');
  assert.deepEqual(changes, ['a unhealthy→healthy', 'a healthy→unhealthy', 'a unhealthy→healthy']);
});

test('flap damping: down again within 10 s of coming back doubles the passes the next rise needs; 10 s up restores rise', (t) => {
  t.mock.timers.enable({ apis: ['Date'], now: 1_000_000 });
  const pool = testPool(true, { fall: 1 });
  const a = pool.get('a')!;
  const passesToComeUp = (): number => {
    let passes = 0;
    while (a.state !== 'healthy' && passes < 20) pool.recordCheck(a, true, 'HTTP 200'), passes++;
    return passes;
  };
  pool.recordCheck(a, true, 'HTTP 200');
  pool.recordCheck(a, false, 'HTTP 503');
  assert.equal(passesToComeUp(), 2, 'up since its first check: not a flap, rise applies');
  t.mock.timers.tick(3_000);
  pool.recordCheck(a, false, 'HTTP 503');
  assert.equal(passesToComeUp(), 4, 'down 3 s after coming up: rise doubles');
  pool.recordCheck(a, false, 'HTTP 503');
  assert.equal(passesToComeUp(), 8, 'and again');
  pool.recordCheck(a, false, 'HTTP 503');
  assert.equal(passesToComeUp(), 8, 'never beyond 8');
  t.mock.timers.tick(10_000);
  pool.recordCheck(a, true, 'HTTP 200');
  pool.recordCheck(a, false, 'HTTP 503');
  assert.equal(passesToComeUp(), 2, 'up for 10 s: rise applies again');
});

test('passive failures count like failed checks, only when health checks can bring the backend back', () => {
  const pool = testPool();
  const a = pool.get('a')!;
  pool.recordCheck(a, true, 'HTTP 200');
  for (let i = 0; i < 3; i++) pool.recordPassiveFailure(a, 'ECONNREFUSED');
  assert.equal(a.state, 'unhealthy');

  const unchecked = testPool(false);
  const u = unchecked.get('a')!;
  assert.equal(u.state, 'healthy');
  for (let i = 0; i < 5; i++) unchecked.recordPassiveFailure(u, 'ECONNREFUSED');
  assert.equal(u.state, 'healthy');
});

test('a backend with weight 0 is healthy but takes no new requests', () => {
  const pool = testPool(false);
  assert.equal(pool.get('b')!.state, 'healthy');
  assert.deepEqual(pool.available().map((b) => b.id), ['a']);
});

test('outlier detection ejects after consecutive failures, for longer each time in a row, and never more than maxEjectionPercent', async () => {
  const outlier = { consecutiveFailures: 3, baseEjectionTime: 40, maxEjectionTime: 1_000, maxEjectionPercent: 50 };
  const pool = testPool(false, { outlier });
  pool.add({ url: 'http://127.0.0.1:3', name: 'c', weight: 1 }, 'config');
  pool.add({ url: 'http://127.0.0.1:4', name: 'd', weight: 1 }, 'config');
  const a = pool.get('a')!;
  const ejections: number[] = [];
  pool.onEvent((event) => {
    if (event.type === 'ejected') ejections.push(event.forMs);
  });
  pool.recordError(a, 'HTTP 500');
  pool.recordError(a, 'HTTP 500');
  pool.recordSuccess(a);
  pool.recordError(a, 'HTTP 500');
  pool.recordError(a, 'HTTP 500');
  assert.equal(a.state, 'healthy', 'a success in between resets the count');
  pool.recordError(a, 'HTTP 500');
  assert.equal(a.state, 'ejected');
  assert.ok(!pool.available().includes(a));
  await new Promise((resolve) => setTimeout(resolve, 60));
  assert.equal(a.state, 'healthy', 'back after the base ejection time');
  for (let i = 0; i < 3; i++) pool.recordError(a, 'HTTP 500');
  assert.deepEqual(ejections, [40, 80], 'the second ejection in a row lasts twice as long');

  // 4 backends, 50%: at most 2 ejected at once.
  for (const id of ['c', 'd']) for (let i = 0; i < 3; i++) pool.recordError(pool.get(id)!, 'HTTP 500');
  assert.equal(pool.all().filter((b) => b.state === 'ejected').length, 2);
  pool.close();
});

test('panic threshold: with too few backends available, all that are not draining take traffic', () => {
  const pool = testPool(true, { panicThreshold: 50 });
  const a = pool.get('a')!;
  const b = pool.get('b')!;
  pool.setWeight(b, 1);
  pool.recordCheck(a, true, 'HTTP 200');
  pool.recordCheck(b, true, 'HTTP 200');
  assert.equal(pool.available().length, 2);
  for (let i = 0; i < 3; i++) pool.recordCheck(b, false, 'HTTP 503');
  assert.equal(pool.available().length, 1, '1 of 2 is 50%: not below the threshold');
  for (let i = 0; i < 3; i++) pool.recordCheck(a, false, 'HTTP 503');
  assert.equal(pool.inPanic, true);
  assert.deepEqual(pool.available().map((x) => x.id).sort(), ['a', 'b']);
});

test('slow start ramps the weight of a backend that comes back, from 10% to full', () => {
  const pool = testPool(true, { slowStart: 10_000 });
  const a = pool.get('a')!;
  pool.recordCheck(a, true, 'HTTP 200');
  const now = Date.now();
  assert.ok(a.effectiveWeight(now) <= 0.11, String(a.effectiveWeight(now)));
  assert.ok(Math.abs(a.effectiveWeight(now + 5_000) - 0.5) < 0.01);
  assert.equal(a.effectiveWeight(now + 10_000), 1);
});

test('remove drains a backend with requests in flight and takes it out when the last one ends', () => {
  const pool = testPool(false);
  const a = pool.get('a')!;
  pool.beginRequest(a);
  pool.remove(a, 'test');
  assert.equal(a.state, 'draining');
  assert.ok(pool.get('a'));
  assert.ok(!pool.available().includes(a));
  pool.endRequest(a);
  assert.equal(pool.get('a'), undefined);
});
