import { STATUS_CODES, type ServerResponse } from 'node:http';
import { errorBody as envelope, sendError as sendEnvelope, type ErrorBody } from '@lab/common/errors';

/**
 * Every error the balancer answers with, by stable code. The README's error table lists
 * exactly these (a test checks both directions).
 */
export const lbErrors = {
  LB_ERR_NO_BACKEND: { status: 503, message: 'no backend is available to take the request' },
  LB_ERR_UPSTREAM_UNAVAILABLE: { status: 503, message: 'no backend accepted the connection (refused or connect timeout) within the retry attempts' },
  LB_ERR_UPSTREAM_TLS: { status: 502, message: 'the TLS handshake with the backend failed' },
  LB_ERR_UPSTREAM_RESET: { status: 502, message: 'the backend closed the connection before sending a response' },
  LB_ERR_UPSTREAM_ERROR: { status: 502, message: 'the backend failed in a way the balancer could not recover from' },
  LB_ERR_UPSTREAM_TIMEOUT: { status: 504, message: 'no backend sent response headers within timeouts.perTry' },
  LB_ERR_REQUEST_TIMEOUT: { status: 504, message: 'the request did not complete within timeouts.request' },
  LB_ERR_TLS_REQUIRED: { status: 400, message: 'this port speaks TLS: send the request with https://' },
  LB_ERR_CLIENT_TIMEOUT: { status: 408, message: 'the request head did not arrive within timeouts.clientHeader' },
  LB_ERR_HEADERS_TOO_LARGE: { status: 431, message: 'the request head is larger than limits.maxHeaderBytes' },
  LB_ERR_BODY_TOO_LARGE: { status: 413, message: 'the request body is larger than limits.maxBodyBytes' },
  LB_ERR_BAD_REQUEST: { status: 400, message: 'the request is not valid HTTP/1.1' },
  LB_ERR_OVERLOADED: { status: 503, message: 'this listener has limits.maxConnections client connections open; try again later' },
} as const satisfies Record<string, { status: number; message: string }>;

export type LbErrorCode = keyof typeof lbErrors;

function messageOf(code: LbErrorCode, detail: string | undefined): string {
  return detail ? `${lbErrors[code].message}: ${detail}` : lbErrors[code].message;
}

export function errorBody(code: LbErrorCode, detail?: string): string {
  return JSON.stringify(envelope(code, messageOf(code, detail)));
}

/**
 * rawAnswer is a whole HTTP/1.1 response with the code's status and JSON body, and
 * `connection: close`: what is written straight to a socket that has no usable request (a
 * malformed or oversized head, a head that never came, a plain request on a TLS port).
 */
export function rawAnswer(code: LbErrorCode, detail?: string): string {
  const body = errorBody(code, detail);
  const { status } = lbErrors[code];
  return `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`;
}

/** sendError answers with the code's status and JSON body, unless the response has already started. */
export function sendError(res: ServerResponse, code: LbErrorCode, detail?: string): boolean {
  return sendEnvelope(res, lbErrors[code].status, code, messageOf(code, detail));
}

/** Errors of the admin API, by stable code; bodies are {"error": {"code", "message", "problems"?}}. */
export const adminErrors = {
  ADMIN_ERR_UNAUTHORIZED: { status: 401, message: 'this call needs Authorization: Bearer <admin.token>' },
  ADMIN_ERR_BAD_REQUEST: { status: 400, message: 'the request body is not valid JSON (or YAML for PUT /config)' },
  ADMIN_ERR_INVALID: { status: 400, message: 'the request was refused; nothing changed' },
  ADMIN_ERR_NOT_FOUND: { status: 404, message: 'no such backend' },
  ADMIN_ERR_CONFLICT: { status: 409, message: 'a backend with this id already exists' },
  ADMIN_ERR_UPGRADE_FAILED: { status: 500, message: 'the new workers did not start; the running ones keep serving' },
} as const satisfies Record<string, { status: number; message: string }>;

export type AdminErrorCode = keyof typeof adminErrors;

export interface Problem {
  path: string;
  message: string;
  line?: number;
  column?: number;
}

/** AdminError carries an admin API failure with its code and, for refused input, every problem found. */
export class AdminError extends Error {
  constructor(
    readonly code: AdminErrorCode,
    message?: string,
    readonly problems: readonly Problem[] = [],
  ) {
    super(message ?? adminErrors[code].message);
    this.name = 'AdminError';
  }

  get status(): number {
    return adminErrors[this.code].status;
  }

  toJSON(): ErrorBody {
    return envelope(this.code, this.message, this.problems.length > 0 ? { problems: this.problems } : {});
  }
}
