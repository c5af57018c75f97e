/**
 * The body of GET /status.json, as the server fills it and the status page reads it. Types only and
 * no Node imports: the page's own compilation (DOM, no Node types) imports this module too.
 */

export type StatusEventKind = 'state' | 'ejection' | 'algorithm' | 'reload' | 'backend' | 'workers';

export interface StatusEvent {
  /** ISO time */
  at: string;
  kind: StatusEventKind;
  message: string;
  backend?: string;
  /**
   * with several listeners, the listener the event happened on; absent on the balancer's own events
   * (worker upgrades and deaths, reloads refused, listeners added or removed) and whenever there is
   * only one listener
   */
  listener?: string;
}

export interface BackendTraffic {
  /** requests per second over the last 10 complete seconds (fewer if the backend's first request was more recent) */
  rps: number;
  /** share of answers that were errors (5xx, balancer errors, no answer) over the last 10 complete seconds, 0..1 */
  errorRate: number;
  /** latency percentiles over the last 10 complete seconds, in milliseconds (0 without requests) */
  p50Ms: number;
  p99Ms: number;
  /** one value per complete second of the window, oldest first */
  series: { rps: number[]; errorRate: number[]; p99Ms: number[] };
}

export interface StatusBackend {
  id: string;
  url: string;
  weight: number;
  state: 'healthy' | 'unhealthy' | 'draining' | 'ejected';
  activeRequests: number;
  totalRequests: number;
}

export type StatusBackendView = StatusBackend & BackendTraffic;

/** A traffic worker process, as GET /workers lists it. */
export interface StatusWorker {
  pid: number;
  /** ISO time */
  startedAt: string;
  /** starting: forked, not listening yet; serving: takes new connections; draining: finishes what it has, then exits */
  state: 'starting' | 'serving' | 'draining';
  activeRequests: number;
  totalRequests: number;
  /** client connections open now, and accepted since it started */
  connections: number;
  acceptedConnections: number;
}

/** The listener modes; in a tcp listener every "request" figure counts client connections instead. */
export type StatusListenerMode = 'http' | 'tcp';

/** Requests refused for lack of an available backend (counted under the backend label "none"). */
export interface StatusRefused {
  rps: number;
  series: number[];
}

/**
 * One listener: its own backends, algorithm and traffic. In a tcp listener the traffic figures are
 * per connection: rps counts connections that ended per second, p50Ms and p99Ms are how long
 * connections lasted, activeRequests the connections open now, totalRequests those opened; errorRate
 * and refused stay 0 (a failed connect is retried on another backend, not recorded as an answer).
 */
export interface StatusListener {
  /** "default" for a file without `listeners:` */
  name: string;
  mode: StatusListenerMode;
  /** it terminates TLS (https, or TLS over tcp) */
  tls: boolean;
  /** host:port it listens on (the port it got, when the configuration says 0) */
  address: string;
  algorithm: string;
  /** the engine that forwards requests in http mode: http-proxy or undici (unused in tcp mode) */
  engine: string;
  backends: StatusBackendView[];
  refused: StatusRefused;
}

/**
 * The top-level algorithm, engine, backends and refused are the first listener's, as before there
 * were several (the unprefixed admin calls address it too); `listeners` has every listener, the
 * first included. Workers, events and the token setting are the balancer's as a whole.
 */
export interface StatusDocument {
  /** the first listener's */
  algorithm: string;
  algorithms: readonly string[];
  /** the first listener's engine that forwards requests: http-proxy or undici */
  engine: string;
  tokenRequired: boolean;
  /** the first listener's */
  backends: StatusBackendView[];
  /** every listener, in the order of the configuration */
  listeners: StatusListener[];
  /** the traffic workers, oldest first */
  workers: StatusWorker[];
  /** the first listener's refused requests */
  refused: StatusRefused;
  /** every listener's events in one timeline, newest first, at most 50; an event of the balancer's own is listed once */
  events: StatusEvent[];
  generatedAt: string;
}
