import type { IncomingMessage } from 'node:http';
import type { Backend } from '../pool.js';
import { RoundRobin } from './round-robin.js';
import { WeightedRoundRobin } from './weighted-round-robin.js';
import { LeastConnections } from './least-connections.js';
import { RandomChoice } from './random.js';
import { IpHash } from './ip-hash.js';
import { ConsistentHash } from './consistent-hash.js';
import { PowerOfTwoChoices } from './p2c.js';
import { PeakEwma } from './ewma.js';

/**
 * An Algorithm picks one backend for a request among candidates that are all available
 * (up, not draining, not already tried). It never looks at health configuration.
 */
export interface Algorithm {
  pick(candidates: readonly Backend[], req: IncomingMessage): Backend | undefined;
}

export interface AlgorithmOptions {
  /** What consistent-hash hashes: "client-address" or "header:<name>". */
  hashKey: string;
  /** Ring points per unit of weight for consistent-hash. */
  virtualNodes: number;
}

export const algorithmNames = [
  'round-robin',
  'weighted-round-robin',
  'least-connections',
  'random',
  'ip-hash',
  'consistent-hash',
  'p2c',
  'ewma',
] as const;

export type AlgorithmName = (typeof algorithmNames)[number];

const factories = {
  'round-robin': () => new RoundRobin(),
  'weighted-round-robin': () => new WeightedRoundRobin(),
  'least-connections': () => new LeastConnections(),
  random: () => new RandomChoice(),
  'ip-hash': () => new IpHash(),
  'consistent-hash': (options) => new ConsistentHash(options.hashKey, options.virtualNodes),
  p2c: () => new PowerOfTwoChoices(),
  ewma: () => new PeakEwma(),
} satisfies Record<AlgorithmName, (options: AlgorithmOptions) => Algorithm>;

export function createAlgorithm(name: AlgorithmName, options: AlgorithmOptions): Algorithm {
  return factories[name](options);
}
