import { ERROR_KINDS, type ErrorKind, type Outcomes } from './engine.js';
import { Latencies, round, type LatencySummary } from './latencies.js';

/** The `--json` file: the SPEC's fields first, then the details. Latencies in milliseconds, over answered requests. */
export interface RunReport {
  /** Every request sent; each was either answered (responses) or failed (errors). */
  requests: number;
  errors: number;
  /** Answers with a status outside 200..299. */
  non2xx: number;
  latency: LatencySummary;
  /** Requests per second over the whole run. */
  rps: number;
  /** Answers per `x-backend-id`; answers without that header are not counted here. */
  byBackend: Record<string, number>;
  responses: number;
  errorsByKind: Record<ErrorKind, number>;
  /** Errors by socket error code (ECONNREFUSED, ...; CLOSED: closed before the answer; TIMEOUT). */
  errorsByCode: Record<string, number>;
  non2xxByStatus: Record<string, number>;
  statusCounts: Record<string, number>;
  durationSeconds: number;
  url: string;
  method: string;
  connections: number;
  /** The --rate asked for, or null for as fast as possible. */
  targetRate: number | null;
}

/** RunStats collects a one-off run's outcomes, keeping every latency for exact percentiles. */
export class RunStats implements Outcomes {
  responses = 0;
  errors = 0;
  non2xx = 0;
  readonly byStatus = new Map<number, number>();
  readonly byBackend = new Map<string, number>();
  readonly errorsByKind: Record<ErrorKind, number> = { refused: 0, reset: 0, timeout: 0, other: 0 };
  readonly errorsByCode = new Map<string, number>();
  readonly #latencies = new Latencies();

  get requests(): number {
    return this.responses + this.errors;
  }

  response(status: number, latencyMs: number, backend: string | undefined): void {
    this.#latencies.add(latencyMs);
    this.responses++;
    this.byStatus.set(status, (this.byStatus.get(status) ?? 0) + 1);
    if (status < 200 || status > 299) this.non2xx++;
    if (backend !== undefined) this.byBackend.set(backend, (this.byBackend.get(backend) ?? 0) + 1);
  }

  error(kind: ErrorKind, code: string): void {
    this.errors++;
    this.errorsByKind[kind]++;
    this.errorsByCode.set(code, (this.errorsByCode.get(code) ?? 0) + 1);
  }

  /** Latency percentiles (nearest rank) of the answers so far, in milliseconds. */
  latency(): LatencySummary {
    return this.#latencies.summary();
  }

  report(run: { url: string; method: string; connections: number; rate: number; durationSeconds: number }): RunReport {
    const non2xx = new Map([...this.byStatus].filter(([status]) => status < 200 || status > 299));
    return {
      requests: this.requests,
      errors: this.errors,
      non2xx: this.non2xx,
      latency: this.latency(),
      rps: round(run.durationSeconds > 0 ? this.requests / run.durationSeconds : 0),
      byBackend: sortedRecord(this.byBackend),
      responses: this.responses,
      errorsByKind: { ...this.errorsByKind },
      errorsByCode: sortedRecord(this.errorsByCode),
      non2xxByStatus: sortedRecord(non2xx),
      statusCounts: sortedRecord(this.byStatus),
      durationSeconds: round(run.durationSeconds),
      url: run.url,
      method: run.method,
      connections: run.connections,
      targetRate: Number.isFinite(run.rate) ? run.rate : null,
    };
  }
}

export const count = (n: number): string => n.toLocaleString('en-US');
export const ms = (n: number): string => `${n < 10 ? n.toFixed(2) : n < 100 ? n.toFixed(1) : Math.round(n)} ms`;
export const share = (part: number, whole: number): string => (whole > 0 ? `${((100 * part) / whole).toFixed(1)}%` : '0%');

/** The entries of a count map as a sorted record, for the JSON report. */
export function sortedRecord<K>(map: Map<K, number>): Record<string, number> {
  return Object.fromEntries([...map].map(([k, v]): [string, number] => [String(k), v]).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** The human summary printed at the end of a one-off run. */
export function formatSummary(report: RunReport): string {
  const rate = report.targetRate === null ? 'no rate limit' : `target ${report.targetRate} req/s`;
  const kinds = ERROR_KINDS.filter((kind) => kind !== 'other' || report.errorsByKind.other > 0)
    .map((kind) => `${kind} ${count(report.errorsByKind[kind])}`)
    .join(', ');
  const statuses = Object.entries(report.non2xxByStatus).map(([status, n]) => `${status}: ${count(n)}`).join(', ');
  const backends = Object.entries(report.byBackend)
    .map(([id, n]) => `${id} ${count(n)} (${share(n, report.responses)})`)
    .join(', ');
  const { latency } = report;
  return [
    `loadgen: ${report.method} ${report.url} for ${report.durationSeconds.toFixed(1)} s over ${report.connections} connections, ${rate}`,
    `  requests    ${count(report.requests)} (${count(report.responses)} answered, ${count(report.errors)} errors), ${report.rps.toFixed(1)} req/s achieved`,
    `  latency     p50 ${ms(latency.p50)}, p90 ${ms(latency.p90)}, p99 ${ms(latency.p99)}, max ${ms(latency.max)}`,
    `  errors      ${count(report.errors)} (${kinds})`,
    `  non-2xx     ${count(report.non2xx)}${statuses ? ` (${statuses})` : ''}`,
    `  by backend  ${backends || '(no x-backend-id in the answers)'}`,
  ].join('\n');
}
