import type { IncomingMessage } from 'node:http';
import type { Backend } from '../pool.js';
import type { Algorithm } from './index.js';
import { clientAddress, hash32 } from './hash.js';

interface Ring {
  points: Uint32Array;
  owners: Backend[];
}

/**
 * ConsistentHash places every backend on a hash ring (Karger et al.; virtual nodes as in
 * ketama, weight times virtualNodes points each) and sends a key to the first point at or after
 * its hash. Removing one backend moves only the keys it owned.
 */
export class ConsistentHash implements Algorithm {
  private readonly headerName: string | undefined;
  private ring: Ring | undefined;
  private ringFor: readonly Backend[] | undefined;

  constructor(
    hashKey: string,
    private readonly virtualNodes: number,
  ) {
    this.headerName = hashKey.startsWith('header:') ? hashKey.slice('header:'.length).toLowerCase() : undefined;
  }

  /** key: the header's value when configured and present, else the client address. */
  key(req: IncomingMessage): string {
    if (this.headerName) {
      const value = req.headers[this.headerName];
      if (value !== undefined) return Array.isArray(value) ? value.join(',') : value;
    }
    return clientAddress(req);
  }

  pick(candidates: readonly Backend[], req: IncomingMessage): Backend | undefined {
    if (candidates.length === 0) return undefined;
    return this.owner(candidates, this.key(req));
  }

  owner(candidates: readonly Backend[], key: string): Backend | undefined {
    if (this.ringFor !== candidates) {
      this.ring = buildRing(candidates, this.virtualNodes);
      this.ringFor = candidates;
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
    return owners[low === points.length ? 0 : low];
  }
}

function buildRing(backends: readonly Backend[], virtualNodes: number): Ring {
  const entries: { point: number; owner: Backend }[] = [];
  for (const backend of backends) {
    const count = Math.max(1, backend.weight) * virtualNodes;
    for (let i = 0; i < count; i++) entries.push({ point: hash32(`${backend.id}#${i}`), owner: backend });
  }
  entries.sort((a, b) => a.point - b.point || (a.owner.id < b.owner.id ? -1 : 1));
  return { points: Uint32Array.from(entries, (entry) => entry.point), owners: entries.map((entry) => entry.owner) };
}
