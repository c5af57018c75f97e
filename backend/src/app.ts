import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { ChaosState, Problem } from './chaos.js';
import { ABORTED, type BackendMetrics } from './metrics.js';
import { errorBody } from '@lab/common/errors';

/** Longest `?delay=MS` accepted (10 minutes). */
export const MAX_DELAY_MS = 600_000;
/** Largest `?size=BYTES` accepted (16 MiB). */
export const MAX_SIZE_BYTES = 16 * 1024 * 1024;

export interface TrafficOptions {
  backendId: string;
  chaos: ChaosState;
  metrics: BackendMetrics;
  /** True once shutdown began: answers then close their connection, and nothing is held any more. */
  closing: () => boolean;
}

/** Per-request shaping read from the query string. */
interface Shape {
  delayMs: number;
  size: number;
  echoHeaders: boolean;
}

const NO_SHAPE: Shape = { delayMs: 0, size: 0, echoHeaders: false };

function parseShape(query: string): Shape | Problem[] {
  const params = new URLSearchParams(query);
  const problems: Problem[] = [];
  const int = (name: string, max: number): number => {
    const raw = params.get(name);
    if (raw === null) return 0;
    const value = Number(raw);
    if (raw.trim() === '' || !Number.isInteger(value) || value < 0 || value > max) {
      problems.push({ path: name, message: `must be a whole number from 0 to ${max}; got ${JSON.stringify(raw)}` });
      return 0;
    }
    return value;
  };
  const shape = { delayMs: int('delay', MAX_DELAY_MS), size: int('size', MAX_SIZE_BYTES), echoHeaders: params.has('headers') };
  return problems.length > 0 ? problems : shape;
}

/**
 * identityBody is the traffic answer: {"backend", "method", "path"}, plus "headers" for `?headers`,
 * padded by a "padding" string to exactly `size` bytes when `size` is larger than the answer.
 */
export function identityBody(backendId: string, req: IncomingMessage, path: string, shape: Shape): string {
  const answer: Record<string, unknown> = { backend: backendId, method: req.method, path };
  if (shape.echoHeaders) answer.headers = req.headers;
  if (shape.size === 0) return JSON.stringify(answer);
  answer.padding = '';
  const unpadded = JSON.stringify(answer);
  const missing = shape.size - Buffer.byteLength(unpadded);
  if (missing <= 0) return unpadded;
  answer.padding = 'x'.repeat(missing);
  return JSON.stringify(answer);
}

/**
 * createTrafficHandler is the traffic port: any method and path answers the identity JSON with `x-backend-id`,
 * GET/HEAD /health answers the health fault, and the chaos faults shape everything.
 * main.ts mounts it as the one catch-all middleware of the traffic port's Express app; it uses only the
 * node:http request and response, so the hot path (no faults, no query) answers synchronously with no
 * allocation beyond the body and its headers.
 */
export function createTrafficHandler(options: TrafficOptions): { handler: RequestListener; inFlight: () => number } {
  const { backendId, chaos, metrics, closing } = options;
  let inFlight = 0;

  const send = (res: ServerResponse, status: number, body: string, started: number): void => {
    inFlight--;
    const headers: Record<string, string | number> = {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
      'x-backend-id': backendId,
    };
    if (closing()) headers.connection = 'close';
    res.writeHead(status, headers);
    res.end(body);
    metrics.observe(status, (performance.now() - started) / 1000);
  };

  const answer = (req: IncomingMessage, res: ServerResponse, path: string, shape: Shape, started: number): void => {
    const faults = chaos.current;
    if (path === '/health' && (req.method === 'GET' || req.method === 'HEAD')) {
      const pass = faults.health === 'pass';
      send(res, pass ? 200 : 503, pass ? '{"status":"pass"}' : '{"status":"fail"}', started);
    } else if (faults.errorRate > 0 && Math.random() < faults.errorRate) {
      const error = errorBody('BACKEND_ERR_INJECTED', `injected error (errorRate ${faults.errorRate})`);
      send(res, faults.errorStatus, JSON.stringify({ backend: backendId, ...error }), started);
    } else {
      send(res, 200, identityBody(backendId, req, path, shape), started);
    }
  };

  /** The slow path: wait while hung, then for the latency and delay, unless the client leaves first. */
  const answerLater = (req: IncomingMessage, res: ServerResponse, path: string, shape: Shape, started: number): void => {
    let done = false;
    let timer: NodeJS.Timeout | undefined;
    let forget: (() => void) | undefined;
    res.once('close', () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      forget?.();
      inFlight--;
      metrics.observe(ABORTED, (performance.now() - started) / 1000);
    });
    const afterHang = (): void => {
      forget = undefined;
      if (done) return;
      const faults = chaos.current;
      const wait = faults.latencyMs + (faults.latencyJitterMs > 0 ? Math.random() * faults.latencyJitterMs : 0) + shape.delayMs;
      if (wait <= 0) {
        done = true;
        answer(req, res, path, shape, started);
        return;
      }
      const due = performance.now() + wait;
      const fire = (): void => {
        if (done) return;
        // Timers may fire a fraction of a millisecond early; the promised latency is a lower bound.
        const left = due - performance.now();
        if (left > 0) {
          timer = setTimeout(fire, left);
          return;
        }
        done = true;
        answer(req, res, path, shape, started);
      };
      timer = setTimeout(fire, wait);
    };
    if (chaos.current.hang && !closing()) forget = chaos.hold(afterHang);
    else afterHang();
  };

  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const started = performance.now();
    inFlight++;
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    let shape = NO_SHAPE;
    if (q !== -1) {
      const parsed = parseShape(url.slice(q + 1));
      if (Array.isArray(parsed)) {
        const error = errorBody('BACKEND_ERR_INVALID_QUERY', 'invalid query parameters', { problems: parsed });
        send(res, 400, JSON.stringify({ backend: backendId, ...error }), started);
        return;
      }
      shape = parsed;
    }
    const faults = chaos.current;
    if (!faults.hang && faults.latencyMs === 0 && faults.latencyJitterMs === 0 && shape.delayMs === 0) {
      answer(req, res, path, shape, started);
    } else {
      answerLater(req, res, path, shape, started);
    }
  };

  return { handler, inFlight: () => inFlight };
}
