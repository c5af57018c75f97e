import type { Backend } from '../pool.js';
import type { Algorithm } from './index.js';
import { betterOfTwo } from './p2c.js';

/** Assumed response time of a backend when no backend has answered yet. */
const DEFAULT_LATENCY_MS = 1;

/**
 * PeakEwma compares two backends sampled at random and picks the one with the lower expected wait:
 * the peak EWMA of its response time times (requests in flight + 1), divided by weight (Finagle's
 * and Linkerd's peak EWMA with P2C). Sampling two, not scanning all, keeps the fastest backend from
 * taking every request when the others are only a little slower (herding).
 * A latency spike counts at once; recovery is smoothed; a backend without recent answers
 * fades back toward 0 and is tried again. A backend that has never answered is assumed to be
 * as fast as the average of the others, so it does not swallow every request until its first answer.
 */
export class PeakEwma implements Algorithm {
  pick(candidates: readonly Backend[]): Backend | undefined {
    const now = Date.now();
    let observedSum = 0;
    let observed = 0;
    for (const backend of candidates) {
      if (backend.latencyUpdatedAt === 0) continue;
      observedSum += backend.latencyScoreMs(now);
      observed++;
    }
    const assumed = observed > 0 ? observedSum / observed : DEFAULT_LATENCY_MS;
    return betterOfTwo(candidates, (backend) => {
      const latency = backend.latencyUpdatedAt === 0 ? assumed : backend.latencyScoreMs(now);
      return (latency * (backend.activeRequests + 1)) / backend.effectiveWeight(now);
    });
  }
}
