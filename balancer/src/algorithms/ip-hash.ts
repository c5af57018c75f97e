import type { IncomingMessage } from 'node:http';
import type { Backend } from '../pool.js';
import type { Algorithm } from './index.js';
import { clientAddress, hash32 } from './hash.js';

/**
 * IpHash sends each client address to the same backend while the set of available backends
 * stays the same (hash modulo count, as nginx's ip_hash). When the set changes, most clients
 * move: use consistent-hash where that matters.
 */
export class IpHash implements Algorithm {
  pick(candidates: readonly Backend[], req: IncomingMessage): Backend | undefined {
    if (candidates.length === 0) return undefined;
    return candidates[hash32(clientAddress(req)) % candidates.length];
  }
}
