import type { TlsConnectOptions } from '../engines/upstream-tls.js';
import { connectWithin } from './connect.js';

export interface TcpCheckResult {
  readonly passed: boolean;
  /** 'connected', the error code ('ECONNREFUSED'...), or 'timeout after N ms' */
  readonly detail: string;
  /** it failed by its timeout */
  readonly timedOut: boolean;
}

/**
 * tcpCheck is the `healthCheck: { type: tcp }` check: a connect within timeoutMs passes, and the
 * connection is closed at once (a FIN, not a reset, so that backends do not log an error for
 * every check). With tls (a tls:// backend), the TLS handshake must succeed too. It never rejects.
 */
export function tcpCheck(host: string, port: number, timeoutMs: number, tls?: TlsConnectOptions): Promise<TcpCheckResult> {
  return new Promise((resolve) => {
    connectWithin(host, port, timeoutMs, {
      connected(socket) {
        socket.destroy();
        resolve({ passed: true, detail: tls ? 'TLS handshake done' : 'connected', timedOut: false });
      },
      failed(reason, detail) {
        resolve({ passed: false, detail, timedOut: reason === 'timeout' });
      },
    }, tls);
  });
}
