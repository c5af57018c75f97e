import type { Candidate } from '../backends/view.js';
import type { Algorithm } from './index.js';

/** LeastConnections picks the backend with the fewest requests in flight per unit of weight (HAProxy leastconn); ties are broken at random. */
export class LeastConnections implements Algorithm {
  pick<T extends Candidate>(candidates: readonly T[]): T | undefined {
    const now = Date.now();
    let best: T | undefined;
    let bestCost = Infinity;
    let ties = 0;
    for (const backend of candidates) {
      const cost = backend.load.activeRequests / backend.effectiveWeight(now);
      if (cost < bestCost) {
        best = backend;
        bestCost = cost;
        ties = 1;
      } else if (cost === bestCost && Math.random() * ++ties < 1) {
        best = backend;
      }
    }
    return best;
  }
}
