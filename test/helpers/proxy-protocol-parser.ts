import { isIPv4, isIPv6, SocketAddress } from 'node:net';

/**
 * A PROXY protocol reader for tests, written from the spec (haproxy.org proxy-protocol.txt) and
 * independent of balancer/src/tcp/proxy-protocol.ts: addresses are decoded here and normalised by
 * Node's own inet_pton/inet_ntop (SocketAddress), so the two sides share no code.
 */

export interface ProxyEnd {
  readonly address: string;
  readonly port: number;
}

export interface ParsedProxyHeader {
  readonly version: 1 | 2;
  readonly command: 'PROXY' | 'LOCAL';
  readonly family: 'TCP4' | 'TCP6' | 'UNKNOWN';
  readonly source: ProxyEnd | undefined;
  readonly destination: ProxyEnd | undefined;
  /** bytes the header takes at the start of the data */
  readonly length: number;
}

const V2_SIGNATURE = Buffer.from('\r\n\r\n\0\r\nQUIT\n', 'latin1');
const V1_MAX_LENGTH = 107;

/** normaliseAddress: the canonical text of an IP address, for comparing two spellings. */
export function normaliseAddress(address: string): string {
  return new SocketAddress({ address, family: isIPv6(address) ? 'ipv6' : 'ipv4' }).address;
}

/** parseProxyHeader reads the header at the start of data: undefined while incomplete, throws if malformed. */
export function parseProxyHeader(data: Buffer): ParsedProxyHeader | undefined {
  const signatureSeen = data.subarray(0, V2_SIGNATURE.length);
  if (V2_SIGNATURE.subarray(0, signatureSeen.length).equals(signatureSeen)) {
    return data.length < V2_SIGNATURE.length ? undefined : parseV2(data);
  }
  return parseV1(data);
}

function parseV1(data: Buffer): ParsedProxyHeader | undefined {
  const end = data.indexOf('\r\n', 0, 'latin1');
  if (end === -1) {
    if (data.length >= V1_MAX_LENGTH) throw new Error('v1: no CRLF within 107 bytes');
    return undefined;
  }
  const length = end + 2;
  if (length > V1_MAX_LENGTH) throw new Error(`v1: header of ${length} bytes, over 107`);
  const words = data.subarray(0, end).toString('latin1').split(' ');
  if (words[0] !== 'PROXY') throw new Error(`v1: does not start with "PROXY ": ${JSON.stringify(words[0])}`);
  if (words[1] === 'UNKNOWN') return { version: 1, command: 'PROXY', family: 'UNKNOWN', source: undefined, destination: undefined, length };
  if (words.length !== 6) throw new Error(`v1: ${words.length} fields, expected 6`);
  const [, family, sourceAddress, destinationAddress, sourcePort, destinationPort] = words as [string, string, string, string, string, string];
  if (family !== 'TCP4' && family !== 'TCP6') throw new Error(`v1: unknown protocol ${family}`);
  const valid = family === 'TCP4' ? isIPv4 : isIPv6;
  for (const address of [sourceAddress, destinationAddress]) if (!valid(address)) throw new Error(`v1: ${address} is not a ${family} address`);
  return {
    version: 1,
    command: 'PROXY',
    family,
    source: { address: normaliseAddress(sourceAddress), port: v1Port(sourcePort) },
    destination: { address: normaliseAddress(destinationAddress), port: v1Port(destinationPort) },
    length,
  };
}

function v1Port(text: string): number {
  if (!/^(0|[1-9][0-9]{0,4})$/.test(text) || Number(text) > 65535) throw new Error(`v1: bad port ${JSON.stringify(text)}`);
  return Number(text);
}

function parseV2(data: Buffer): ParsedProxyHeader | undefined {
  if (data.length < 16) return undefined;
  const versionCommand = data[12]!;
  if (versionCommand >> 4 !== 2) throw new Error(`v2: version nibble ${versionCommand >> 4}`);
  const command = (versionCommand & 0x0f) === 0 ? 'LOCAL' : (versionCommand & 0x0f) === 1 ? 'PROXY' : undefined;
  if (!command) throw new Error(`v2: command ${versionCommand & 0x0f}`);
  const familyProtocol = data[13]!;
  const addressLength = data.readUInt16BE(14);
  const length = 16 + addressLength;
  if (data.length < length) return undefined;
  const block = data.subarray(16, length);
  if (familyProtocol === 0x00) return { version: 2, command, family: 'UNKNOWN', source: undefined, destination: undefined, length };
  const size = familyProtocol === 0x11 ? 4 : familyProtocol === 0x21 ? 16 : undefined;
  if (!size) throw new Error(`v2: family/protocol byte 0x${familyProtocol.toString(16)}`);
  if (addressLength < 2 * size + 4) throw new Error(`v2: address block of ${addressLength} bytes for 0x${familyProtocol.toString(16)}`);
  const text = size === 4 ? (bytes: Buffer): string => [...bytes].join('.') : v6Text;
  return {
    version: 2,
    command,
    family: size === 4 ? 'TCP4' : 'TCP6',
    source: { address: normaliseAddress(text(block.subarray(0, size))), port: block.readUInt16BE(2 * size) },
    destination: { address: normaliseAddress(text(block.subarray(size, 2 * size))), port: block.readUInt16BE(2 * size + 2) },
    length,
  };
}

/** v6Text: eight uncompressed hex groups, which normaliseAddress then compresses. */
function v6Text(bytes: Buffer): string {
  const groups: string[] = [];
  for (let offset = 0; offset < 16; offset += 2) groups.push(bytes.readUInt16BE(offset).toString(16));
  return groups.join(':');
}
