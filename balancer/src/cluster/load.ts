import { EWMA_DECAY_MS } from '../backends/load.js';
import type { LoadView } from '../backends/view.js';
import type { WorkerReport } from './messages.js';

interface ReportedLoad {
  active: number;
  total: number;
  latencyMs: number;
  at: number;
}

/**
 * ClusterLoad is the primary's view of the load on each backend, summed over the workers from
 * their latest reports (at most one report interval old). Requests started by workers that have
 * gone stay counted in totalRequests.
 */
export class ClusterLoad {
  private readonly byWorker = new Map<number, Map<string, ReportedLoad>>();
  private readonly retiredTotals = new Map<string, number>();

  update(workerId: number, report: WorkerReport): void {
    let loads = this.byWorker.get(workerId);
    if (!loads) this.byWorker.set(workerId, (loads = new Map()));
    const now = Date.now();
    for (const [id, backend] of Object.entries(report.backends)) {
      if (!backend.load) continue;
      const [active, total, latencyMs] = backend.load;
      loads.set(id, { active, total, latencyMs, at: now });
    }
    // A backend leaves a worker's routes only once it has left the pool.
    for (const id of report.gone ?? []) loads.delete(id);
  }

  /** workerGone: a worker exited; what it started stays in the totals, what it had in flight is over. */
  workerGone(workerId: number): void {
    const loads = this.byWorker.get(workerId);
    if (!loads) return;
    for (const [id, load] of loads) this.retire(id, load.total, loads);
    this.byWorker.delete(workerId);
  }

  /** forget: the backend left the pool; its counts start again from 0 if it is added back. */
  forget(id: string): void {
    this.retiredTotals.delete(id);
    for (const loads of this.byWorker.values()) loads.delete(id);
  }

  view(id: string): LoadView | undefined {
    let active = 0;
    let total = this.retiredTotals.get(id) ?? 0;
    let seen = this.retiredTotals.has(id);
    const latencies: ReportedLoad[] = [];
    for (const loads of this.byWorker.values()) {
      const load = loads.get(id);
      if (!load) continue;
      seen = true;
      active += load.active;
      total += load.total;
      if (load.latencyMs > 0) latencies.push(load);
    }
    if (!seen) return undefined;
    return {
      activeRequests: active,
      totalRequests: total,
      latencyObserved: latencies.length > 0,
      // The peak over workers, each faded since its report, as each worker's own score fades.
      latencyScoreMs: (now) => Math.max(0, ...latencies.map((load) => load.latencyMs * Math.exp(-(now - load.at) / EWMA_DECAY_MS))),
    };
  }

  private retire(id: string, total: number, loads: Map<string, ReportedLoad>): void {
    loads.delete(id);
    if (total > 0) this.retiredTotals.set(id, (this.retiredTotals.get(id) ?? 0) + total);
  }
}
