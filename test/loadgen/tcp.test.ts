import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type net from 'node:net';
import { sumCounter } from '../helpers/backend.js';
import { runLoadgen, type LoadgenRun } from '../helpers/loadgen.js';
import { freePort, startService } from '../helpers/processes.js';
import { startEchoServer, startTcpBackend } from '../helpers/tcp.js';
import type { TcpRunReport } from '../../loadgen/src/tcp-stats.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const tcpReport = (run: LoadgenRun): TcpRunReport => {
  assert.equal(run.code, 0, run.stderr);
  assert.ok(run.report, `no JSON report; stderr:\n${run.stderr}`);
  return run.report as unknown as TcpRunReport;
};

describe('loadgen TCP mode', { timeout: 90_000 }, () => {
  test('bad TCP arguments are named, exit 2, and open no connection', async (t) => {
    const server = await startEchoServer('never');
    t.after(() => server.close());
    const cases: [string[], RegExp][] = [
      [['--url', 'tcp://127.0.0.1'], /--url must be tcp:\/\/host:port, with a host and a port from 1 to 65535; got "tcp:\/\/127.0.0.1"/],
      [['--url', `${server.url}/path`], /--url must be tcp:\/\/host:port, with nothing after the port; got/],
      [['--url', 'tcp://127.0.0.1:99999'], /--url must be an http:\/\/ or https:\/\/ URL; got "tcp:\/\/127.0.0.1:99999" \(or tcp:\/\/host:port for TCP connections\)/],
      [['--url', server.url, '--rate=-5'], /--rate must be a number of new connections per second above 0, at most 1000000; got "-5"/],
      [['--url', server.url, '--payload', '0'], /--payload must be a whole number of bytes from 1 to 1048576; got "0"/],
      [['--url', server.url, '--payload', '2MB'], /--payload must be a whole number of bytes/],
      [['--url', server.url, '--hold=-1'], /--hold must be a duration from 0 to 86400 seconds/],
      [['--url', server.url, '--method', 'POST'], /--method is for http:\/\/ and https:\/\/ targets, not tcp:\/\//],
      [['--url', 'http://127.0.0.1:1/', '--payload', '10'], /--payload is for tcp:\/\/ targets/],
      [['--url', 'http://127.0.0.1:1/', '--hold', '10'], /--hold is for tcp:\/\/ targets/],
    ];
    for (const [args, message] of cases) {
      const run = await runLoadgen(args, { json: false });
      assert.equal(run.code, 2, `${args.join(' ')}: exit code`);
      assert.match(run.stderr, message, args.join(' '));
      assert.match(run.stderr, /no load was sent/);
    }
    assert.equal(server.connections(), 0, 'no connection was opened');
  });

  test('against the backend TCP port: every connection is ok, counted by the greeting, and equals what the backend counted', async (t) => {
    const backend = await startTcpBackend('b-tcp-load');
    t.after(() => backend.service.stop());
    const url = `tcp://127.0.0.1:${backend.tcp.port}`;
    const run = await runLoadgen(['--url', url, '--duration', '1.5', '--rate', '100', '--payload', '1000']);
    const report = tcpReport(run);
    const counted = sumCounter(await (await fetch(`${backend.controlUrl}/metrics`)).text(), 'backend_tcp_connections_total');
    t.diagnostic(`${report.requests} connections, ${report.rps} conn/s, p99 ${report.latency.p99} ms`);
    assert.ok(report.requests >= 120 && report.requests <= 180, `${report.requests} connections at 100/s for 1.5 s`);
    assert.equal(report.requests, counted, `loadgen reported ${report.requests}, the backend counted ${counted}`);
    assert.equal(report.ok, report.requests);
    assert.equal(report.errors, 0);
    assert.deepEqual(report.byBackend, { 'b-tcp-load': report.requests });
    assert.equal(report.payloadBytes, 1000);
    assert.equal(report.url, url);
  });

  test('connections are counted by the backend named in each greeting', async (t) => {
    const greeted = new Map<string, number>();
    let next = 0;
    const ids = ['alpha', 'beta', 'gamma'];
    const server = await startEchoServer('unused', (socket) => {
      const id = ids[next++ % ids.length]!;
      greeted.set(id, (greeted.get(id) ?? 0) + 1);
      socket.write(`${id}\n`);
      socket.pipe(socket);
      return true;
    });
    t.after(() => server.close());
    const report = tcpReport(await runLoadgen(['--url', server.url, '--duration', '1', '--rate', '90', '--connections', '5']));
    assert.equal(report.errors, 0);
    assert.deepEqual(report.byBackend, Object.fromEntries([...greeted].sort()));
    assert.equal(Object.values(report.byBackend).reduce((a, b) => a + b, 0), report.requests);
    assert.equal(report.requests, server.connections());
  });

  test('a closed port gives refused failures, and the summary names them', async () => {
    const port = await freePort();
    const run = await runLoadgen(['--url', `tcp://127.0.0.1:${port}`, '--duration', '0.5', '--rate', '40']);
    const report = tcpReport(run);
    assert.ok(report.requests >= 10, `${report.requests} connections`);
    assert.equal(report.ok, 0);
    assert.equal(report.errors, report.requests);
    assert.deepEqual(report.errorsByKind, { refused: report.requests, reset: 0, timeout: 0, mismatch: 0, other: 0 });
    assert.deepEqual(report.errorsByCode, { ECONNREFUSED: report.requests });
    assert.deepEqual(report.byBackend, {});
    assert.match(run.stdout, new RegExp(`failures +${report.errors} \\(refused ${report.errors}, reset 0, timeout 0, mismatch 0\\); by code ECONNREFUSED: ${report.errors}`));
    assert.match(run.stdout, /by backend +\(no greeting read\)/);
  });

  test('resets, early closes, silence and wrong echoes each fail with their reason', async (t) => {
    const servers = {
      reset: await startEchoServer('r', (socket) => {
        socket.write('r\n');
        socket.once('data', () => socket.resetAndDestroy());
        return true;
      }),
      closed: await startEchoServer('c', (socket) => {
        socket.end();
        return true;
      }),
      silent: await startEchoServer('s', () => true),
      wrong: await startEchoServer('w', (socket) => {
        socket.write('w\n');
        socket.on('data', (data: Buffer) => socket.write(Buffer.from(data).reverse()));
        return true;
      }),
      noGreeting: await startEchoServer('n', (socket) => {
        socket.write('x'.repeat(2000));
        return true;
      }),
    };
    for (const server of Object.values(servers)) t.after(() => server.close());
    const run = (url: string, ...args: string[]): Promise<TcpRunReport> => runLoadgen(['--url', url, '--duration', '0.5', '--rate', '20', ...args]).then(tcpReport);

    const reset = await run(servers.reset.url);
    assert.ok(reset.errors >= 5);
    assert.deepEqual(reset.errorsByKind, { refused: 0, reset: reset.errors, timeout: 0, mismatch: 0, other: 0 });
    assert.deepEqual(reset.errorsByCode, { ECONNRESET: reset.errors });
    assert.deepEqual(reset.byBackend, { r: reset.errors }, 'the greeting was read before the reset');

    const closed = await run(servers.closed.url);
    assert.deepEqual(closed.errorsByKind, { refused: 0, reset: closed.errors, timeout: 0, mismatch: 0, other: 0 });
    assert.deepEqual(closed.errorsByCode, { CLOSED: closed.errors });

    const wrong = await run(servers.wrong.url, '--payload', '100');
    assert.deepEqual(wrong.errorsByKind, { refused: 0, reset: 0, timeout: 0, mismatch: wrong.errors, other: 0 });
    assert.deepEqual(wrong.errorsByCode, { MISMATCH: wrong.errors });

    const bad = await run(servers.noGreeting.url);
    assert.deepEqual(bad.errorsByCode, { BAD_GREETING: bad.errors });
    assert.equal(bad.errorsByKind.mismatch, bad.errors);

    const started = performance.now();
    const silent = await run(servers.silent.url, '--timeout', '1');
    assert.ok(silent.requests >= 5);
    assert.deepEqual(silent.errorsByKind, { refused: 0, reset: 0, timeout: silent.requests, mismatch: 0, other: 0 });
    assert.deepEqual(silent.errorsByCode, { TIMEOUT: silent.requests });
    assert.equal(silent.requests, servers.silent.connections());
    assert.ok(performance.now() - started < 5000, 'the run waited for the timeouts, not longer');
  });

  test('the JSON report has the HTTP fields that apply plus mode "tcp", and the summary and progress lines say connections', async (t) => {
    const server = await startEchoServer('json');
    t.after(() => server.close());
    const run = await runLoadgen(['--url', server.url, '--duration', '1.2', '--rate', '50']);
    const report = tcpReport(run);
    assert.equal(report.mode, 'tcp');
    for (const key of ['requests', 'errors', 'rps', 'ok', 'durationSeconds', 'connections', 'payloadBytes', 'holdSeconds'] as const) assert.equal(typeof report[key], 'number', key);
    for (const key of ['p50', 'p90', 'p99', 'max', 'mean'] as const) assert.equal(typeof report.latency[key], 'number', `latency.${key}`);
    assert.ok(report.latency.p50 > 0 && report.latency.p50 <= report.latency.p99 && report.latency.p99 <= report.latency.max);
    assert.deepEqual(Object.keys(report).sort(), [
      'byBackend', 'connections', 'durationSeconds', 'errors', 'errorsByCode', 'errorsByKind', 'holdSeconds', 'latency', 'mode', 'ok', 'payloadBytes', 'requests', 'rps', 'targetRate', 'url',
    ]);
    assert.deepEqual(report.byBackend, { json: report.requests });
    assert.equal(report.targetRate, 50);
    assert.equal(report.connections, 100, 'the TCP default of connections open at once');
    assert.equal(report.payloadBytes, 64);
    assert.equal(report.holdSeconds, 0);

    assert.match(run.stdout, new RegExp(`^loadgen: TCP ${server.url} for [\\d.]+ s, 64-byte echo, at most 100 open, target 50 conn/s$`, 'm'));
    assert.match(run.stdout, new RegExp(`connections +${report.requests} \\(${report.ok} ok, 0 failed\\), [\\d.]+ conn/s achieved`));
    assert.match(run.stdout, /latency +p50 [\d.]+ ms, p90 [\d.]+ ms, p99 [\d.]+ ms, max [\d.]+ ms \(connect to last echo\)/);
    assert.match(run.stdout, new RegExp(`by backend +json ${report.requests} \\(100\\.0%\\)`));
    assert.match(run.stderr, /^loadgen 1s: \d+ connections, \d+ conn\/s now, 0 failed, \d+ open$/m, 'a progress line on stderr');
  });

  test('--hold keeps each connection open, echoing the payload every second', async (t) => {
    const lives: { opened: number; closed: number; bytes: number }[] = [];
    const server = await startEchoServer('holder', (socket: net.Socket) => {
      const life = { opened: performance.now(), closed: 0, bytes: 0 };
      lives.push(life);
      socket.on('data', (data: Buffer) => (life.bytes += data.length));
      socket.on('close', () => (life.closed = performance.now()));
      socket.write('holder\n');
      socket.pipe(socket);
      return true;
    });
    t.after(() => server.close());
    const report = tcpReport(await runLoadgen(['--url', server.url, '--duration', '2.5', '--rate', '4', '--hold', '1.2', '--payload', '10']));
    assert.equal(report.errors, 0);
    assert.equal(report.holdSeconds, 1.2);
    assert.equal(report.requests, lives.length);
    await sleep(100);
    // Those opened in the first second lived their whole hold; the later ones were closed early when the run ended.
    const early = lives.filter((life) => life.opened - lives[0]!.opened < 1000);
    assert.ok(early.length >= 3, `${early.length} connections in the first second`);
    for (const life of early) {
      assert.equal(life.bytes, 20, 'the payload at the first echo and once more a second later');
      assert.ok(life.closed - life.opened >= 1150, `held ${(life.closed - life.opened).toFixed(0)} ms`);
    }
    assert.ok(report.latency.max >= 1000, `the latency spans the exchanges (max ${report.latency.max} ms)`);
  });

  test('continuous mode serves loadgen_tcp_ metrics that match what the backend counted', { timeout: 30_000 }, async (t) => {
    const backend = await startTcpBackend('b-tcp-continuous');
    t.after(() => backend.service.stop());
    const target = `tcp://127.0.0.1:${backend.tcp.port}`;
    const { service: loadgen, ready } = await startService('loadgen tcp continuous', 'loadgen/dist/main.js', {
      env: { TARGET_URL: target, RATE: '100', METRICS_PORT: '0', METRICS_HOST: '127.0.0.1', PAYLOAD_BYTES: '32' },
      ready: 'loadgen',
    });
    t.after(() => loadgen.stop('SIGKILL'));
    const { metrics: metricsUrl, ...run } = ready!;
    assert.deepEqual(run, { target, rate: '100', connections: '100', payload: '32', hold: '0' });
    const scrape = async (): Promise<string> => (await fetch(metricsUrl!)).text();

    await sleep(1000);
    const paused = await fetch(new URL('/rate', metricsUrl), { method: 'PUT', body: '{"rate": 0}' });
    assert.deepEqual(await paused.json(), { rate: 0, previous: 100 });
    let metrics = await scrape();
    for (let i = 0; i < 50 && sumCounter(metrics, 'loadgen_in_flight_requests') > 0; i++) {
      await sleep(50);
      metrics = await scrape();
    }
    const ok = sumCounter(metrics, 'loadgen_tcp_connections_total', 'result="ok"');
    const counted = sumCounter(await (await fetch(`${backend.controlUrl}/metrics`)).text(), 'backend_tcp_connections_total');
    t.diagnostic(`loadgen counted ${ok} ok connections, the backend ${counted}`);
    assert.ok(ok >= 70, `only ${ok} connections in 1 s at 100/s`);
    assert.equal(sumCounter(metrics, 'loadgen_tcp_connections_total'), ok, 'no failures');
    assert.equal(ok, counted);
    assert.equal(sumCounter(metrics, 'loadgen_tcp_connections_total', 'backend="b-tcp-continuous"'), ok);
    assert.equal(sumCounter(metrics, 'loadgen_tcp_connection_duration_seconds_count'), ok);
    assert.match(metrics, /^loadgen_target_rate 0$/m);
    assert.match(metrics, /^# TYPE loadgen_requests_total counter$/m, 'the HTTP metrics are there too');

    loadgen.child.kill('SIGTERM');
    assert.equal(await loadgen.exited, 0);
    assert.match(loadgen.output(), new RegExp(` info stopped after ${ok} connections \\(0 failed\\)$`, 'm'));
  });

  test('continuous mode counts the failures of a closed port by result', { timeout: 30_000 }, async (t) => {
    const port = await freePort();
    const { service: loadgen, ready } = await startService('loadgen tcp refused', 'loadgen/dist/main.js', {
      args: ['--continuous', '--url', `tcp://127.0.0.1:${port}`, '--rate', '50', '--metrics-port', '0'],
      env: { METRICS_HOST: '127.0.0.1' },
      ready: 'loadgen',
    });
    t.after(() => loadgen.stop('SIGKILL'));
    await sleep(600);
    const metrics = await (await fetch(ready!.metrics!)).text();
    const refused = sumCounter(metrics, 'loadgen_tcp_connections_total', 'result="refused"');
    assert.ok(refused >= 10, `${refused} refused`);
    assert.equal(sumCounter(metrics, 'loadgen_tcp_connections_total', 'backend="none"'), sumCounter(metrics, 'loadgen_tcp_connections_total'));
    assert.equal(sumCounter(metrics, 'loadgen_tcp_connections_total', 'result="ok"'), 0);
  });
});
