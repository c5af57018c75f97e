import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hostPort } from '../../common/src/host-port.js';

test('hostPort brackets IPv6 addresses only', () => {
  assert.equal(hostPort('127.0.0.1', 8080), '127.0.0.1:8080');
  assert.equal(hostPort('backend.lab', '3000'), 'backend.lab:3000');
  assert.equal(hostPort('::1', 8080), '[::1]:8080');
  assert.equal(hostPort('::', 0), '[::]:0');
  assert.equal(hostPort('[fe80::1]', 53), '[fe80::1]:53');
  assert.equal(`http://${hostPort('::1', 9464)}/metrics`, new URL('http://[::1]:9464/metrics').href);
});
