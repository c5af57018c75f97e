import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startBalancer, startBackendProcess, startHttpBackend } from '../helpers/lab.js';
import { httpRequest, sleep } from '../helpers/http.js';
import { runLoad } from '../helpers/load.js';

interface StateSample {
  at: number;
  states: Record<string, string>;
}

/** watchStates polls GET /backends every 50 ms until stopped, so a test can tell when each backend was ejected. */
function watchStates(adminUrl: string, started: number): { samples: StateSample[]; stop(): Promise<void> } {
  const samples: StateSample[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const views = JSON.parse((await httpRequest(`${adminUrl}/backends`)).body) as { id: string; state: string }[];
      samples.push({ at: performance.now() - started, states: Object.fromEntries(views.map((v) => [v.id, v.state])) });
      await sleep(50);
    }
  })();
  return {
    samples,
    stop: async () => {
      running = false;
      await loop;
    },
  };
}

const answerOnly500 = { errorRate: 1, errorStatus: 500 };

test('outlier detection: a backend answering only 500 is ejected after 3 failures, gets under 5% of traffic while ejected, and longer each time', async (t) => {
  const bad = await startBackendProcess(t, 'bad');
  const good1 = await startHttpBackend(t, 'good1');
  const good2 = await startHttpBackend(t, 'good2');
  const lb = await startBalancer(t, {
    backends: [{ url: bad.url, name: 'bad' }, { url: good1.url, name: 'good1' }, { url: good2.url, name: 'good2' }],
    outlierDetection: { consecutiveFailures: 3, baseEjectionTime: '1s', maxEjectionTime: '10s', maxEjectionPercent: 50 },
  });
  await bad.chaos(answerOnly500);

  const started = performance.now();
  const states = watchStates(lb.adminUrl, started);
  const run = await runLoad({ url: `${lb.url}/x`, rate: 150, durationMs: 6_000 });
  await states.stop();

  const ejected = (at: number): boolean => {
    let last: StateSample | undefined;
    for (const sample of states.samples) if (sample.at <= at) last = sample;
    return last?.states.bad === 'ejected';
  };
  // Requests sent while the last poll showed the backend ejected, leaving out 100 ms at each edge of an ejection.
  const whileEjected = run.samples.filter((s) => ejected(s.at) && ejected(s.at - 100) && ejected(s.at + 100));
  const share = whileEjected.filter((s) => s.backend === 'bad').length / Math.max(1, whileEjected.length);
  t.diagnostic(`${whileEjected.length} requests while ejected, ${(share * 100).toFixed(1)}% to the bad backend`);
  assert.ok(whileEjected.length > 300, 'the backend spent most of the run ejected');
  assert.ok(share < 0.05, `the ejected backend got ${(share * 100).toFixed(1)}% of traffic while ejected`);

  const ejections = [...lb.service.output().matchAll(/backend bad healthy → ejected why=.*ejection (\d+) for (\d+) ms/g)].map((m) => Number(m[2]));
  t.diagnostic(`ejection lengths: ${ejections.join(', ')} ms`);
  assert.ok(ejections.length >= 2, `ejected ${ejections.length} times`);
  assert.ok(ejections[1]! > ejections[0]!, 'the second ejection in a row lasts longer');
  assert.match(await lb.metrics(), /lb_ejections_total\{backend="bad"\} [2-9]/);
});

test('outlier detection: with 2 of 3 backends failing and maxEjectionPercent 50, at most one is ejected at a time', async (t) => {
  const bad1 = await startBackendProcess(t, 'bad1');
  const bad2 = await startBackendProcess(t, 'bad2');
  const good = await startHttpBackend(t, 'good');
  const lb = await startBalancer(t, {
    backends: [{ url: bad1.url, name: 'bad1' }, { url: bad2.url, name: 'bad2' }, { url: good.url, name: 'good' }],
    outlierDetection: { consecutiveFailures: 3, baseEjectionTime: '2s', maxEjectionTime: '10s', maxEjectionPercent: 50 },
  });
  await bad1.chaos(answerOnly500);
  await bad2.chaos(answerOnly500);
  const states = watchStates(lb.adminUrl, performance.now());
  await runLoad({ url: `${lb.url}/x`, rate: 100, durationMs: 3_000 });
  await states.stop();
  const mostEjected = Math.max(...states.samples.map((s) => Object.values(s.states).filter((state) => state === 'ejected').length));
  assert.equal(mostEjected, 1, 'exactly one backend ejected at the most');
  assert.match(lb.service.output(), /not ejected: 1 of 3 already ejected \(maxEjectionPercent 50\)/);
});
