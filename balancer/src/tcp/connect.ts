import { connect, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import type { TlsConnectOptions } from '../engines/upstream-tls.js';

export type ConnectFailureReason = 'refused' | 'timeout' | 'error';

/** What a connect attempt reports: exactly one of the two, unless it was cancelled first. */
export interface ConnectOutcome {
  connected(socket: Socket): void;
  /** detail: the error code (ECONNREFUSED, EHOSTUNREACH, ENOTFOUND, or a TLS one such as UNABLE_TO_VERIFY_LEAF_SIGNATURE) or "timeout after N ms" */
  failed(reason: ConnectFailureReason, detail: string): void;
}

export interface PendingConnect {
  /** cancel destroys the socket being connected; the outcome hears nothing more */
  cancel(): void;
}

/**
 * connectWithin opens a TCP connection (half-open allowed, Nagle off: a relay forwards what it
 * gets at once) and gives up after timeoutMs, name resolution included; 0 means no limit but
 * the kernel's. With tls (a tls:// backend), it is connected once the TLS handshake has
 * succeeded, and a handshake that fails (a certificate that does not verify...) is a failed
 * connect, within the same timeout. The socket handed to connected() has no error listener of
 * ours left on it.
 */
export function connectWithin(host: string, port: number, timeoutMs: number, outcome: ConnectOutcome, tls?: TlsConnectOptions): PendingConnect {
  let socket: Socket;
  try {
    socket = tls ? connectTls(host, port, tls) : connect({ host, port, allowHalfOpen: true, noDelay: true });
  } catch (error) {
    // A bad port throws at once; the outcome is reported later, like every other.
    let cancelled = false;
    process.nextTick(() => {
      if (!cancelled) outcome.failed('error', (error as NodeJS.ErrnoException).code ?? String(error));
    });
    return {
      cancel() {
        cancelled = true;
      },
    };
  }
  let settled = false;
  const settle = (): boolean => {
    if (settled) return false;
    settled = true;
    clearTimeout(timer);
    return true;
  };
  const fail = (reason: ConnectFailureReason, detail: string): void => {
    if (!settle()) return;
    socket.destroy();
    outcome.failed(reason, detail);
  };
  const onError = (error: NodeJS.ErrnoException): void => fail(failureReason(error), error.code ?? error.message);
  // The listener stays after a failure: a destroyed socket may still report a late error.
  socket.on('error', onError);
  socket.once(tls ? 'secureConnect' : 'connect', () => {
    if (!settle()) return;
    socket.off('error', onError);
    outcome.connected(socket);
  });
  const timer = timeoutMs > 0 ? setTimeout(() => fail('timeout', `timeout after ${timeoutMs} ms`), timeoutMs) : undefined;
  return {
    cancel() {
      if (settle()) socket.destroy();
    },
  };
}

/** connectTls: tls.connect passes allowHalfOpen on to its TLSSocket, though Node's types leave it out. */
function connectTls(host: string, port: number, tls: TlsConnectOptions): Socket {
  const options: ConnectionOptions & { allowHalfOpen: boolean } = { host, port, ...tls, allowHalfOpen: true };
  return tlsConnect(options).setNoDelay(true);
}

function failureReason(error: NodeJS.ErrnoException): ConnectFailureReason {
  if (error.code === 'ECONNREFUSED') return 'refused';
  if (error.code === 'ETIMEDOUT') return 'timeout';
  return 'error';
}
