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

export interface StatusDocument {
  algorithm: string;
  algorithms: readonly string[];
  /** the engine that forwards requests: http-proxy or undici */
  engine: string;
  tokenRequired: boolean;
  backends: StatusBackendView[];
  /** the traffic workers, oldest first */
  workers: StatusWorker[];
  /** requests refused for lack of an available backend (counted under the backend label "none") */
  refused: { rps: number; series: number[] };
  /** newest first */
  events: StatusEvent[];
  generatedAt: string;
}
