import type { Candidate } from '../backends/view.js';
import type { Algorithm } from './index.js';
import { WeightTable } from './weight-table.js';

/** RandomChoice picks a backend at random, in proportion to its weight: a binary search over cumulative weights, O(log n). */
export class RandomChoice implements Algorithm {
  private readonly weights = new WeightTable();

  pick<T extends Candidate>(candidates: readonly T[]): T | undefined {
    if (candidates.length === 0) return undefined;
    const cumulative = this.weights.cumulative(candidates, Date.now());
    const total = cumulative[cumulative.length - 1]!;
    if (total <= 0) return candidates[Math.floor(Math.random() * candidates.length)];
    const point = Math.random() * total;
    let low = 0;
    let high = cumulative.length - 1;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (cumulative[mid]! <= point) low = mid + 1;
      else high = mid;
    }
    return candidates[low];
  }
}
