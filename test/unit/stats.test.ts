import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EVENT_CAPACITY, RECENT_SECONDS, TrafficStats } from '../../balancer/src/stats.js';

/** A clock at a whole second, far from zero, so that tests can step through seconds. */
const T0 = 1_700_000_000_000;
const at = (second: number, ms = 0): number => T0 + second * 1000 + ms;

/** Within the histogram's resolution: a bin is about 19% wide, a reported value at most about 10% off. */
function assertNear(actual: number, expected: number, message: string): void {
  assert.ok(Math.abs(actual - expected) <= expected * 0.1, `${message}: ${actual} is not within 10% of ${expected}`);
}

test('requests per second and error rate over the last 10 complete seconds; 5xx and no answer are errors, 4xx are not', () => {
  const stats = new TrafficStats();
  for (let second = 0; second < 20; second++) {
    for (let i = 0; i < 50; i++) stats.record('a', i < 5 ? 503 : i < 10 ? 404 : 200, 0.002, at(second, i * 10));
    stats.record('a', 0, 0.5, at(second, 900));
  }
  const a = stats.snapshot(at(20)).backends['a']!;
  assert.equal(a.rps, 51);
  assert.equal(a.errorRate, 6 / 51);
});

test('the second in progress is not counted, and seconds older than 10 s leave the rate', () => {
  const stats = new TrafficStats();
  for (let i = 0; i < 100; i++) stats.record('a', 200, 0.001, at(0, i));
  for (let second = 1; second <= RECENT_SECONDS; second++) stats.record('a', 200, 0.001, at(second));
  stats.record('a', 500, 0.001, at(11, 500));
  const snapshot = stats.snapshot(at(11, 600)).backends['a']!;
  assert.equal(snapshot.rps, 1, 'second 0 (100 requests) is out of the last 10, second 11 is not complete');
  assert.equal(snapshot.errorRate, 0);
});

test('a backend seen for fewer than 10 s is rated over the seconds it existed', () => {
  const stats = new TrafficStats();
  for (let second = 0; second < 3; second++) for (let i = 0; i < 40; i++) stats.record('new', 200, 0.001, at(second, i));
  assert.equal(stats.snapshot(at(3)).backends['new']!.rps, 40);

  const late = new TrafficStats();
  for (let i = 0; i < 20; i++) late.record('late', 200, 0.001, at(0, 500 + i * 25));
  for (let second = 1; second < 3; second++) for (let i = 0; i < 40; i++) late.record('late', 200, 0.001, at(second, i * 25));
  assert.equal(late.snapshot(at(3)).backends['late']!.rps, 40, 'a first second that was half over counts as half a second');
});

test('p50 and p99 latency in milliseconds from the log-scale histogram', () => {
  const stats = new TrafficStats();
  for (let second = 0; second < 10; second++) {
    for (let i = 0; i < 98; i++) stats.record('a', 200, 0.004, at(second, i));
    stats.record('a', 200, 0.25, at(second, 500));
    stats.record('a', 200, 0.25, at(second, 501));
  }
  const a = stats.snapshot(at(10)).backends['a']!;
  assertNear(a.p50Ms, 4, 'p50');
  assertNear(a.p99Ms, 250, 'p99');
});

test('latencies across the range keep their percentile within the histogram resolution', () => {
  for (const ms of [0.08, 0.3, 1, 7.5, 42, 380, 2_900, 60_000]) {
    const stats = new TrafficStats();
    stats.record('a', 200, ms / 1000, at(0));
    const a = stats.snapshot(at(1)).backends['a']!;
    assertNear(a.p50Ms, ms, `${ms} ms`);
  }
});

test('series: one value per complete second of the window, oldest first, zero for idle seconds', () => {
  const stats = new TrafficStats(5);
  stats.record('a', 200, 0.01, at(0));
  stats.record('a', 200, 0.01, at(1));
  stats.record('a', 500, 0.01, at(1));
  stats.record('a', 200, 0.01, at(3));
  stats.record('a', 200, 0.01, at(5));
  const { series } = stats.snapshot(at(5, 100)).backends['a']!;
  assert.deepEqual(series.rps, [1, 2, 0, 1, 0]);
  assert.deepEqual(series.errorRate, [0, 0.5, 0, 0, 0]);
  assert.equal(series.p99Ms.length, 5);
  assertNear(series.p99Ms[0]!, 10, 'p99 of second 0');
  assert.equal(series.p99Ms[2], 0);
});

test('a slot reused after the window holds only the new second', () => {
  const stats = new TrafficStats(5);
  for (let i = 0; i < 30; i++) stats.record('a', 500, 1, at(0, i));
  // Slots are reused every max(window, 10) + 1 = 11 seconds: second 11 lands where second 0 was.
  stats.record('a', 200, 0.001, at(11));
  const a = stats.snapshot(at(12)).backends['a']!;
  assert.deepEqual(a.series.rps, [0, 0, 0, 0, 1]);
  assert.equal(a.errorRate, 0);
  assertNear(a.p99Ms, 1, 'p99 after reuse');
});

test('nothing recorded for a long time: zero rates, empty series, and the backend is still listed', () => {
  const stats = new TrafficStats();
  stats.record('a', 200, 0.01, at(0));
  const a = stats.snapshot(at(3_600)).backends['a']!;
  assert.deepEqual({ rps: a.rps, errorRate: a.errorRate, p50Ms: a.p50Ms, p99Ms: a.p99Ms }, { rps: 0, errorRate: 0, p50Ms: 0, p99Ms: 0 });
  assert.equal(a.series.rps.length, 60);
  assert.ok(a.series.rps.every((value) => value === 0));
});

test('backends are kept apart, and forget drops one', () => {
  const stats = new TrafficStats();
  stats.record('a', 200, 0.001, at(0));
  stats.record('b', 503, 0.001, at(0));
  const before = stats.snapshot(at(1));
  assert.deepEqual(Object.keys(before.backends).sort(), ['a', 'b']);
  assert.equal(before.backends['a']!.errorRate, 0);
  assert.equal(before.backends['b']!.errorRate, 1);
  stats.forget('b');
  assert.deepEqual(Object.keys(stats.snapshot(at(1)).backends), ['a']);
});

test('events: newest first, the last 50 kept, backend only when given', () => {
  const stats = new TrafficStats();
  stats.event('algorithm', 'algorithm round-robin → p2c');
  assert.deepEqual(
    stats.snapshot().events.map(({ kind, message, backend }) => ({ kind, message, backend })),
    [{ kind: 'algorithm', message: 'algorithm round-robin → p2c', backend: undefined }],
  );
  assert.ok(!('backend' in stats.snapshot().events[0]!));
  assert.ok(!Number.isNaN(Date.parse(stats.snapshot().events[0]!.at)));

  for (let i = 0; i < 120; i++) stats.event('state', `change ${i}`, `b${i % 3}`);
  const { events } = stats.snapshot();
  assert.equal(events.length, EVENT_CAPACITY);
  assert.equal(events[0]!.message, 'change 119');
  assert.equal(events[0]!.backend, 'b2');
  assert.equal(events.at(-1)!.message, `change ${120 - EVENT_CAPACITY}`);
});

test('a snapshot is a copy: changing it does not change the stats', () => {
  const stats = new TrafficStats();
  stats.event('reload', 'config reloaded');
  stats.snapshot().events[0]!.message = 'changed';
  assert.equal(stats.snapshot().events[0]!.message, 'config reloaded');
});

test('the window must be a positive whole number of seconds', () => {
  assert.throws(() => new TrafficStats(0), RangeError);
  assert.throws(() => new TrafficStats(2.5), RangeError);
  assert.equal(new TrafficStats().windowSeconds, 60);
});

test('a million records over 200 s wrap the ring three times and leave exactly the last window', () => {
  const stats = new TrafficStats();
  const ids = ['b1', 'b2', 'b3', 'b4'];
  // 5,000 requests a second across 4 backends, every hundredth an error.
  for (let i = 0; i < 1_000_000; i++) stats.record(ids[i & 3]!, i % 100 === 0 ? 502 : 200, (i % 997) / 100_000, at(Math.floor(i / 5_000), (i % 5_000) / 5));
  const b1 = stats.snapshot(at(200)).backends['b1']!;
  assert.equal(b1.rps, 1_250);
  assert.equal(b1.errorRate, 0.04);
  assert.equal(b1.series.rps.length, 60);
  assert.ok(b1.series.rps.every((rps) => rps === 1_250), `series ${JSON.stringify(b1.series.rps)}`);
});
