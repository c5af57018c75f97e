import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type ServerResponse } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { errorBody, sendError, sendJson } from '../../common/src/errors.js';

/** Answers one request with `answer` on a local server and returns what the client got. */
async function answered(answer: (res: ServerResponse) => void): Promise<{ status: number; headers: Headers; text: string }> {
  const server = createServer((_req, res) => answer(res));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  try {
    const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
    return { status: res.status, headers: res.headers, text: await res.text() };
  } finally {
    server.close();
  }
}

test('errorBody is the envelope {"error": {"code", "message", ...extra}}', () => {
  assert.deepEqual(errorBody('X_ERR_NOPE', 'no such thing'), { error: { code: 'X_ERR_NOPE', message: 'no such thing' } });
  const problems = [{ path: 'rate', message: 'must be a number' }];
  assert.equal(JSON.stringify(errorBody('X_ERR_INVALID', 'invalid', { problems })), '{"error":{"code":"X_ERR_INVALID","message":"invalid","problems":[{"path":"rate","message":"must be a number"}]}}');
});

test('sendError answers the status with the envelope as application/json and its exact content-length', async () => {
  const got = await answered((res) => assert.equal(sendError(res, 503, 'X_ERR_DOWN', 'down: é', { retryAfter: 2 }), true));
  assert.equal(got.status, 503);
  assert.equal(got.headers.get('content-type'), 'application/json');
  assert.equal(Number(got.headers.get('content-length')), Buffer.byteLength(got.text));
  assert.deepEqual(JSON.parse(got.text), { error: { code: 'X_ERR_DOWN', message: 'down: é', retryAfter: 2 } });
});

test('sendJson and sendError do nothing once the response has started', async () => {
  const got = await answered((res) => {
    assert.equal(sendJson(res, 200, { ok: true }), true);
    assert.equal(sendError(res, 500, 'X_ERR_LATE', 'too late'), false);
  });
  assert.equal(got.status, 200);
  assert.deepEqual(JSON.parse(got.text), { ok: true });
});
