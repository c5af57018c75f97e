import type { AlgorithmName } from './algorithms/index.js';
import type { EngineName } from './engines/engine.js';
import type { TlsMaterial } from './tls-material.js';

/**
 * The data plane runs from one Snapshot: plain, frozen data that the control plane replaces
 * whole on every change (and that cluster mode can send to its workers as it is).
 */
export interface Snapshot {
  /** grows by one with every snapshot the control plane publishes */
  readonly version: number;
  readonly algorithm: AlgorithmName;
  readonly virtualNodes: number;
  /** the lower-case header whose value hash algorithms hash; undefined: the client address */
  readonly hashHeader: string | undefined;
  readonly engine: EngineName;
  readonly timeouts: Readonly<{ connect: number; perTry: number; request: number; idle: number; drain: number; clientHeader: number; clientIdle: number }>;
  /** what one client may take: connections at once (both modes), head and body sizes (http) */
  readonly limits: Readonly<{ maxConnections: number; maxHeaderBytes: number; maxBodyBytes: number }>;
  /** tcp listeners: the PROXY protocol header sent on every backend connection */
  readonly proxyProtocol: 'off' | 'v1' | 'v2';
  /** the listener's certificate and key (a reload with new files swaps them), and how https:// backends are verified */
  readonly tls: TlsMaterial;
  /** further tries, each on a different backend */
  readonly retryAttempts: number;
  /** every member, available or not */
  readonly backends: readonly BackendEntry[];
}

/** Share of its weight a backend starts slow start with. */
export const SLOW_START_FLOOR = 0.1;

/** One backend as the data plane needs it. */
export interface BackendEntry {
  readonly id: string;
  readonly url: string;
  readonly weight: number;
  /** available: takes new requests (with panic mode applied) */
  readonly available: boolean;
  /** removing: leaves once its requests in flight have finished; the data plane says when */
  readonly removing: boolean;
  /** draining: takes no new requests or connections; a tcp listener closes its open connections after timeouts.drain */
  readonly draining: boolean;
  /** slow start ramp in ms since the epoch, when one is in progress */
  readonly slowStart: Readonly<{ from: number; until: number }> | undefined;
}
