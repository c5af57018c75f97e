/**
 * What the request path may know of a backend: read-only views. The control plane owns
 * membership, health and ejection; the data plane owns load (requests in flight, latency).
 * Nothing outside an owner writes these fields.
 */

/** LoadView: a backend's load as the data plane of this process sees it. */
export interface LoadView {
  /** requests (or connections) in flight to the backend */
  readonly activeRequests: number;
  /** requests started since the backend joined */
  readonly totalRequests: number;
  /** latencyObserved: at least one response has been timed */
  readonly latencyObserved: boolean;
  /** latencyScoreMs: the peak EWMA of response-header latency as of now; it fades toward 0 while no responses arrive */
  latencyScoreMs(now: number): number;
}

/** Candidate: an available backend as an algorithm sees it. */
export interface Candidate {
  readonly id: string;
  /** weight: the configured weight (consistent-hash places weight × virtualNodes points) */
  readonly weight: number;
  /** effectiveWeight: the weight to balance by now; it ramps from 10% to 100% during slow start */
  effectiveWeight(now: number): number;
  readonly load: LoadView;
}

/** PickContext: what an algorithm may know of the request or connection, whatever the protocol. */
export interface PickContext {
  /** the address of the TCP peer */
  readonly clientAddress: string;
  /** what hash algorithms hash: the configured header's value, else the client address */
  readonly hashKey: string;
}
