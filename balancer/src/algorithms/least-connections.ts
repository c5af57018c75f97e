import type { Backend } from '../pool.js';
import type { Algorithm } from './index.js';
import { lowestCost } from './lowest-cost.js';

/** LeastConnections picks the backend with the fewest requests in flight per unit of weight; ties are broken at random. */
export class LeastConnections implements Algorithm {
  pick(candidates: readonly Backend[]): Backend | undefined {
    const now = Date.now();
    return lowestCost(candidates, (backend) => backend.activeRequests / backend.effectiveWeight(now));
  }
}
