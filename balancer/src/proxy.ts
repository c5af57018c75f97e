import { STATUS_CODES, type ClientRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { createProxyServer } from 'http-proxy-3';
import type { Algorithm } from './algorithms/index.js';
import type { Backend, Pool } from './pool.js';
import { methodLabel, NO_BACKEND_LABEL, type Metrics } from './metrics.js';
import type { TrafficStats } from './stats.js';
import { lbErrors, sendError, errorBody, type LbErrorCode } from './errors.js';
import { addForwardingHeaders, hasBody, stripHopByHop } from './headers.js';

export interface ProxyTimeouts {
  connect: number;
  perTry: number;
  request: number;
}

/** What the request path reads on every request; main swaps algorithm and settings at run time. */
export interface ProxyContext {
  pool: Pool;
  metrics: Metrics;
  algorithm: Algorithm;
  stats: TrafficStats;
  timeouts: ProxyTimeouts;
  retryAttempts: number;
  shuttingDown: boolean;
}

/** Methods that may be sent twice without changing the outcome (RFC 9110 section 9.2.2). */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

/** Errors that mean no connection was made, so nothing reached the backend. */
const CONNECT_ERRORS = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENOTFOUND', 'EAI_AGAIN', 'EADDRNOTAVAIL', 'LB_CONNECT_TIMEOUT']);
const RESET_ERRORS = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED']);

type FailureKind = 'connect' | 'timeout' | 'reset' | 'request-timeout' | 'other';

const FAILURE_CODES: Record<FailureKind, LbErrorCode> = {
  connect: 'LB_ERR_UPSTREAM_UNAVAILABLE',
  timeout: 'LB_ERR_UPSTREAM_TIMEOUT',
  reset: 'LB_ERR_UPSTREAM_RESET',
  'request-timeout': 'LB_ERR_REQUEST_TIMEOUT',
  other: 'LB_ERR_UPSTREAM_ERROR',
};

/** Stands in for the request body of a bodiless request: ends the upstream request at once, on every try. */
const NO_BODY = { pipe: <T extends NodeJS.WritableStream>(destination: T): T => (destination.end(), destination) };

/** Where the exchange of a request is kept: a symbol property, which costs the garbage collector far less than a WeakMap. */
const EXCHANGE = Symbol('exchange');

interface Tracked {
  [EXCHANGE]?: Exchange;
}

function exchangeOf(message: object): Exchange | undefined {
  return (message as Tracked)[EXCHANGE];
}

function timeoutError(code: string, message: string): NodeJS.ErrnoException {
  return Object.assign(new Error(message), { code });
}

/** One client request across all its tries. */
interface Exchange {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly startedAt: number;
  readonly method: string;
  readonly bodiless: boolean;
  readonly idempotent: boolean;
  readonly closeConnection: boolean;
  readonly requestId: string;
  readonly tried: Backend[];
  /** the backend of the try in progress, or of the try that answered */
  backend: Backend | undefined;
  tryStartedAt: number;
  proxyReq: ClientRequest | undefined;
  tryTimer: NodeJS.Timeout | undefined;
  requestTimer: NodeJS.Timeout | undefined;
  tryTimedOut: boolean;
  connectTimedOut: boolean;
  requestTimedOut: boolean;
  /** the status to count when the response did not complete normally */
  failedStatus: number | undefined;
  done: boolean;
}

/**
 * createProxy returns the request and upgrade handlers of the traffic listener: pick a backend
 * with the algorithm, forward with http-proxy-3 over the backend's keep-alive agent, retry
 * connection failures and per-try timeouts on another backend, and map what fails to LB_ERR_* answers.
 */
export function createProxy(context: ProxyContext) {
  const { pool, metrics } = context;
  const proxy = createProxyServer({ xfwd: false, ws: true });
  const optionsCache = new WeakMap<Backend, { withBody: object; bodiless: object }>();

  const proxyOptions = (backend: Backend, bodiless: boolean): object => {
    let options = optionsCache.get(backend);
    if (!options) {
      // prependPath false and toProxy true forward the request target exactly as the client sent it
      // (as nginx and HAProxy do), without parsing it into a URL twice per request.
      const base = { target: backend.target, agent: backend.agent, prependPath: false, toProxy: true };
      options = { withBody: base, bodiless: { ...base, buffer: NO_BODY } };
      optionsCache.set(backend, options);
    }
    return bodiless ? options.bodiless : options.withBody;
  };

  proxy.on('proxyReq', (proxyReq: ClientRequest, req: IncomingMessage, _res: unknown, _options: unknown, socket: Socket) => {
    const exchange = exchangeOf(req);
    if (!exchange) return;
    exchange.proxyReq = proxyReq;
    if (exchange.tryTimedOut || exchange.requestTimedOut) {
      proxyReq.destroy(timeoutError('LB_PER_TRY_TIMEOUT', 'per-try timeout'));
      return;
    }
    if (socket.connecting) {
      const timer = setTimeout(() => {
        exchange.connectTimedOut = true;
        proxyReq.destroy(timeoutError('LB_CONNECT_TIMEOUT', `no connection within ${context.timeouts.connect} ms`));
      }, context.timeouts.connect);
      socket.once('connect', () => clearTimeout(timer));
      proxyReq.once('close', () => clearTimeout(timer));
    }
  });

  proxy.on('proxyRes', (proxyRes: IncomingMessage, req: IncomingMessage) => {
    const exchange = exchangeOf(req);
    if (!exchange) return;
    clearTimeout(exchange.tryTimer);
    const backend = exchange.backend;
    if (backend) {
      pool.observeLatency(backend, performance.now() - exchange.tryStartedAt);
      const status = proxyRes.statusCode ?? 0;
      if (status < 500) pool.recordSuccess(backend);
      else pool.recordError(backend, `HTTP ${status}`);
    }
    const headers = proxyRes.headers;
    stripHopByHop(headers);
    headers.connection = exchange.closeConnection || context.shuttingDown ? 'close' : 'keep-alive';
    if (headers['x-request-id'] === undefined) headers['x-request-id'] = exchange.requestId;
    (proxyRes as Tracked)[EXCHANGE] = exchange;
    proxyRes.once('error', onUpstreamBodyError);
  });

  const answerError = (exchange: Exchange, code: LbErrorCode, detail?: string): void => {
    exchange.failedStatus = lbErrors[code].status;
    if (!sendError(exchange.res, code, detail)) exchange.res.destroy();
  };

  const classify = (exchange: Exchange, error: NodeJS.ErrnoException): FailureKind => {
    if (exchange.requestTimedOut) return 'request-timeout';
    if (exchange.tryTimedOut) return 'timeout';
    if (exchange.connectTimedOut || (error.code && CONNECT_ERRORS.has(error.code))) return 'connect';
    if ((error.code && RESET_ERRORS.has(error.code)) || error.message === 'socket hang up') return 'reset';
    return 'other';
  };

  const mayRetry = (exchange: Exchange, kind: FailureKind): boolean => {
    if (!exchange.bodiless || exchange.tried.length > context.retryAttempts) return false;
    if (kind === 'connect') return true; // nothing reached the backend, whatever the method
    return exchange.idempotent && (kind === 'timeout' || kind === 'reset');
  };

  const onTryError = (error: Error, req: IncomingMessage): void => {
    const exchange = exchangeOf(req);
    if (!exchange || exchange.done) return;
    clearTimeout(exchange.tryTimer);
    const backend = exchange.backend;
    exchange.backend = undefined;
    exchange.proxyReq = undefined;
    if (backend) pool.endRequest(backend);
    const kind = classify(exchange, error as NodeJS.ErrnoException);
    const detail = `${backend?.id ?? 'backend'}: ${(error as NodeJS.ErrnoException).code ?? error.message}`;
    if (backend && kind !== 'request-timeout') {
      if (kind === 'connect' || kind === 'timeout') pool.recordPassiveFailure(backend, detail);
      pool.recordError(backend, detail);
    }
    if (exchange.res.headersSent) {
      exchange.failedStatus = 502;
      exchange.res.destroy();
      return;
    }
    if (mayRetry(exchange, kind)) {
      if (backend) metrics.retries.labels(backend.id).inc();
      startTry(exchange, kind);
      return;
    }
    answerError(exchange, FAILURE_CODES[kind], detail);
  };

  const startTry = (exchange: Exchange, previousFailure?: FailureKind): void => {
    let candidates = pool.available();
    if (exchange.tried.length > 0) candidates = candidates.filter((backend) => !exchange.tried.includes(backend));
    const backend = context.algorithm.pick(candidates, exchange.req);
    if (!backend) {
      answerError(exchange, previousFailure ? FAILURE_CODES[previousFailure] : 'LB_ERR_NO_BACKEND');
      return;
    }
    exchange.tried.push(backend);
    exchange.backend = backend;
    exchange.tryTimedOut = false;
    exchange.connectTimedOut = false;
    exchange.proxyReq = undefined;
    exchange.tryStartedAt = performance.now();
    pool.beginRequest(backend);
    exchange.tryTimer = setTimeout(onTryTimeout, context.timeouts.perTry, exchange);
    proxy.web(exchange.req, exchange.res, proxyOptions(backend, exchange.bodiless), onTryError);
  };

  const onTryTimeout = (exchange: Exchange): void => {
    exchange.tryTimedOut = true;
    exchange.proxyReq?.destroy(timeoutError('LB_PER_TRY_TIMEOUT', `no response headers within ${context.timeouts.perTry} ms`));
  };

  const onRequestTimeout = (exchange: Exchange): void => {
    if (exchange.done) return;
    exchange.requestTimedOut = true;
    if (exchange.res.headersSent) {
      exchange.failedStatus = 504;
      exchange.res.destroy();
      exchange.proxyReq?.destroy();
    } else if (exchange.proxyReq) {
      exchange.proxyReq.destroy(timeoutError('LB_REQUEST_TIMEOUT', `request not complete within ${context.timeouts.request} ms`));
    } else {
      answerError(exchange, 'LB_ERR_REQUEST_TIMEOUT');
    }
  };

  const finish = (exchange: Exchange): void => {
    if (exchange.done) return;
    exchange.done = true;
    clearTimeout(exchange.tryTimer);
    clearTimeout(exchange.requestTimer);
    const backend = exchange.backend;
    if (backend) pool.endRequest(backend);
    const res = exchange.res;
    const status = res.writableFinished ? (exchange.failedStatus ?? res.statusCode) : (exchange.failedStatus ?? 499);
    const label = backend?.id ?? exchange.tried[exchange.tried.length - 1]?.id ?? NO_BACKEND_LABEL;
    count(label, exchange.method, status, (performance.now() - exchange.startedAt) / 1000);
  };

  /** count records one answered request in the metrics and in the status page's statistics. */
  const count = (backend: string, method: string, status: number, seconds: number): void => {
    metrics.recordRequest(backend, method, status, seconds);
    context.stats.record(backend, status, seconds);
  };

  function onResponseClose(this: ServerResponse): void {
    const exchange = exchangeOf(this);
    if (exchange) finish(exchange);
  }

  /** A backend that dies while sending the body: close the client connection rather than leave it hanging. */
  function onUpstreamBodyError(this: IncomingMessage): void {
    const exchange = exchangeOf(this);
    if (!exchange) return;
    exchange.failedStatus = 502;
    exchange.res.destroy();
  }

  const handleRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const closeConnection = stripHopByHop(req.headers);
    const requestId = addForwardingHeaders(req);
    const method = req.method ?? 'GET';
    const exchange: Exchange = {
      req,
      res,
      startedAt: performance.now(),
      method: methodLabel(method),
      bodiless: !hasBody(req.headers),
      idempotent: IDEMPOTENT.has(method),
      closeConnection,
      requestId,
      tried: [],
      backend: undefined,
      tryStartedAt: 0,
      proxyReq: undefined,
      tryTimer: undefined,
      requestTimer: undefined,
      tryTimedOut: false,
      connectTimedOut: false,
      requestTimedOut: false,
      failedStatus: undefined,
      done: false,
    };
    (req as Tracked)[EXCHANGE] = exchange;
    (res as Tracked)[EXCHANGE] = exchange;
    res.once('close', onResponseClose);
    if (context.shuttingDown) res.shouldKeepAlive = false;
    exchange.requestTimer = setTimeout(onRequestTimeout, context.timeouts.request, exchange);
    startTry(exchange);
  };

  /** handleUpgrade proxies a WebSocket (or other Upgrade) request to one backend; the socket counts as one active request until it closes. */
  const handleUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    addForwardingHeaders(req);
    const startedAt = performance.now();
    const method = methodLabel(req.method);
    const backend = context.algorithm.pick(pool.available(), req);
    if (!backend) {
      writeRawError(socket, 'LB_ERR_NO_BACKEND');
      count(NO_BACKEND_LABEL, method, lbErrors.LB_ERR_NO_BACKEND.status, 0);
      return;
    }
    let status = 101;
    pool.beginRequest(backend);
    socket.once('close', () => {
      pool.endRequest(backend);
      count(backend.id, method, status, (performance.now() - startedAt) / 1000);
    });
    proxy.ws(req, socket, head, { target: backend.target }, (error: Error) => {
      const code = (error as NodeJS.ErrnoException).code;
      const kind: FailureKind = code && CONNECT_ERRORS.has(code) ? 'connect' : 'other';
      if (kind === 'connect') pool.recordPassiveFailure(backend, `${backend.id}: ${code} (upgrade)`);
      status = lbErrors[FAILURE_CODES[kind]].status;
      writeRawError(socket, FAILURE_CODES[kind], `${backend.id}: ${code ?? error.message}`);
    });
  };

  return { handleRequest, handleUpgrade };
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
