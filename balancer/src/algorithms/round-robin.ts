import type { Candidate } from '../backends/view.js';
import type { Algorithm } from './index.js';

/** RoundRobin gives each available backend one request in turn, ignoring weights. O(1). */
export class RoundRobin implements Algorithm {
  private next = 0;

  pick<T extends Candidate>(candidates: readonly T[]): T | undefined {
    if (candidates.length === 0) return undefined;
    if (this.next >= candidates.length) this.next = 0;
    return candidates[this.next++];
  }
}
