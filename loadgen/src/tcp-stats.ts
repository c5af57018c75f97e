import { Latencies, round, type LatencySummary } from './latencies.js';
import { count, ms, share, sortedRecord } from './stats.js';
import { TCP_FAILURES, type TcpFailure, type TcpOutcomes } from './tcp-engine.js';

/**
 * The `--json` file of a tcp:// run: the HTTP report's fields where they apply (`requests` counting
 * connections, `errors` the failed ones), then the details. Latencies in milliseconds, over ok connections,
 * from the connect to the last echo (with holdSeconds, the hold is part of it).
 */
export interface TcpRunReport {
  mode: 'tcp';
  /** Every connection opened; each was either ok or failed (errors). */
  requests: number;
  errors: number;
  latency: LatencySummary;
  /** Connections per second over the whole run. */
  rps: number;
  /** Connections per backend, from the greeting line; connections that failed before it are not counted here. */
  byBackend: Record<string, number>;
  /** Connections greeted whose every payload came back, then closed by the loadgen. */
  ok: number;
  errorsByKind: Record<TcpFailure, number>;
  /** Failures by code: socket error codes (ECONNREFUSED, ...), CLOSED, TIMEOUT, MISMATCH, BAD_GREETING. */
  errorsByCode: Record<string, number>;
  durationSeconds: number;
  url: string;
  /** Connections open at once, at most. */
  connections: number;
  payloadBytes: number;
  holdSeconds: number;
  /** The --rate asked for, in connections per second, or null for as fast as possible. */
  targetRate: number | null;
}

/** TcpStats collects a one-off tcp:// run's outcomes, keeping every latency for exact percentiles. */
export class TcpStats implements TcpOutcomes {
  okCount = 0;
  errors = 0;
  readonly byBackend = new Map<string, number>();
  readonly errorsByKind: Record<TcpFailure, number> = { refused: 0, reset: 0, timeout: 0, mismatch: 0, other: 0 };
  readonly errorsByCode = new Map<string, number>();
  readonly #latencies = new Latencies();

  get requests(): number {
    return this.okCount + this.errors;
  }

  ok(latencyMs: number, backend: string): void {
    this.okCount++;
    this.#latencies.add(latencyMs);
    this.byBackend.set(backend, (this.byBackend.get(backend) ?? 0) + 1);
  }

  failed(kind: TcpFailure, code: string, backend: string | undefined): void {
    this.errors++;
    this.errorsByKind[kind]++;
    this.errorsByCode.set(code, (this.errorsByCode.get(code) ?? 0) + 1);
    if (backend !== undefined) this.byBackend.set(backend, (this.byBackend.get(backend) ?? 0) + 1);
  }

  report(run: { url: string; connections: number; rate: number; payloadBytes: number; holdSeconds: number; durationSeconds: number }): TcpRunReport {
    return {
      mode: 'tcp',
      requests: this.requests,
      errors: this.errors,
      latency: this.#latencies.summary(),
      rps: round(run.durationSeconds > 0 ? this.requests / run.durationSeconds : 0),
      byBackend: sortedRecord(this.byBackend),
      ok: this.okCount,
      errorsByKind: { ...this.errorsByKind },
      errorsByCode: sortedRecord(this.errorsByCode),
      durationSeconds: round(run.durationSeconds),
      url: run.url,
      connections: run.connections,
      payloadBytes: run.payloadBytes,
      holdSeconds: run.holdSeconds,
      targetRate: Number.isFinite(run.rate) ? run.rate : null,
    };
  }
}

/** The human summary printed at the end of a one-off tcp:// run. */
export function formatTcpSummary(report: TcpRunReport): string {
  const rate = report.targetRate === null ? 'no rate limit' : `target ${report.targetRate} conn/s`;
  const hold = report.holdSeconds > 0 ? `, each held ${report.holdSeconds} s` : '';
  const kinds = TCP_FAILURES.filter((kind) => kind !== 'other' || report.errorsByKind.other > 0)
    .map((kind) => `${kind} ${count(report.errorsByKind[kind])}`)
    .join(', ');
  const codes = Object.entries(report.errorsByCode).map(([code, n]) => `${code}: ${count(n)}`).join(', ');
  const greeted = Object.values(report.byBackend).reduce((sum, n) => sum + n, 0);
  const backends = Object.entries(report.byBackend)
    .map(([id, n]) => `${id} ${count(n)} (${share(n, greeted)})`)
    .join(', ');
  const { latency } = report;
  return [
    `loadgen: TCP ${report.url} for ${report.durationSeconds.toFixed(1)} s, ${report.payloadBytes}-byte echo${hold}, at most ${report.connections} open, ${rate}`,
    `  connections ${count(report.requests)} (${count(report.ok)} ok, ${count(report.errors)} failed), ${report.rps.toFixed(1)} conn/s achieved`,
    `  latency     p50 ${ms(latency.p50)}, p90 ${ms(latency.p90)}, p99 ${ms(latency.p99)}, max ${ms(latency.max)} (connect to last echo)`,
    `  failures    ${count(report.errors)} (${kinds})${codes ? `; by code ${codes}` : ''}`,
    `  by backend  ${backends || '(no greeting read)'}`,
  ].join('\n');
}
