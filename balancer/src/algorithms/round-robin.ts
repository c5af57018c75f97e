import type { Backend } from '../pool.js';
import type { Algorithm } from './index.js';

/** RoundRobin gives each available backend one request in turn, ignoring weights. */
export class RoundRobin implements Algorithm {
  private next = 0;

  pick(candidates: readonly Backend[]): Backend | undefined {
    if (candidates.length === 0) return undefined;
    if (this.next >= candidates.length) this.next = 0;
    return candidates[this.next++];
  }
}
