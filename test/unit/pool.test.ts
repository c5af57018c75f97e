import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Pool } from '../../balancer/src/pool.js';

function testPool(healthChecked = true): Pool {
  const pool = new Pool(
    [
      { url: 'http://127.0.0.1:1', name: 'a', weight: 1 },
      { url: 'http://127.0.0.1:2', name: 'b', weight: 0 },
    ],
    { rise: 2, fall: 3 },
    healthChecked,
  );
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
  pool.onStateChange((backend, from, to) => changes.push(`${backend.id} ${from}→${to}`));
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
