import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Registry } from 'prom-client';
import { BACKEND_METRIC, BALANCER_METRIC, LOADGEN_METRIC } from '../../common/src/metric-names.js';
import { LATENCY_BUCKETS } from '../../common/src/buckets.js';
import { createMetrics } from '../../backend/src/metrics.js';
import { ChaosState } from '../../backend/src/chaos.js';
import { createLoadgenMetrics } from '../../loadgen/src/metrics.js';
import { repoRoot } from '../helpers/processes.js';

const sorted = (names: Iterable<string>): string[] => [...names].sort();
const registered = async (registry: Registry, prefix: string): Promise<string[]> =>
  sorted((await registry.getMetricsAsJSON()).map((metric) => metric.name).filter((name) => name.startsWith(prefix)));

test('the backend registers exactly the names of BACKEND_METRIC', async () => {
  const metrics = createMetrics('b1', new ChaosState(() => {}), () => 0);
  assert.deepEqual(await registered(metrics.registry, 'backend_'), sorted(Object.values(BACKEND_METRIC)));
});

test('the loadgen registers exactly the names of LOADGEN_METRIC', async () => {
  assert.deepEqual(await registered(createLoadgenMetrics().registry, 'loadgen_'), sorted(Object.values(LOADGEN_METRIC)));
});

test('BALANCER_METRIC holds exactly the names of the README\'s metrics table', () => {
  const readme = readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
  const documented = [...readme.matchAll(/^\| `(lb_[a-z_]+)` \|/gm)].map((match) => match[1]!);
  assert.deepEqual(sorted(documented), sorted(Object.values(BALANCER_METRIC)));
});

test('the latency buckets rise strictly, in seconds from under a millisecond to the 30 s request timeout', () => {
  assert.ok(LATENCY_BUCKETS.every((bound, i) => i === 0 || bound > LATENCY_BUCKETS[i - 1]!));
  assert.equal(LATENCY_BUCKETS[0], 0.0005);
  assert.equal(LATENCY_BUCKETS.at(-1), 30);
});
