import { Agent, type AgentOptions, type ClientRequest, type ClientRequestArgs, type IncomingMessage, type ServerResponse } from 'node:http';
import { Agent as HttpsAgent, type AgentOptions as HttpsAgentOptions } from 'node:https';
import type { Duplex, Readable } from 'node:stream';
import { createProxyServer } from 'http-proxy-3';
import type { Engine, EngineSettings, EngineTry, TryObserver, Upstream, UpstreamTls } from './engine.js';
import type { FailureKind } from '../pipeline/error-mapping.js';
import { TryReport } from './try-report.js';
import { IDLE_SOCKET_TIMEOUT_MS } from './keep-alive.js';
import { tlsConnectOptions } from './upstream-tls.js';

/** Stands in for the body of a bodiless request: ends the upstream request at once, on every try. */
const NO_BODY = { pipe: <T extends NodeJS.WritableStream>(destination: T): T => (destination.end(), destination) };

/** Where the try in progress is kept on the request: a symbol property costs the garbage collector far less than a WeakMap. */
const TRY = Symbol('try');
type Tracked = { [TRY]?: HttpProxyTry };

const KEEP_ALIVE: AgentOptions = { keepAlive: true, maxFreeSockets: 256, scheduling: 'lifo', timeout: IDLE_SOCKET_TIMEOUT_MS };

/**
 * TlsAgent runs the connect timeout until the TLS handshake is done, as undici's connector and
 * Envoy do (http-proxy-3's ends at the TCP connect): a backend that accepts the connection but
 * never completes the handshake fails as a connect failure, before any request byte is sent.
 */
class TlsAgent extends HttpsAgent {
  constructor(
    options: HttpsAgentOptions,
    private readonly connectTimeout: number,
  ) {
    super(options);
  }

  override createConnection(options: ClientRequestArgs, callback?: (error: Error | null, stream: Duplex) => void): Duplex | null | undefined {
    const socket = super.createConnection(options, callback);
    if (!socket) return socket;
    const timeoutMs = this.connectTimeout;
    const timer = setTimeout(() => socket.destroy(Object.assign(new Error(`no TLS connection within ${timeoutMs} ms`), { code: 'ECONNECT_TIMEOUT' })), timeoutMs);
    const done = (): void => clearTimeout(timer);
    socket.once('secureConnect', done);
    socket.once('close', done);
    return socket;
  }
}

class HttpProxyUpstream implements Upstream {
  readonly agent: Agent;
  readonly withBody: object;
  readonly bodiless: object;

  constructor(url: string, connectTimeout: number, tls: UpstreamTls | undefined) {
    const target = new URL(url);
    const https = target.protocol === 'https:';
    // Node's Agent lays its own options over each request's, so these TLS options win over the
    // ones http-proxy-3 sets on every request (rejectUnauthorized from its `secure`, the target's ca).
    this.agent = https ? new TlsAgent({ ...KEEP_ALIVE, ...tlsConnectOptions(target, tls) }, connectTimeout) : new Agent(KEEP_ALIVE);
    // prependPath false and toProxy true forward the request target exactly as the client sent it
    // (as nginx and HAProxy do), without parsing it into a URL twice per request.
    this.withBody = { target, agent: this.agent, prependPath: false, toProxy: true, connectTimeout: https ? undefined : connectTimeout };
    this.bodiless = { ...this.withBody, buffer: NO_BODY };
  }

  close(): void {
    this.agent.destroy();
  }
}

class HttpProxyTry implements EngineTry {
  proxyReq: ClientRequest | undefined;

  constructor(readonly report: TryReport) {}

  abort(kind: FailureKind, cause: Error): void {
    if (this.report.abort(kind, cause)) this.proxyReq?.destroy(cause);
  }
}

/** The http-proxy-3 engine: the http-proxy API this lab is built around, over one keep-alive http.Agent per backend. */
export class HttpProxyEngine implements Engine {
  readonly name = 'http-proxy' as const;
  private readonly proxy = createProxyServer({ xfwd: false });

  constructor(private readonly settings: EngineSettings) {
    this.proxy.on('proxyReq', (proxyReq: ClientRequest, req: IncomingMessage) => {
      const attempt = (req as Tracked)[TRY];
      if (!attempt) return;
      attempt.proxyReq = proxyReq;
      const aborted = attempt.report.abortCause;
      if (aborted) proxyReq.destroy(aborted);
    });
    this.proxy.on('proxyRes', (proxyRes: IncomingMessage, req: IncomingMessage) => {
      const report = (req as Tracked)[TRY]?.report;
      if (!report) return;
      report.head(proxyRes.statusCode ?? 502, proxyRes.headers);
      proxyRes.once('error', (error) => report.fail(error));
      proxyRes.once('end', () => {
        report.ended();
        if (proxyRes.rawTrailers.length > 0) report.res.addTrailers(proxyRes.trailers);
      });
    });
  }

  upstream(url: string, tls?: UpstreamTls): Upstream {
    return new HttpProxyUpstream(url, this.settings.connectTimeout, tls);
  }

  forward(req: IncomingMessage, res: ServerResponse, upstream: Upstream, bodiless: boolean, observer: TryObserver, body?: Readable): EngineTry {
    const attempt = new HttpProxyTry(new TryReport(res, observer));
    (req as Tracked)[TRY] = attempt;
    const { withBody, bodiless: noBody } = upstream as HttpProxyUpstream;
    // http-proxy-3 pipes `buffer` upstream instead of req when it is given.
    this.proxy.web(req, res, bodiless ? noBody : body ? { ...withBody, buffer: body } : withBody, onProxyError);
    return attempt;
  }

  close(): void {
    this.proxy.close();
  }
}

function onProxyError(error: Error, req: IncomingMessage): void {
  (req as Tracked)[TRY]?.report.fail(error);
}
