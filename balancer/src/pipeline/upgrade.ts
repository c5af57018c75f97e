import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { performance } from 'node:perf_hooks';
import { createProxyServer } from 'http-proxy-3';
import type { DataPlane } from '../data-plane.js';
import { errorBody, lbErrors, type LbErrorCode } from '../errors.js';
import { addForwardingHeaders } from '../headers.js';
import { methodLabel, NO_BACKEND_LABEL } from '../metrics.js';
import { classifyError } from './error-mapping.js';
import type { Accounting } from './accounting.js';

/**
 * createUpgradeHandler proxies WebSocket (and other Upgrade) requests to one backend through
 * http-proxy-3, whichever engine serves plain requests. The upgraded connection counts as one
 * request in flight until it closes.
 */
export function createUpgradeHandler(plane: DataPlane, accounting: Accounting): (req: IncomingMessage, socket: Duplex, head: Buffer) => void {
  const proxy = createProxyServer({ xfwd: false, ws: true });
  return (req, socket, head) => {
    addForwardingHeaders(req);
    const startedAt = performance.now();
    const method = methodLabel(req.method);
    const active = plane.current;
    const clientAddress = req.socket.remoteAddress ?? '';
    const route = active.algorithm.pick(active.available, { clientAddress, hashKey: clientAddress });
    if (!route) {
      writeRawError(socket, 'LB_ERR_NO_BACKEND');
      accounting.finished(NO_BACKEND_LABEL, method, lbErrors.LB_ERR_NO_BACKEND.status, 0);
      return;
    }
    let status = 101;
    plane.begin(route);
    socket.once('close', () => {
      plane.end(route);
      accounting.finished(route.id, method, status, (performance.now() - startedAt) / 1000);
    });
    proxy.ws(req, socket, head, { target: route.entry.url }, (error: Error) => {
      const code = (error as NodeJS.ErrnoException).code ?? error.message;
      const kind = classifyError(error) === 'connect' ? 'connect' : 'other';
      plane.reports.tryFailed(route.id, kind, `${route.id}: ${code} (upgrade)`);
      const answer: LbErrorCode = kind === 'connect' ? 'LB_ERR_UPSTREAM_UNAVAILABLE' : 'LB_ERR_UPSTREAM_ERROR';
      status = lbErrors[answer].status;
      writeRawError(socket, answer, `${route.id}: ${code}`);
    });
  };
}

/** writeRawError answers an Upgrade request that could not be proxied, on the raw socket. */
function writeRawError(socket: Duplex, code: LbErrorCode, detail?: string): void {
  if (socket.destroyed || !socket.writable) return;
  const body = errorBody(code, detail);
  const status = lbErrors[code].status;
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n` +
      `content-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
}
