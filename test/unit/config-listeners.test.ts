import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, parseConfig } from '../../balancer/src/config.js';

function problemsOf(yaml: string): string {
  try {
    parseConfig(yaml, 'test.yaml');
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    return error.message;
  }
  assert.fail('the configuration was accepted');
}

test('a file without listeners: is one http listener named default, from the top-level keys', () => {
  const config = parseConfig('listen: {port: 8088}\nalgorithm: p2c\nbackends: [{url: "http://127.0.0.1:3001"}]\n');
  assert.equal(config.listenersKey, false);
  assert.equal(config.listeners.length, 1);
  const [listener] = config.listeners;
  assert.equal(listener!.name, 'default');
  assert.equal(listener!.mode, 'http');
  assert.deepEqual(listener!.listen, { host: '0.0.0.0', port: 8088 });
  assert.equal(listener!.algorithm, 'p2c');
  assert.equal(listener!.healthCheck.type, 'http');
  assert.equal(listener!.proxyProtocol, 'off');
});

test('listeners take the top-level keys as defaults, mappings merged key by key, and the mode gives its own defaults', () => {
  const config = parseConfig(
    [
      'algorithm: least-connections',
      'healthCheck: {interval: 1s, rise: 3}',
      'timeouts: {connect: 300ms}',
      'listeners:',
      '  - name: web',
      '    listen: {port: 8080}',
      '    backends: [{url: "http://127.0.0.1:3001"}]',
      '    healthCheck: {rise: 1}',
      '  - name: echo',
      '    mode: tcp',
      '    listen: {host: 127.0.0.1, port: 8081}',
      '    algorithm: round-robin',
      '    proxyProtocol: v2',
      '    backends: [{url: "tcp://127.0.0.1:4001", name: echo-1}]',
      '    timeouts: {idle: 30s}',
    ].join('\n'),
  );
  assert.equal(config.listenersKey, true);
  const [web, echo] = config.listeners;
  assert.equal(web!.algorithm, 'least-connections');
  assert.equal(web!.healthCheck.interval, 1000);
  assert.equal(web!.healthCheck.rise, 1);
  assert.equal(web!.timeouts.connect, 300);
  assert.equal(echo!.mode, 'tcp');
  assert.equal(echo!.algorithm, 'round-robin');
  assert.equal(echo!.healthCheck.type, 'tcp');
  assert.equal(echo!.healthCheck.rise, 3);
  assert.equal(echo!.timeouts.idle, 30_000);
  assert.equal(echo!.timeouts.drain, 30_000);
  assert.equal(echo!.timeouts.connect, 300);
  assert.equal(echo!.proxyProtocol, 'v2');
  assert.deepEqual(echo!.backends, [{ url: 'tcp://127.0.0.1:4001', name: 'echo-1', weight: 1 }]);
});

test('problems in a listener name the listener in the key path, with the line', () => {
  const message = problemsOf(
    [
      'listeners:',
      '  - name: web',
      '    listen: {port: 8080}',
      '    backends: [{url: "http://127.0.0.1:3001"}]',
      '  - name: echo',
      '    mode: tcp',
      '    listen: {port: 8081}',
      '    backends:',
      '      - url: http://127.0.0.1:4001', // line 9
      '      - url: "tcp://127.0.0.1"', // line 10
      '    colour: blue', // line 11
    ].join('\n'),
  );
  assert.match(message, /listeners\[1\]\.backends\[1\]\.url \(line 10, column 9\): .*needs a port/);
  assert.match(message, /listeners\[1\]\.colour \(line 11, column 5\): unknown key "colour"/);
  const mismatch = problemsOf('listeners:\n  - name: echo\n    mode: tcp\n    listen: {port: 8081}\n    backends:\n      - url: http://127.0.0.1:4001\n');
  assert.match(mismatch, /listeners\[0\]\.backends\[0\]\.url \(line 6, column 9\): a tcp listener's backends are tcp:\/\/host:port or tls:\/\/host:port, not http:\/\/127\.0\.0\.1:4001/);
});

test('tls:// backends belong to tcp listeners and need a port', () => {
  const config = parseConfig('listeners:\n  - {name: db, mode: tcp, listen: {port: 8081}, backends: [{url: "tls://db.internal:5432"}]}\n');
  assert.deepEqual(config.listeners[0]!.backends, [{ url: 'tls://db.internal:5432', weight: 1 }]);
  assert.match(problemsOf('listeners:\n  - {name: db, mode: tcp, listen: {port: 8081}, backends: [{url: "tls://db.internal"}]}\n'), /backends\[0\]\.url.*needs a port: tls:\/\/host:port/);
  assert.match(problemsOf('listeners:\n  - {name: web, listen: {port: 8080}, backends: [{url: "tls://a:1"}]}\n'), /an? http listener's backends are http:\/\/host:port or https:\/\/host:port, not tls:\/\/a:1/);
});

test('listener names and ports are unique, every listener has its own port, and modes have their limits', () => {
  const message = problemsOf(
    [
      'listeners:',
      '  - {name: web, listen: {port: 8080}, backends: [{url: "http://a:1"}]}',
      '  - {name: web, listen: {port: 8080}, backends: [{url: "http://a:1"}]}',
      '  - {name: Bad_Name, listen: {port: 8082}, backends: [{url: "http://a:1"}]}',
      '  - {name: nolisten, backends: [{url: "http://a:1"}]}',
      '  - {name: tcp1, mode: tcp, listen: {port: 8083}, hash: {key: "header:X-User"}, backends: [{url: "tcp://a:1"}]}',
      '  - {name: web2, listen: {port: 8084}, proxyProtocol: v1, backends: [{url: "http://a:1"}]}',
      '  - {name: empty, listen: {port: 8085}}',
    ].join('\n'),
  );
  assert.match(message, /listeners\[1\]\.name.*duplicate listener name "web" \(also listeners\[0\]\)/);
  assert.match(message, /listeners\[1\]\.listen\.port.*port 8080 is already listeners\[0\]'s/);
  assert.match(message, /listeners\[2\]\.name.*only a-z, 0-9 and -/);
  assert.match(message, /listeners\[3\].*every listener needs its own listen\.port/);
  assert.match(message, /listeners\[4\]\.hash\.key.*only hash the client address/);
  assert.match(message, /listeners\[5\]\.proxyProtocol.*tcp listeners only/);
  assert.match(message, /listeners\[6\]\.backends.*at least one backend/);
});

test('an empty or malformed listeners list is refused', () => {
  assert.match(problemsOf('listeners: []\n'), /listeners.*at least one listener/);
  assert.match(problemsOf('listeners: [42]\n'), /listeners\[0\].*must be a mapping/);
  assert.match(problemsOf('listeners: {name: web}\n'), /listeners.*must be a list of listeners/);
});
