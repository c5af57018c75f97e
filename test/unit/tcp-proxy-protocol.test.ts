import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';
import { proxyHeader, type ProxyProtocolVersion } from '../../balancer/src/tcp/proxy-protocol.js';
import { relay, relayServerOptions, type RelayStats } from '../../balancer/src/tcp/relay.js';
import { normaliseAddress, parseProxyHeader, type ParsedProxyHeader } from '../helpers/proxy-protocol-parser.js';

const versions: ProxyProtocolVersion[] = ['v1', 'v2'];

function parsed(header: Buffer): ParsedProxyHeader {
  const result = parseProxyHeader(header);
  assert.ok(result, 'a complete header');
  assert.equal(result.length, header.length, 'the header is all of the buffer');
  return result;
}

test('proxy protocol v1: the exact lines of the spec for TCP4, TCP6 and UNKNOWN', () => {
  assert.equal(
    proxyHeader('v1', { address: '192.168.0.1', port: 56324 }, { address: '192.168.0.11', port: 443 }).toString('latin1'),
    'PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n',
  );
  assert.equal(
    proxyHeader('v1', { address: '2001:db8::1', port: 1 }, { address: '2001:DB8:0:0:0:0:0:2', port: 65535 }).toString('latin1'),
    'PROXY TCP6 2001:db8::1 2001:db8::2 1 65535\r\n',
  );
  assert.equal(
    proxyHeader('v1', { address: '1:0:0:2:0:0:0:3', port: 1 }, { address: '0:0:1:0:0:0:0:0', port: 2 }).toString('latin1'),
    'PROXY TCP6 1:0:0:2::3 0:0:1:: 1 2\r\n',
    'RFC 5952: the longest run of zero groups is the one compressed',
  );
  assert.equal(proxyHeader('v1', { address: undefined, port: undefined }, { address: '127.0.0.1', port: 80 }).toString('latin1'), 'PROXY UNKNOWN\r\n');
  assert.equal(proxyHeader('v1', { address: 'not-an-ip', port: 1 }, { address: '127.0.0.1', port: 80 }).toString('latin1'), 'PROXY UNKNOWN\r\n');
});

test('proxy protocol v2: signature, version/command 0x21, family 0x11 or 0x21, length, addresses, ports', () => {
  const v4 = proxyHeader('v2', { address: '10.1.2.3', port: 0x1234 }, { address: '10.4.5.6', port: 443 });
  assert.deepEqual(
    [...v4],
    [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, 0x21, 0x11, 0, 12, 10, 1, 2, 3, 10, 4, 5, 6, 0x12, 0x34, 0x01, 0xbb],
  );
  const v6 = proxyHeader('v2', { address: 'fe80::1%eth0', port: 2 }, { address: '::', port: 3 });
  assert.equal(v6[13], 0x21);
  assert.equal(v6.readUInt16BE(14), 36);
  assert.deepEqual([...v6.subarray(16, 32)], [0xfe, 0x80, ...new Array(13).fill(0), 1], 'the zone id is not part of the address');
  const unknown = proxyHeader('v2', { address: '127.0.0.1', port: 1 }, { address: undefined, port: undefined });
  assert.deepEqual([...unknown.subarray(12)], [0x21, 0x00, 0, 0], 'AF_UNSPEC with no address block');
});

const cases: { name: string; source: [string, number]; destination: [string, number]; family: 'TCP4' | 'TCP6'; expected?: [string, string] }[] = [
  { name: 'IPv4', source: ['203.0.113.7', 51234], destination: ['198.51.100.1', 8081], family: 'TCP4' },
  { name: 'IPv6', source: ['2001:db8:85a3::8a2e:370:7334', 40000], destination: ['2001:db8::1', 443], family: 'TCP6' },
  { name: 'IPv6 with an embedded dotted tail', source: ['64:ff9b::192.0.2.33', 7], destination: ['::1', 8], family: 'TCP6' },
  { name: 'IPv6, longest zero run compressed', source: ['1:0:0:2:0:0:0:3', 9], destination: ['0:0:1::', 10], family: 'TCP6' },
  { name: 'IPv4-mapped IPv6 sent as IPv4', source: ['::ffff:127.0.0.1', 5000], destination: ['::ffff:127.0.0.2', 80], family: 'TCP4', expected: ['127.0.0.1', '127.0.0.2'] },
  { name: 'IPv4 and IPv6 together: both as IPv6', source: ['192.0.2.1', 1], destination: ['2001:db8::2', 2], family: 'TCP6', expected: ['::ffff:192.0.2.1', '2001:db8::2'] },
];

for (const version of versions) {
  for (const { name, source, destination, family, expected } of cases) {
    test(`proxy protocol ${version}, ${name}: an independent parser reads the client and listener back`, () => {
      const header = parsed(proxyHeader(version, { address: source[0], port: source[1] }, { address: destination[0], port: destination[1] }));
      assert.equal(header.version, version === 'v1' ? 1 : 2);
      assert.equal(header.command, 'PROXY');
      assert.equal(header.family, family);
      assert.deepEqual(header.source, { address: normaliseAddress(expected?.[0] ?? source[0]), port: source[1] });
      assert.deepEqual(header.destination, { address: normaliseAddress(expected?.[1] ?? destination[0]), port: destination[1] });
    });
  }
}

test('proxy protocol v1: the longest header fits in the 107 bytes the spec allows', () => {
  const longest = 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe';
  const header = proxyHeader('v1', { address: longest, port: 65535 }, { address: longest, port: 65535 });
  assert.ok(header.length <= 107, `${header.length} bytes`);
  assert.equal(parsed(header).source?.address, longest);
});

// Through a real relay: the backend reads the header before anything the client sent.

async function listen(server: Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

for (const version of versions) {
  test(`proxy protocol ${version} through relay(): the backend learns the client's address and port, then gets its bytes`, async (t) => {
    const backend = createServer({ allowHalfOpen: true });
    const received = new Promise<{ header: ParsedProxyHeader; rest: Buffer }>((resolve, reject) => {
      backend.once('connection', (socket: Socket) => {
        let data = Buffer.alloc(0);
        socket.on('data', (chunk: Buffer) => (data = Buffer.concat([data, chunk])));
        socket.on('end', () => {
          try {
            const header = parseProxyHeader(data);
            assert.ok(header, 'a complete header');
            resolve({ header, rest: data.subarray(header.length) });
          } catch (error) {
            reject(error as Error);
          }
          socket.end();
        });
      });
    });
    const backendPort = await listen(backend);
    let closed: (stats: RelayStats) => void;
    const stats = new Promise<RelayStats>((resolve) => (closed = resolve));
    const front = createServer(relayServerOptions, (socket) => {
      relay(socket, {
        pick: (tried) => (tried.size === 0 ? { id: 'b', host: '127.0.0.1', port: backendPort } : undefined),
        connectTimeoutMs: 1000,
        attempts: 0,
        idleTimeoutMs: 0,
        proxyProtocol: version,
        observer: { connected() {}, connectFailed() {}, noBackend() {}, closed: (_id, s) => closed(s) },
      });
    });
    const frontPort = await listen(front);
    t.after(() => {
      backend.close();
      front.close();
    });

    const client = connect({ host: '127.0.0.1', port: frontPort });
    await once(client, 'connect');
    client.end('first bytes');
    client.resume();
    const { header, rest } = await received;
    assert.equal(header.version, version === 'v1' ? 1 : 2);
    assert.equal(header.family, 'TCP4');
    assert.deepEqual(header.source, { address: client.localAddress, port: client.localPort });
    assert.deepEqual(header.destination, { address: '127.0.0.1', port: frontPort });
    assert.equal(rest.toString(), 'first bytes');
    assert.equal((await stats).bytesIn, 'first bytes'.length, 'bytesIn does not count the header');
  });
}
