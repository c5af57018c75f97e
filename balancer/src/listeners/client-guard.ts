import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { rawAnswer, sendError, type LbErrorCode } from '../errors.js';
import type { ClientErrorMetrics, ClientErrorReason } from '../metrics.js';
import type { Snapshot } from '../snapshot.js';
import type { ConnectionCount } from './served.js';

/** How often Node's server looks for request heads that are late: the head timeout's precision. */
export const HEAD_CHECK_INTERVAL_MS = 100;
/**
 * Refused connections answered per turn of the event loop. Thousands of heads can expire in one
 * check (a burst of silent connections opened together); answered all at once they would stall
 * the listener's live requests for as long as that takes, so they are answered a batch at a time.
 */
const ANSWERS_PER_TURN = 128;
/** Node's whole-request timeout, kept at its default; the head timeout may not exceed it. */
const REQUEST_TIMEOUT_MS = 300_000;
/** A connection beyond maxConnections gets this long to send its request and be told 503; then it is closed. */
const OVERLOADED_GRACE_MS = 1_000;

const OVERLOADED = Symbol('overloaded');
type Marked = Socket & { [OVERLOADED]?: true };

/** What each parser error (Node's clientError) is answered with; anything else is closed without a word. */
const CLIENT_ERRORS: Readonly<Record<string, readonly [LbErrorCode, ClientErrorReason]>> = {
  ERR_HTTP_REQUEST_TIMEOUT: ['LB_ERR_CLIENT_TIMEOUT', 'header_timeout'],
  HPE_HEADER_OVERFLOW: ['LB_ERR_HEADERS_TOO_LARGE', 'headers_too_large'],
};
const ANSWERS = new Map(Object.entries(CLIENT_ERRORS).map(([code, [lbCode]]) => [code, rawAnswer(lbCode)]));
const BAD_REQUEST = rawAnswer('LB_ERR_BAD_REQUEST');

/** The server options a guarded listener starts with; apply() sets the rest from each snapshot. */
export const guardedServerOptions = {
  connectionsCheckingInterval: HEAD_CHECK_INTERVAL_MS,
  requestTimeout: REQUEST_TIMEOUT_MS,
  // Node answers a missing Host with a bare 400 of its own; refused() answers it in JSON.
  requireHostHeader: false,
} as const;

/**
 * ClientGuard holds an http listener's client side to its limits and timeouts:
 * - timeouts.clientHeader is Node's headersTimeout: a head not complete that long after the
 *   connection opened (or the previous response ended) gets 408, then a close; it is checked
 *   every HEAD_CHECK_INTERVAL_MS instead of Node's 30 s;
 * - timeouts.clientIdle is Node's keepAliveTimeout, which Node advertises as Keep-Alive: timeout=N;
 * - limits.maxHeaderBytes is Node's maxHeaderSize, read for each new connection: 431;
 * - a head Node's parser refuses (smuggling shapes among them), or HTTP/1.1 without Host, gets 400;
 * - a connection beyond limits.maxConnections is answered 503 to its first request, never proxied.
 * The answers are JSON and counted in lb_client_errors_total.
 */
export class ClientGuard {
  private maxConnections = 0;
  private maxBodyBytes = 0;
  /** clients whose head was refused, with their answer, waiting for their turn */
  private readonly refusing: [Socket, string][] = [];

  constructor(
    private readonly server: Server,
    private readonly connections: ConnectionCount,
    private readonly metrics: ClientErrorMetrics,
    first: Snapshot,
    tls: boolean,
  ) {
    this.apply(first);
    server.on('clientError', (error: NodeJS.ErrnoException, socket: Socket) => this.clientError(error, socket));
    // Counted on the TCP connection; judged once it can be answered (after the handshake on a TLS port).
    server.on('connection', (socket: Socket) => connections.track(socket));
    server.on(tls ? 'secureConnection' : 'connection', (socket: Socket) => this.admit(socket));
  }

  apply(snapshot: Snapshot): void {
    const { server } = this;
    server.headersTimeout = snapshot.timeouts.clientHeader;
    server.keepAliveTimeout = snapshot.timeouts.clientIdle;
    // Read for every new connection's parser, though Node's types only know the constructor option.
    (server as Server & { maxHeaderSize: number }).maxHeaderSize = snapshot.limits.maxHeaderBytes;
    this.maxConnections = snapshot.limits.maxConnections;
    this.maxBodyBytes = snapshot.limits.maxBodyBytes;
  }

  /**
   * refused answers, instead of proxying, a request of a connection beyond maxConnections (503) or
   * one whose Content-Length is above maxBodyBytes (413), and closes the connection after it;
   * false: serve the request.
   */
  refused(req: IncomingMessage, res: ServerResponse): boolean {
    let code: LbErrorCode | undefined;
    let detail: string | undefined;
    if ((req.socket as Marked)[OVERLOADED] === true) {
      code = 'LB_ERR_OVERLOADED';
    } else if (req.headers.host === undefined && req.httpVersionMinor >= 1) {
      code = 'LB_ERR_BAD_REQUEST';
      detail = 'an HTTP/1.1 request needs a Host header';
      this.metrics.count('bad_request');
    } else if (this.maxBodyBytes > 0 && Number(req.headers['content-length'] ?? 0) > this.maxBodyBytes) {
      code = 'LB_ERR_BODY_TOO_LARGE';
      detail = `Content-Length ${req.headers['content-length']}, more than ${this.maxBodyBytes} bytes`;
      this.metrics.count('body_too_large');
    }
    if (code === undefined) return false;
    // The body, if any, is never read: the connection closes after the answer.
    res.shouldKeepAlive = false;
    if (!sendError(res, code, detail)) res.destroy();
    return true;
  }

  private admit(socket: Socket): void {
    if (this.connections.open <= this.maxConnections) return;
    (socket as Marked)[OVERLOADED] = true;
    this.metrics.count('overloaded');
    socket.setTimeout(OVERLOADED_GRACE_MS, () => socket.destroy());
  }

  private clientError(error: NodeJS.ErrnoException, socket: Socket): void {
    const known = error.code === undefined ? undefined : CLIENT_ERRORS[error.code];
    const parserError = error.code?.startsWith('HPE_') === true;
    // A response already on its way (a pipelined request) cannot be followed by another answer.
    const busy = (socket as Socket & { _httpMessage?: { headersSent: boolean } | null })._httpMessage?.headersSent === true;
    if ((!known && !parserError) || !socket.writable || busy) {
      socket.destroy();
      return;
    }
    this.metrics.count(known ? known[1] : 'bad_request');
    this.refusing.push([socket, known ? ANSWERS.get(error.code!)! : BAD_REQUEST]);
    if (this.refusing.length === 1) setImmediate(() => this.answerRefused());
  }

  private answerRefused(): void {
    for (const [socket, answer] of this.refusing.splice(0, ANSWERS_PER_TURN)) {
      if (socket.writable) socket.end(answer);
      else socket.destroy();
    }
    if (this.refusing.length > 0) setImmediate(() => this.answerRefused());
  }
}
