import type { Backend } from '../pool.js';

/** lowestCost returns the candidate with the lowest cost; ties are broken uniformly at random (reservoir sampling). */
export function lowestCost(candidates: readonly Backend[], cost: (backend: Backend) => number): Backend | undefined {
  let best: Backend | undefined;
  let bestCost = Infinity;
  let ties = 0;
  for (const backend of candidates) {
    const value = cost(backend);
    if (value < bestCost) {
      best = backend;
      bestCost = value;
      ties = 1;
    } else if (value === bestCost && Math.random() * ++ties < 1) {
      best = backend;
    }
  }
  return best;
}
