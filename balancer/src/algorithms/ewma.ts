import type { Backend } from '../pool.js';
import type { Algorithm } from './index.js';

/**
 * PeakEwma picks the backend with the lowest expected wait: the peak EWMA of its response
 * time times (requests in flight + 1), divided by weight (Finagle's and Linkerd's peak EWMA).
 * A latency spike counts at once; recovery is smoothed; a backend without recent answers
 * fades back toward 0 and is tried again.
 */
export class PeakEwma implements Algorithm {
  pick(candidates: readonly Backend[]): Backend | undefined {
    const now = Date.now();
    let best: Backend | undefined;
    let bestCost = Infinity;
    let ties = 0;
    for (const backend of candidates) {
      const cost = (backend.latencyScoreMs(now) * (backend.activeRequests + 1)) / backend.weight;
      if (cost < bestCost) {
        best = backend;
        bestCost = cost;
        ties = 1;
      } else if (cost === bestCost && Math.random() * ++ties < 1) {
        best = backend;
      }
    }
    return best;
  }
}
