/** Figures computed from the samples of a load run, and the named assertions the chaos scenarios make on them. */
import assert from 'node:assert/strict';
import { describeFailures, isFailure, type LoadRun, type LoadSample } from '../helpers/load.js';

/** shareOf: the part of these samples that the backend answered (0 when there are none). */
export function shareOf(samples: readonly LoadSample[], backend: string): number {
  return samples.length === 0 ? 0 : samples.filter((s) => s.backend === backend).length / samples.length;
}

/** sentBetween: the samples sent in [fromMs, toMs). */
export function sentBetween(run: LoadRun, fromMs: number, toMs: number): LoadSample[] {
  return run.samples.filter((s) => s.at >= fromMs && s.at < toMs);
}

/** msUntilServed: from fromMs to the first request sent at or after it that the backend answered. */
export function msUntilServed(run: LoadRun, backend: string, fromMs: number): number | undefined {
  const first = run.samples.find((s) => s.at >= fromMs && s.backend === backend && !isFailure(s));
  return first && first.at - fromMs;
}

/** nearShare: within ±tolerance (relative) of the expected share, e.g. 1/3 ± 10% is 0.300..0.367. */
export const nearShare = (share: number, expected: number, tolerance: number): boolean => Math.abs(share - expected) <= expected * tolerance;

/**
 * msUntilShare: from fromMs to the end of the first one-second window (sliding by 100 ms) in which the
 * backend's share of the requests sent is within tolerance of `expected`; undefined if the run ended first.
 */
export function msUntilShare(run: LoadRun, backend: string, fromMs: number, expected: number, tolerance: number): number | undefined {
  const last = run.samples.at(-1)?.at ?? 0;
  for (let start = fromMs; start + 1000 <= last; start += 100) {
    if (nearShare(shareOf(sentBetween(run, start, start + 1000), backend), expected, tolerance)) return start + 1000 - fromMs;
  }
  return undefined;
}

export function expectNoClientErrors(run: LoadRun): void {
  assert.equal(run.failures().length, 0, `client errors: ${describeFailures(run)}`);
}

/** expectWithin: the figure was measured and is at most the limit. */
export function expectWithin(figure: string, valueMs: number | undefined, limitMs: number): void {
  assert.ok(valueMs !== undefined, `${figure}: not seen during the run (limit ${limitMs} ms)`);
  assert.ok(valueMs <= limitMs, `${figure}: ${Math.round(valueMs)} ms, limit ${limitMs} ms`);
}

export function expectAtMost(figure: string, value: number, limit: number): void {
  assert.ok(value <= limit, `${figure}: ${value}, limit ${limit}`);
}

export function expectP99Below(run: LoadRun, limitMs: number): void {
  const p99 = run.percentile(99);
  assert.ok(p99 < limitMs, `p99 latency ${p99.toFixed(1)} ms, limit below ${limitMs} ms`);
}

export function expectShareNear(figure: string, share: number, expected: number, tolerance: number): void {
  assert.ok(nearShare(share, expected, tolerance), `${figure}: ${(share * 100).toFixed(1)}%, expected ${(expected * 100).toFixed(1)}% ± ${tolerance * 100}%`);
}

export function expectShareBelow(figure: string, share: number, limit: number): void {
  assert.ok(share < limit, `${figure}: ${(share * 100).toFixed(1)}%, limit below ${limit * 100}%`);
}

/** expectEvery503Within: every one of these answers is a 503 that came within limitMs (and there were some). */
export function expectEvery503Within(samples: readonly LoadSample[], limitMs: number): void {
  assert.ok(samples.length > 0, 'no request was sent while every backend was down');
  const other = samples.filter((s) => s.status !== 503);
  assert.equal(other.length, 0, `answers other than 503: ${other.slice(0, 5).map((s) => s.error ?? s.status).join(', ')}`);
  const slow = samples.filter((s) => s.ms >= limitMs);
  assert.equal(slow.length, 0, `${slow.length} answers took ${limitMs} ms or more (slowest ${Math.max(...slow.map((s) => s.ms), 0).toFixed(1)} ms)`);
}

/** expectErrorsOnlyWithin: no request failed that was neither in flight at fromMs nor sent by toMs. */
export function expectErrorsOnlyWithin(run: LoadRun, fromMs: number, toMs: number): void {
  // A request still in flight when the window opened is the window's: it was sent before, and met the fault.
  const outside = run.failures().filter((s) => s.at + s.ms < fromMs || s.at > toMs);
  assert.equal(outside.length, 0, `errors outside the window ${Math.round(fromMs)}..${Math.round(toMs)} ms: ${outside.slice(0, 5).map((s) => `${Math.round(s.at)} ms ${s.error ?? s.status}`).join(', ')}`);
}
