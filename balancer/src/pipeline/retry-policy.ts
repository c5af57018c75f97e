import type { LbErrorCode } from '../errors.js';
import { ANSWER_FOR, type ExchangeFailure } from './error-mapping.js';

/** Methods that may be sent twice without changing the outcome (RFC 9110 section 9.2.2). */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

function isIdempotent(method: string): boolean {
  return IDEMPOTENT.has(method);
}

/** none: the request has no body; streamed: its body went (or was going) upstream as it arrived, so it cannot be sent again. */
export type BodyState = 'none' | 'streamed';

export type RetryDecision = { readonly retry: true } | { readonly retry: false; readonly answer: LbErrorCode };

const RETRY: RetryDecision = Object.freeze({ retry: true });

/**
 * retryDecision: after a failed try, try another backend or answer the client. A request whose
 * body was streamed is never replayed; a connect or TLS handshake failure (nothing reached the backend) is retried
 * whatever the method; a timeout or a reset before any response byte is retried for idempotent
 * methods only; never more than retryAttempts further tries, and never after timeouts.request.
 */
export function retryDecision(failure: ExchangeFailure, method: string, body: BodyState, triesSoFar: number, retryAttempts: number): RetryDecision {
  const answer: RetryDecision = { retry: false, answer: ANSWER_FOR[failure] };
  if (failure === 'request-timeout' || failure === 'other' || body === 'streamed' || triesSoFar > retryAttempts) return answer;
  // A failed TLS handshake, like a failed connect, sent nothing of the request (HAProxy's retry-on conn-failure covers both).
  if (failure === 'connect' || failure === 'tls') return RETRY;
  return isIdempotent(method) ? RETRY : answer;
}
