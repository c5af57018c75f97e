import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Pool, type PoolSettings } from '../../balancer/src/backends/pool.js';
import { RiseFall } from '../../balancer/src/backends/rise-fall.js';
import { OutlierDetector } from '../../balancer/src/backends/outlier.js';
import { ControlPlane } from '../../balancer/src/control-plane.js';
import { DataPlane } from '../../balancer/src/data-plane.js';
import { HttpProxyEngine } from '../../balancer/src/engines/http-proxy.js';
import { validateConfig } from '../../balancer/src/config.js';

/** testPool builds a pool with backends a (weight 1) and b (weight 0), past startup (Caddy's testPool pattern). */
function testPool(healthChecked = true, extra: Partial<PoolSettings> = {}): Pool {
  const pool = new Pool({ healthChecked, panicThreshold: 0, slowStart: 0, ...extra });
  pool.add({ url: 'http://127.0.0.1:1', name: 'a', weight: 1 }, 'config');
  pool.add({ url: 'http://127.0.0.1:2', name: 'b', weight: 0 }, 'config');
  pool.markStarted();
  return pool;
}

const availableIds = (pool: Pool): string[] => pool.entries().filter((entry) => entry.available).map((entry) => entry.id);

test('with health checks, backends start down and the first check decides at once', () => {
  const pool = testPool();
  const health = new RiseFall(pool, { rise: 2, fall: 3 });
  assert.equal(pool.get('a')!.state, 'unhealthy');
  health.check('a', true, 'HTTP 200');
  assert.equal(pool.get('a')!.state, 'healthy');
  assert.deepEqual(availableIds(pool), ['a']);
});

test('fall consecutive failures take a backend down, rise consecutive passes bring it back; a pass resets the failures', () => {
  const pool = testPool();
  const health = new RiseFall(pool, { rise: 2, fall: 3 });
  const changes: string[] = [];
  pool.onEvent((event) => {
    if (event.type === 'state') changes.push(`${event.id} ${event.from}→${event.to}`);
  });
  for (const passed of [true, false, false, true, false, false]) health.check('a', passed, passed ? 'HTTP 200' : 'HTTP 503');
  assert.equal(pool.get('a')!.state, 'healthy', 'the pass in between reset the count');
  health.check('a', false, 'timeout');
  assert.equal(pool.get('a')!.state, 'unhealthy');
  health.check('a', true, 'HTTP 200');
  assert.equal(pool.get('a')!.state, 'unhealthy');
  health.check('a', true, 'HTTP 200');
  assert.equal(pool.get('a')!.state, 'healthy');
  assert.deepEqual(changes, ['a unhealthy→healthy', 'a healthy→unhealthy', 'a unhealthy→healthy']);
});

/** passesUntilHealthy: passing checks of backend a until it is healthy (at most 20). */
function passesUntilHealthy(pool: Pool, health: RiseFall): number {
  let passes = 0;
  while (pool.get('a')!.state !== 'healthy' && passes < 20) health.check('a', true, 'HTTP 200'), passes++;
  return passes;
}

test('flap damping: down again within 10 s of coming back doubles the passes the next rise needs; 10 s up restores rise', () => {
  let now = 1_000_000;
  const pool = testPool();
  const health = new RiseFall(pool, { rise: 2, fall: 1 }, () => now);
  const passesToComeUp = (): number => passesUntilHealthy(pool, health);
  health.check('a', true, 'HTTP 200');
  health.check('a', false, 'HTTP 503');
  assert.equal(passesToComeUp(), 2, 'up since its first check: not a flap, rise applies');
  now += 3_000;
  health.check('a', false, 'HTTP 503');
  assert.equal(passesToComeUp(), 4, 'down 3 s after coming up: rise doubles');
  health.check('a', false, 'HTTP 503');
  assert.equal(passesToComeUp(), 8, 'and again');
  health.check('a', false, 'HTTP 503');
  assert.equal(passesToComeUp(), 8, 'never beyond 8');
  now += 10_000;
  health.check('a', true, 'HTTP 200');
  health.check('a', false, 'HTTP 503');
  assert.equal(passesToComeUp(), 2, 'up for 10 s: rise applies again');
});

test('flap damping: a backend whose first check failed (a cold start) and that then came up is not flapping when it dies', () => {
  let now = 1_000_000;
  const pool = testPool();
  const health = new RiseFall(pool, { rise: 2, fall: 1 }, () => now);
  const passesToComeUp = (): number => passesUntilHealthy(pool, health);
  health.check('a', false, 'ECONNREFUSED');
  assert.equal(passesToComeUp(), 2, 'its first time up takes rise passes');
  now += 2_000;
  health.check('a', false, 'ECONNREFUSED');
  assert.equal(passesToComeUp(), 2, 'killed 2 s after its first time up: that was no return, rise applies');
  now += 2_000;
  health.check('a', false, 'ECONNREFUSED');
  assert.equal(passesToComeUp(), 4, 'down again 2 s after coming back: that is a flap');
});

test('passive failures count like failed checks', () => {
  const pool = testPool();
  const health = new RiseFall(pool, { rise: 2, fall: 3 });
  health.check('a', true, 'HTTP 200');
  for (let i = 0; i < 3; i++) health.passiveFailure('a', 'ECONNREFUSED');
  assert.equal(pool.get('a')!.state, 'unhealthy');
  health.passiveFailure('gone', 'ECONNREFUSED');
  assert.equal(pool.get('gone'), undefined, 'a report about a backend that left changes nothing');
});

test('a backend with weight 0 is healthy but takes no new requests', () => {
  const pool = testPool(false);
  assert.equal(pool.get('b')!.state, 'healthy');
  assert.deepEqual(availableIds(pool), ['a']);
});

test('outlier detection ejects after consecutive failures, for longer each time in a row, and never more than maxEjectionPercent', async () => {
  const pool = testPool(false);
  pool.add({ url: 'http://127.0.0.1:3', name: 'c', weight: 1 }, 'config');
  pool.add({ url: 'http://127.0.0.1:4', name: 'd', weight: 1 }, 'config');
  const ejections: number[] = [];
  const outlier = new OutlierDetector(pool, { consecutiveFailures: 3, baseEjectionTime: 40, maxEjectionTime: 1_000, maxEjectionPercent: 50 }, (_id, forMs) => ejections.push(forMs));
  outlier.failure('a', 'HTTP 500');
  outlier.failure('a', 'HTTP 500');
  outlier.success('a');
  outlier.failure('a', 'HTTP 500');
  outlier.failure('a', 'HTTP 500');
  assert.equal(pool.get('a')!.state, 'healthy', 'a success in between resets the count');
  outlier.failure('a', 'HTTP 500');
  assert.equal(pool.get('a')!.state, 'ejected');
  assert.ok(!availableIds(pool).includes('a'));
  await new Promise((resolve) => setTimeout(resolve, 60));
  assert.equal(pool.get('a')!.state, 'healthy', 'back after the base ejection time');
  for (let i = 0; i < 3; i++) outlier.failure('a', 'HTTP 500');
  assert.deepEqual(ejections, [40, 80], 'the second ejection in a row lasts twice as long');

  // 4 backends, 50%: at most 2 ejected at once.
  for (const id of ['c', 'd']) for (let i = 0; i < 3; i++) outlier.failure(id, 'HTTP 500');
  assert.equal(pool.all().filter((b) => b.state === 'ejected').length, 2);
  outlier.stop();
});

test('panic threshold: with too few backends available, all that are not draining take traffic', () => {
  const pool = testPool(true, { panicThreshold: 50 });
  const health = new RiseFall(pool, { rise: 2, fall: 3 });
  pool.setWeight('b', 1);
  health.check('a', true, 'HTTP 200');
  health.check('b', true, 'HTTP 200');
  assert.equal(availableIds(pool).length, 2);
  for (let i = 0; i < 3; i++) health.check('b', false, 'HTTP 503');
  assert.deepEqual(availableIds(pool), ['a'], '1 of 2 is 50%: not below the threshold');
  const panics: boolean[] = [];
  pool.onEvent((event) => {
    if (event.type === 'panic') panics.push(event.active);
  });
  for (let i = 0; i < 3; i++) health.check('a', false, 'HTTP 503');
  assert.deepEqual(availableIds(pool).sort(), ['a', 'b']);
  assert.deepEqual(panics, [true]);
});

/** planes wires a control plane and a data plane (real http-proxy-3 engine; nothing is sent) as main does. */
function planes(config: Record<string, unknown>): { control: ControlPlane; data: DataPlane } {
  const control = new ControlPlane(validateConfig({ healthCheck: { enabled: false }, ...config }));
  const data = new DataPlane(new HttpProxyEngine({ connectTimeout: 1000 }), control);
  control.connect((id) => data.load(id), (snapshot) => data.apply(snapshot));
  void control.start(); // synchronous without health checks or discovery
  return { control, data };
}

test('slow start ramps the weight of a backend that comes back, from 10% to full, on the request path', () => {
  const { control, data } = planes({ backends: [{ url: 'http://127.0.0.1:1', name: 'a' }], slowStart: 10_000 });
  control.patchBackend('a', { drain: true });
  control.patchBackend('a', { drain: false });
  const route = data.current.available[0]!;
  const now = Date.now();
  assert.ok(route.effectiveWeight(now) <= 0.11, String(route.effectiveWeight(now)));
  assert.ok(Math.abs(route.effectiveWeight(now + 5_000) - 0.5) < 0.01);
  assert.equal(route.effectiveWeight(now + 10_000), 1);
  data.close();
});

test('every change publishes a new frozen snapshot; the data plane swaps it whole', () => {
  const { control, data } = planes({ backends: [{ url: 'http://127.0.0.1:1', name: 'a' }, { url: 'http://127.0.0.1:2', name: 'b' }] });
  const before = data.current;
  assert.ok(Object.isFrozen(before.snapshot) && Object.isFrozen(before.snapshot.backends[0]) && Object.isFrozen(before.available));
  control.patchBackend('b', { weight: 3 });
  const after = data.current;
  assert.notEqual(after, before);
  assert.ok(after.snapshot.version > before.snapshot.version);
  assert.equal(before.snapshot.backends[1]!.weight, 1, 'the old snapshot is unchanged');
  assert.equal(after.available[1]!.weight, 3);
  assert.equal(after.available[1], before.available[1], 'a route keeps its load and connections across snapshots');
  control.setAlgorithm({ name: 'least-connections' });
  assert.notEqual(data.current.algorithm, after.algorithm);
  data.close();
});

test('remove drains a backend with requests in flight and takes it out when the last one ends', () => {
  const { control, data } = planes({ backends: [{ url: 'http://127.0.0.1:1', name: 'a' }, { url: 'http://127.0.0.1:2', name: 'b' }] });
  const route = data.current.available.find((r) => r.id === 'a')!;
  data.begin(route);
  control.removeBackend('a');
  assert.equal(control.pool.get('a')!.state, 'draining');
  assert.ok(!data.current.available.includes(route));
  assert.equal(control.backendView(control.pool.get('a')!).activeRequests, 1);
  data.end(route);
  assert.equal(control.pool.get('a'), undefined);
  assert.deepEqual(data.current.snapshot.backends.map((b) => b.id), ['b']);
  data.close();
});
