import type { ClientErrorMetrics, ClientErrorReason, TrafficMetrics } from '../metrics.js';

/** RequestRecorder: whoever keeps the status page's per-second statistics (the primary's TrafficStats, or a worker's report to it). */
export interface RequestRecorder {
  record(backend: string, status: number, seconds: number): void;
}

/** Accounting records what the request path did, in the Prometheus metrics and in the status page's statistics. */
export class Accounting {
  constructor(
    private readonly metrics: TrafficMetrics,
    private readonly stats: RequestRecorder,
    private readonly clientErrors?: ClientErrorMetrics,
  ) {}

  /** clientError: a client refused for a limit or a malformed request (lb_client_errors_total). */
  clientError(reason: ClientErrorReason): void {
    this.clientErrors?.count(reason);
  }

  /** finished: one answered request, by the backend that answered (or the refusal's label), method label, status sent (499: client went away) and duration. */
  finished(backend: string, method: string, status: number, seconds: number): void {
    this.metrics.recordRequest(backend, method, status, seconds);
    this.stats.record(backend, status, seconds);
  }

  /** retried: a try on this backend failed and the request goes to another one. */
  retried(backend: string): void {
    this.metrics.recordRetry(backend);
  }
}
