/**
 * Property-based fuzzing of every admin API body (fast-check) against a real balancer process: random
 * JSON, random text under every content type, bodies shaped like the real ones with random values,
 * random ids and listener names in the path, random Authorization headers. The invariants: the
 * balancer never crashes and never answers 5xx; every refusal is a 4xx JSON error, and a refused
 * body (400) lists its problems; a refused call changes nothing (configuration and backends read
 * back the same). An accepted call is undone before the next run. FUZZ_RUNS raises the number of
 * runs (default 150 per property).
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { dump } from 'js-yaml';
import { startBalancer, startHttpBackend, type RunningBalancer } from '../helpers/lab.js';
import { httpRequest, type HttpResult } from '../helpers/http.js';

const RUNS = Number(process.env.FUZZ_RUNS ?? 150);
const TOKEN = 'fuzz-secret';

interface AdminCall {
  method: string;
  path: string;
  contentType: string | undefined;
  body: string | undefined;
  authorization?: string | null;
}

interface ErrorBody {
  error: { code: string; message: string; problems?: { path: string; message: string }[] };
}

/** What a refused call must leave as it was: the effective configuration and each backend's id, url, weight and draining. */
async function observable(admin: string): Promise<string> {
  const config = (await httpRequest(`${admin}/config`)).body;
  const backends = JSON.parse((await httpRequest(`${admin}/backends`)).body) as { id: string; url: string; weight: number; state: string }[];
  // Order is not state: a backend removed and added back by a reload comes last.
  const parsed = JSON.parse(config) as { backends?: { name?: string }[] };
  parsed.backends?.sort((a, b) => String(a.name).localeCompare(String(b.name)));
  return JSON.stringify({ config: parsed, backends: backends.map((b) => [b.id, b.url, b.weight, b.state === 'draining']).sort() });
}

function send(admin: string, call: AdminCall): Promise<HttpResult> {
  const headers: Record<string, string> = {};
  if (call.contentType) headers['content-type'] = call.contentType;
  const authorization = call.authorization === undefined ? `Bearer ${TOKEN}` : call.authorization;
  if (authorization !== null) headers.authorization = authorization;
  return httpRequest(`${admin}${call.path}`, { method: call.method, headers, body: call.body });
}

/** checkAnswer asserts the invariants of one answer; it returns whether the call was accepted (2xx). */
function checkAnswer(call: AdminCall, result: HttpResult): boolean {
  const what = `${call.method} ${call.path} (${call.contentType ?? 'no content-type'}) ${JSON.stringify(call.body?.slice(0, 200))}`;
  assert.ok(result.status < 500, `${what}: HTTP ${result.status} ${result.body}`);
  if (result.status < 300) return true;
  assert.ok(result.status >= 400, `${what}: HTTP ${result.status}`);
  assert.match(String(result.headers['content-type']), /application\/json/, `${what}: a JSON error`);
  const body = JSON.parse(result.body) as ErrorBody;
  assert.match(body.error.code, /^ADMIN_ERR_[A-Z_]+$/, `${what}: ${result.body}`);
  assert.ok(body.error.message.length > 0, `${what}: a message`);
  if (result.status === 400) assert.ok((body.error.problems ?? []).length > 0, `${what}: a 400 lists its problems: ${result.body}`);
  return false;
}

/** undo reverts an accepted call so that every run starts from the same state. */
async function undo(lb: RunningBalancer, call: AdminCall, answer: HttpResult, originalConfig: string): Promise<void> {
  const admin = lb.adminUrl;
  const restore = async (method: string, path: string, body?: unknown): Promise<void> => {
    const result = await send(admin, { method, path, contentType: 'application/json', body: body === undefined ? undefined : JSON.stringify(body) });
    assert.ok(result.status < 300, `undo ${method} ${path}: HTTP ${result.status} ${result.body}`);
  };
  if (call.method === 'POST' && call.path.endsWith('/backends')) {
    const { id } = JSON.parse(answer.body) as { id: string };
    await restore('DELETE', `/backends/${encodeURIComponent(id)}`);
    // Removal waits for the backend's requests in flight (none here) before it is gone.
    for (let i = 0; i < 100 && (await observable(admin)).includes(JSON.stringify(id)); i++) await new Promise((r) => setTimeout(r, 20));
  } else if (call.method === 'PATCH') {
    await restore('PATCH', call.path, { weight: 1, drain: false });
  } else {
    await restore('PUT', '/config', JSON.parse(originalConfig) as unknown);
  }
}

async function fuzzBalancer(t: TestContext): Promise<{ lb: RunningBalancer; originalConfig: string }> {
  const b1 = await startHttpBackend(t, 'b1');
  const b2 = await startHttpBackend(t, 'b2');
  const lb = await startBalancer(t, { admin: { host: '127.0.0.1', port: 0, token: TOKEN }, backends: [{ url: b1.url, name: 'b1' }, { url: b2.url, name: 'b2' }] });
  return { lb, originalConfig: (await httpRequest(`${lb.adminUrl}/config`)).body };
}

/** runProperty sends each generated call and checks the invariants; the balancer must still be alive and quiet at the end. */
async function runProperty(t: TestContext, calls: fc.Arbitrary<AdminCall>): Promise<void> {
  const { lb, originalConfig } = await fuzzBalancer(t);
  let accepted = 0;
  let refused = 0;
  await fc.assert(
    fc.asyncProperty(calls, async (call) => {
      const before = await observable(lb.adminUrl);
      const answer = await send(lb.adminUrl, call);
      if (checkAnswer(call, answer)) {
        accepted++;
        await undo(lb, call, answer, originalConfig);
        assert.equal(await observable(lb.adminUrl), before, `undoing ${call.method} ${call.path} restored the state`);
      } else {
        refused++;
        assert.equal(await observable(lb.adminUrl), before, `a refused ${call.method} ${call.path} changed nothing`);
      }
    }),
    { numRuns: RUNS },
  );
  t.diagnostic(`${accepted} accepted (and undone), ${refused} refused`);
  assert.ok(refused > 0, 'the generators produce refusals');
  assert.equal((await httpRequest(`${lb.adminUrl}/healthz`)).status, 200);
  assert.doesNotMatch(lb.service.output(), /unhandled|uncaught|TypeError|RangeError|at .*\.js:\d+/i, 'no crash, rejection or stack in the balancer output');
}

const CONTENT_TYPES = ['application/json', 'application/yaml', 'text/plain', 'application/x-www-form-urlencoded', 'application/json; charset=utf-16', 'multipart/form-data'];
const contentType = fc.option(fc.constantFrom(...CONTENT_TYPES), { nil: undefined });
const json = (value: unknown): string => JSON.stringify(value) ?? 'null';
/** A body: any JSON value, or any text, or nothing. */
const anyBody = fc.oneof(fc.jsonValue().map(json), fc.string({ maxLength: 200 }), fc.constant(undefined), fc.constant(''), fc.constant('{"url": '), fc.constant('[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]'));
const someValue = fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constantFrom('', 'http://127.0.0.1:1', 'tcp://127.0.0.1:1', 'ftp://x', 'round-robin', 'p2c', 'ewma', -1, 0, 1, 1e300, Number.MAX_SAFE_INTEGER, true, null));
/** A body shaped like POST /backends: the real keys, random values, sometimes an unknown key. */
const backendBody = fc.oneof(
  fc.record({ url: someValue, weight: someValue, name: someValue, colour: someValue }, { requiredKeys: [] }),
  fc.record({ url: fc.constant('http://127.0.0.1:1'), weight: fc.integer({ min: -1, max: 1001 }), name: fc.string({ maxLength: 8 }) }, { requiredKeys: ['url'] }),
).map(json);
const patchBody = fc.oneof(
  fc.record({ weight: someValue, drain: someValue, url: someValue }, { requiredKeys: [] }),
  fc.record({ weight: fc.integer({ min: -1, max: 1001 }), drain: fc.boolean() }, { requiredKeys: [] }),
).map(json);
const algorithmBody = fc.record({ name: fc.oneof(someValue, fc.string(), fc.constantFrom('least-connections', 'p2c', 'ewma', 'random')), options: someValue }, { requiredKeys: [] }).map(json);
const CONFIG_KEYS = ['listen', 'admin', 'algorithm', 'engine', 'workers', 'backends', 'healthCheck', 'retries', 'timeouts', 'limits', 'listeners', 'panicThreshold', 'tls'];
const configDocument = fc.dictionary(fc.constantFrom(...CONFIG_KEYS), someValue, { maxKeys: 6 });
const configBody = fc.oneof(
  configDocument.map((document) => ({ contentType: 'application/json', body: json(document) })),
  configDocument.map((document) => ({ contentType: 'application/yaml', body: dump(document) })),
  fc.string({ maxLength: 300 }).map((text) => ({ contentType: 'application/yaml', body: text })),
);
/** An id or listener name for the path: anything, percent-encoded. */
const pathSegment = fc.oneof(fc.string({ minLength: 1, maxLength: 20 }), fc.constantFrom('b1', 'b2', 'default', '..', '%', '__proto__', 'constructor')).map((s) => encodeURIComponent(s));

test('admin fuzz: POST /backends with random bodies and content types', async (t) => {
  const body = fc.oneof(anyBody, backendBody);
  await runProperty(t, fc.record({ method: fc.constant('POST'), path: fc.constant('/backends'), contentType, body }));
});

test('admin fuzz: PATCH and DELETE /backends/:id with random ids and bodies', async (t) => {
  const patch = fc.record({ method: fc.constant('PATCH'), path: fc.oneof(fc.constant('/backends/b1'), pathSegment.map((id) => `/backends/${id}`)), contentType, body: fc.oneof(anyBody, patchBody) });
  // A DELETE of b1 or b2 would be accepted and undone by a reload; only unknown ids are sent, so each must be a 404.
  const remove = fc.record({ method: fc.constant('DELETE'), path: pathSegment.filter((id) => id !== 'b1' && id !== 'b2').map((id) => `/backends/${id}`), contentType, body: anyBody });
  await runProperty(t, fc.oneof(patch, remove));
});

test('admin fuzz: PUT /algorithm and the per-listener calls with random listener names', async (t) => {
  const algorithm = fc.record({ method: fc.constant('PUT'), path: fc.constant('/algorithm'), contentType, body: fc.oneof(anyBody, algorithmBody) });
  const perListener = fc.record({
    method: fc.constantFrom('POST', 'PATCH', 'PUT', 'DELETE'),
    path: fc.tuple(pathSegment, fc.constantFrom('/backends', '/backends/b1', '/algorithm')).map(([listener, rest]) => `/listeners/${listener}${rest}`),
    contentType,
    body: fc.oneof(anyBody, backendBody, algorithmBody),
  });
  await runProperty(t, fc.oneof(algorithm, perListener));
});

test('admin fuzz: PUT /config with random JSON and YAML documents', async (t) => {
  const config = fc.oneof(
    configBody.map(({ contentType: type, body }) => ({ method: 'PUT', path: '/config', contentType: type, body })),
    fc.record({ method: fc.constant('PUT'), path: fc.constant('/config'), contentType, body: anyBody }),
  );
  await runProperty(t, config);
});

test('admin fuzz: write calls with a random Authorization header are refused with 401 and change nothing', async (t) => {
  const authorization = fc.oneof(fc.constant(null), fc.string({ maxLength: 40 }).filter((s) => /^[\x20-\x7e]*$/.test(s) && !/^bearer fuzz-secret$/i.test(s.trim())), fc.constantFrom(`Bearer  ${TOKEN}`, `Bearer ${TOKEN}x`, 'Bearer ', `Basic ${TOKEN}`, `Bearer ${TOKEN.slice(1)}`, TOKEN));
  const call = fc.record({
    method: fc.constantFrom('POST', 'PATCH', 'PUT', 'DELETE'),
    path: fc.constantFrom('/backends', '/backends/b1', '/algorithm', '/config', '/config/reload', '/workers/restart', '/listeners/default/algorithm'),
    contentType: fc.constant('application/json'),
    body: fc.constant(json({ name: 'p2c', url: 'http://127.0.0.1:1', weight: 5, drain: true, backends: [] })),
    authorization,
  });
  const { lb } = await fuzzBalancer(t);
  await fc.assert(
    fc.asyncProperty(call, async (c) => {
      const before = await observable(lb.adminUrl);
      const answer = await send(lb.adminUrl, c);
      assert.equal(answer.status, 401, `${c.method} ${c.path} with ${JSON.stringify(c.authorization)}: ${answer.body}`);
      assert.equal((JSON.parse(answer.body) as ErrorBody).error.code, 'ADMIN_ERR_UNAUTHORIZED');
      assert.equal(await observable(lb.adminUrl), before);
    }),
    { numRuns: RUNS },
  );
});
