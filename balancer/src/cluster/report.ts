import type { DataPlaneReporter } from '../data-plane.js';
import type { LoadView } from '../backends/view.js';
import type { FailureKind } from '../pipeline/error-mapping.js';
import type { RequestRecorder } from '../pipeline/accounting.js';
import type { BackendReport, WorkerReport } from './messages.js';

/** How often a worker sends what it saw: small enough for outlier detection and the status page, large enough to batch. */
export const REPORT_INTERVAL_MS = 50;

export interface WorkerCounts {
  active: number;
  total: number;
  connections: number;
  accepted: number;
}

/**
 * ReportBatcher is a worker's DataPlaneReporter and RequestRecorder: it collects every finished
 * try, answered request and load change, and sends them to the primary as one WorkerReport every
 * REPORT_INTERVAL_MS (at once when a removed backend has drained).
 */
export class ReportBatcher implements DataPlaneReporter, RequestRecorder {
  private batch = new Map<string, BackendReport>();
  /** what the primary last heard of each backend's load: "active/total" */
  private readonly sentLoad = new Map<string, string>();
  private sentCounts = '';
  private readonly timer: NodeJS.Timeout;
  private requestsServed = 0;

  constructor(
    private readonly send: (report: WorkerReport) => void,
    private readonly loads: () => Iterable<readonly [string, LoadView]>,
    private readonly counts: () => Omit<WorkerCounts, 'total'>,
  ) {
    this.timer = setInterval(() => this.flush(), REPORT_INTERVAL_MS);
    this.timer.unref();
  }

  tryAnswered(id: string, status: number): void {
    const tries = (this.entry(id).tries ??= []);
    if (status >= 500) {
      tries.push(status);
      return;
    }
    const last = tries.length > 0 ? tries[tries.length - 1] : undefined;
    if (typeof last === 'number' && last < 0) tries[tries.length - 1] = last - 1;
    else tries.push(-1);
  }

  tryFailed(id: string, kind: FailureKind, detail: string): void {
    (this.entry(id).tries ??= []).push([kind, detail]);
  }

  drained(id: string): void {
    this.entry(id).drained = true;
    setImmediate(() => this.flush());
  }

  record(backend: string, status: number, seconds: number): void {
    this.requestsServed++;
    (this.entry(backend).requests ??= []).push(status, Math.round(seconds * 100_000) / 100);
  }

  /** flush sends the batch, with every load that changed since the last one; nothing when nothing changed. */
  flush(): void {
    const now = Date.now();
    const batch = this.batch;
    const present = new Set<string>();
    for (const [id, load] of this.loads()) {
      present.add(id);
      const key = `${load.activeRequests}/${load.totalRequests}`;
      if (this.sentLoad.get(id) === key && !batch.has(id)) continue;
      this.sentLoad.set(id, key);
      let entry = batch.get(id);
      if (!entry) batch.set(id, (entry = {}));
      entry.load = [load.activeRequests, load.totalRequests, Math.round(load.latencyScoreMs(now) * 100) / 100];
    }
    const gone = [...this.sentLoad.keys()].filter((id) => !present.has(id));
    for (const id of gone) this.sentLoad.delete(id);
    const worker = { ...this.counts(), total: this.requestsServed };
    const counts = JSON.stringify(worker);
    if (batch.size === 0 && gone.length === 0 && counts === this.sentCounts) return;
    this.sentCounts = counts;
    this.batch = new Map();
    this.send({ type: 'report', backends: Object.fromEntries(batch), ...(gone.length > 0 ? { gone } : {}), worker });
  }

  stop(): void {
    clearInterval(this.timer);
    this.flush();
  }

  private entry(id: string): BackendReport {
    let entry = this.batch.get(id);
    if (!entry) this.batch.set(id, (entry = {}));
    return entry;
  }
}
