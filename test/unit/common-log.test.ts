import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createLogger, formatLine } from '../../common/src/log.js';

const T = new Date('2025-03-04T05:06:07.089Z');

test('a line is the ISO time, the level, the message and key=value details, quoted only where needed', () => {
  assert.equal(formatLine('info', 'balancer listening', { proxy: 'http://127.0.0.1:8080', backends: 3, tls: false }, T), '2025-03-04T05:06:07.089Z info balancer listening proxy=http://127.0.0.1:8080 backends=3 tls=false');
  assert.equal(formatLine('warn', 'backend b2 healthy → unhealthy', { why: '2 consecutive failures, last: "ECONNREFUSED"', skipped: undefined }, T), '2025-03-04T05:06:07.089Z warn backend b2 healthy → unhealthy why="2 consecutive failures, last: \\"ECONNREFUSED\\""');
  assert.equal(formatLine('error', 'tab', { a: 'x\ty', b: '' }, T), '2025-03-04T05:06:07.089Z error tab a="x\\ty" b=');
  assert.equal(formatLine('debug', 'plain', undefined, T), '2025-03-04T05:06:07.089Z debug plain');
});

test('a logger writes one line per event at its threshold and above', () => {
  const lines: string[] = [];
  const log = createLogger('warn', (text) => lines.push(text));
  log.debug('d');
  log.info('i');
  log.warn('w', { n: 1 });
  log.error('e');
  assert.equal(lines.length, 2);
  assert.match(lines[0]!, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z warn w n=1\n$/);
  assert.match(lines[1]!, / error e\n$/);
  const all: string[] = [];
  const debug = createLogger('debug', (text) => all.push(text));
  for (const level of ['debug', 'info', 'warn', 'error'] as const) debug[level](level);
  assert.equal(all.length, 4);
});

test('the services\' log takes its threshold from LOG_LEVEL, info by default, and says so when the value is unknown', () => {
  const linesAt = (level: string | undefined): string[] => {
    const env = { ...process.env };
    if (level === undefined) delete env.LOG_LEVEL;
    else env.LOG_LEVEL = level;
    const code = `import { log } from ${JSON.stringify(new URL('../../common/src/log.js', import.meta.url).href)}; log.debug('d'); log.info('i'); log.warn('w');`;
    const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { env, encoding: 'utf8' });
    assert.equal(child.status, 0, child.stderr);
    return child.stdout.trim().split('\n').map((line) => line.replace(/^\S+ /, ''));
  };
  assert.deepEqual(linesAt(undefined), ['info i', 'warn w']);
  assert.deepEqual(linesAt('WARN'), ['warn w']);
  assert.deepEqual(linesAt('debug'), ['debug d', 'info i', 'warn w']);
  assert.deepEqual(linesAt('loud'), ['warn LOG_LEVEL "loud" is not one of debug, info, warn, error; logging at info', 'info i', 'warn w']);
});
