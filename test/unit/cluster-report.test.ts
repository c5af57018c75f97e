import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LoadStats } from '../../balancer/src/backends/load.js';
import { ClusterLoad } from '../../balancer/src/cluster/load.js';
import { ReportBatcher } from '../../balancer/src/cluster/report.js';
import type { WorkerReport } from '../../balancer/src/cluster/messages.js';

function batcher(loads: Map<string, LoadStats>): { reports: WorkerReport[]; batch: ReportBatcher } {
  const reports: WorkerReport[] = [];
  const batch = new ReportBatcher((report) => reports.push(report), () => loads, () => ({ active: 0, connections: 1, accepted: 3 }));
  return { reports, batch };
}

test('a worker report keeps try outcomes in order, with each run of answers below 500 as one number', (t) => {
  const { reports, batch } = batcher(new Map());
  t.after(() => batch.stop());
  batch.tryAnswered('b1', 200);
  batch.tryAnswered('b1', 404);
  batch.tryAnswered('b1', 503);
  batch.tryFailed('b1', 'connect', 'b1: ECONNREFUSED');
  batch.tryAnswered('b1', 200);
  batch.tryAnswered('b2', 500);
  batch.record('b1', 200, 0.0123456);
  batch.record('none', 503, 0);
  batch.flush();
  assert.equal(reports.length, 1);
  const [report] = reports;
  assert.deepEqual(report!.backends.b1!.tries, [-2, 503, ['connect', 'b1: ECONNREFUSED'], -1]);
  assert.deepEqual(report!.backends.b2!.tries, [500]);
  assert.deepEqual(report!.backends.b1!.requests, [200, 12.35]);
  assert.deepEqual(report!.backends.none!.requests, [503, 0]);
  assert.deepEqual(report!.worker, { active: 0, connections: 1, accepted: 3, total: 2 });
  batch.flush();
  assert.equal(reports.length, 1, 'nothing new: nothing sent');
});

test('a worker report carries a backend\'s load only when it changed, and names backends the worker no longer routes to', (t) => {
  const loads = new Map([['b1', new LoadStats()], ['b2', new LoadStats()]]);
  const { reports, batch } = batcher(loads);
  t.after(() => batch.stop());
  loads.get('b1')!.begin();
  batch.flush();
  assert.deepEqual(reports[0]!.backends.b1!.load, [1, 1, 0]);
  assert.deepEqual(reports[0]!.backends.b2!.load, [0, 0, 0]);
  loads.get('b1')!.end();
  batch.flush();
  assert.deepEqual(Object.keys(reports[1]!.backends), ['b1'], 'only b1 changed');
  assert.deepEqual(reports[1]!.backends.b1!.load, [0, 1, 0]);
  loads.delete('b2');
  batch.flush();
  assert.deepEqual(reports[2]!.gone, ['b2']);
});

test('the primary\'s load view sums the workers\' reports, keeps the starts of a worker that is gone, and forgets a removed backend', () => {
  const load = new ClusterLoad();
  const report = (backends: WorkerReport['backends'], gone?: string[]): WorkerReport => ({ type: 'report', backends, ...(gone ? { gone } : {}), worker: { active: 0, total: 0, connections: 0, accepted: 0 } });
  assert.equal(load.view('b1'), undefined);
  load.update(1, report({ b1: { load: [2, 10, 5] } }));
  load.update(2, report({ b1: { load: [1, 7, 9] } }));
  const view = load.view('b1')!;
  assert.equal(view.activeRequests, 3);
  assert.equal(view.totalRequests, 17);
  assert.ok(view.latencyObserved);
  assert.ok(Math.abs(view.latencyScoreMs(Date.now()) - 9) < 0.1, 'the peak over workers');
  load.workerGone(2);
  assert.equal(load.view('b1')!.activeRequests, 2, 'what it had in flight is over');
  assert.equal(load.view('b1')!.totalRequests, 17, 'what it started stays counted');
  load.update(1, report({}, ['b1']));
  load.forget('b1');
  assert.equal(load.view('b1'), undefined);
});
