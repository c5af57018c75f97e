/** Fault injection state for the traffic port, changed only through the control port. */

export type Health = 'pass' | 'fail';

export interface Chaos {
  /** Added to every traffic answer, in milliseconds (default 0). */
  latencyMs: number;
  /** Up to this many more milliseconds, uniformly random per request (default 0). */
  latencyJitterMs: number;
  /** Share of traffic requests, 0..1, answered with errorStatus instead of the identity (default 0). /health is exempt. */
  errorRate: number;
  /** Status of injected errors, 400..599 (default 500). */
  errorStatus: number;
  /** What GET /health reports (default "pass"); "fail" answers 503. */
  health: Health;
  /** While true, traffic requests are accepted and held unanswered until it is cleared (default false). */
  hang: boolean;
}

export const DEFAULT_CHAOS: Readonly<Chaos> = Object.freeze({
  latencyMs: 0,
  latencyJitterMs: 0,
  errorRate: 0,
  errorStatus: 500,
  health: 'pass',
  hang: false,
});

/** Longest latency or jitter accepted, in milliseconds (10 minutes). */
export const MAX_LATENCY_MS = 600_000;

export interface Problem {
  /** The field the problem is about, or "body" for the body as a whole. */
  path: string;
  message: string;
}

export type ParseResult = { ok: true; patch: Partial<Chaos> } | { ok: false; problems: Problem[] };

const FIELDS = Object.keys(DEFAULT_CHAOS) as (keyof Chaos)[];

function describe(value: unknown): string {
  return value === undefined ? 'nothing' : JSON.stringify(value);
}

/**
 * parseChaosPatch checks a PUT/PATCH body: an object with any subset of the Chaos fields.
 * Every problem is reported; a body with any problem yields no patch at all.
 */
export function parseChaosPatch(body: unknown): ParseResult {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return { ok: false, problems: [{ path: 'body', message: `must be a JSON object with any of ${FIELDS.join(', ')}; got ${describe(body)}` }] };
  }
  const input = body as Record<string, unknown>;
  const problems: Problem[] = [];
  const patch: Partial<Chaos> = {};
  for (const key of Object.keys(input)) {
    if (!(FIELDS as string[]).includes(key)) problems.push({ path: key, message: `unknown field; accepted: ${FIELDS.join(', ')}` });
  }
  const number = (key: 'latencyMs' | 'latencyJitterMs' | 'errorRate', min: number, max: number, what: string): void => {
    if (!(key in input)) return;
    const value = input[key];
    if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
      problems.push({ path: key, message: `must be ${what} from ${min} to ${max}; got ${describe(value)}` });
    } else {
      patch[key] = value;
    }
  };
  number('latencyMs', 0, MAX_LATENCY_MS, 'a number of milliseconds');
  number('latencyJitterMs', 0, MAX_LATENCY_MS, 'a number of milliseconds');
  number('errorRate', 0, 1, 'a share');
  if ('errorStatus' in input) {
    const value = input.errorStatus;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 400 || value > 599) {
      problems.push({ path: 'errorStatus', message: `must be an HTTP status from 400 to 599; got ${describe(value)}` });
    } else {
      patch.errorStatus = value;
    }
  }
  if ('health' in input) {
    const value = input.health;
    if (value !== 'pass' && value !== 'fail') problems.push({ path: 'health', message: `must be "pass" or "fail"; got ${describe(value)}` });
    else patch.health = value;
  }
  if ('hang' in input) {
    const value = input.hang;
    if (typeof value !== 'boolean') problems.push({ path: 'hang', message: `must be true or false; got ${describe(value)}` });
    else patch.hang = value;
  }
  return problems.length > 0 ? { ok: false, problems } : { ok: true, patch };
}

/**
 * ChaosState holds the current faults and the traffic requests held by `hang`.
 * It is the only place the faults change, and it logs every change in one line.
 */
export class ChaosState {
  #settings: Chaos = { ...DEFAULT_CHAOS };
  readonly #held = new Set<() => void>();
  readonly #log: (line: string) => void;

  constructor(log: (line: string) => void) {
    this.#log = log;
  }

  /** The current faults; a fresh object is stored on every change, so a reference stays consistent. */
  get current(): Readonly<Chaos> {
    return this.#settings;
  }

  /** Number of traffic requests currently held by `hang`. */
  get heldCount(): number {
    return this.#held.size;
  }

  /** Sets the fields given, keeps the others, and logs what changed. `source` names who asked. */
  apply(patch: Partial<Chaos>, source: string): Readonly<Chaos> {
    return this.#replace({ ...this.#settings, ...patch }, source);
  }

  /** Back to DEFAULT_CHAOS. */
  reset(source: string): Readonly<Chaos> {
    return this.#replace({ ...DEFAULT_CHAOS }, source);
  }

  /**
   * Holds a request until `hang` is cleared (or releaseAll): `release` runs then.
   * Returns a function that forgets the request without running `release` (for a client that went away).
   */
  hold(release: () => void): () => void {
    this.#held.add(release);
    return () => {
      this.#held.delete(release);
    };
  }

  /** Runs every held request's release, as clearing `hang` does. */
  releaseAll(): void {
    const held = [...this.#held];
    this.#held.clear();
    for (const release of held) release();
  }

  #replace(next: Chaos, source: string): Readonly<Chaos> {
    const before = this.#settings;
    const changes = FIELDS.filter((key) => before[key] !== next[key]).map((key) => `${key} ${String(before[key])} -> ${String(next[key])}`);
    this.#settings = Object.freeze(next);
    if (changes.length > 0) {
      const released = before.hang && !next.hang ? this.#held.size : 0;
      this.#log(`chaos changed by ${source}: ${changes.join(', ')}${released > 0 ? ` (releasing ${released} held requests)` : ''}`);
    }
    if (before.hang && !next.hang) this.releaseAll();
    return this.#settings;
  }
}
