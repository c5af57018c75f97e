import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ensureCerts } from '../../common/src/certs.js';
import { ConfigError, parseConfig } from '../../balancer/src/config.js';
import { repoRoot } from '../helpers/processes.js';

function problemsOf(yaml: string): string[] {
  try {
    parseConfig(yaml, 'test.yaml');
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    return error.message.split('\n').slice(1).map((line) => line.trim().replace(/^- /, ''));
  }
  assert.fail('the configuration was accepted');
}

test('a minimal file gets the documented defaults and is frozen', () => {
  const config = parseConfig('backends:\n  - url: http://127.0.0.1:3001\n');
  assert.deepEqual(config.listen, { host: '0.0.0.0', port: 8080 });
  assert.deepEqual(config.admin, { host: '127.0.0.1', port: 9090 });
  assert.equal(config.algorithm, 'round-robin');
  assert.deepEqual(config.healthCheck, { enabled: true, path: '/health', interval: 2000, timeout: 1000, rise: 2, fall: 2 });
  assert.deepEqual(config.retries, { attempts: 2 });
  assert.deepEqual(config.timeouts, { connect: 1000, perTry: 2000, request: 30_000, shutdown: 10_000 });
  assert.deepEqual(config.backends, [{ url: 'http://127.0.0.1:3001', weight: 1 }]);
  assert.ok(Object.isFrozen(config) && Object.isFrozen(config.backends[0]));
});

test('client timeouts and limits: the documented defaults per listener, and what each refuses', () => {
  const config = parseConfig('backends:\n  - url: http://127.0.0.1:3001\n');
  const [listener] = config.listeners;
  assert.equal(listener!.timeouts.clientHeader, 10_000);
  assert.equal(listener!.timeouts.clientIdle, 5_000);
  assert.deepEqual(config.limits, { maxConnections: 10_000, maxHeaderBytes: 16_384, maxBodyBytes: 0 });
  const tuned = parseConfig('timeouts: {clientHeader: 3s, clientIdle: 2s}\nlimits: {maxConnections: 50, maxBodyBytes: 1048576}\nbackends:\n  - url: http://127.0.0.1:3001\n');
  assert.equal(tuned.listeners[0]!.timeouts.clientHeader, 3_000);
  assert.deepEqual(tuned.listeners[0]!.limits, { maxConnections: 50, maxHeaderBytes: 16_384, maxBodyBytes: 1_048_576 });
  const timeouts = problemsOf('timeouts: {clientHeader: 10m, clientIdle: 500ms}\nbackends:\n  - url: http://127.0.0.1:3001\n').join('\n');
  assert.match(timeouts, /timeouts\.clientHeader.*at most 5m/);
  assert.match(timeouts, /timeouts\.clientIdle.*at least 1s/);
  const problems = problemsOf('limits: {maxConnections: 0, maxHeaderBytes: 100, maxBodyBytes: -1}\nbackends:\n  - url: http://127.0.0.1:3001\n').join('\n');
  assert.match(problems, /limits\.maxConnections.*at least 1/);
  assert.match(problems, /limits\.maxHeaderBytes.*at least 1024/);
  assert.match(problems, /limits\.maxBodyBytes.*0 \(no limit\) or more/);
});

test('every problem is reported at once, each with its key path and line', () => {
  const problems = problemsOf(
    [
      'algorithm: fastest', // line 1
      'backends:',
      '  - url: http://127.0.0.1:3001',
      '    weight: -2', // line 4
      '  - url: not a url', // line 5
      'healthCheck:',
      '    interval: soon', // line 7
      'timeouts:',
      '    perTry: 2s',
      '    colour: blue', // line 10
    ].join('\n'),
  );
  assert.equal(problems.length, 5, problems.join('\n'));
  const find = (prefix: string): string => problems.find((p) => p.startsWith(prefix)) ?? assert.fail(`no problem for ${prefix}: ${problems.join('\n')}`);
  assert.match(find('algorithm'), /line 1, column 1.*unknown algorithm "fastest"; accepted: round-robin, weighted-round-robin, least-connections, random, ip-hash, consistent-hash, p2c, ewma/);
  assert.match(find('backends[0].weight'), /line 4.*0 or more/);
  assert.match(find('backends[1].url'), /line 5.*invalid URL "not a url"/);
  assert.match(find('healthCheck.interval'), /line 7.*invalid duration "soon"/);
  assert.match(find('timeouts.colour'), /line 10, column 5.*unknown key "colour"/);
});

test('unknown keys, duplicates and wrong types are named', () => {
  assert.match(problemsOf('backends:\n  - url: http://a:1\nlisten:\n  prot: 80\n').join('\n'), /listen\.prot \(line 4, column 3\): unknown key "prot"/);
  assert.match(
    problemsOf('backends:\n  - url: http://a:1\n    name: x\n  - url: http://b:1\n    name: x\n').join('\n'),
    /backends\[1\]\.name \(line 5, column 5\): duplicate backend id "x" \(also backends\[0\]\)/,
  );
  assert.match(problemsOf('backends:\n  - url: http://a:1\n  - url: http://a:1/\n').join('\n'), /duplicate backend id "a:1"/);
  assert.match(problemsOf('backends: {url: http://a:1}\n').join('\n'), /backends.*expected array/);
  assert.match(problemsOf('backends:\n  - url: http://a:1\nretries:\n  attempts: "two"\n').join('\n'), /retries\.attempts.*expected number/);
  assert.match(problemsOf('backends: []\n').join('\n'), /backends.*at least one backend/);
  assert.match(problemsOf('backends:\n  - url: http://a:1\nlisten: {port: 70000}\n').join('\n'), /listen\.port.*out of range/);
  assert.match(problemsOf('backends:\n  - url: ftp://a:1\n').join('\n'), /unsupported scheme "ftp:"/);
  assert.match(problemsOf('- just\n- a list\n').join('\n'), /must be a YAML mapping/);
});

test('YAML syntax errors give line and column', () => {
  const problems = problemsOf('backends:\n  - url: http://a:1\n algorithm: [round-robin\n');
  assert.equal(problems.length, 1);
  assert.match(problems[0]!, /line 3, column \d+\): YAML syntax error/);
});

test('consistent-hash key must be the client address or a header', () => {
  const config = parseConfig('algorithm: consistent-hash\nhash: {key: "header:X-User"}\nbackends: [{url: "http://a:1"}]\n');
  assert.equal(config.hash.key, 'header:X-User');
  assert.match(problemsOf('hash: {key: cookie}\nbackends: [{url: "http://a:1"}]\n').join('\n'), /hash\.key.*"client-address" or "header:<Header-Name>"/);
});

test('every example configuration shipped in balancer/examples is valid (the compose one once its certs service has made /certs)', async (t) => {
  const dir = path.join(repoRoot, 'balancer/examples');
  const files = readdirSync(dir).filter((name) => name.endsWith('.yaml'));
  assert.ok(files.length > 0);
  const certs = await mkdtemp(path.join(tmpdir(), 'example-certs-'));
  t.after(() => rm(certs, { recursive: true, force: true }));
  await ensureCerts(certs, { extraNames: ['balancer'] });
  for (const file of files) {
    const text = readFileSync(path.join(dir, file), 'utf8').replaceAll('/certs/', `${certs}/`);
    const config = parseConfig(text, file);
    assert.ok(config.backends.length > 0 || config.discovery?.dns !== undefined, `${file} names backends or discovers them`);
  }
});
