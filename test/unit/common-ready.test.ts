import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatLine } from '../../common/src/log.js';
import { parseReadyLine } from '../../common/src/ready.js';

test('parseReadyLine reads back what the logger writes, quoted values unquoted', () => {
  const line = formatLine('info', 'backend listening', { id: 'b 1', traffic: 'http://[::1]:3000', control: 'http://[::1]:3100', note: 'say "hi"' });
  assert.deepEqual(parseReadyLine(line), { service: 'backend', fields: { id: 'b 1', traffic: 'http://[::1]:3000', control: 'http://[::1]:3100', note: 'say "hi"' } });
  assert.deepEqual(parseReadyLine(formatLine('info', 'loadgen listening')), { service: 'loadgen', fields: {} });
});

test('parseReadyLine also reads the balancer\'s line without a level, and nothing that is not a ready line', () => {
  assert.deepEqual(parseReadyLine('2025-03-04T05:06:07.089Z balancer listening proxy=http://127.0.0.1:8080 admin=http://127.0.0.1:9090 algorithm=round-robin backends=3 healthy=3'), {
    service: 'balancer',
    fields: { proxy: 'http://127.0.0.1:8080', admin: 'http://127.0.0.1:9090', algorithm: 'round-robin', backends: '3', healthy: '3' },
  });
  for (const other of [
    '2025-03-04T05:06:07.089Z info rate changed by PUT /rate: 200 -> 0 req/s',
    '2025-03-04T05:06:07.089Z info backend b2 is listening again',
    '2025-03-04T05:06:07.089Z info balancer listening on port 80',
    'backend b1 listening on http://0.0.0.0:3001 (control http://0.0.0.0:3101)',
    '',
  ]) {
    assert.equal(parseReadyLine(other), undefined, other);
  }
});
