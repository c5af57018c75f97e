import type { LoadView } from './view.js';

/** Peak-EWMA time constant: how fast old latency observations fade (Finagle uses 10 s). */
export const EWMA_DECAY_MS = 10_000;

/**
 * LoadStats is one backend's load as this process's data plane sees it: requests in flight,
 * requests started, and the peak EWMA of response-header latency (Finagle's peak EWMA: a spike
 * counts at once, recovery is smoothed). Only the data plane changes it; everyone else reads it
 * as a LoadView.
 */
export class LoadStats implements LoadView {
  #active = 0;
  #total = 0;
  #ewmaMs = 0;
  #updatedAt = 0;

  get activeRequests(): number {
    return this.#active;
  }

  get totalRequests(): number {
    return this.#total;
  }

  get latencyObserved(): boolean {
    return this.#updatedAt !== 0;
  }

  /** latencyEwmaMs: the peak EWMA as of the last observation. */
  get latencyEwmaMs(): number {
    return this.#ewmaMs;
  }

  latencyScoreMs(now: number): number {
    if (this.#updatedAt === 0) return 0;
    return this.#ewmaMs * Math.exp(-(now - this.#updatedAt) / EWMA_DECAY_MS);
  }

  begin(): void {
    this.#active++;
    this.#total++;
  }

  /** end returns the requests still in flight. */
  end(): number {
    return --this.#active;
  }

  observeLatency(ms: number, now: number): void {
    if (this.#updatedAt === 0 || ms > this.#ewmaMs) {
      this.#ewmaMs = ms;
    } else {
      const w = Math.exp(-(now - this.#updatedAt) / EWMA_DECAY_MS);
      this.#ewmaMs = this.#ewmaMs * w + ms * (1 - w);
    }
    this.#updatedAt = now;
  }
}
