import type { Socket } from 'node:net';
import type { Server as TlsServer, TLSSocket } from 'node:tls';
import { rawAnswer } from '../errors.js';
import type { TlsMaterial } from '../tls-material.js';
import { log } from '@lab/common/log';

const PLAIN_HTTP_ANSWER = rawAnswer('LB_ERR_TLS_REQUIRED');

/**
 * watchTls: a TLS listener's handshake errors, and certificate swaps. A plain HTTP request on the
 * TLS port gets a 400 in plain HTTP, as nginx answers, rather than a bare close; the certificate
 * of the latest snapshot serves every new handshake, and open connections keep theirs.
 */
export function watchTls(server: TlsServer, first: TlsMaterial['server']): (next: TlsMaterial['server']) => void {
  server.on('tlsClientError', (error: NodeJS.ErrnoException, socket: TLSSocket) => {
    // The TCP socket under the TLS one: OpenSSL has read an HTTP request line from it, not a ClientHello.
    const raw = (socket as TLSSocket & { _parent?: Socket })._parent;
    if (error.code === 'ERR_SSL_HTTP_REQUEST' && raw?.writable) raw.end(PLAIN_HTTP_ANSWER);
    else socket.destroy();
  });
  let current = first;
  return (next) => {
    if (!next || (next.cert === current?.cert && next.key === current?.key)) return;
    try {
      server.setSecureContext({ cert: next.cert, key: next.key });
      current = next;
    } catch (error) {
      // The primary checked the pair before the reload; should it still fail, the certificate in use stays.
      log.error('new TLS certificate not taken; the current one stays', { error: (error as Error).message });
    }
  };
}
