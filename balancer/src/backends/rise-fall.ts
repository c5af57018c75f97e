import { log } from '@lab/common/log';

/**
 * Flap damping: a backend that goes down within this long of coming back up is flapping, and the
 * passes its next rise needs double (up to FLAP_MAX_RISE); once it stays up this long, rise applies again.
 * Only coming *back* counts: a backend's first time up (at its first check, or by rise after a first
 * check that failed, as in a cold start) is not a return.
 */
const FLAP_WINDOW_MS = 10_000;
const FLAP_MAX_RISE = 8;

export interface RiseFallSettings {
  /** consecutive passes to become healthy */
  rise: number;
  /** consecutive failures to become unhealthy */
  fall: number;
}

/**
 * StatusSetter is all the health state sees of the backends (as Traefik's checkers see the
 * balancer only as SetStatus): whether one is up now, and the one call that changes it.
 */
export interface StatusSetter {
  /** isUp: the backend's current status, or undefined when it is not a member (any more) */
  isUp(id: string): boolean | undefined;
  setStatus(id: string, up: boolean, why: string): void;
}

interface Counts {
  checked: boolean;
  passes: number;
  failures: number;
  /** it has been up before: the next time passing checks bring it up, it comes back */
  beenUp: boolean;
  /** when passing checks last brought it back up after being down (0: up since its first time, or down) */
  cameUpAt: number;
  /** passes needed to come up, raised above rise while the backend flaps (0: rise) */
  flapRise: number;
}

/**
 * RiseFall turns health results into up and down: the first active check decides at once;
 * after that, rise consecutive passes bring a backend up and fall consecutive failures (checks
 * or failed proxied tries) take it down, with flap damping. It owns the counters; the status
 * itself goes through the StatusSetter.
 */
export class RiseFall {
  private readonly counts = new Map<string, Counts>();

  constructor(
    private readonly setter: StatusSetter,
    private settings: RiseFallSettings,
    private readonly now: () => number = Date.now,
  ) {}

  configure(settings: RiseFallSettings): void {
    this.settings = settings;
  }

  forget(id: string): void {
    this.counts.delete(id);
  }

  /** check applies one active health check result. */
  check(id: string, passed: boolean, detail: string): void {
    const up = this.setter.isUp(id);
    if (up === undefined) return;
    const counts = this.countsOf(id);
    if (!counts.checked) {
      counts.checked = true;
      counts.passes = passed ? 1 : 0;
      counts.failures = passed ? 0 : 1;
      counts.beenUp = passed;
      this.setter.setStatus(id, passed, `first health check ${passed ? 'passed' : 'failed'}: ${detail}`);
      // A backend starts unhealthy, so this is no state change to log: without this line nothing would say why it stays down.
      if (!passed) log.warn(`backend ${id} stays unhealthy: its first health check failed`, { why: detail });
      return;
    }
    if (!passed) {
      this.fail(id, counts, up, `health check failed: ${detail}`);
      return;
    }
    counts.passes++;
    counts.failures = 0;
    const rise = Math.max(this.settings.rise, counts.flapRise);
    if (!up && counts.passes >= rise) {
      counts.cameUpAt = counts.beenUp ? this.now() : 0;
      counts.beenUp = true;
      this.setter.setStatus(id, true, `${counts.passes} consecutive health checks passed`);
    } else if (up && counts.flapRise > 0 && this.now() - counts.cameUpAt >= FLAP_WINDOW_MS) {
      counts.flapRise = 0;
    }
  }

  /** passiveFailure counts a failed proxied try (refused, connect or per-try timeout) like a failed check. */
  passiveFailure(id: string, detail: string): void {
    const up = this.setter.isUp(id);
    if (up === undefined) return;
    this.fail(id, this.countsOf(id), up, `proxied request failed: ${detail}`);
  }

  private fail(id: string, counts: Counts, up: boolean, why: string): void {
    counts.failures++;
    counts.passes = 0;
    if (!up || counts.failures < this.settings.fall) return;
    let flapping = '';
    if (counts.cameUpAt > 0 && this.now() - counts.cameUpAt < FLAP_WINDOW_MS) {
      counts.flapRise = Math.min(Math.max(this.settings.rise, counts.flapRise) * 2, Math.max(FLAP_MAX_RISE, this.settings.rise));
      flapping = `; flapping (down within ${FLAP_WINDOW_MS / 1000} s of coming up), so its next rise needs ${counts.flapRise} passes`;
    }
    counts.cameUpAt = 0;
    this.setter.setStatus(id, false, `${counts.failures} consecutive failures, last: ${why}${flapping}`);
  }

  private countsOf(id: string): Counts {
    let counts = this.counts.get(id);
    if (!counts) this.counts.set(id, (counts = { checked: false, passes: 0, failures: 0, beenUp: false, cameUpAt: 0, flapRise: 0 }));
    return counts;
  }
}
