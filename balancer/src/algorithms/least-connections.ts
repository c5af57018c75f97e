import type { Candidate } from '../backends/view.js';
import type { Algorithm } from './index.js';
import { WeightTable } from './weight-table.js';

/**
 * LeastConnections picks the backend with the fewest requests in flight per unit of weight, as
 * HAProxy's leastconn: the candidates sit in a binary heap keyed by that ratio and move when their
 * load changes (loadChanged), so a pick is O(1) and a change O(log n) instead of a scan of the
 * pool. Equal backends take turns: the one picked gets a request in flight and sinks.
 */
export class LeastConnections implements Algorithm {
  private readonly table = new WeightTable();
  private heap: Candidate[] = [];
  private weights = new Map<Candidate, number>();
  private positions = new Map<Candidate, number>();

  pick<T extends Candidate>(candidates: readonly T[]): T | undefined {
    if (this.table.stale(candidates, Date.now())) this.rebuild(candidates);
    return this.heap[0] as T | undefined;
  }

  loadChanged(candidate: Candidate): void {
    const at = this.positions.get(candidate);
    if (at === undefined) return;
    this.siftDown(this.siftUp(at));
  }

  private rebuild(candidates: readonly Candidate[]): void {
    const weights = this.table.weightsOf(candidates, Date.now());
    this.heap = [];
    this.weights = new Map();
    candidates.forEach((candidate, i) => {
      if (weights[i]! <= 0) return;
      this.heap.push(candidate);
      this.weights.set(candidate, weights[i]!);
    });
    this.positions = new Map(this.heap.map((candidate, i) => [candidate, i]));
    for (let i = (this.heap.length >> 1) - 1; i >= 0; i--) this.siftDown(i);
  }

  private cost(candidate: Candidate): number {
    return candidate.load.activeRequests / this.weights.get(candidate)!;
  }

  private siftUp(from: number): number {
    let i = from;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this.cost(this.heap[parent]!) <= this.cost(this.heap[i]!)) break;
      this.swap(i, parent);
      i = parent;
    }
    return i;
  }

  private siftDown(from: number): void {
    const heap = this.heap;
    let i = from;
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let smallest = i;
      if (left < heap.length && this.cost(heap[left]!) < this.cost(heap[smallest]!)) smallest = left;
      if (right < heap.length && this.cost(heap[right]!) < this.cost(heap[smallest]!)) smallest = right;
      if (smallest === i) return;
      this.swap(i, smallest);
      i = smallest;
    }
  }

  private swap(a: number, b: number): void {
    const heap = this.heap;
    [heap[a], heap[b]] = [heap[b]!, heap[a]!];
    this.positions.set(heap[a]!, a);
    this.positions.set(heap[b]!, b);
  }
}
