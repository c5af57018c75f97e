import type { Candidate } from '../backends/view.js';
import type { Algorithm } from './index.js';
import { WeightTable } from './weight-table.js';
import { Heap } from './heap.js';

interface Entry {
  id: string;
  index: number;
  weight: number;
  deadline: number;
}

/**
 * WeightedRoundRobin is an earliest-deadline-first scheduler, as Envoy's weighted round robin:
 * each backend's next turn is due 1/weight after its last and the earliest due goes next (ties in
 * list order); a binary heap makes a pick O(log n) where nginx's smooth weighted round robin
 * scans every backend. First turns are staggered over one period, by list position, so that
 * the picks interleave: 3:1:1 gives a a b a c, a a b a c.
 */
export class WeightedRoundRobin implements Algorithm {
  private readonly table = new WeightTable();
  private readonly heap = new Heap<Entry>((a, b) => a.deadline < b.deadline || (a.deadline === b.deadline && a.index < b.index));
  private entries: Entry[] = [];
  /** the deadline of the last pick: where turns of a rebuilt schedule start */
  private clock = 0;

  pick<T extends Candidate>(candidates: readonly T[]): T | undefined {
    const now = Date.now();
    if (this.table.stale(candidates, now)) this.rebuild(candidates, this.table.weightsOf(candidates, now));
    const next = this.heap.top;
    if (!next) return undefined;
    this.clock = next.deadline;
    next.deadline += 1 / next.weight;
    this.heap.update(0);
    return candidates[next.index];
  }

  /** rebuild schedules these candidates; one that was scheduled keeps its turn (brought forward if its weight grew). */
  private rebuild(candidates: readonly Candidate[], weights: readonly number[]): void {
    const due = new Map(this.entries.map((entry) => [entry.id, entry.deadline]));
    const count = weights.length;
    this.entries = [];
    weights.forEach((weight, index) => {
      if (weight <= 0) return;
      const id = candidates[index]!.id;
      const fresh = this.clock + (index + 0.5) / (count * weight);
      this.entries.push({ id, index, weight, deadline: Math.min(due.get(id) ?? fresh, this.clock + 1 / weight) });
    });
    this.heap.reset([...this.entries]);
  }
}
