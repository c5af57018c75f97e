import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { startBackend } from '../helpers/backend.js';
import { runLoadgen, startRawServer } from '../helpers/loadgen.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('loadgen one-off run', { timeout: 90_000 }, () => {
  test('bad arguments are named, exit non-zero, and send no load', async (t) => {
    const server = await startRawServer((socket) => socket.destroy());
    t.after(() => server.close());
    const cases: [string[], RegExp][] = [
      [['--url', server.url, '--duration', 'abc'], /--duration must be a duration above 0.*got "abc"/],
      [['--url', server.url, '--connections', '0'], /--connections must be a whole number from 1 to 10000; got "0"/],
      [['--url', server.url, '--rate=-5'], /--rate must be a number of requests per second above 0.*got "-5"/],
      [['--url', server.url, '--method', 'HEAD'], /--method must be one of GET, POST, PUT, PATCH, DELETE, OPTIONS; got "HEAD"/],
      [['--url', server.url, '--timeout', '0.5'], /--timeout must be a duration from 1 to 3600 seconds/],
      [['--url', server.url, '--json', '/nonexistent-dir/report.json'], /--json "\/nonexistent-dir\/report.json": folder "\/nonexistent-dir" does not exist/],
      [['--url', server.url, '--bogus'], /Unknown option '--bogus'/],
      [['--url', 'ftp://127.0.0.1/'], /--url must be an http:\/\/ or https:\/\/ URL; got "ftp:\/\/127.0.0.1\/"/],
      [['--duration', '1'], /--url is required/],
    ];
    for (const [args, message] of cases) {
      const run = await runLoadgen(args, { json: false });
      assert.equal(run.code, 2, `${args.join(' ')}: exit code`);
      assert.match(run.stderr, message, args.join(' '));
      assert.match(run.stderr, /no load was sent/);
    }
    assert.equal(server.connections(), 0, 'no connection was opened');
  });

  test('the requests it reports equal the requests the server counted, exactly', async (t) => {
    const backend = await startBackend('b-exact');
    t.after(() => backend.service.stop());
    const run = await runLoadgen(['--url', `${backend.url}/exact`, '--duration', '2', '--connections', '8']);
    assert.equal(run.code, 0, run.stderr);
    const report = run.report!;
    const counted = await backend.requestsCounted();
    assert.ok(report.requests > 500, `only ${report.requests} requests`);
    assert.equal(report.requests, counted, `loadgen reported ${report.requests}, the backend counted ${counted}`);
    assert.equal(report.errors, 0);
    assert.equal(report.non2xx, 0);
    assert.deepEqual(report.byBackend, { 'b-exact': counted });
    t.diagnostic(`${report.requests} requests in ${report.durationSeconds} s, ${report.rps} req/s, p99 ${report.latency.p99} ms`);
  });

  test('--rate 100 for 4 s achieves 100 ± 15 requests per second', async (t) => {
    const backend = await startBackend('b-rate');
    t.after(() => backend.service.stop());
    const run = await runLoadgen(['--url', backend.url, '--duration', '4', '--rate', '100']);
    assert.equal(run.code, 0, run.stderr);
    const report = run.report!;
    t.diagnostic(`achieved ${report.rps} req/s (${report.requests} requests in ${report.durationSeconds} s)`);
    assert.ok(report.rps >= 85 && report.rps <= 115, `achieved ${report.rps} req/s`);
    assert.equal(report.targetRate, 100);
    assert.equal(report.requests, await backend.requestsCounted());
  });

  test('errors are counted by kind when the server is killed mid-run', async (t) => {
    const backend = await startBackend('b-killed');
    t.after(() => backend.service.stop('SIGKILL'));
    const run = await runLoadgen(['--url', backend.url, '--duration', '2.5', '--rate', '300', '--timeout', '2'], {
      during: async () => {
        await sleep(1000);
        await backend.service.stop('SIGKILL');
      },
    });
    assert.equal(run.code, 0, run.stderr);
    const report = run.report!;
    t.diagnostic(`${report.requests} requests: ${report.responses} answered, errors ${JSON.stringify(report.errorsByKind)}`);
    assert.ok(report.responses > 100, `${report.responses} answered before the kill`);
    assert.ok(report.errorsByKind.refused > 100, `${report.errorsByKind.refused} refused after the kill`);
    const { refused, reset, timeout, other } = report.errorsByKind;
    assert.equal(refused + reset + timeout + other, report.errors);
    assert.equal(report.responses + report.errors, report.requests);
    assert.equal(report.errorsByCode.ECONNREFUSED, refused);
    assert.equal(report.byBackend['b-killed'], report.responses);
    assert.match(run.stdout, new RegExp(`errors +${report.errors.toLocaleString('en-US')} \\(refused ${refused.toLocaleString('en-US')}, reset ${reset}, timeout ${timeout}\\)`));
  });

  test('a connection reset or closed before the answer counts as reset, and no answer within --timeout as timeout', async (t) => {
    const resetting = await startRawServer((socket) => socket.once('data', () => socket.resetAndDestroy()));
    t.after(() => resetting.close());
    const closing = await startRawServer((socket) => socket.once('data', () => socket.end()));
    t.after(() => closing.close());
    const silent = await startRawServer(() => {});
    t.after(() => silent.close());

    const reset = (await runLoadgen(['--url', resetting.url, '--duration', '0.5', '--rate', '40', '--connections', '2'])).report!;
    assert.ok(reset.errors > 5);
    assert.deepEqual(reset.errorsByKind, { refused: 0, reset: reset.errors, timeout: 0, other: 0 });

    const closed = (await runLoadgen(['--url', closing.url, '--duration', '0.5', '--rate', '40', '--connections', '2'])).report!;
    assert.ok(closed.errors > 5);
    assert.deepEqual(closed.errorsByKind, { refused: 0, reset: closed.errors, timeout: 0, other: 0 });

    const started = performance.now();
    const hung = (await runLoadgen(['--url', silent.url, '--duration', '0.5', '--connections', '3', '--timeout', '1'])).report!;
    assert.deepEqual(hung.errorsByKind, { refused: 0, reset: 0, timeout: 3, other: 0 }, 'one request per connection, each timed out');
    assert.equal(hung.requests, 3);
    assert.ok(performance.now() - started < 5000, 'the run waited for the timeouts, not longer');
  });

  test('answers with Connection: close are followed by a new connection, not counted as errors', async (t) => {
    let served = 0;
    const server = http.createServer((_req, res) => {
      served++;
      res.writeHead(200, { connection: 'close', 'x-backend-id': 'closer' });
      res.end('ok');
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    t.after(() => server.close());
    const { port } = server.address() as AddressInfo;
    const report = (await runLoadgen(['--url', `http://127.0.0.1:${port}/`, '--duration', '1', '--rate', '200', '--connections', '4'])).report!;
    assert.equal(report.errors, 0);
    assert.equal(report.requests, served);
    assert.deepEqual(report.byBackend, { closer: served });
  });

  test('the JSON report has the SPEC fields, and the summary shows rate, percentiles, non-2xx by status and backends', async (t) => {
    const backend = await startBackend('b-report');
    t.after(() => backend.service.stop());
    await backend.chaos({ errorRate: 0.3, errorStatus: 503 });
    const run = await runLoadgen(['--url', backend.url, '--duration', '1.5', '--rate', '200', '--connections', '4']);
    assert.equal(run.code, 0, run.stderr);
    const report = run.report!;
    for (const key of ['requests', 'errors', 'non2xx', 'rps'] as const) assert.equal(typeof report[key], 'number', key);
    for (const key of ['p50', 'p90', 'p99', 'max'] as const) assert.equal(typeof report.latency[key], 'number', `latency.${key}`);
    assert.ok(report.latency.p50 <= report.latency.p99 && report.latency.p99 <= report.latency.max);
    assert.equal(typeof report.byBackend, 'object');
    assert.equal(report.byBackend['b-report'], report.requests, 'injected errors carry x-backend-id too');
    assert.ok(report.non2xx > 0 && report.non2xx < report.requests);
    assert.deepEqual(report.non2xxByStatus, { '503': report.non2xx });
    assert.equal(report.statusCounts['200']! + report.non2xx, report.requests);
    assert.equal(report.requests, await backend.requestsCounted());

    assert.match(run.stdout, /requests +\d[\d,]* \(\d[\d,]* answered, 0 errors\), \d+\.\d req\/s achieved/);
    assert.match(run.stdout, /latency +p50 [\d.]+ ms, p90 [\d.]+ ms, p99 [\d.]+ ms, max [\d.]+ ms/);
    assert.match(run.stdout, new RegExp(`non-2xx +${report.non2xx} \\(503: ${report.non2xx}\\)`));
    assert.match(run.stdout, /by backend +b-report \d[\d,]* \(100\.0%\)/);
    assert.match(run.stderr, /^loadgen 1s: \d+ requests, \d+ req\/s now, 0 errors, \d+ non-2xx, \d+ in flight$/m, 'a progress line on stderr');
  });
});
