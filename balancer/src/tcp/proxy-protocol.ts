import { isIPv4, isIPv6 } from 'node:net';

export const proxyProtocolSettings = ['off', 'v1', 'v2'] as const;
export type ProxyProtocolSetting = (typeof proxyProtocolSettings)[number];
export type ProxyProtocolVersion = Exclude<ProxyProtocolSetting, 'off'>;

/** An end of a TCP connection as a socket reports it; undefined once the socket is gone. */
export interface Endpoint {
  readonly address: string | undefined;
  readonly port: number | undefined;
}

/** The v2 signature: "\r\n\r\n\0\r\nQUIT\n". */
const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
/** version 2 in the high nibble, command PROXY in the low one */
const V2_PROXY_COMMAND = 0x21;
const V2_UNSPEC = 0x00;
const V2_TCP_OVER_IPV4 = 0x11;
const V2_TCP_OVER_IPV6 = 0x21;

/**
 * proxyHeader is the HAProxy PROXY protocol header (version 1 text or version 2 binary) that
 * tells a backend who the client is: source is the client, destination the listener address it
 * connected to. An IPv4-mapped IPv6 address (::ffff:a.b.c.d, as a dual-stack listener reports
 * IPv4 clients) is sent as IPv4. An end that is not a valid address and port is sent as UNKNOWN
 * (v1) or AF_UNSPEC (v2), which the spec tells the receiver to treat as a local connection.
 */
export function proxyHeader(version: ProxyProtocolVersion, source: Endpoint, destination: Endpoint): Buffer {
  const ends = addressPair(source, destination);
  return version === 'v1' ? v1Header(ends) : v2Header(ends);
}

interface AddressPair {
  readonly family: 4 | 6;
  readonly source: Buffer;
  readonly destination: Buffer;
  readonly sourcePort: number;
  readonly destinationPort: number;
}

function v1Header(ends: AddressPair | undefined): Buffer {
  if (!ends) return Buffer.from('PROXY UNKNOWN\r\n', 'latin1');
  const format = ends.family === 4 ? formatIPv4 : formatIPv6;
  const line = `PROXY TCP${ends.family} ${format(ends.source)} ${format(ends.destination)} ${ends.sourcePort} ${ends.destinationPort}\r\n`;
  return Buffer.from(line, 'latin1');
}

function v2Header(ends: AddressPair | undefined): Buffer {
  const addressLength = ends ? 2 * ends.source.length + 4 : 0;
  const header = Buffer.alloc(V2_SIGNATURE.length + 4 + addressLength);
  V2_SIGNATURE.copy(header, 0);
  let offset = V2_SIGNATURE.length;
  header[offset++] = V2_PROXY_COMMAND;
  header[offset++] = !ends ? V2_UNSPEC : ends.family === 4 ? V2_TCP_OVER_IPV4 : V2_TCP_OVER_IPV6;
  offset = header.writeUInt16BE(addressLength, offset);
  if (!ends) return header;
  offset += ends.source.copy(header, offset);
  offset += ends.destination.copy(header, offset);
  offset = header.writeUInt16BE(ends.sourcePort, offset);
  header.writeUInt16BE(ends.destinationPort, offset);
  return header;
}

/** addressPair: both ends in one family (IPv4 when both are, unmapped), or undefined if either is unknown. */
function addressPair(source: Endpoint, destination: Endpoint): AddressPair | undefined {
  const sourceBytes = addressBytes(source.address);
  const destinationBytes = addressBytes(destination.address);
  if (!sourceBytes || !destinationBytes || !isPort(source.port) || !isPort(destination.port)) return undefined;
  const both4 = sourceBytes.length === 4 && destinationBytes.length === 4;
  return {
    family: both4 ? 4 : 6,
    source: both4 ? sourceBytes : asIPv6(sourceBytes),
    destination: both4 ? destinationBytes : asIPv6(destinationBytes),
    sourcePort: source.port,
    destinationPort: destination.port,
  };
}

function isPort(port: number | undefined): port is number {
  return port !== undefined && Number.isInteger(port) && port >= 0 && port <= 0xffff;
}

/** addressBytes: 4 bytes for IPv4 and IPv4-mapped IPv6, 16 for other IPv6, undefined if not an address. */
function addressBytes(address: string | undefined): Buffer | undefined {
  if (address === undefined) return undefined;
  if (isIPv4(address)) return ipv4Bytes(address);
  if (!isIPv6(address)) return undefined;
  const bytes = ipv6Bytes(address);
  return isIPv4Mapped(bytes) ? bytes.subarray(12) : bytes;
}

function ipv4Bytes(address: string): Buffer {
  return Buffer.from(address.split('.').map(Number));
}

/** ipv6Bytes parses an address that isIPv6 accepted: groups, one "::", an optional dotted IPv4 tail and zone. */
function ipv6Bytes(address: string): Buffer {
  const zoneAt = address.indexOf('%');
  const text = zoneAt === -1 ? address : address.slice(0, zoneAt);
  const gap = text.indexOf('::');
  const head = gap === -1 ? ipv6Groups(text) : ipv6Groups(text.slice(0, gap));
  const tail = gap === -1 ? [] : ipv6Groups(text.slice(gap + 2));
  const groups = [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
  const bytes = Buffer.alloc(16);
  groups.forEach((group, index) => bytes.writeUInt16BE(group, index * 2));
  return bytes;
}

function ipv6Groups(part: string): number[] {
  if (part === '') return [];
  return part.split(':').flatMap((group) => {
    if (!group.includes('.')) return [parseInt(group, 16)];
    const [a, b, c, d] = ipv4Bytes(group);
    return [(a! << 8) | b!, (c! << 8) | d!];
  });
}

function isIPv4Mapped(bytes: Buffer): boolean {
  for (let index = 0; index < 10; index++) if (bytes[index] !== 0) return false;
  return bytes[10] === 0xff && bytes[11] === 0xff;
}

function asIPv6(bytes: Buffer): Buffer {
  if (bytes.length === 16) return bytes;
  const mapped = Buffer.alloc(16);
  mapped[10] = 0xff;
  mapped[11] = 0xff;
  bytes.copy(mapped, 12);
  return mapped;
}

function formatIPv4(bytes: Buffer): string {
  return bytes.join('.');
}

/** formatIPv6 writes the RFC 5952 form: lower case, no leading zeros, the longest run of two or more zero groups as "::". */
function formatIPv6(bytes: Buffer): string {
  const groups: number[] = [];
  for (let offset = 0; offset < 16; offset += 2) groups.push(bytes.readUInt16BE(offset));
  let runStart = -1;
  let runLength = 0;
  for (let index = 0; index < 8; ) {
    if (groups[index] !== 0) {
      index++;
      continue;
    }
    let end = index;
    while (end < 8 && groups[end] === 0) end++;
    if (end - index > runLength) [runStart, runLength] = [index, end - index];
    index = end;
  }
  const hex = (part: number[]): string => part.map((group) => group.toString(16)).join(':');
  if (runLength < 2) return hex(groups);
  return `${hex(groups.slice(0, runStart))}::${hex(groups.slice(runStart + runLength))}`;
}
