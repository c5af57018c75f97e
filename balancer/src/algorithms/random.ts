import type { Candidate } from '../backends/view.js';
import type { Algorithm } from './index.js';

/** RandomChoice picks a backend at random, in proportion to its weight. */
export class RandomChoice implements Algorithm {
  pick<T extends Candidate>(candidates: readonly T[]): T | undefined {
    const now = Date.now();
    let total = 0;
    for (const backend of candidates) total += backend.effectiveWeight(now);
    let point = Math.random() * total;
    for (const backend of candidates) {
      point -= backend.effectiveWeight(now);
      if (point < 0) return backend;
    }
    return candidates[candidates.length - 1];
  }
}
