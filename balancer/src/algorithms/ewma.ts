import type { Candidate } from '../backends/view.js';
import type { Algorithm } from './index.js';
import { betterOfTwo } from './p2c.js';

/** Assumed response time of a backend when no backend has answered yet. */
const DEFAULT_LATENCY_MS = 1;

/**
 * PeakEwma compares two backends sampled at random and picks the one with the lower expected wait:
 * the peak EWMA of its response time times (requests in flight + 1), divided by weight (Finagle's
 * and Linkerd's peak EWMA with P2C). Sampling two, not scanning all, keeps the fastest backend from
 * taking every request when the others are only a little slower (herding), and costs O(1).
 * A latency spike counts at once; recovery is smoothed; a backend without recent answers
 * fades back toward 0 and is tried again. A backend that has never answered is assumed to be
 * as fast as the average of the others, so it does not swallow every request until its first
 * answer; that average is the only scan, and only while such a backend is sampled.
 */
export class PeakEwma implements Algorithm {
  pick<T extends Candidate>(candidates: readonly T[]): T | undefined {
    const now = Date.now();
    let assumed = -1;
    return betterOfTwo(candidates, (backend) => {
      let latency: number;
      if (backend.load.latencyObserved) latency = backend.load.latencyScoreMs(now);
      else latency = assumed >= 0 ? assumed : (assumed = averageObserved(candidates, now));
      return (latency * (backend.load.activeRequests + 1)) / backend.effectiveWeight(now);
    });
  }
}

function averageObserved(candidates: readonly Candidate[], now: number): number {
  let sum = 0;
  let observed = 0;
  for (const backend of candidates) {
    if (!backend.load.latencyObserved) continue;
    sum += backend.load.latencyScoreMs(now);
    observed++;
  }
  return observed > 0 ? sum / observed : DEFAULT_LATENCY_MS;
}
