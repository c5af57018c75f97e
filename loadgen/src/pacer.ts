/**
 * Pacer spaces requests evenly at a target rate (a token bucket holding at most 20 ms worth of tokens),
 * instead of autocannon's own rate limit, which sends each second's quota as one burst and cannot be
 * changed while running. Rate Infinity: no limit; rate 0: paused.
 */
export class Pacer {
  #rate: number;
  #tokens: number;
  #last = performance.now();
  #queue: (() => void)[] = [];
  #timer: NodeJS.Timeout | undefined;

  constructor(rate: number) {
    this.#rate = rate;
    this.#tokens = rate === 0 ? 0 : 1;
  }

  /** Target requests per second (Infinity: unlimited, 0: paused). */
  get rate(): number {
    return this.#rate;
  }

  set rate(rate: number) {
    this.#refill();
    this.#rate = rate;
    this.#tokens = rate === 0 ? 0 : Math.min(this.#tokens, this.#burst());
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#schedule();
  }

  /** Takes a token now if one is free and nobody is waiting for one. */
  take(): boolean {
    if (this.#rate === Infinity) return true;
    if (this.#queue.length > 0) return false;
    this.#refill();
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  /** Calls `grant` once a token is free; waiters are served in order. */
  wait(grant: () => void): void {
    this.#queue.push(grant);
    this.#schedule();
  }

  /** Forgets every waiter (their grant never runs). */
  clear(): void {
    this.#queue = [];
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #burst(): number {
    return Math.max(1, this.#rate * 0.02);
  }

  #refill(): void {
    const now = performance.now();
    if (this.#rate !== Infinity) this.#tokens = Math.min(this.#burst(), this.#tokens + ((now - this.#last) * this.#rate) / 1000);
    this.#last = now;
  }

  #schedule(): void {
    if (this.#timer !== undefined || this.#queue.length === 0 || this.#rate === 0) return;
    const wait = this.#rate === Infinity ? 0 : Math.max(0, ((1 - this.#tokens) * 1000) / this.#rate);
    this.#timer = setTimeout(() => this.#release(), wait);
  }

  #release(): void {
    this.#timer = undefined;
    this.#refill();
    while (this.#queue.length > 0 && (this.#rate === Infinity || this.#tokens >= 1)) {
      if (this.#rate !== Infinity) this.#tokens -= 1;
      this.#queue.shift()!();
    }
    this.#schedule();
  }
}
