import { performance } from 'node:perf_hooks';
import { log } from '@lab/common/log';

/** How often the sampler expects to run; what it runs later than that is time the loop lost. */
const TICK_MS = 20;

/**
 * LoopLateness measures how long this process's event loop went without running: a timer that
 * expects to fire every TICK_MS adds up how late it fires. A host starved of CPU (or a stopped
 * process) shows here, and a health check that timed out while the loop lost most of its timeout
 * says nothing about the backend.
 */
export class LoopLateness {
  private lostMs = 0;
  private last = performance.now();
  private timer: NodeJS.Timeout | undefined;

  /** lost is the time the loop has lost since it was first asked, the stall in progress included. */
  lost(): number {
    if (!this.timer) {
      this.last = performance.now();
      this.timer = setInterval(() => this.sample(), TICK_MS).unref();
    }
    return this.lostMs + Math.max(0, performance.now() - this.last - TICK_MS);
  }

  private sample(): void {
    const now = performance.now();
    this.lostMs += Math.max(0, now - this.last - TICK_MS);
    this.last = now;
  }
}

/**
 * A timeout that ran out while this process's event loop lost more than this share of it says
 * nothing about the backend: it may have answered while the balancer was not running.
 */
const OWN_LATENESS_SHARE = 0.5;

/** lostMostOf: the loop lost more than OWN_LATENESS_SHARE of a span of spanMs, lostMs of it. */
export function lostMostOf(lostMs: number, spanMs: number): boolean {
  return lostMs > spanMs * OWN_LATENESS_SHARE;
}

/** One per process: the loop is the process's. */
export const loopLateness = new LoopLateness();

const NOTICE_INTERVAL_MS = 1_000;
let lastNoticeAt = -Infinity;
let unnoticed = 0;

/**
 * stallExplains: a try that timed out after startedAt (performance.now()), when the loop had lost
 * lostBefore, is not held against its backend when this process's own loop lost most of the time
 * it took. Each one set aside is logged, one line a second at most: a stall sets many aside at once.
 */
export function stallExplains(lostBefore: number, startedAt: number, detail: string): boolean {
  const now = performance.now();
  const lostMs = loopLateness.lost() - lostBefore;
  if (!lostMostOf(lostMs, now - startedAt)) return false;
  unnoticed++;
  if (now - lastNoticeAt >= NOTICE_INTERVAL_MS) {
    log.warn('failed try set aside: the balancer itself was late', { tries: unnoticed, last: detail, lostMs: Math.round(lostMs), tookMs: Math.round(now - startedAt) });
    lastNoticeAt = now;
    unnoticed = 0;
  }
  return true;
}
