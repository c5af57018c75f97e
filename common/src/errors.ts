import type { ServerResponse } from 'node:http';

/** The JSON error envelope every service answers with: {"error": {"code", "message", ...extra}}. */
export interface ErrorBody {
  error: { code: string; message: string; [key: string]: unknown };
}

export function errorBody(code: string, message: string, extra: Record<string, unknown> = {}): ErrorBody {
  return { error: { code, message, ...extra } };
}

/** sendJson answers with the status and the body as JSON, unless the response has already started. */
export function sendJson(res: ServerResponse, status: number, body: unknown): boolean {
  if (res.headersSent || res.destroyed) return false;
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
  return true;
}

/** sendError answers with the status and the error envelope, unless the response has already started. */
export function sendError(res: ServerResponse, status: number, code: string, message: string, extra?: Record<string, unknown>): boolean {
  return sendJson(res, status, errorBody(code, message, extra));
}
