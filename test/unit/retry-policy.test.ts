import { test } from 'node:test';
import assert from 'node:assert/strict';
import { retryDecision, type BodyState } from '../../balancer/src/pipeline/retry-policy.js';
import { ANSWER_FOR, classifyError, type ExchangeFailure } from '../../balancer/src/pipeline/error-mapping.js';
import { lbErrors } from '../../balancer/src/errors.js';

/**
 * The whole table: every failure kind × idempotent or not × body or not, on the first try with
 * retries left. "retry" or the code the client gets.
 */
const table: [ExchangeFailure, 'GET' | 'POST', BodyState, string][] = [
  ['connect', 'GET', 'none', 'retry'],
  ['connect', 'POST', 'none', 'retry'], // nothing reached the backend
  ['connect', 'GET', 'streamed', 'LB_ERR_UPSTREAM_UNAVAILABLE'], // the body is gone
  ['connect', 'POST', 'streamed', 'LB_ERR_UPSTREAM_UNAVAILABLE'],
  ['tls', 'GET', 'none', 'retry'],
  ['tls', 'POST', 'none', 'retry'], // the handshake failed: nothing of the request was sent
  ['tls', 'GET', 'streamed', 'LB_ERR_UPSTREAM_TLS'],
  ['tls', 'POST', 'streamed', 'LB_ERR_UPSTREAM_TLS'],
  ['timeout', 'GET', 'none', 'retry'],
  ['timeout', 'POST', 'none', 'LB_ERR_UPSTREAM_TIMEOUT'], // it may have reached the backend
  ['timeout', 'GET', 'streamed', 'LB_ERR_UPSTREAM_TIMEOUT'],
  ['timeout', 'POST', 'streamed', 'LB_ERR_UPSTREAM_TIMEOUT'],
  ['reset', 'GET', 'none', 'retry'],
  ['reset', 'POST', 'none', 'LB_ERR_UPSTREAM_RESET'],
  ['reset', 'GET', 'streamed', 'LB_ERR_UPSTREAM_RESET'],
  ['reset', 'POST', 'streamed', 'LB_ERR_UPSTREAM_RESET'],
  ['other', 'GET', 'none', 'LB_ERR_UPSTREAM_ERROR'],
  ['other', 'POST', 'none', 'LB_ERR_UPSTREAM_ERROR'],
  ['other', 'GET', 'streamed', 'LB_ERR_UPSTREAM_ERROR'],
  ['other', 'POST', 'streamed', 'LB_ERR_UPSTREAM_ERROR'],
  ['request-timeout', 'GET', 'none', 'LB_ERR_REQUEST_TIMEOUT'],
  ['request-timeout', 'POST', 'none', 'LB_ERR_REQUEST_TIMEOUT'],
  ['request-timeout', 'GET', 'streamed', 'LB_ERR_REQUEST_TIMEOUT'],
  ['request-timeout', 'POST', 'streamed', 'LB_ERR_REQUEST_TIMEOUT'],
];

const outcome = (failure: ExchangeFailure, method: string, body: BodyState, tries: number, attempts: number): string => {
  const decision = retryDecision(failure, method, body, tries, attempts);
  return decision.retry ? 'retry' : decision.answer;
};

test('retry policy: every failure kind × idempotent or not × body or not', () => {
  for (const [failure, method, body, expected] of table) {
    assert.equal(outcome(failure, method, body, 1, 2), expected, `${failure} ${method} body=${body}`);
  }
});

test('retry policy: every idempotent method is retried like GET, every other like POST', () => {
  for (const method of ['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']) assert.equal(outcome('reset', method, 'none', 1, 2), 'retry', method);
  for (const method of ['POST', 'PATCH', 'CONNECT', 'PURGE']) assert.equal(outcome('reset', method, 'none', 1, 2), 'LB_ERR_UPSTREAM_RESET', method);
});

test('retry policy: never more than retries.attempts further tries', () => {
  assert.equal(outcome('connect', 'GET', 'none', 2, 2), 'retry', 'the second try failed: one retry left');
  assert.equal(outcome('connect', 'GET', 'none', 3, 2), 'LB_ERR_UPSTREAM_UNAVAILABLE', 'three tries made: no more');
  assert.equal(outcome('timeout', 'GET', 'none', 1, 0), 'LB_ERR_UPSTREAM_TIMEOUT', 'attempts 0: never retried');
});

test('error mapping: every answer is a code of the catalogue, with the status the README gives', () => {
  const statuses = Object.fromEntries(Object.entries(ANSWER_FOR).map(([failure, code]) => [failure, lbErrors[code].status]));
  assert.deepEqual(statuses, { connect: 503, tls: 502, timeout: 504, reset: 502, other: 502, 'request-timeout': 504 });
});

test('error mapping: the error codes of Node and undici by the failure they mean', () => {
  const error = (code: string | undefined, message = 'x'): Error => Object.assign(new Error(message), code ? { code } : {});
  const cases: [Error, string][] = [
    [error('ECONNREFUSED'), 'connect'],
    [error('EHOSTUNREACH'), 'connect'],
    [error('ENOTFOUND'), 'connect'],
    [error('ECONNECT_TIMEOUT'), 'connect'],
    [error('UND_ERR_CONNECT_TIMEOUT'), 'connect'],
    [error('ECONNRESET'), 'reset'],
    [error('EPIPE'), 'reset'],
    [error('UND_ERR_SOCKET'), 'reset'],
    [error(undefined, 'socket hang up'), 'reset'],
    [error('HPE_INVALID_CONSTANT'), 'other'],
    [error('UND_ERR_INFO'), 'other'],
    [error(undefined, 'something else'), 'other'],
  ];
  for (const [cause, kind] of cases) assert.equal(classifyError(cause), kind, `${(cause as NodeJS.ErrnoException).code ?? cause.message}`);
});
