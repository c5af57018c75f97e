import { connect, type Socket } from 'node:net';

export type ConnectFailureReason = 'refused' | 'timeout' | 'error';

/** What a connect attempt reports: exactly one of the two, unless it was cancelled first. */
export interface ConnectOutcome {
  connected(socket: Socket): void;
  /** detail: the error code (ECONNREFUSED, EHOSTUNREACH, ENOTFOUND...) or "timeout after N ms" */
  failed(reason: ConnectFailureReason, detail: string): void;
}

export interface PendingConnect {
  /** cancel destroys the socket being connected; the outcome hears nothing more */
  cancel(): void;
}

/**
 * connectWithin opens a TCP connection (half-open allowed, Nagle off: a relay forwards what it
 * gets at once) and gives up after timeoutMs, name resolution included; 0 means no limit but
 * the kernel's. The socket handed to connected() has no error listener of ours left on it.
 */
export function connectWithin(host: string, port: number, timeoutMs: number, outcome: ConnectOutcome): PendingConnect {
  let socket: Socket;
  try {
    socket = connect({ host, port, allowHalfOpen: true, noDelay: true });
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
  socket.once('connect', () => {
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

function failureReason(error: NodeJS.ErrnoException): ConnectFailureReason {
  if (error.code === 'ECONNREFUSED') return 'refused';
  if (error.code === 'ETIMEDOUT') return 'timeout';
  return 'error';
}
