/**
 * Property-based fuzzing of the config loader (fast-check): random documents, random YAML text,
 * documents built from the real keys with random values, alias bombs and deep nesting. The
 * invariant: a Config or a ConfigError that lists its problems, never anything else (no other
 * exception, no hang). FUZZ_RUNS raises the number of runs (default 300 per property).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { dump } from 'js-yaml';
import { ConfigError, parseConfig, validateConfig } from '../../balancer/src/config.js';

const RUNS = Number(process.env.FUZZ_RUNS ?? 300);

/** accepts: the input gave a Config or a ConfigError with at least one problem; anything else fails the property. */
function accepts(load: () => unknown): boolean {
  try {
    load();
    return true;
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    assert.ok(error.problems.length > 0, 'a refusal lists its problems');
    for (const problem of error.problems) assert.equal(typeof problem.message, 'string');
    return false;
  }
}

const TOP_KEYS = ['listen', 'admin', 'algorithm', 'engine', 'workers', 'hash', 'backends', 'healthCheck', 'discovery', 'outlierDetection', 'panicThreshold', 'slowStart', 'retries', 'timeouts', 'limits', 'tls', 'upstreamTls', 'proxyProtocol', 'mode', 'listeners'];
const LISTENER_KEYS = ['name', 'mode', 'listen', 'algorithm', 'backends', 'healthCheck', 'timeouts', 'limits', 'retries', 'proxyProtocol', 'discoveryPort', 'hash'];
const values = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  fc.constantFrom('round-robin', 'tcp', 'http', '2s', '0ms', '-1s', 'http://127.0.0.1:3001', 'tcp://127.0.0.1:4001', 'tls://a:1', 'v2', 'auto', 0, -1, 65536, 1e300),
  fc.array(fc.record({ url: fc.constantFrom('http://127.0.0.1:3001', 'tcp://127.0.0.1:4001', 'https://b:1', 'ftp://x', ''), weight: fc.integer({ min: -5, max: 2000 }) }, { requiredKeys: [] }), { maxLength: 3 }),
);
/** A document of the real keys with random values: it gets past the unknown-key check and into every rule. */
const configLike = fc.dictionary(fc.constantFrom(...TOP_KEYS), values, { maxKeys: 8 }).chain((document) =>
  fc.option(fc.array(fc.dictionary(fc.constantFrom(...LISTENER_KEYS), values, { maxKeys: 6 }), { maxLength: 3 }), { nil: undefined }).map((listeners) => (listeners ? { ...document, listeners } : document)),
);

test('validateConfig on any JSON value: a Config or a ConfigError listing problems', () => {
  fc.assert(fc.property(fc.jsonValue(), (document) => void accepts(() => validateConfig(document))), { numRuns: RUNS });
});

test('validateConfig on documents of the real keys with random values: a Config or a ConfigError listing problems', () => {
  fc.assert(fc.property(configLike, (document) => void accepts(() => validateConfig(document))), { numRuns: RUNS });
});

test('parseConfig on random text and on those documents as YAML: a Config or a ConfigError listing problems', () => {
  fc.assert(fc.property(fc.string({ maxLength: 300 }), (text) => void accepts(() => parseConfig(text))), { numRuns: RUNS });
  fc.assert(fc.property(configLike, (document) => void accepts(() => parseConfig(dump(document)))), { numRuns: RUNS });
});

test('an alias bomb ("billion laughs") is refused without being expanded', () => {
  const levels = ['a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]'];
  for (let i = 1; i < 9; i++) levels.push(`${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(10).fill(`*${String.fromCharCode(96 + i)}`).join(', ')}]`);
  const bomb = `${levels.join('\n')}\nbackends: *i\n`;
  assert.throws(() => parseConfig(bomb), (error: unknown) => error instanceof ConfigError && /more than 100000 values \(YAML aliases count each time they are used\)/.test(error.message));
});

test('deep nesting, as YAML and as a parsed body, is refused with the reason', () => {
  const deepYaml = `backends: ${'['.repeat(10_000)}${']'.repeat(10_000)}\n`;
  assert.throws(() => parseConfig(deepYaml), (error: unknown) => error instanceof ConfigError && /nesting exceeded maxDepth/.test(error.message));
  let deep: unknown = 1;
  for (let i = 0; i < 10_000; i++) deep = [deep];
  assert.throws(() => validateConfig({ backends: deep }), (error: unknown) => error instanceof ConfigError && /nested more than 64 levels deep/.test(error.message));
});
