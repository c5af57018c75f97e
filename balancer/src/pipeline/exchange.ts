import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { DataPlane, Route } from '../data-plane.js';
import type { EngineTry, TryFailure, TryObserver } from '../engines/engine.js';
import type { PickContext } from '../backends/view.js';
import type { Snapshot } from '../snapshot.js';
import { lbErrors, sendError, type LbErrorCode } from '../errors.js';
import { hasBody, prepareRequest, stripHopByHop } from '../headers.js';
import { methodLabel, NO_BACKEND_LABEL } from '../metrics.js';
import { ANSWER_FOR, failureDetail, timedOut, type ExchangeFailure } from './error-mapping.js';
import { loopLateness, stallExplains } from '../health/loop-lateness.js';
import { retryDecision, type BodyState } from './retry-policy.js';
import type { Accounting } from './accounting.js';
import { BodyLimit } from './body-limit.js';

/** Where the exchange of a response is kept: a symbol property, which costs the garbage collector far less than a WeakMap. */
const EXCHANGE = Symbol('exchange');
type Tracked = { [EXCHANGE]?: Exchange };

/**
 * trying: a try is in progress (or about to start); streaming: a backend's response is on its
 * way to the client; done: the client response closed, and the request is counted.
 */
type ExchangeState = 'trying' | 'streaming' | 'done';

function timeoutError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

/**
 * Exchange is one client request across all its tries: pick a backend, forward with the engine,
 * decide on each failure with the retry policy, map what is not retried to an LB_ERR_* answer,
 * and account for the request once it closes.
 */
class Exchange implements TryObserver {
  private state: ExchangeState = 'trying';
  private readonly startedAt = performance.now();
  private readonly settings: Snapshot;
  private readonly method: string;
  private readonly body: BodyState;
  private readonly closeConnection: boolean;
  private readonly requestId: string;
  private readonly context: PickContext;
  private readonly tried: Route[] = [];
  /** the backend of the try in progress, or of the try that answered */
  private route: Route | undefined;
  private attempt: EngineTry | undefined;
  private tryStartedAt = 0;
  /** what this process's loop had lost when the try started (loopLateness) */
  private tryLostBefore = 0;
  /**
   * One timer per exchange, for the earlier of the two deadlines (performance.now() times): a
   * request that answers in time costs one setTimeout and one clearTimeout, retries included.
   */
  private timer: NodeJS.Timeout | undefined;
  private timerDue = Infinity;
  private readonly requestDeadline: number;
  private tryDeadline = Infinity;
  private requestTimedOut = false;
  private lastFailure: ExchangeFailure | undefined;
  private lastDetail: string | undefined;
  /** the status to count when the response did not complete normally */
  private failedStatus: number | undefined;
  /** a chunked body on its way through BodyLimit (limits.maxBodyBytes); undefined: straight from req */
  private readonly bodySource: BodyLimit | undefined;
  /** the body passed limits.maxBodyBytes: the try is abandoned and the answer is 413 */
  private bodyRefused = false;

  constructor(
    private readonly plane: DataPlane,
    private readonly accounting: Accounting,
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
  ) {
    const headers = req.headers;
    this.settings = plane.current.snapshot;
    ({ closeConnection: this.closeConnection, requestId: this.requestId } = prepareRequest(req));
    this.method = req.method ?? 'GET';
    this.body = hasBody(headers) ? 'streamed' : 'none';
    const clientAddress = req.socket.remoteAddress ?? '';
    this.context = { clientAddress, hashKey: hashKeyOf(headers, this.settings.hashHeader, clientAddress) };
    (res as Tracked)[EXCHANGE] = this;
    res.once('close', onResponseClose);
    if (plane.shuttingDown) res.shouldKeepAlive = false;
    this.requestDeadline = this.startedAt + this.settings.timeouts.request;
    const maxBody = this.settings.limits.maxBodyBytes;
    this.bodySource = this.body === 'streamed' && maxBody > 0 && headers['content-length'] === undefined ? req.pipe(new BodyLimit(maxBody, () => this.bodyTooLarge())) : undefined;
  }

  /** bodyTooLarge: a chunked body passed limits.maxBodyBytes; what the backend got of it is abandoned. */
  private bodyTooLarge(): void {
    if (this.state === 'done') return;
    this.bodyRefused = true;
    this.accounting.clientError('body_too_large');
    this.req.unpipe(this.bodySource);
    // The rest of the body is never read: the connection closes after the answer.
    this.res.shouldKeepAlive = false;
    const error = Object.assign(new Error(`the request body passed limits.maxBodyBytes (${this.settings.limits.maxBodyBytes} bytes)`), { code: 'LB_BODY_TOO_LARGE' });
    if (this.state === 'streaming') {
      this.failedStatus = 413;
      this.attempt?.abort('other', error);
      this.res.destroy();
    } else {
      this.attempt?.abort('other', error);
    }
  }

  nextTry(): void {
    const active = this.plane.current;
    let candidates = active.available;
    if (this.tried.length > 0) candidates = candidates.filter((route) => !this.tried.includes(route));
    const route = active.algorithm.pick(candidates, this.context);
    if (!route) {
      // Every backend was tried: the answer says what the last try met.
      if (this.lastFailure) this.answer(ANSWER_FOR[this.lastFailure], this.lastDetail);
      else this.answer('LB_ERR_NO_BACKEND');
      return;
    }
    this.tried.push(route);
    this.route = route;
    this.plane.begin(route);
    this.tryStartedAt = performance.now();
    this.tryLostBefore = loopLateness.lost();
    this.tryDeadline = this.tryStartedAt + this.settings.timeouts.perTry;
    this.arm(this.tryStartedAt);
    this.attempt = this.plane.engine.forward(this.req, this.res, route.upstream, this.body === 'none', this, this.bodySource);
  }

  onHead(status: number, headers: IncomingHttpHeaders): void {
    this.tryDeadline = Infinity;
    this.state = 'streaming';
    const route = this.route!;
    route.load.observeLatency(performance.now() - this.tryStartedAt, Date.now());
    this.plane.reports.tryAnswered(route.id, status);
    stripHopByHop(headers);
    const keepAlive = !this.closeConnection && !this.plane.shuttingDown;
    headers.connection = keepAlive ? 'keep-alive' : 'close';
    if (keepAlive) headers['keep-alive'] = keepAliveHint(this.settings.timeouts.clientIdle);
    if (headers['x-request-id'] === undefined) headers['x-request-id'] = this.requestId;
  }

  onFailure({ kind, cause }: TryFailure): void {
    if (this.state === 'done') return;
    this.tryDeadline = Infinity;
    const route = this.route!;
    this.route = undefined;
    this.attempt = undefined;
    this.plane.end(route);
    if (this.bodyRefused) {
      // The balancer abandoned the try: nothing to hold against the backend.
      this.answer('LB_ERR_BODY_TOO_LARGE', `more than ${this.settings.limits.maxBodyBytes} bytes`);
      return;
    }
    const detail = failureDetail(route.id, kind, cause);
    const failure: ExchangeFailure = this.requestTimedOut ? 'request-timeout' : kind;
    // A timeout the balancer's own stall explains is retried as any other, and not held against the backend.
    if (failure !== 'request-timeout' && !(timedOut(kind, cause) && stallExplains(this.tryLostBefore, this.tryStartedAt, detail))) this.plane.reports.tryFailed(route.id, kind, detail);
    this.lastFailure = failure;
    this.lastDetail = detail;
    const decision = retryDecision(failure, this.method, this.body, this.tried.length, this.settings.retryAttempts);
    if (decision.retry) {
      this.accounting.retried(route.id);
      this.nextTry();
    } else {
      this.answer(decision.answer, detail);
    }
  }

  onBodyError(): void {
    this.failedStatus = 502;
  }

  /** arm makes the timer fire by the earlier deadline; a timer due sooner is kept, and re-arms when it fires. */
  private arm(now: number): void {
    if (this.state === 'done') return;
    const due = Math.min(this.tryDeadline, this.requestDeadline);
    if (this.timer !== undefined) {
      if (this.timerDue <= due) return;
      clearTimeout(this.timer);
    }
    this.timerDue = due;
    this.timer = setTimeout(onDeadline, Math.max(0, due - now), this);
  }

  deadline(): void {
    this.timer = undefined;
    const now = performance.now();
    if (now >= this.requestDeadline) {
      this.requestTimeout();
      return;
    }
    if (this.state === 'trying' && now >= this.tryDeadline) {
      this.tryDeadline = Infinity;
      this.attempt?.abort('timeout', timeoutError('LB_PER_TRY_TIMEOUT', `no response headers within ${this.settings.timeouts.perTry} ms`));
    }
    this.arm(now);
  }

  private requestTimeout(): void {
    if (this.state === 'done') return;
    this.requestTimedOut = true;
    const error = timeoutError('LB_REQUEST_TIMEOUT', `request not complete within ${this.settings.timeouts.request} ms`);
    if (this.state === 'streaming') {
      this.failedStatus = 504;
      this.attempt?.abort('other', error);
      this.res.destroy();
    } else if (this.attempt) {
      this.attempt.abort('timeout', error);
    } else {
      this.answer('LB_ERR_REQUEST_TIMEOUT');
    }
  }

  private answer(code: LbErrorCode, detail?: string): void {
    this.failedStatus = lbErrors[code].status;
    if (!sendError(this.res, code, detail)) this.res.destroy();
  }

  /** finish runs once, when the client response closes: it ends the try still in progress and counts the request. */
  finish(): void {
    if (this.state === 'done') return;
    const trying = this.state === 'trying';
    this.state = 'done';
    clearTimeout(this.timer);
    const res = this.res;
    if (trying) this.attempt?.abort('other', new Error('the client went away'));
    const route = this.route;
    if (route) this.plane.end(route);
    const status = res.writableFinished ? (this.failedStatus ?? res.statusCode) : (this.failedStatus ?? 499);
    const label = route?.id ?? this.tried[this.tried.length - 1]?.id ?? NO_BACKEND_LABEL;
    this.accounting.finished(label, methodLabel(this.method), status, (performance.now() - this.startedAt) / 1000);
  }
}

/**
 * keepAliveHint: the idle timeout of the client connection, as Node advertises it on the
 * balancer's own answers. Kept between calls: it changes only with a reload, not per request.
 */
let hintMs = -1;
let hint = '';
function keepAliveHint(clientIdleMs: number): string {
  if (clientIdleMs !== hintMs) {
    hintMs = clientIdleMs;
    hint = `timeout=${Math.floor(clientIdleMs / 1000)}`;
  }
  return hint;
}

function hashKeyOf(headers: IncomingHttpHeaders, header: string | undefined, clientAddress: string): string {
  if (header === undefined) return clientAddress;
  const value = headers[header];
  if (value === undefined) return clientAddress;
  return Array.isArray(value) ? value.join(',') : value;
}

function onResponseClose(this: ServerResponse): void {
  (this as Tracked)[EXCHANGE]?.finish();
}

function onDeadline(exchange: Exchange): void {
  exchange.deadline();
}

/** createRequestHandler returns the traffic listener's request handler over a data plane. */
export function createRequestHandler(plane: DataPlane, accounting: Accounting): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => new Exchange(plane, accounting, req, res).nextTry();
}
