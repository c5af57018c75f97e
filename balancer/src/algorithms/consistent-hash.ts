import type { Candidate, PickContext } from '../backends/view.js';
import type { Algorithm } from './index.js';
import { hash32 } from './hash.js';

interface Ring<T> {
  points: Uint32Array;
  owners: T[];
}

/**
 * ConsistentHash places every backend on a hash ring (Karger et al.; virtual nodes as in
 * ketama, weight times virtualNodes points each) and sends a key to the first point at or after
 * its hash. Removing one backend moves only the keys it owned. O(log points) per pick; the ring
 * is rebuilt only when the set of candidates changes.
 */
export class ConsistentHash implements Algorithm {
  private ring: Ring<Candidate> | undefined;
  private ringFor: readonly Candidate[] | undefined;

  constructor(private readonly virtualNodes: number) {}

  pick<T extends Candidate>(candidates: readonly T[], context: PickContext): T | undefined {
    return this.owner(candidates, context.hashKey);
  }

  owner<T extends Candidate>(candidates: readonly T[], key: string): T | undefined {
    if (candidates.length === 0) return undefined;
    if (this.ringFor !== candidates) {
      this.ring = buildRing(candidates, this.virtualNodes);
      this.ringFor = candidates;
    }
    const { points, owners } = this.ring as Ring<T>;
    if (points.length === 0) return undefined;
    const hash = hash32(key);
    let low = 0;
    let high = points.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (points[mid]! < hash) low = mid + 1;
      else high = mid;
    }
    return owners[low === points.length ? 0 : low];
  }
}

function buildRing<T extends Candidate>(backends: readonly T[], virtualNodes: number): Ring<T> {
  const entries: { point: number; owner: T }[] = [];
  for (const backend of backends) {
    const count = Math.max(1, backend.weight) * virtualNodes;
    for (let i = 0; i < count; i++) entries.push({ point: hash32(`${backend.id}#${i}`), owner: backend });
  }
  entries.sort((a, b) => a.point - b.point || (a.owner.id < b.owner.id ? -1 : 1));
  return { points: Uint32Array.from(entries, (entry) => entry.point), owners: entries.map((entry) => entry.owner) };
}
