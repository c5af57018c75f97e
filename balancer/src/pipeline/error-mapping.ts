import type { LbErrorCode } from '../errors.js';

/**
 * How a try failed: connect (nothing reached the backend: refused, unreachable, connect
 * timeout), tls (the TLS handshake with an https:// backend failed: its certificate did not
 * verify, or it does not speak TLS; nothing of the request was sent), timeout (no response head
 * within timeouts.perTry), reset (the connection closed before any response byte), other.
 * request-timeout is the pipeline's own: timeouts.request ran out.
 */
export type FailureKind = 'connect' | 'tls' | 'timeout' | 'reset' | 'other';
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
  EPROTO: 'tls', // Node's https for a backend that answers in plain HTTP ("wrong version number")
  ERR_TLS_CERT_ALTNAME_INVALID: 'tls', // the certificate is not for the backend's name
};

/** Why OpenSSL did not verify a certificate: the codes Node gives them (X509_V_ERR_* without the prefix). */
const CERTIFICATE_CODES = new Set([
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_CRL',
  'UNABLE_TO_DECRYPT_CERT_SIGNATURE',
  'UNABLE_TO_DECRYPT_CRL_SIGNATURE',
  'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY',
  'CERT_SIGNATURE_FAILURE',
  'CRL_SIGNATURE_FAILURE',
  'CERT_NOT_YET_VALID',
  'CERT_HAS_EXPIRED',
  'CRL_NOT_YET_VALID',
  'CRL_HAS_EXPIRED',
  'ERROR_IN_CERT_NOT_BEFORE_FIELD',
  'ERROR_IN_CERT_NOT_AFTER_FIELD',
  'ERROR_IN_CRL_LAST_UPDATE_FIELD',
  'ERROR_IN_CRL_NEXT_UPDATE_FIELD',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'CERT_CHAIN_TOO_LONG',
  'CERT_REVOKED',
  'INVALID_CA',
  'PATH_LENGTH_EXCEEDED',
  'INVALID_PURPOSE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'HOSTNAME_MISMATCH',
]);

/** timedOut: the failure is one of a timeout (per try or connect), which the balancer's own stall can cause. */
export function timedOut(kind: FailureKind, cause: Error): boolean {
  const code = (cause as NodeJS.ErrnoException).code;
  return kind === 'timeout' || code === 'ECONNECT_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT';
}

/** classifyError maps an engine's error to a failure kind; Node's "socket hang up" has no code of its own beyond ECONNRESET. */
export function classifyError(error: Error): FailureKind {
  const code = (error as NodeJS.ErrnoException).code;
  if (code !== undefined) {
    const kind = KIND_OF_CODE[code];
    if (kind) return kind;
    // ERR_SSL_*: OpenSSL refused the handshake (a TLS alert from the backend, a protocol mismatch).
    if (code.startsWith('ERR_SSL_') || CERTIFICATE_CODES.has(code)) return 'tls';
  }
  return error.message === 'socket hang up' ? 'reset' : 'other';
}

/**
 * failureDetail: what the answer and the passive health log say about a failed try: the backend
 * and the error code; for a TLS failure, why in words too, as the code alone rarely says enough.
 */
export function failureDetail(backendId: string, kind: FailureKind, cause: Error): string {
  const code = (cause as NodeJS.ErrnoException).code;
  if (kind !== 'tls') return `${backendId}: ${code ?? cause.message}`;
  return `${backendId}: ${tlsReason(cause)}${code !== undefined ? ` (${code})` : ''}`;
}

/** tlsReason: which names the certificate has, OpenSSL's reason ("wrong version number"), or Node's message without its advice to the user of a CLI. */
function tlsReason(cause: Error): string {
  const { reason, host, cert } = cause as { reason?: unknown; host?: unknown; cert?: { subjectaltname?: unknown } };
  if ((cause as NodeJS.ErrnoException).code === 'ERR_TLS_CERT_ALTNAME_INVALID' && typeof host === 'string') {
    return `the certificate is for ${typeof cert?.subjectaltname === 'string' ? cert.subjectaltname : 'other names'}, not ${host}`;
  }
  if (typeof reason === 'string' && reason !== '') return reason;
  // EPROTO carries only OpenSSL's error line: "...:error:0A00010B:SSL routines:<function>:<reason>:<file>:<line>:"
  const openssl = /:SSL routines:[^:]*:([^:]+):/.exec(cause.message);
  if (openssl) return openssl[1]!;
  return cause.message.split('; if the root CA is installed locally')[0]!;
}

/** The answer for each failure, when it is not retried (or no other backend is left). */
export const ANSWER_FOR: Readonly<Record<ExchangeFailure, LbErrorCode>> = {
  connect: 'LB_ERR_UPSTREAM_UNAVAILABLE',
  tls: 'LB_ERR_UPSTREAM_TLS',
  timeout: 'LB_ERR_UPSTREAM_TIMEOUT',
  reset: 'LB_ERR_UPSTREAM_RESET',
  other: 'LB_ERR_UPSTREAM_ERROR',
  'request-timeout': 'LB_ERR_REQUEST_TIMEOUT',
};
