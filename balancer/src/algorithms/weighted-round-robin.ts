import type { Candidate } from '../backends/view.js';
import type { Algorithm } from './index.js';

/**
 * WeightedRoundRobin is nginx's smooth weighted round robin: each pick adds every weight to its
 * backend's running score, takes the highest and subtracts the total from it. Weights 3:1:1
 * give a b a c a ... rather than a a a b c.
 */
export class WeightedRoundRobin implements Algorithm {
  private readonly current = new WeakMap<Candidate, number>();

  pick<T extends Candidate>(candidates: readonly T[]): T | undefined {
    let best: T | undefined;
    let bestScore = -Infinity;
    let total = 0;
    const now = Date.now();
    for (const backend of candidates) {
      const weight = backend.effectiveWeight(now);
      const score = (this.current.get(backend) ?? 0) + weight;
      this.current.set(backend, score);
      total += weight;
      if (score > bestScore) {
        best = backend;
        bestScore = score;
      }
    }
    if (best) this.current.set(best, bestScore - total);
    return best;
  }
}
