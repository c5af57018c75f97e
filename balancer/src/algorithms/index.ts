import type { Candidate, PickContext } from '../backends/view.js';
import { RoundRobin } from './round-robin.js';
import { WeightedRoundRobin } from './weighted-round-robin.js';
import { LeastConnections } from './least-connections.js';
import { RandomChoice } from './random.js';
import { IpHash } from './ip-hash.js';
import { ConsistentHash } from './consistent-hash.js';
import { PowerOfTwoChoices } from './p2c.js';
import { PeakEwma } from './ewma.js';

/**
 * An Algorithm picks one backend among candidates that are all available (up, not ejected, not
 * draining, not already tried for this request). It reads only the candidates' read-only views
 * and the protocol-neutral pick context; it never sees health configuration or an HTTP request.
 * The same candidates array is passed again until the set of available backends changes, so an
 * algorithm may cache what it derives from it by identity.
 */
export interface Algorithm {
  pick<T extends Candidate>(candidates: readonly T[], context: PickContext): T | undefined;
  /** loadChanged, when an algorithm keeps an index by load: a candidate's requests in flight went up or down. */
  loadChanged?(candidate: Candidate): void;
}

export interface AlgorithmOptions {
  /** Ring points per unit of weight for consistent-hash. */
  virtualNodes: number;
}

/** The registry: adding an algorithm is one file in this folder and one line here. */
const factories = {
  'round-robin': () => new RoundRobin(),
  'weighted-round-robin': () => new WeightedRoundRobin(),
  'least-connections': () => new LeastConnections(),
  random: () => new RandomChoice(),
  'ip-hash': () => new IpHash(),
  'consistent-hash': (options) => new ConsistentHash(options.virtualNodes),
  p2c: () => new PowerOfTwoChoices(),
  ewma: () => new PeakEwma(),
} satisfies Record<string, (options: AlgorithmOptions) => Algorithm>;

export type AlgorithmName = keyof typeof factories;

export const algorithmNames = Object.keys(factories) as [AlgorithmName, ...AlgorithmName[]];

export function createAlgorithm(name: AlgorithmName, options: AlgorithmOptions): Algorithm {
  return factories[name](options);
}
