import type { Socket } from 'node:net';
import autocannon from 'autocannon';
import { Pacer } from './pacer.js';

/** Why a request got no answer. */
export type ErrorKind = 'refused' | 'reset' | 'timeout' | 'other';
export const ERROR_KINDS: readonly ErrorKind[] = ['refused', 'reset', 'timeout', 'other'];

/** Where the engine reports the outcome of every request it sent: exactly one call per request. */
export interface Outcomes {
  response(status: number, latencyMs: number, backend: string | undefined): void;
  /** `code` is the socket error code (ECONNREFUSED, ...), "CLOSED" for a connection closed before the answer, or "TIMEOUT". */
  error(kind: ErrorKind, code: string): void;
}

export interface LoadOptions {
  url: string;
  connections: number;
  /** Target requests per second; Infinity sends as fast as the connections allow, 0 pauses. */
  rate: number;
  method: string;
  /** Seconds without an answer before a request counts as a timeout (autocannon's timeout, at least 1). */
  timeoutSeconds: number;
}

export interface Load {
  /** Target requests per second; can be changed while running. */
  rate: number;
  /** Requests sent and not yet settled. */
  readonly inFlight: number;
  /** Stops sending and waits until every request in flight was answered or failed (at most its timeout). */
  drain(): Promise<void>;
  /** Drains, then closes every connection. */
  close(): Promise<void>;
}

/** autocannon's run length when we stop it ourselves: as long as a Node timer allows (about 23 days). */
const UNTIL_STOPPED_SECONDS = 2_000_000;

/** errorKind maps a socket error to the error kinds a client cares about. */
export function errorKind(code: string | undefined): ErrorKind {
  switch (code) {
    case 'ECONNREFUSED':
      return 'refused';
    case 'ECONNRESET':
    case 'EPIPE':
    case 'ECONNABORTED':
    case 'CLOSED':
      return 'reset';
    case 'ETIMEDOUT':
    case 'TIMEOUT':
      return 'timeout';
    default:
      return 'other';
  }
}

/**
 * The parts of autocannon 9's per-connection Client (lib/httpClient.js) that startLoad wraps. They are not
 * public API: `_doRequest` writes the next request, `_connect` opens a connection (and writes the first
 * request), `_destroyConnection` drops the socket. The loadgen tests fail if a new autocannon changes them.
 */
interface CannonClient {
  _doRequest(): void;
  _connect(): void;
  _destroyConnection(): void;
  destroyed: boolean;
  conn: Socket;
  on(event: 'request' | 'timeout', listener: () => void): void;
  on(event: 'headers', listener: (info: { headers: string[]; shouldKeepAlive: boolean }) => void): void;
  on(event: 'response', listener: (status: number) => void): void;
  on(event: 'connError', listener: (error: NodeJS.ErrnoException) => void): void;
}

/** One request at a time per connection (no pipelining): what is in flight on it and what it is waiting for. */
interface Connection {
  /** performance.now() when the request in flight was written; 0 when none is. */
  sentAt: number;
  backend: string | undefined;
  /** Waiting in the pacer's queue for its next token. */
  queued: boolean;
  /** The socket is gone or must not be reused (the server said Connection: close): connect before sending. */
  reconnect: boolean;
  /** A request whose connection was replaced before its answer; settled as a timeout if autocannon says so, else as closed. */
  lost: boolean;
}

/**
 * startLoad runs autocannon against `url` and reports every request's outcome, exactly once, to `outcomes`.
 *
 * autocannon alone cannot give that: at its stop it destroys connections with requests in flight (which the
 * server may have counted), treats a connection closed before the answer as nothing, counts a connection
 * error rather than a request error, and has no per-backend counts. So each connection (autocannon Client)
 * is wrapped in `setupClient`: sends go through the Pacer, each request's outcome is taken from the client's
 * events, and stopping lets the requests in flight finish first.
 */
export function startLoad(options: LoadOptions, outcomes: Outcomes): Load {
  const pacer = new Pacer(options.rate);
  const connections = new Set<Connection>();
  let inFlight = 0;
  let stopping = false;
  let drained: (() => void) | undefined;

  const settled = (): void => {
    inFlight--;
    if (stopping && inFlight === 0) drained?.();
  };
  const settleCurrent = (conn: Connection): void => {
    conn.sentAt = 0;
    settled();
  };
  const settleLost = (conn: Connection): void => {
    conn.lost = false;
    settled();
  };

  const setupClient = (raw: unknown): void => {
    const client = raw as CannonClient;
    const doRequest = client._doRequest;
    const connect = client._connect;
    const conn: Connection = { sentAt: 0, backend: undefined, queued: false, reconnect: false, lost: false };
    connections.add(conn);
    let bypass = false;

    const send = (): void => {
      if (!conn.reconnect) {
        doRequest.call(client);
        return;
      }
      conn.reconnect = false;
      client._destroyConnection();
      bypass = true;
      try {
        connect.call(client);
      } finally {
        bypass = false;
      }
    };
    const grant = (): void => {
      conn.queued = false;
      if (!client.destroyed && !stopping) send();
    };

    client._doRequest = function paced() {
      if (bypass) {
        doRequest.call(client);
        return;
      }
      if (client.destroyed || stopping || conn.queued) return;
      if (pacer.take()) {
        send();
      } else {
        conn.queued = true;
        pacer.wait(grant);
      }
    };

    client._connect = function reconnecting() {
      if (conn.sentAt !== 0) {
        // The connection went away with a request in flight (closed, or dropped by autocannon's timeout,
        // which emits 'timeout' right after this returns).
        conn.lost = true;
        conn.sentAt = 0;
        queueMicrotask(() => {
          if (!conn.lost) return;
          outcomes.error('reset', 'CLOSED');
          settleLost(conn);
        });
      }
      if (stopping) return;
      if (conn.queued) {
        conn.reconnect = true;
        return;
      }
      conn.reconnect = false;
      connect.call(client);
    };

    client.on('request', () => {
      conn.sentAt = performance.now();
      conn.backend = undefined;
      inFlight++;
    });
    client.on('headers', (info) => {
      if (!info.shouldKeepAlive) conn.reconnect = true;
      const headers = info.headers;
      for (let i = 0; i < headers.length; i += 2) {
        if (headers[i]!.length === 12 && headers[i]!.toLowerCase() === 'x-backend-id') {
          conn.backend = headers[i + 1];
          break;
        }
      }
    });
    client.on('response', (status) => {
      if (conn.sentAt === 0) return;
      outcomes.response(status, performance.now() - conn.sentAt, conn.backend);
      settleCurrent(conn);
    });
    client.on('connError', (error) => {
      if (conn.sentAt === 0) return;
      const code = error.code ?? 'UNKNOWN';
      outcomes.error(errorKind(code), code);
      settleCurrent(conn);
    });
    client.on('timeout', () => {
      if (!conn.lost) return;
      outcomes.error('timeout', 'TIMEOUT');
      settleLost(conn);
    });
  };

  // With `forever` autocannon returns its event emitter (the typings only know the promise of a finite run).
  const instance = autocannon({
    url: options.url,
    method: options.method as autocannon.Request['method'],
    connections: options.connections,
    pipelining: 1,
    timeout: options.timeoutSeconds,
    duration: UNTIL_STOPPED_SECONDS,
    sampleInt: 100,
    forever: true,
    setupClient,
  }) as unknown as autocannon.Instance;
  const finished = new Promise<void>((resolve) => instance.once('done', () => resolve()));
  instance.on('error', (error: Error) => {
    process.stderr.write(`loadgen: autocannon: ${error.message}\n`);
  });

  let draining: Promise<void> | undefined;
  const drain = (): Promise<void> => {
    draining ??= (async () => {
      stopping = true;
      pacer.clear();
      if (inFlight > 0) {
        await new Promise<void>((resolve) => {
          drained = resolve;
          // autocannon's own timeout settles every request in flight; this is only a backstop.
          setTimeout(resolve, options.timeoutSeconds * 1000 + 2000).unref();
        });
      }
      for (const conn of connections) {
        if (conn.sentAt !== 0) {
          outcomes.error('timeout', 'TIMEOUT');
          settleCurrent(conn);
        }
        if (conn.lost) {
          outcomes.error('timeout', 'TIMEOUT');
          settleLost(conn);
        }
      }
    })();
    return draining;
  };
  let closing: Promise<void> | undefined;
  return {
    get rate() {
      return pacer.rate;
    },
    set rate(rate: number) {
      pacer.rate = rate;
    },
    get inFlight() {
      return inFlight;
    },
    drain,
    close() {
      closing ??= (async () => {
        await drain();
        instance.stop();
        await finished;
      })();
      return closing;
    },
  };
}
