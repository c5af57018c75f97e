import type { Candidate } from '../backends/view.js';

/** While a candidate's weight ramps (slow start), derived weights are read again this often. */
export const RAMP_REFRESH_MS = 100;

/**
 * WeightTable caches what weighted algorithms derive from a candidates array: rebuilt when the
 * array changes (a new snapshot), and every RAMP_REFRESH_MS while a slow-start ramp is in progress.
 */
export class WeightTable {
  private for: readonly Candidate[] | undefined;
  private validUntil = 0;
  private sums = new Float64Array(0);

  /** stale: the table must be rebuilt for these candidates now */
  stale(candidates: readonly Candidate[], now: number): boolean {
    return candidates !== this.for || now >= this.validUntil;
  }

  /** weightsOf reads every candidate's effective weight and marks the table fresh until the next ramp refresh. */
  weightsOf(candidates: readonly Candidate[], now: number): number[] {
    let ramping = false;
    const weights = candidates.map((candidate) => {
      const weight = candidate.effectiveWeight(now);
      if (weight !== candidate.weight) ramping = true;
      return weight;
    });
    this.for = candidates;
    this.validUntil = ramping ? now + RAMP_REFRESH_MS : Infinity;
    return weights;
  }

  /** cumulative: running sums of the effective weights, the last one the total. */
  cumulative(candidates: readonly Candidate[], now: number): Float64Array {
    if (this.stale(candidates, now)) {
      const weights = this.weightsOf(candidates, now);
      this.sums = new Float64Array(weights.length);
      let sum = 0;
      weights.forEach((weight, i) => (this.sums[i] = sum += weight));
    }
    return this.sums;
  }
}
