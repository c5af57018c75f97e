import type { Candidate } from '../backends/view.js';
import type { Algorithm } from './index.js';
import { WeightTable } from './weight-table.js';
import { Heap } from './heap.js';

interface Entry {
  candidate: Candidate;
  weight: number;
  at: number;
  /** when it was last picked: among equal loads, the one picked longest ago goes first */
  picked: number;
}

/**
 * LeastConnections picks the backend with the fewest requests in flight per unit of weight, as
 * HAProxy's leastconn: the candidates sit in a binary heap keyed by that ratio and move when their
 * load changes (loadChanged), so a pick is O(1) and a change O(log n) instead of a scan of the
 * pool. Equal backends take turns, round-robin, as in HAProxy: among equal loads the one picked
 * longest ago is on top, so short requests or connections that end before the next pick (every
 * load 0 again) still go to every backend in turn rather than to the same two.
 */
export class LeastConnections implements Algorithm {
  private readonly table = new WeightTable();
  private readonly heap = new Heap<Entry>((a, b) => {
    const ratioA = a.candidate.load.activeRequests / a.weight;
    const ratioB = b.candidate.load.activeRequests / b.weight;
    return ratioA < ratioB || (ratioA === ratioB && a.picked < b.picked);
  }, (entry, at) => (entry.at = at));
  private entries = new Map<Candidate, Entry>();
  private picks = 0;

  pick<T extends Candidate>(candidates: readonly T[]): T | undefined {
    if (this.table.stale(candidates, Date.now())) this.rebuild(candidates);
    const top = this.heap.top;
    if (!top) return undefined;
    top.picked = ++this.picks;
    this.heap.update(top.at);
    return top.candidate as T;
  }

  loadChanged(candidate: Candidate): void {
    const entry = this.entries.get(candidate);
    if (entry) this.heap.update(entry.at);
  }

  private rebuild(candidates: readonly Candidate[]): void {
    const weights = this.table.weightsOf(candidates, Date.now());
    const entries: Entry[] = [];
    candidates.forEach((candidate, i) => {
      if (weights[i]! > 0) entries.push({ candidate, weight: weights[i]!, at: 0, picked: 0 });
    });
    this.entries = new Map(entries.map((entry) => [entry.candidate, entry]));
    this.heap.reset(entries);
  }
}
