import { Agent, type ClientRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { createProxyServer } from 'http-proxy-3';
import type { Engine, EngineSettings, EngineTry, TryObserver, Upstream } from './engine.js';
import type { FailureKind } from '../pipeline/error-mapping.js';
import { TryReport } from './try-report.js';
import { IDLE_SOCKET_TIMEOUT_MS } from './keep-alive.js';

/** Stands in for the body of a bodiless request: ends the upstream request at once, on every try. */
const NO_BODY = { pipe: <T extends NodeJS.WritableStream>(destination: T): T => (destination.end(), destination) };

/** Where the try in progress is kept on the request: a symbol property costs the garbage collector far less than a WeakMap. */
const TRY = Symbol('try');
type Tracked = { [TRY]?: HttpProxyTry };

class HttpProxyUpstream implements Upstream {
  readonly agent = new Agent({ keepAlive: true, maxFreeSockets: 256, scheduling: 'lifo', timeout: IDLE_SOCKET_TIMEOUT_MS });
  readonly withBody: object;
  readonly bodiless: object;

  constructor(url: string, connectTimeout: number) {
    // prependPath false and toProxy true forward the request target exactly as the client sent it
    // (as nginx and HAProxy do), without parsing it into a URL twice per request.
    this.withBody = { target: new URL(url), agent: this.agent, prependPath: false, toProxy: true, connectTimeout };
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

  upstream(url: string): Upstream {
    return new HttpProxyUpstream(url, this.settings.connectTimeout);
  }

  forward(req: IncomingMessage, res: ServerResponse, upstream: Upstream, bodiless: boolean, observer: TryObserver): EngineTry {
    const attempt = new HttpProxyTry(new TryReport(res, observer));
    (req as Tracked)[TRY] = attempt;
    const { withBody, bodiless: noBody } = upstream as HttpProxyUpstream;
    this.proxy.web(req, res, bodiless ? noBody : withBody, onProxyError);
    return attempt;
  }

  close(): void {
    this.proxy.close();
  }
}

function onProxyError(error: Error, req: IncomingMessage): void {
  (req as Tracked)[TRY]?.report.fail(error);
}
