import type { Candidate } from '../backends/view.js';
import type { Algorithm } from './index.js';
import { WeightTable } from './weight-table.js';

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
  private heap: Entry[] = [];
  /** the deadline of the last pick: where turns of a rebuilt schedule start */
  private clock = 0;

  pick<T extends Candidate>(candidates: readonly T[]): T | undefined {
    const now = Date.now();
    if (this.table.stale(candidates, now)) this.rebuild(candidates, this.table.weightsOf(candidates, now));
    const next = this.heap[0];
    if (!next) return undefined;
    this.clock = next.deadline;
    next.deadline += 1 / next.weight;
    this.siftDown(0);
    return candidates[next.index];
  }

  /** rebuild schedules these candidates; one that was scheduled keeps its turn (brought forward if its weight grew). */
  private rebuild(candidates: readonly Candidate[], weights: readonly number[]): void {
    const due = new Map(this.heap.map((entry) => [entry.id, entry.deadline]));
    this.heap = [];
    const count = weights.length;
    weights.forEach((weight, index) => {
      if (weight <= 0) return;
      const id = candidates[index]!.id;
      const fresh = this.clock + (index + 0.5) / (count * weight);
      this.heap.push({ id, index, weight, deadline: Math.min(due.get(id) ?? fresh, this.clock + 1 / weight) });
    });
    for (let i = (this.heap.length >> 1) - 1; i >= 0; i--) this.siftDown(i);
  }

  private siftDown(from: number): void {
    const heap = this.heap;
    let i = from;
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let smallest = i;
      if (left < heap.length && earlier(heap[left]!, heap[smallest]!)) smallest = left;
      if (right < heap.length && earlier(heap[right]!, heap[smallest]!)) smallest = right;
      if (smallest === i) return;
      [heap[i], heap[smallest]] = [heap[smallest]!, heap[i]!];
      i = smallest;
    }
  }
}

function earlier(a: Entry, b: Entry): boolean {
  return a.deadline < b.deadline || (a.deadline === b.deadline && a.index < b.index);
}
