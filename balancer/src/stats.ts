/**
 * Rolling per-backend traffic statistics for the status page: requests, errors and latency per
 * second over a short window, kept in preallocated ring buffers so that recording a request costs
 * a few array writes and no allocation.
 */

import type { BackendTraffic, StatusEvent, StatusEventKind } from './status-document.js';

// Declared with the status document; still exported from here for code that imports them from stats.js.
export type { BackendTraffic, StatusEvent, StatusEventKind } from './status-document.js';

export interface TrafficSnapshot {
  backends: Record<string, BackendTraffic>;
  /** newest first */
  events: StatusEvent[];
}

/** How many complete seconds rps, errorRate, p50Ms and p99Ms are computed over. */
export const RECENT_SECONDS = 10;

/** How many notable events are kept. */
export const EVENT_CAPACITY = 50;

/**
 * Latency histogram: bin 0 holds everything under HISTOGRAM_MIN_MS, then BINS_PER_OCTAVE bins per
 * doubling (each about 19% wide, so a percentile is off by at most about 9%) up to about 110 s;
 * the last bin holds everything above.
 */
const HISTOGRAM_MIN_MS = 0.05;
const BINS_PER_OCTAVE = 4;
const HISTOGRAM_BINS = 2 + 21 * BINS_PER_OCTAVE;

function binOf(ms: number): number {
  if (!(ms >= HISTOGRAM_MIN_MS)) return 0;
  const bin = 1 + Math.floor(Math.log2(ms / HISTOGRAM_MIN_MS) * BINS_PER_OCTAVE);
  return bin < HISTOGRAM_BINS ? bin : HISTOGRAM_BINS - 1;
}

/** binValueMs: the value reported for a bin, the geometric middle of its bounds. */
function binValueMs(bin: number): number {
  if (bin === 0) return HISTOGRAM_MIN_MS / 2;
  return HISTOGRAM_MIN_MS * 2 ** ((bin - 0.5) / BINS_PER_OCTAVE);
}

/** percentileOf reads the p-quantile (0..1) from histogram counts starting at offset, given their total. */
function percentileOf(counts: Uint32Array, offset: number, total: number, p: number): number {
  if (total === 0) return 0;
  const rank = Math.max(1, Math.ceil(p * total));
  let seen = 0;
  for (let bin = 0; bin < HISTOGRAM_BINS; bin++) {
    seen += counts[offset + bin];
    if (seen >= rank) return binValueMs(bin);
  }
  return binValueMs(HISTOGRAM_BINS - 1);
}

/** One backend's ring of per-second buckets; slot i holds the second seconds[i] (-1: empty). */
class BackendSeconds {
  readonly seconds: Float64Array;
  readonly requests: Uint32Array;
  readonly errors: Uint32Array;
  /** HISTOGRAM_BINS counts per slot, slot after slot */
  readonly latency: Uint32Array;
  /** when the first request was recorded (ms), so that a new backend's rate is not diluted by time before it existed */
  readonly since: number;

  constructor(readonly slots: number, since: number) {
    this.since = since;
    this.seconds = new Float64Array(slots).fill(-1);
    this.requests = new Uint32Array(slots);
    this.errors = new Uint32Array(slots);
    this.latency = new Uint32Array(slots * HISTOGRAM_BINS);
  }

  /** slotFor returns the slot of second, emptying it first if it held an older second. */
  slotFor(second: number): number {
    const slot = second % this.slots;
    if (this.seconds[slot] !== second) {
      this.seconds[slot] = second;
      this.requests[slot] = 0;
      this.errors[slot] = 0;
      this.latency.fill(0, slot * HISTOGRAM_BINS, (slot + 1) * HISTOGRAM_BINS);
    }
    return slot;
  }

  /** slotOf returns the slot holding second, or -1 if nothing was recorded in it. */
  slotOf(second: number): number {
    const slot = second % this.slots;
    return this.seconds[slot] === second ? slot : -1;
  }
}

/**
 * TrafficStats keeps, per backend, what the status page shows: requests per second, error rate
 * and latency percentiles over the last 10 complete seconds, and per-second series over the
 * window (default 60 s) for sparklines; plus the last 50 notable events.
 */
export class TrafficStats {
  readonly windowSeconds: number;
  private readonly slots: number;
  private readonly backends = new Map<string, BackendSeconds>();
  private readonly events: (StatusEvent | undefined)[] = new Array<StatusEvent | undefined>(EVENT_CAPACITY).fill(undefined);
  private nextEvent = 0;
  /** scratch histogram for merging seconds in snapshot() */
  private readonly merged = new Uint32Array(HISTOGRAM_BINS);

  constructor(windowSeconds = 60) {
    if (!Number.isInteger(windowSeconds) || windowSeconds < 1) throw new RangeError(`windowSeconds must be a positive integer, got ${windowSeconds}`);
    this.windowSeconds = windowSeconds;
    // One more slot than the longest look-back, for the second in progress.
    this.slots = Math.max(windowSeconds, RECENT_SECONDS) + 1;
  }

  /**
   * record counts one answered request: the backend that answered (or the label of the refusal),
   * the status sent to the client (0 if none), and the time it took in seconds. Errors are 5xx
   * (which includes the balancer's own 502/503/504) and 0. O(1), no allocation after a backend's
   * first request.
   */
  record(backend: string, status: number, seconds: number, now: number = Date.now()): void {
    const second = Math.floor(now / 1000);
    let ring = this.backends.get(backend);
    if (ring === undefined) {
      ring = new BackendSeconds(this.slots, now);
      this.backends.set(backend, ring);
    }
    const slot = ring.slotFor(second);
    ring.requests[slot]++;
    if (status >= 500 || status === 0) ring.errors[slot]++;
    ring.latency[slot * HISTOGRAM_BINS + binOf(seconds * 1000)]++;
  }

  /** event remembers a notable event (state change, ejection, algorithm switch, reload); the oldest beyond 50 is dropped. */
  event(kind: StatusEventKind, message: string, backend?: string): void {
    const entry: StatusEvent = { at: new Date().toISOString(), kind, message };
    if (backend !== undefined) entry.backend = backend;
    this.events[this.nextEvent] = entry;
    this.nextEvent = (this.nextEvent + 1) % EVENT_CAPACITY;
  }

  /** forget drops a removed backend's traffic; its events stay. */
  forget(backend: string): void {
    this.backends.delete(backend);
  }

  /** snapshot summarises every backend with recorded traffic as of now, over complete seconds only. */
  snapshot(now: number = Date.now()): TrafficSnapshot {
    const current = Math.floor(now / 1000);
    const backends: Record<string, BackendTraffic> = {};
    for (const [id, ring] of this.backends) backends[id] = this.summarise(ring, current);
    const events: StatusEvent[] = [];
    for (let i = 1; i <= EVENT_CAPACITY; i++) {
      const entry = this.events[(this.nextEvent - i + EVENT_CAPACITY) % EVENT_CAPACITY];
      if (entry === undefined) break;
      events.push({ ...entry });
    }
    return { backends, events };
  }

  private summarise(ring: BackendSeconds, current: number): BackendTraffic {
    const window = this.windowSeconds;
    const series = { rps: new Array<number>(window).fill(0), errorRate: new Array<number>(window).fill(0), p99Ms: new Array<number>(window).fill(0) };
    for (let i = 0; i < window; i++) {
      const slot = ring.slotOf(current - window + i);
      if (slot < 0) continue;
      const requests = ring.requests[slot];
      series.rps[i] = requests;
      series.errorRate[i] = requests > 0 ? ring.errors[slot] / requests : 0;
      series.p99Ms[i] = percentileOf(ring.latency, slot * HISTOGRAM_BINS, requests, 0.99);
    }

    const merged = this.merged.fill(0);
    let requests = 0;
    let errors = 0;
    for (let second = current - RECENT_SECONDS; second < current; second++) {
      const slot = ring.slotOf(second);
      if (slot < 0) continue;
      requests += ring.requests[slot];
      errors += ring.errors[slot];
      const offset = slot * HISTOGRAM_BINS;
      for (let bin = 0; bin < HISTOGRAM_BINS; bin++) merged[bin] += ring.latency[offset + bin];
    }
    const seconds = Math.max(1, Math.min(RECENT_SECONDS, current - ring.since / 1000));
    return {
      rps: requests / seconds,
      errorRate: requests > 0 ? errors / requests : 0,
      p50Ms: percentileOf(merged, 0, requests, 0.5),
      p99Ms: percentileOf(merged, 0, requests, 0.99),
      series,
    };
  }
}
