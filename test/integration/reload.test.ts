import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { startBalancer, startHttpBackend, fastHealth, fastTimeouts, testEngine, type RunningBalancer } from '../helpers/lab.js';
import { httpRequest, metricValue, sleep, waitFor } from '../helpers/http.js';
import { runLoad, describeFailures } from '../helpers/load.js';

const ALGORITHMS = ['least-connections', 'p2c', 'ewma', 'random', 'weighted-round-robin', 'round-robin'];

function fileConfig(lb: RunningBalancer | undefined, extra: Record<string, unknown>): string {
  const base = {
    listen: { host: '127.0.0.1', port: lb ? Number(new URL(lb.url).port) : 0 },
    admin: { host: '127.0.0.1', port: lb ? Number(new URL(lb.adminUrl).port) : 0 },
    engine: testEngine,
    healthCheck: fastHealth,
    timeouts: fastTimeouts,
  };
  return JSON.stringify({ ...base, ...extra }, null, 2);
}

async function putJson(url: string, body: unknown, method = 'PUT'): Promise<{ status: number; body: string }> {
  return httpRequest(url, { method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
}

test('under 300 GET/s for 20 s: 20 SIGHUP reloads, 20 algorithm switches, a backend added, one drained, one removed by reload: 0 client errors', async (t) => {
  const [b1, b2, b3, b4] = await Promise.all(['b1', 'b2', 'b3', 'b4'].map((id) => startHttpBackend(t, id)));
  const three = [b1!, b2!, b3!].map((b) => ({ url: b.url, name: b.id }));
  const lb = await startBalancer(t, { backends: three });
  // The balancer's own file, rewritten before each SIGHUP: the ports stay, the backend set alternates.
  const fileA = fileConfig(lb, { algorithm: 'round-robin', backends: three });
  const fileB = fileConfig(lb, { algorithm: 'weighted-round-robin', backends: [{ ...three[0], weight: 3 }, three[1]] }); // b3 removed

  const load = runLoad({ url: `${lb.url}/work`, rate: 300, durationMs: 20_000 });
  for (let i = 0; i < 20; i++) {
    writeFileSync(lb.configFile, i % 2 === 0 ? fileB : fileA);
    lb.service.child.kill('SIGHUP');
    await sleep(300);
    const switched = await putJson(`${lb.adminUrl}/algorithm`, { name: ALGORITHMS[i % ALGORITHMS.length] });
    assert.equal(switched.status, 200, switched.body);
    await sleep(350);
  }
  const added = await putJson(`${lb.adminUrl}/backends`, { url: b4!.url, name: 'b4' }, 'POST');
  assert.equal(added.status, 201, added.body);
  const drained = await putJson(`${lb.adminUrl}/backends/b1`, { drain: true }, 'PATCH');
  assert.equal(drained.status, 200, drained.body);
  await waitFor('b1 to have no request in flight', async () => (await lb.backends()).find((b) => b.id === 'b1')?.activeRequests === 0);
  const run = await load;

  assert.equal(run.failures().length, 0, `client errors: ${describeFailures(run)}`);
  const metrics = await lb.metrics();
  // Each rewrite is also seen by the file watch, which may reload before the signal does.
  assert.ok((metricValue(metrics, 'lb_config_reloads_total', { result: 'success' }) ?? 0) >= 20);
  assert.equal(metricValue(metrics, 'lb_config_reloads_total', { result: 'failure' }), 0);
  assert.equal(b4!.requests > 0, true, 'the backend added through the API took traffic');
  const lastSecond = run.samples.filter((s) => s.at > 19_000);
  assert.ok(lastSecond.every((s) => s.backend !== 'b1'), 'the drained backend takes no new requests');
  t.diagnostic(`${run.samples.length} requests, 0 errors, p99 ${run.percentile(99).toFixed(1)} ms, shares ${JSON.stringify(run.byBackend())}`);
  assert.equal((lb.service.output().match(/configuration reloaded \(SIGHUP\)/g) ?? []).length, 20);
});

test('a SIGHUP sent the moment the balancer prints its listening line reloads it rather than ending it', async (t) => {
  const backend = await startHttpBackend(t, 'h1');
  for (let start = 0; start < 10; start++) {
    const lb = await startBalancer(t, { backends: [{ url: backend.url, name: 'h1' }] });
    lb.service.child.kill('SIGHUP');
    await lb.service.waitForLine(/configuration reloaded \(SIGHUP\)/, 5_000);
    assert.equal((await httpRequest(`${lb.url}/`)).status, 200, `start ${start + 1}`);
    await lb.service.stop('SIGKILL');
  }
});

/** The engine the balancer does not run with: switching to it needs a restart. */
const otherEngine = testEngine === 'undici' ? 'http-proxy' : 'undici';

/** Eleven kinds of invalid configuration; each must be refused, by file and by PUT /config. */
const invalidKinds: { kind: string; yaml: string; json: unknown; expect: RegExp }[] = [
  { kind: 'YAML syntax error', yaml: 'backends:\n  - url: [http://x\n', json: '{"backends": [', expect: /YAML syntax error|not valid JSON/ },
  { kind: 'unknown algorithm', yaml: 'algorithm: fastest\n', json: { algorithm: 'fastest' }, expect: /unknown algorithm "fastest"/ },
  { kind: 'negative weight', yaml: 'backends:\n  - {url: "http://127.0.0.1:1", weight: -3}\n', json: { backends: [{ url: 'http://127.0.0.1:1', weight: -3 }] }, expect: /weight must be 0 or more/ },
  { kind: 'invalid URL', yaml: 'backends:\n  - {url: "nope"}\n', json: { backends: [{ url: 'nope' }] }, expect: /invalid URL "nope"/ },
  { kind: 'invalid duration', yaml: 'healthCheck: {interval: soon}\n', json: { healthCheck: { interval: 'soon' } }, expect: /invalid duration "soon"/ },
  { kind: 'port change', yaml: 'listen: {host: 127.0.0.1, port: 1}\n', json: { listen: { host: '127.0.0.1', port: 1 } }, expect: /listen.*cannot change while running/ },
  { kind: 'duplicate name', yaml: 'backends:\n  - {url: "http://127.0.0.1:1", name: x}\n  - {url: "http://127.0.0.1:2", name: x}\n', json: { backends: [{ url: 'http://127.0.0.1:1', name: 'x' }, { url: 'http://127.0.0.1:2', name: 'x' }] }, expect: /duplicate backend id "x"/ },
  { kind: 'no backends', yaml: 'backends: []\n', json: { backends: [] }, expect: /at least one backend/ },
  { kind: 'wrong type', yaml: 'retries: {attempts: many}\n', json: { retries: { attempts: 'many' } }, expect: /retries\.attempts/ },
  { kind: 'unknown key', yaml: 'colour: blue\n', json: { colour: 'blue' }, expect: /unknown key "colour"/ },
  { kind: 'engine change', yaml: `engine: ${otherEngine}\n`, json: { engine: otherEngine }, expect: /engine.*cannot change while running/ },
];

test('eleven kinds of invalid reload, by file and by PUT /config: each refused with its problems, config unchanged, traffic unaffected, failures counted', async (t) => {
  const [b1, b2] = await Promise.all(['v1', 'v2'].map((id) => startHttpBackend(t, id)));
  const good = [b1!, b2!].map((b) => ({ url: b.url, name: b.id }));
  const lb = await startBalancer(t, { backends: good });
  const configBefore = (await httpRequest(`${lb.adminUrl}/config`)).body;
  const validFile = fileConfig(lb, { backends: good });
  const load = runLoad({ url: `${lb.url}/x`, rate: 100, durationMs: 8_000 });

  for (const { kind, yaml, json, expect } of invalidKinds) {
    // By file: the valid file's keys, less those the broken part replaces, then the broken part.
    const validObject = JSON.parse(validFile) as Record<string, unknown>;
    if (typeof json !== 'string') for (const key of Object.keys(json as object)) delete validObject[key];
    writeFileSync(lb.configFile, typeof json === 'string' ? yaml : `${toYamlLines(validObject)}${yaml}`);
    const outputBefore = lb.service.output().length;
    lb.service.child.kill('SIGHUP');
    await waitFor(`the ${kind} file to be refused`, () => lb.service.output().slice(outputBefore).includes('configuration refused (SIGHUP)'));
    assert.match(lb.service.output().slice(outputBefore), expect, kind);

    // By PUT /config: the valid running config with the broken part.
    const body = typeof json === 'string' ? json : JSON.stringify({ ...(JSON.parse(configBefore) as object), ...(json as object) });
    const refused = await httpRequest(`${lb.adminUrl}/config`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body });
    assert.equal(refused.status, 400, `${kind}: ${refused.body}`);
    const error = (JSON.parse(refused.body) as { error: { message: string; problems?: { path: string; message: string }[] } }).error;
    assert.match([error.message, ...(error.problems ?? []).map((p) => `${p.path}: ${p.message}`)].join('\n'), expect, kind);
    assert.equal((await httpRequest(`${lb.adminUrl}/config`)).body, configBefore, `${kind} changed the running config`);
  }
  const run = await load;
  assert.equal(run.failures().length, 0, `client errors: ${describeFailures(run)}`);
  const output = lb.service.output();
  assert.equal((output.match(/configuration refused \(SIGHUP\)/g) ?? []).length, invalidKinds.length);
  assert.equal((output.match(/configuration refused \(PUT \/config\)/g) ?? []).length, invalidKinds.length);
  assert.ok((metricValue(await lb.metrics(), 'lb_config_reloads_total', { result: 'failure' }) ?? 0) >= 2 * invalidKinds.length);
  assert.equal(metricValue(await lb.metrics(), 'lb_config_reloads_total', { result: 'success' }), 0);
});

/** toYamlLines writes the top-level keys of a config object as YAML flow mappings, one per line. */
function toYamlLines(config: Record<string, unknown>): string {
  return Object.entries(config)
    .map(([key, value]) => `${key}: ${JSON.stringify(value)}\n`)
    .join('');
}

test('a change of the file is picked up without a signal, and an edit that breaks it is refused', async (t) => {
  const [b1, b2] = await Promise.all(['w1', 'w2'].map((id) => startHttpBackend(t, id)));
  const lb = await startBalancer(t, { backends: [{ url: b1!.url, name: 'w1' }] });
  writeFileSync(lb.configFile, fileConfig(lb, { backends: [{ url: b1!.url, name: 'w1' }, { url: b2!.url, name: 'w2' }] }));
  await waitFor('w2 to join through the file watch', async () => (await lb.backends()).find((b) => b.id === 'w2')?.state === 'healthy', 5_000);
  writeFileSync(lb.configFile, 'algorithm: [broken\n');
  await waitFor('the broken edit to be refused', () => lb.service.output().includes('configuration refused (file change)'), 5_000);
  assert.equal((await lb.backends()).length, 2);
});
