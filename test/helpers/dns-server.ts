import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import type { TestContext } from 'node:test';

export type DnsServerMode = 'answer' | 'silent' | 'servfail';

export interface DnsServer {
  /** address is "127.0.0.1:PORT", ready for DnsDiscoverySettings.server. */
  address: string;
  /** setRecords sets the A records of name; an empty list removes the name (NXDOMAIN). */
  setRecords(name: string, addresses: string[]): void;
  /** setMode: 'answer' (default) answers from the records, 'silent' drops every query, 'servfail' answers rcode 2. */
  setMode(mode: DnsServerMode): void;
  /** queries counts the queries received, answered or not. */
  readonly queries: number;
}

const TYPE_A = 1;
const CLASS_IN = 1;
const RCODE_SERVFAIL = 2;
const RCODE_NXDOMAIN = 3;

/**
 * startDnsServer starts a tiny authoritative DNS server over UDP on 127.0.0.1, port 0, closed in t.after.
 * It reads the 12-byte header and the first question (RFC 1035 section 4.1) and answers A/IN queries
 * for known names with their records (answer name as the pointer 0xc00c, TTL 0); other types for a
 * known name get an empty answer (NODATA), unknown names NXDOMAIN. Malformed queries are dropped.
 */
export async function startDnsServer(t: TestContext): Promise<DnsServer> {
  const records = new Map<string, string[]>();
  let mode: DnsServerMode = 'answer';
  let queries = 0;

  const socket = createSocket('udp4');
  socket.on('message', (query, peer) => {
    queries++;
    if (mode === 'silent') return;
    const answer = respond(query, records, mode);
    if (answer !== undefined) socket.send(answer, peer.port, peer.address);
  });
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
  t.after(() => socket.close());

  return {
    address: `127.0.0.1:${socket.address().port}`,
    setRecords(name, addresses) {
      if (addresses.length === 0) records.delete(name.toLowerCase());
      else records.set(name.toLowerCase(), [...addresses]);
    },
    setMode(next) {
      mode = next;
    },
    get queries() {
      return queries;
    },
  };
}

function respond(query: Buffer, records: Map<string, string[]>, mode: DnsServerMode): Buffer | undefined {
  if (query.length < 12 || query.readUInt16BE(4) < 1) return undefined;
  const flags = query.readUInt16BE(2);
  if (flags & 0x8000) return undefined; // a response, not a query

  const labels: string[] = [];
  let offset = 12;
  for (;;) {
    if (offset >= query.length) return undefined;
    const length = query[offset]!;
    if (length === 0) break;
    if (length > 63 || offset + 1 + length > query.length) return undefined;
    labels.push(query.toString('ascii', offset + 1, offset + 1 + length));
    offset += 1 + length;
  }
  offset += 1;
  if (offset + 4 > query.length) return undefined;
  const type = query.readUInt16BE(offset);
  const klass = query.readUInt16BE(offset + 2);
  const question = query.subarray(12, offset + 4);

  const addresses = records.get(labels.join('.').toLowerCase());
  const rcode = mode === 'servfail' ? RCODE_SERVFAIL : addresses === undefined ? RCODE_NXDOMAIN : 0;
  const answers = rcode === 0 && type === TYPE_A && klass === CLASS_IN ? addresses! : [];

  const header = Buffer.alloc(12);
  header.writeUInt16BE(query.readUInt16BE(0), 0); // id
  // QR=1, opcode and RD copied from the query, AA=1, RA=0, rcode
  header.writeUInt16BE(0x8000 | (flags & 0x7800) | 0x0400 | (flags & 0x0100) | rcode, 2);
  header.writeUInt16BE(1, 4); // qdcount
  header.writeUInt16BE(answers.length, 6); // ancount

  const answerRecords = answers.map((address) => {
    const rr = Buffer.alloc(16);
    rr.writeUInt16BE(0xc00c, 0); // the name: a pointer to the question name at offset 12
    rr.writeUInt16BE(TYPE_A, 2);
    rr.writeUInt16BE(CLASS_IN, 4);
    rr.writeUInt32BE(0, 6); // TTL 0: nothing may be cached
    rr.writeUInt16BE(4, 10);
    Buffer.from(address.split('.').map(Number)).copy(rr, 12);
    return rr;
  });
  return Buffer.concat([header, question, ...answerRecords]);
}
