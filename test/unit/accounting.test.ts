import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Accounting } from '../../balancer/src/pipeline/accounting.js';
import { TrafficMetrics, newRegistry } from '../../balancer/src/metrics.js';
import { TrafficStats } from '../../balancer/src/stats.js';
import { metricValue } from '../helpers/http.js';

test('accounting counts each answered request once in the metrics and in the status page statistics, and each retry', async () => {
  const metrics = new TrafficMetrics(newRegistry());
  const stats = new TrafficStats();
  const accounting = new Accounting(metrics, stats);
  accounting.finished('b1', 'GET', 200, 0.004);
  accounting.finished('b1', 'GET', 200, 0.006);
  accounting.finished('b1', 'POST', 502, 0.2);
  accounting.finished('none', 'GET', 503, 0);
  accounting.retried('b2');
  const exposition = await metrics.registry.metrics();
  assert.equal(metricValue(exposition, 'lb_requests_total', { backend: 'b1', method: 'GET', code: '200' }), 2);
  assert.equal(metricValue(exposition, 'lb_requests_total', { backend: 'b1', method: 'POST', code: '502' }), 1);
  assert.equal(metricValue(exposition, 'lb_requests_total', { backend: 'none', method: 'GET', code: '503' }), 1);
  assert.equal(metricValue(exposition, 'lb_request_duration_seconds_count', { backend: 'b1' }), 3);
  assert.equal(metricValue(exposition, 'lb_request_duration_seconds_bucket', { backend: 'b1', le: '0.005' }), 1);
  assert.equal(metricValue(exposition, 'lb_retries_total', { backend: 'b2' }), 1);
  // The statistics count complete seconds only: read them a second later (the records may straddle a second).
  const { backends } = stats.snapshot(Date.now() + 1000);
  const sum = (values: number[]): number => values.reduce((total, value) => total + value, 0);
  assert.equal(sum(backends.b1!.series.rps), 3);
  assert.ok(Math.abs(backends.b1!.errorRate - 1 / 3) < 1e-9, String(backends.b1!.errorRate));
  assert.equal(backends.none!.errorRate, 1);
});
