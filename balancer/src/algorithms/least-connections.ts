import type { Backend } from '../pool.js';
import type { Algorithm } from './index.js';

/** LeastConnections picks the backend with the fewest requests in flight per unit of weight; ties are broken at random. */
export class LeastConnections implements Algorithm {
  pick(candidates: readonly Backend[]): Backend | undefined {
    let best: Backend | undefined;
    let bestLoad = Infinity;
    let ties = 0;
    const now = Date.now();
    for (const backend of candidates) {
      const load = backend.activeRequests / backend.effectiveWeight(now);
      if (load < bestLoad) {
        best = backend;
        bestLoad = load;
        ties = 1;
      } else if (load === bestLoad && Math.random() * ++ties < 1) {
        best = backend;
      }
    }
    return best;
  }
}
