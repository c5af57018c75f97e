/** Latency percentiles in milliseconds, rounded to the microsecond. */
export interface LatencySummary {
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

/** Latencies keeps every latency of a one-off run, for exact percentiles. */
export class Latencies {
  #values = new Float64Array(1 << 14);
  #count = 0;

  add(ms: number): void {
    if (this.#count === this.#values.length) {
      const grown = new Float64Array(this.#values.length * 2);
      grown.set(this.#values);
      this.#values = grown;
    }
    this.#values[this.#count++] = ms;
  }

  /** Percentiles (nearest rank) of the latencies so far; all 0 when there are none. */
  summary(): LatencySummary {
    if (this.#count === 0) return { p50: 0, p90: 0, p99: 0, max: 0, mean: 0 };
    const sorted = this.#values.slice(0, this.#count).sort();
    const at = (p: number): number => round(sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!);
    let sum = 0;
    for (const value of sorted) sum += value;
    return { p50: at(50), p90: at(90), p99: at(99), max: round(sorted[sorted.length - 1]!), mean: round(sum / sorted.length) };
  }
}

export function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}
