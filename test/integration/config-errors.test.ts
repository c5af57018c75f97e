import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startService } from '../helpers/processes.js';
import { writeConfigFile } from '../helpers/lab.js';

const valid = 'listen: {host: 127.0.0.1, port: 0}\nadmin: {host: 127.0.0.1, port: 0}\n';

/** Each case: a broken file and what the message must name (key path or line). */
const cases: { kind: string; yaml: string; expect: RegExp }[] = [
  { kind: 'YAML syntax error', yaml: `${valid}backends:\n  - url: http://127.0.0.1:1\n  algorithm: [x\n`, expect: /line 5, column \d+\): YAML syntax error/ },
  { kind: 'unknown algorithm', yaml: `${valid}algorithm: fastest\nbackends: [{url: "http://127.0.0.1:1"}]\n`, expect: /algorithm \(line 3, column 1\): unknown algorithm "fastest"; accepted: round-robin/ },
  { kind: 'negative weight', yaml: `${valid}backends:\n  - url: http://127.0.0.1:1\n    weight: -1\n`, expect: /backends\[0\]\.weight \(line 5, column 5\): weight must be 0 or more/ },
  { kind: 'invalid URL', yaml: `${valid}backends:\n  - url: "http//127.0.0.1"\n`, expect: /backends\[0\]\.url \(line 4, column 5\): invalid URL/ },
  { kind: 'invalid duration', yaml: `${valid}backends: [{url: "http://127.0.0.1:1"}]\nhealthCheck:\n  interval: 2 seconds\n`, expect: /healthCheck\.interval \(line 5, column 3\): invalid duration "2 seconds"/ },
  { kind: 'port out of range', yaml: `listen: {port: 65536}\nbackends: [{url: "http://127.0.0.1:1"}]\n`, expect: /listen\.port \(line 1, column 10\): port out of range/ },
  { kind: 'duplicate backend name', yaml: `${valid}backends:\n  - {url: "http://127.0.0.1:1", name: web}\n  - {url: "http://127.0.0.1:2", name: web}\n`, expect: /backends\[1\]\.name.*duplicate backend id "web"/ },
  { kind: 'no backends', yaml: `${valid}backends: []\n`, expect: /backends \(line 3, column 1\): at least one backend is needed/ },
  { kind: 'wrong type', yaml: `${valid}backends: [{url: "http://127.0.0.1:1"}]\nretries: {attempts: lots}\n`, expect: /retries\.attempts \(line 4, column 11\): Invalid input: expected number, received string/ },
  { kind: 'unknown key', yaml: `${valid}backends: [{url: "http://127.0.0.1:1"}]\nhealthcheck: {interval: 1s}\n`, expect: /healthcheck \(line 4, column 1\): unknown key "healthcheck"/ },
  { kind: 'missing file', yaml: '', expect: /cannot read the file/ },
];

for (const { kind, yaml, expect } of cases) {
  test(`invalid config (${kind}) ends the balancer non-zero with a message that names the key or line`, async () => {
    const file = kind === 'missing file' ? '/nonexistent/balancer.yaml' : writeConfigFile(yaml);
    const { service } = await startService(`balancer (${kind})`, 'balancer/dist/main.js', { args: ['--config', file] });
    const code = await service.exited;
    assert.equal(code, 2, service.output());
    assert.match(service.output(), /invalid configuration in /);
    assert.match(service.output(), expect);
    assert.doesNotMatch(service.output(), /listening/);
  });
}

test('BALANCER_CONFIG names the file when --config is absent, and --check validates without starting', async () => {
  const file = writeConfigFile(`${valid}backends: [{url: "http://127.0.0.1:1"}]\n`);
  const { service } = await startService('balancer --check', 'balancer/dist/main.js', { args: ['--check'], env: { BALANCER_CONFIG: file } });
  assert.equal(await service.exited, 0, service.output());
  assert.match(service.output(), /is valid: 1 backends, algorithm round-robin/);
});

test('no configuration at all is a usage error', async () => {
  const { service } = await startService('balancer without config', 'balancer/dist/main.js', { env: { BALANCER_CONFIG: '' } });
  assert.equal(await service.exited, 2);
  assert.match(service.output(), /no configuration given: pass --config FILE or set BALANCER_CONFIG/);
});
