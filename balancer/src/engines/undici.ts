import type { Readable } from 'node:stream';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { buildConnector, Pool, type Dispatcher } from 'undici';
import type { Engine, EngineSettings, EngineTry, TryObserver, Upstream, UpstreamTls } from './engine.js';
import type { FailureKind } from '../pipeline/error-mapping.js';
import { TryReport } from './try-report.js';
import { IDLE_SOCKET_TIMEOUT_MS } from './keep-alive.js';
import { tlsConnectOptions, type TlsConnectOptions } from './upstream-tls.js';

/**
 * preciseConnector: undici's connector with the connect timeout on a plain timer. undici's own
 * runs on its coarse timers (about 0.5 to 1 s late), which would let timeouts.perTry fire first
 * and turn a connect timeout (retried whatever the method) into a per-try timeout. For an
 * https:// backend the timer runs until the TLS handshake is done.
 */
function preciseConnector(timeoutMs: number, tls: TlsConnectOptions | undefined): buildConnector.connector {
  const connect = buildConnector({ timeout: 0, ...tls });
  return (options, callback) => {
    let timer: NodeJS.Timeout | undefined;
    // The servername undici passes comes from the request's Host header: the backend's own name instead.
    const target = tls ? { ...options, servername: tls.servername } : options;
    // The connector returns its socket, though its type says void.
    const socket = connect(target, (error, connected) => {
      if (timer === undefined) return;
      clearTimeout(timer);
      timer = undefined;
      if (error) callback(error, null);
      else callback(null, connected!);
    }) as unknown as Socket | undefined;
    timer = setTimeout(() => {
      timer = undefined;
      socket?.destroy();
      callback(Object.assign(new Error(`no connection within ${timeoutMs} ms`), { code: 'UND_ERR_CONNECT_TIMEOUT' }), null);
    }, timeoutMs);
    return socket;
  };
}

class UndiciUpstream implements Upstream {
  readonly pool: Pool;
  /**
   * Given with every request to an https:// backend: undici reconnects whenever a request's
   * servername differs from its connection's, and would otherwise take it from each client's Host.
   * The connector sends the real one.
   */
  readonly servername: string | undefined;

  constructor(url: string, connectTimeout: number, tls: UpstreamTls | undefined) {
    const target = new URL(url);
    const tlsOptions = target.protocol === 'https:' ? tlsConnectOptions(target, tls) : undefined;
    this.servername = tlsOptions ? tlsOptions.servername || target.hostname : undefined;
    this.pool = new Pool(url, {
      // As many connections as there are requests in flight, as Node's Agent: a request never waits for a free one.
      connections: null,
      pipelining: 1,
      keepAliveTimeout: IDLE_SOCKET_TIMEOUT_MS,
      keepAliveMaxTimeout: IDLE_SOCKET_TIMEOUT_MS,
      connect: preciseConnector(connectTimeout, tlsOptions),
      // The pipeline times the response head (timeouts.perTry) and the whole exchange (timeouts.request) itself.
      headersTimeout: 0,
      bodyTimeout: 0,
    });
  }

  close(): void {
    void this.pool.destroy().catch(() => {});
  }
}

/** One try as an undici dispatch handler: the response body is written to the client as it arrives, with backpressure both ways. */
class UndiciTry implements Dispatcher.DispatchHandler, EngineTry {
  private controller: Dispatcher.DispatchController | undefined;

  constructor(private readonly report: TryReport) {}

  abort(kind: FailureKind, cause: Error): void {
    if (this.report.abort(kind, cause)) this.controller?.abort(cause);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    const aborted = this.report.abortCause;
    if (aborted) controller.abort(aborted);
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders, statusMessage?: string): void {
    if (statusCode < 200) return; // 1xx: the client's own 100-continue was answered by Node already
    this.report.head(statusCode, headers);
    const res = this.report.res;
    if (statusMessage) res.statusMessage = statusMessage;
    res.writeHead(statusCode, headers);
    res.on('drain', () => controller.resume());
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (!this.report.res.write(chunk)) controller.pause();
  }

  onResponseEnd(_controller: Dispatcher.DispatchController, trailers: IncomingHttpHeaders): void {
    this.report.ended();
    const res = this.report.res;
    for (const _name in trailers) {
      res.addTrailers(trailers as Record<string, string>);
      break;
    }
    res.end();
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    this.report.fail(error);
  }
}

/** The undici engine: one undici Pool per backend, requests dispatched with a streaming handler. */
export class UndiciEngine implements Engine {
  readonly name = 'undici' as const;

  constructor(private readonly settings: EngineSettings) {}

  upstream(url: string, tls?: UpstreamTls): Upstream {
    return new UndiciUpstream(url, this.settings.connectTimeout, tls);
  }

  forward(req: IncomingMessage, res: ServerResponse, upstream: Upstream, bodiless: boolean, observer: TryObserver, body?: Readable): EngineTry {
    const attempt = new UndiciTry(new TryReport(res, observer));
    const headers = req.headers;
    // undici frames the body itself and refuses these headers.
    delete headers['transfer-encoding'];
    const { pool, servername } = upstream as UndiciUpstream;
    const options: Dispatcher.DispatchOptions & { servername?: string } = { path: req.url ?? '/', method: req.method ?? 'GET', headers, body: bodiless ? null : (body ?? req), blocking: false };
    // servername is an option of undici's requests that its types leave out; only https:// backends need it.
    if (servername !== undefined) options.servername = servername;
    try {
      pool.dispatch(options, attempt);
    } catch (error) {
      attempt.onResponseError(undefined as never, error as Error);
    }
    return attempt;
  }

  close(): void {}
}
