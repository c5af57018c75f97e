import type { TLSSocket } from 'node:tls';
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { randomUUID } from 'node:crypto';

/** Hop-by-hop headers (RFC 9110 section 7.6.1): they concern one connection and are never forwarded. */
const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'upgrade'] as const;

/**
 * stripHopByHop removes hop-by-hop headers, and every header the Connection header names.
 * transfer-encoding is left to Node, which re-frames bodies on each side.
 * Returns true when the peer asked to close the connection.
 */
export function stripHopByHop(headers: IncomingHttpHeaders): boolean {
  const connection = headers.connection;
  let close = false;
  if (connection !== undefined) {
    for (const token of connection.split(',')) {
      const name = token.trim().toLowerCase();
      if (name === 'close') close = true;
      else if (name !== 'keep-alive' && name !== '') delete headers[name];
    }
  }
  for (const name of HOP_BY_HOP) if (headers[name] !== undefined) delete headers[name];
  return close;
}

/**
 * addForwardingHeaders appends the client address to X-Forwarded-For, sets X-Forwarded-Proto
 * and X-Forwarded-Host, and keeps the client's X-Request-Id or creates one. Returns the request id.
 */
export function addForwardingHeaders(req: IncomingMessage): string {
  const headers = req.headers;
  const address = req.socket.remoteAddress ?? '';
  const forwardedFor = headers['x-forwarded-for'];
  headers['x-forwarded-for'] = forwardedFor ? `${forwardedFor}, ${address}` : address;
  headers['x-forwarded-proto'] = (req.socket as Partial<TLSSocket>).encrypted ? 'https' : 'http';
  headers['x-forwarded-host'] = headers.host ?? '';
  let requestId = headers['x-request-id'];
  if (typeof requestId !== 'string' || requestId === '') {
    requestId = randomUUID();
    headers['x-request-id'] = requestId;
  }
  return requestId;
}

/** hasBody: the request carries a body (a non-zero Content-Length or any Transfer-Encoding). */
export function hasBody(headers: IncomingHttpHeaders): boolean {
  const length = headers['content-length'];
  return (length !== undefined && length !== '0') || headers['transfer-encoding'] !== undefined;
}

/**
 * prepareRequest rewrites a client request's headers for the backend, once for all its tries:
 * hop-by-hop headers out, forwarding headers in, and no Expect (Node has answered the client's
 * 100-continue already, so the backend gets the body straight away).
 */
export function prepareRequest(req: IncomingMessage): { closeConnection: boolean; requestId: string } {
  const closeConnection = stripHopByHop(req.headers);
  delete req.headers.expect;
  return { closeConnection, requestId: addForwardingHeaders(req) };
}
