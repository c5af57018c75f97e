import type { Candidate } from '../backends/view.js';
import type { Algorithm } from './index.js';

/**
 * PowerOfTwoChoices samples two different backends at random and takes the one with fewer
 * requests in flight per unit of weight (Mitzenmacher, "The Power of Two Choices in Randomized
 * Load Balancing", 2001): nearly as good as least-connections without a full scan. O(1).
 */
export class PowerOfTwoChoices implements Algorithm {
  pick<T extends Candidate>(candidates: readonly T[]): T | undefined {
    const now = Date.now();
    return betterOfTwo(candidates, (backend) => backend.load.activeRequests / backend.effectiveWeight(now));
  }
}

/** betterOfTwo samples two different candidates at random and returns the one of lower cost (a tie: either). */
export function betterOfTwo<T>(candidates: readonly T[], cost: (backend: T) => number): T | undefined {
  const count = candidates.length;
  if (count < 2) return candidates[0];
  const i = Math.floor(Math.random() * count);
  let j = Math.floor(Math.random() * (count - 1));
  if (j >= i) j++;
  const a = candidates[i]!;
  const b = candidates[j]!;
  const costA = cost(a);
  const costB = cost(b);
  if (costA === costB) return Math.random() < 0.5 ? a : b;
  return costA < costB ? a : b;
}
