import type { Backend } from '../pool.js';
import type { Algorithm } from './index.js';

/** LeastConnections picks the backend with the fewest requests in flight per unit of weight; ties are broken at random. */
export class LeastConnections implements Algorithm {
  pick(candidates: readonly Backend[]): Backend | undefined {
    const now = Date.now();
    return lowestCost(candidates, (backend) => backend.activeRequests / backend.effectiveWeight(now));
  }
}

/** lowestCost returns the candidate with the lowest cost; ties are broken uniformly at random (reservoir sampling). */
function lowestCost(candidates: readonly Backend[], cost: (backend: Backend) => number): Backend | undefined {
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
