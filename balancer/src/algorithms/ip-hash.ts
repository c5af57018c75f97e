import type { Candidate, PickContext } from '../backends/view.js';
import type { Algorithm } from './index.js';
import { hash32 } from './hash.js';

/**
 * IpHash sends each client address to the same backend while the set of available backends
 * stays the same (hash modulo count, as nginx's ip_hash). When the set changes, most clients
 * move: use consistent-hash where that matters. O(length of the address).
 */
export class IpHash implements Algorithm {
  pick<T extends Candidate>(candidates: readonly T[], context: PickContext): T | undefined {
    if (candidates.length === 0) return undefined;
    return candidates[hash32(context.clientAddress) % candidates.length];
  }
}
