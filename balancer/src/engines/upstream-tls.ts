import { isIP } from 'node:net';
import type { ServerOptions } from 'http-proxy-3';
import type { UpstreamTls } from './engine.js';

/** What both engines hand to tls.connect for an https:// backend. */
export interface TlsConnectOptions {
  ca?: string | Buffer;
  /** '' for an IP address: no SNI is sent, and the certificate is checked for the address */
  servername: string;
  rejectUnauthorized: boolean;
}

/**
 * tlsConnectOptions: verify the backend for its own name. Node's https.Agent and undici both take
 * the name to verify (and send as SNI) from the request's Host header by default, and a proxy
 * forwards the client's Host: every client name would then be checked against the backend's
 * certificate, and undici would reconnect whenever the Host changed.
 */
export function tlsConnectOptions(url: URL, tls: UpstreamTls | undefined): TlsConnectOptions {
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const servername = tls?.servername ?? (isIP(host) === 0 ? host : '');
  return { ...(tls?.ca !== undefined ? { ca: tls.ca } : {}), servername, rejectUnauthorized: tls?.rejectUnauthorized ?? true };
}

/**
 * upgradeTarget: the options of http-proxy-3's proxy.ws that take an Upgrade request to the
 * backend with the checks the engines make. It connects without an agent: http-proxy-3 starts
 * each request's options from `ssl`, and sets ca and rejectUnauthorized (from `secure`) itself.
 */
export function upgradeTarget(url: string, tls: UpstreamTls | undefined): ServerOptions {
  const target = new URL(url);
  if (target.protocol !== 'https:') return { target };
  const { ca, servername, rejectUnauthorized } = tlsConnectOptions(target, tls);
  // A PEM is text: as a string it suits http-proxy-3's types, which leave Buffers out.
  return { target, ssl: { servername }, ...(ca !== undefined ? { ca: ca.toString() } : {}), secure: rejectUnauthorized };
}
