import type { LbErrorCode } from '../errors.js';

/**
 * How a try failed: connect (nothing reached the backend: refused, unreachable, connect
 * timeout), timeout (no response head within timeouts.perTry), reset (the connection closed
 * before any response byte), other. request-timeout is the pipeline's own: timeouts.request ran out.
 */
export type FailureKind = 'connect' | 'timeout' | 'reset' | 'other';
export type ExchangeFailure = FailureKind | 'request-timeout';

/** Error codes of both engines (Node's net and http, undici) by the kind of failure they mean. */
const KIND_OF_CODE: Readonly<Record<string, FailureKind>> = {
  ECONNREFUSED: 'connect',
  EHOSTUNREACH: 'connect',
  ENETUNREACH: 'connect',
  EHOSTDOWN: 'connect',
  ENOTFOUND: 'connect',
  EAI_AGAIN: 'connect',
  EADDRNOTAVAIL: 'connect',
  ECONNECT_TIMEOUT: 'connect', // http-proxy-3's connectTimeout
  UND_ERR_CONNECT_TIMEOUT: 'connect',
  ECONNRESET: 'reset',
  EPIPE: 'reset',
  ECONNABORTED: 'reset',
  UND_ERR_SOCKET: 'reset', // undici: "other side closed"
};

/** classifyError maps an engine's error to a failure kind; Node's "socket hang up" has no code of its own beyond ECONNRESET. */
export function classifyError(error: Error): FailureKind {
  const code = (error as NodeJS.ErrnoException).code;
  if (code !== undefined) {
    const kind = KIND_OF_CODE[code];
    if (kind) return kind;
  }
  return error.message === 'socket hang up' ? 'reset' : 'other';
}

/** The answer for each failure, when it is not retried (or no other backend is left). */
export const ANSWER_FOR: Readonly<Record<ExchangeFailure, LbErrorCode>> = {
  connect: 'LB_ERR_UPSTREAM_UNAVAILABLE',
  timeout: 'LB_ERR_UPSTREAM_TIMEOUT',
  reset: 'LB_ERR_UPSTREAM_RESET',
  other: 'LB_ERR_UPSTREAM_ERROR',
  'request-timeout': 'LB_ERR_REQUEST_TIMEOUT',
};
