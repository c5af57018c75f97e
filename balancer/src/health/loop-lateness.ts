import { performance } from 'node:perf_hooks';

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

/** One per process: the loop is the process's. */
export const loopLateness = new LoopLateness();
