import { describe, it, mock, after, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { DnsDiscovery } from '../../balancer/src/discovery/dns.js';
import { startDnsServer, type DnsServer } from '../helpers/dns-server.js';
import { sleep, waitFor } from '../helpers/http.js';

const INTERVAL = 500;

// Every "dns discovery:" line written to stdout is kept here (and still printed); each test uses its own
// DNS name and reads only the lines that name it, so the tests can run side by side.
const logLines: string[] = [];
const write = process.stdout.write.bind(process.stdout) as (...args: unknown[]) => boolean;
const stdoutMock = mock.method(process.stdout, 'write', (chunk: unknown, ...rest: unknown[]) => {
  if (typeof chunk === 'string' && chunk.includes('dns discovery:')) logLines.push(chunk.trim());
  return write(chunk, ...rest);
});
after(() => stdoutMock.mock.restore());
const linesAbout = (name: string): string[] => logLines.filter((line) => line.includes(`lookup of ${name} `));

/** discover starts a DnsDiscovery of name against the test server, records every report and stops it in t.after. */
async function discover(t: TestContext, name: string, server: string): Promise<{ discovery: DnsDiscovery; reports: (readonly string[])[] }> {
  const reports: (readonly string[])[] = [];
  const discovery = new DnsDiscovery({ name, port: 3000, interval: INTERVAL, server }, (addresses) => reports.push(addresses));
  t.after(() => discovery.stop());
  await discovery.start();
  return { discovery, reports };
}

/** waitForLookups waits until the server has received `count` more queries. */
async function waitForLookups(dnsServer: DnsServer, count: number): Promise<void> {
  const target = dnsServer.queries + count;
  await waitFor(`${count} more DNS queries`, () => dnsServer.queries >= target, count * (INTERVAL + 1000));
}

/** expectReport waits for report number `index`: it must come within interval + 1 s and hold the expected addresses. */
async function expectReport(reports: (readonly string[])[], index: number, expected: string[]): Promise<void> {
  const { ms } = await waitFor(`report ${index} (${expected.join(', ')})`, () => reports.length > index, INTERVAL + 1000);
  assert.deepEqual(reports[index], expected);
  assert.ok(ms <= INTERVAL + 1000, `reported after ${Math.round(ms)} ms`);
}

describe('DNS discovery against a DNS server on 127.0.0.1', { concurrency: true }, () => {
  it('reports the first lookup before start() resolves, and added and removed A records within interval + 1 s', async (t) => {
    const dnsServer = await startDnsServer(t);
    dnsServer.setRecords('changes.backend', ['127.0.0.10', '127.0.0.2', '127.0.0.2']);
    const { reports } = await discover(t, 'changes.backend', dnsServer.address);
    assert.deepEqual(reports, [['127.0.0.2', '127.0.0.10']], 'sorted by address and de-duplicated');

    dnsServer.setRecords('changes.backend', ['127.0.0.2', '127.0.0.10', '127.0.0.3']);
    await expectReport(reports, 1, ['127.0.0.2', '127.0.0.3', '127.0.0.10']);

    dnsServer.setRecords('changes.backend', ['127.0.0.3']);
    await expectReport(reports, 2, ['127.0.0.3']);
  });

  it('does not report an unchanged answer again, whatever the order of the records', async (t) => {
    const dnsServer = await startDnsServer(t);
    dnsServer.setRecords('same.backend', ['127.0.0.2', '127.0.0.3']);
    const { reports } = await discover(t, 'same.backend', dnsServer.address);
    await waitForLookups(dnsServer, 2);
    dnsServer.setRecords('same.backend', ['127.0.0.3', '127.0.0.2', '127.0.0.3']);
    await waitForLookups(dnsServer, 2);
    assert.deepEqual(reports, [['127.0.0.2', '127.0.0.3']]);
  });

  for (const failure of [
    { kind: 'no answer (timeout)', name: 'silent.backend', code: 'ETIMEOUT', fail: (s: DnsServer) => s.setMode('silent'), recover: (s: DnsServer) => s.setMode('answer') },
    { kind: 'SERVFAIL', name: 'servfail.backend', code: 'ESERVFAIL', fail: (s: DnsServer) => s.setMode('servfail'), recover: (s: DnsServer) => s.setMode('answer') },
    { kind: 'NXDOMAIN', name: 'nxdomain.backend', code: 'ENOTFOUND', fail: (s: DnsServer) => s.setRecords('nxdomain.backend', []), recover: () => {} },
  ]) {
    it(`keeps the last set when a lookup fails with ${failure.kind}, logs once per streak, and reports the new set on recovery`, async (t) => {
      const dnsServer = await startDnsServer(t);
      dnsServer.setRecords(failure.name, ['127.0.0.2', '127.0.0.3', '127.0.0.4']);
      const { reports } = await discover(t, failure.name, dnsServer.address);
      const recovered = [['127.0.0.2', '127.0.0.5'], ['127.0.0.6']];

      for (const streak of [1, 2]) {
        failure.fail(dnsServer);
        await waitForLookups(dnsServer, 3);
        await sleep(300); // lets the last lookup time out
        assert.equal(reports.length, streak, 'a failed lookup reports nothing');
        const failed = linesAbout(failure.name).filter((line) => line.includes(' failed '));
        assert.equal(failed.length, streak, `one line per failure streak: ${linesAbout(failure.name).join(' | ')}`);
        const kept = streak === 1 ? 3 : 2;
        assert.ok(failed.at(-1)!.includes(`dns discovery: lookup of ${failure.name} failed (${failure.code}); keeping the last ${kept} addresses`), failed.at(-1));

        failure.recover(dnsServer);
        dnsServer.setRecords(failure.name, recovered[streak - 1]!);
        await expectReport(reports, streak, recovered[streak - 1]!);
        const again = linesAbout(failure.name).filter((line) => line.includes(' works again'));
        assert.equal(again.length, streak, `one line per recovery: ${linesAbout(failure.name).join(' | ')}`);
      }
    });
  }

  it('lets start() resolve when the first lookup fails, with nothing reported; the set is reported once DNS answers', async (t) => {
    const dnsServer = await startDnsServer(t);
    dnsServer.setRecords('late.backend', ['127.0.0.2']);
    dnsServer.setMode('silent');
    const { reports } = await discover(t, 'late.backend', dnsServer.address);
    assert.deepEqual(reports, []);
    assert.deepEqual(linesAbout('late.backend').map((line) => line.replace(/^\S+ /, '')), ['warn dns discovery: lookup of late.backend failed (ETIMEOUT); no addresses known yet']);

    dnsServer.setMode('answer');
    await expectReport(reports, 0, ['127.0.0.2']);
  });

  it('treats a refused query (nothing listening on the DNS port) as a failure', async (t) => {
    const probe = createSocket('udp4');
    probe.bind(0, '127.0.0.1');
    await once(probe, 'listening');
    const freedPort = probe.address().port;
    probe.close();

    const { reports } = await discover(t, 'refused.backend', `127.0.0.1:${freedPort}`);
    assert.deepEqual(reports, []);
    assert.deepEqual(linesAbout('refused.backend').map((line) => line.replace(/^\S+ /, '')), ['warn dns discovery: lookup of refused.backend failed (ECONNREFUSED); no addresses known yet']);
  });

  it('stops the lookups on stop(), also while one is in flight', async (t) => {
    const dnsServer = await startDnsServer(t);
    dnsServer.setRecords('stop.backend', ['127.0.0.2']);
    const { discovery, reports } = await discover(t, 'stop.backend', dnsServer.address);
    await waitForLookups(dnsServer, 2);

    dnsServer.setMode('silent');
    dnsServer.setRecords('stop.backend', ['127.0.0.3']);
    await waitForLookups(dnsServer, 1);
    discovery.stop(); // the lookup just sent is still waiting for its answer
    const queriesAtStop = dnsServer.queries;
    dnsServer.setMode('answer');
    await sleep(3 * INTERVAL);
    assert.equal(dnsServer.queries, queriesAtStop, 'no query after stop()');
    assert.deepEqual(reports, [['127.0.0.2']]);
    assert.deepEqual(linesAbout('stop.backend'), [], 'the cancelled lookup is not logged as a failure');
  });
});
