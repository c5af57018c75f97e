import { Agent, request } from 'node:http';

/** One request of a load run: when it started (ms since the run began), what came back, and from which backend. */
export interface LoadSample {
  at: number;
  ms: number;
  status: number;
  backend: string | undefined;
  error: string | undefined;
  /** sent again once: the reused keep-alive connection it went on was reset before any byte came back */
  retried?: true;
}

export interface LoadOptions {
  url: string;
  /** requests started per second, whatever the answers (open loop) */
  rate: number;
  durationMs: number;
  method?: string;
  headers?: (index: number) => Record<string, string>;
  /** a request with no answer by then counts as an error */
  timeoutMs?: number;
  maxSockets?: number;
}

export interface LoadRun {
  samples: LoadSample[];
  /** requests that failed: transport errors, timeouts, or any status other than 2xx */
  failures(): LoadSample[];
  byBackend(): Record<string, number>;
  percentile(p: number): number;
}

/** isFailure: a request the client saw fail (transport error, timeout, or any status other than 2xx). */
export const isFailure = (s: LoadSample): boolean => s.error !== undefined || s.status < 200 || s.status > 299;

/** percentileOf: the p-th percentile (0..100) of the values, 0 when there are none. */
export function percentileOf(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

/** runLoad sends a steady rate of requests to 127.0.0.1 for a bounded time and records every answer. */
export async function runLoad(options: LoadOptions): Promise<LoadRun> {
  // A timeout of its own makes Node's Agent honour the server's `Keep-Alive: timeout=N` hint (it
  // only ever lowers an existing timeout): an idle socket is closed 1 s before the server would
  // close it, instead of racing the server's close with a new request (an ECONNRESET now and then).
  const agent = new Agent({ keepAlive: true, maxSockets: options.maxSockets ?? 64, timeout: 60_000 });
  const samples: LoadSample[] = [];
  const pending: Promise<void>[] = [];
  const started = performance.now();
  const total = Math.round((options.rate * options.durationMs) / 1000);
  for (let i = 0; i < total; i++) {
    const due = (i * 1000) / options.rate;
    const wait = due - (performance.now() - started);
    if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
    pending.push(sendOne(options, agent, i, started).then((sample) => void samples.push(sample)));
  }
  await Promise.all(pending);
  agent.destroy();
  samples.sort((a, b) => a.at - b.at);
  return {
    samples,
    failures: () => samples.filter(isFailure),
    byBackend: () => {
      const counts: Record<string, number> = {};
      for (const s of samples) if (s.backend) counts[s.backend] = (counts[s.backend] ?? 0) + 1;
      return counts;
    },
    percentile: (p) => percentileOf(samples.map((s) => s.ms), p),
  };
}

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE']);

/**
 * sendOne sends one request. As browsers, undici and Node's fetch do, an idempotent request whose
 * reused keep-alive connection was reset (or closed) before any byte of the answer came back is
 * sent once more, on another connection: the server closed that idle connection just as the
 * request went out, the race that its Keep-Alive: timeout hint makes rare. It is a client error
 * only if the second try fails too.
 */
function sendOne(options: LoadOptions, agent: Agent, index: number, runStarted: number, at = performance.now() - runStarted, retried = false): Promise<LoadSample> {
  return new Promise((resolve) => {
    const done = (status: number, backend: string | undefined, error: string | undefined): void =>
      resolve({ at, ms: performance.now() - runStarted - at, status, backend, error, ...(retried ? { retried: true as const } : {}) });
    const method = options.method ?? 'GET';
    let answered = false;
    const req = request(options.url, { method, agent, headers: options.headers?.(index) }, (res) => {
      answered = true;
      res.resume();
      res.on('end', () => done(res.statusCode ?? 0, res.headers['x-backend-id'] as string | undefined, undefined));
      res.on('error', (error: NodeJS.ErrnoException) => done(res.statusCode ?? 0, undefined, error.code ?? error.message));
    });
    req.setTimeout(options.timeoutMs ?? 5_000, () => req.destroy(Object.assign(new Error('client timeout'), { code: 'CLIENT_TIMEOUT' })));
    req.on('error', (error: NodeJS.ErrnoException) => {
      const staleConnection = req.reusedSocket && !answered && (error.code === 'ECONNRESET' || error.code === 'EPIPE');
      if (staleConnection && !retried && IDEMPOTENT.has(method)) resolve(sendOne(options, agent, index, runStarted, at, true));
      else done(0, undefined, error.code ?? error.message);
    });
    req.end();
  });
}

/** describeFailures summarises failed samples for an assertion message. */
export function describeFailures(run: LoadRun): string {
  const counts = new Map<string, number>();
  for (const s of run.failures()) {
    const key = s.error ?? `HTTP ${s.status}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts].map(([key, count]) => `${count} × ${key}`).join(', ') || 'none';
}
