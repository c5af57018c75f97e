import type { Candidate, PickContext } from '../backends/view.js';
import type { Algorithm } from './index.js';
import { hash32 } from './hash.js';

/** A ring key packs a point (32 bits) and the owner's index in the candidates (20 bits) into one exact double. */
const OWNER_BITS = 2 ** 20;

interface Ring {
  points: Uint32Array;
  owners: Candidate[];
  members: Set<Candidate>;
}

/**
 * ConsistentHash places every backend on a hash ring (Karger et al.; virtual nodes as in
 * ketama, weight times virtualNodes points each) and sends a key to the first point at or after
 * its hash. Removing one backend moves only the keys it owned. A pick is O(log points). The ring
 * is rebuilt when the set of candidates changes, from points cached per backend; a retry's
 * smaller set (the backends not tried yet) walks the same ring to the next allowed owner instead.
 */
export class ConsistentHash implements Algorithm {
  private ring: Ring | undefined;
  private ringFor: readonly Candidate[] | undefined;
  private readonly pointsOf = new Map<string, { weight: number; points: Uint32Array }>();

  constructor(private readonly virtualNodes: number) {}

  pick<T extends Candidate>(candidates: readonly T[], context: PickContext): T | undefined {
    return this.owner(candidates, context.hashKey);
  }

  owner<T extends Candidate>(candidates: readonly T[], key: string): T | undefined {
    if (candidates.length === 0) return undefined;
    let allowed: Set<Candidate> | undefined;
    if (this.ringFor !== candidates) {
      if (this.ring && candidates.length < this.ring.members.size && candidates.every((candidate) => this.ring!.members.has(candidate))) {
        allowed = new Set(candidates);
      } else {
        this.ring = this.build(candidates);
        this.ringFor = candidates;
      }
    }
    const { points, owners } = this.ring!;
    if (points.length === 0) return undefined;
    const hash = hash32(key);
    let low = 0;
    let high = points.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (points[mid]! < hash) low = mid + 1;
      else high = mid;
    }
    for (let step = 0; step < points.length; step++) {
      const owner = owners[(low + step) % points.length]!;
      if (!allowed || allowed.has(owner)) return owner as T;
    }
    return undefined;
  }

  private build(candidates: readonly Candidate[]): Ring {
    if (candidates.length >= OWNER_BITS) throw new RangeError(`consistent-hash supports at most ${OWNER_BITS - 1} backends`);
    const perCandidate = candidates.map((candidate) => this.cachedPoints(candidate));
    const keys = new Float64Array(perCandidate.reduce((sum, points) => sum + points.length, 0));
    let k = 0;
    perCandidate.forEach((points, owner) => {
      for (const point of points) keys[k++] = point * OWNER_BITS + owner;
    });
    keys.sort();
    const points = new Uint32Array(keys.length);
    const owners = new Array<Candidate>(keys.length);
    for (let i = 0; i < keys.length; i++) {
      const owner = keys[i]! % OWNER_BITS;
      points[i] = (keys[i]! - owner) / OWNER_BITS;
      owners[i] = candidates[owner]!;
    }
    // Forget the points of backends long gone (DNS discovery may bring new addresses forever).
    if (this.pointsOf.size > 2 * candidates.length) {
      const ids = new Set(candidates.map((candidate) => candidate.id));
      for (const id of this.pointsOf.keys()) if (!ids.has(id)) this.pointsOf.delete(id);
    }
    return { points, owners, members: new Set(candidates) };
  }

  /** cachedPoints: a backend's ring points, hashed once per id and weight. */
  private cachedPoints(candidate: Candidate): Uint32Array {
    const cached = this.pointsOf.get(candidate.id);
    if (cached && cached.weight === candidate.weight) return cached.points;
    const count = Math.max(1, candidate.weight) * this.virtualNodes;
    const points = new Uint32Array(count);
    for (let i = 0; i < count; i++) points[i] = hash32(`${candidate.id}#${i}`);
    this.pointsOf.set(candidate.id, { weight: candidate.weight, points });
    return points;
  }
}
