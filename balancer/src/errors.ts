import type { ServerResponse } from 'node:http';

/**
 * Every error the balancer answers with, by stable code. The README's error table lists
 * exactly these (a test checks both directions).
 */
export const lbErrors = {
  LB_ERR_NO_BACKEND: { status: 503, message: 'no backend is available to take the request' },
  LB_ERR_UPSTREAM_UNAVAILABLE: { status: 503, message: 'no backend accepted the connection (refused or connect timeout) within the retry attempts' },
  LB_ERR_UPSTREAM_RESET: { status: 502, message: 'the backend closed the connection before sending a response' },
  LB_ERR_UPSTREAM_ERROR: { status: 502, message: 'the backend failed in a way the balancer could not recover from' },
  LB_ERR_UPSTREAM_TIMEOUT: { status: 504, message: 'no backend sent response headers within timeouts.perTry' },
  LB_ERR_REQUEST_TIMEOUT: { status: 504, message: 'the request did not complete within timeouts.request' },
} as const satisfies Record<string, { status: number; message: string }>;

export type LbErrorCode = keyof typeof lbErrors;

export function errorBody(code: LbErrorCode, detail?: string): string {
  const message = detail ? `${lbErrors[code].message}: ${detail}` : lbErrors[code].message;
  return JSON.stringify({ error: { code, message } });
}

/** sendError answers with the code's status and JSON body, unless the response has already started. */
export function sendError(res: ServerResponse, code: LbErrorCode, detail?: string): boolean {
  if (res.headersSent || res.destroyed) return false;
  const body = errorBody(code, detail);
  res.writeHead(lbErrors[code].status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
  });
  res.end(body);
  return true;
}
