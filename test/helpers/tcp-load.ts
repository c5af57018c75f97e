/**
 * TCP load for the L4 chaos scenarios: a steady rate of new connections (each: connect, read the greeting
 * `BACKEND_ID\n`, send a small payload, check that it comes back, close), and a set of long-lived connections
 * that send a ping on a timer and check every echo. Both record when each thing happened, in ms since the
 * time origin the caller gives, so that they line up with the faults and state changes of a chaos timeline.
 */
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { isFailure, percentileOf, type LoadRun, type LoadSample } from './load.js';

/**
 * One new connection. It has the shape of an HTTP load sample, so that the chaos figures and timelines read
 * a TCP run as they read an HTTP one: `status` is 200 when the greeting came and the echo came back whole, 0
 * otherwise; `backend` is the greeting; `error` says which step failed (CONNECT_TIMEOUT, GREETING_TIMEOUT,
 * ECHO_TIMEOUT, CLOSED_BEFORE_GREETING, CLOSED_BEFORE_ECHO, ECHO_MISMATCH, or the socket's error code).
 * `ms` is from the connect call to the echo checked (or the failure).
 */
export interface TcpSample extends LoadSample {
  /** ms from the connect call to the greeting, when one came */
  greetingMs: number | undefined;
}

export interface TcpLoadOptions {
  host: string;
  port: number;
  /** new connections started per second, whatever happens to the earlier ones (open loop) */
  rate: number;
  durationMs: number;
  /** bytes sent and expected back on each connection (default 32) */
  payloadBytes?: number;
  /** each step (connect, greeting, echo) must complete within this, or the connection counts as failed (default 1000) */
  stepTimeoutMs?: number;
  /** the time origin of `at` (performance.now() at the start of the scenario); default: when the run starts */
  started?: number;
}

/** runTcpLoad opens `rate` connections a second for durationMs and records each one; resolves once every one has finished. */
export async function runTcpLoad(options: TcpLoadOptions): Promise<LoadRun & { samples: TcpSample[] }> {
  const started = options.started ?? performance.now();
  const begun = performance.now();
  const samples: TcpSample[] = [];
  const pending: Promise<void>[] = [];
  const total = Math.round((options.rate * options.durationMs) / 1000);
  for (let i = 0; i < total; i++) {
    const wait = begun + (i * 1000) / options.rate - performance.now();
    if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
    pending.push(exchange(options, started).then((sample) => void samples.push(sample)));
  }
  await Promise.all(pending);
  samples.sort((a, b) => a.at - b.at);
  return {
    samples,
    failures: () => samples.filter(isFailure),
    byBackend: () => {
      const counts: Record<string, number> = {};
      for (const s of samples) if (s.backend && !isFailure(s)) counts[s.backend] = (counts[s.backend] ?? 0) + 1;
      return counts;
    },
    percentile: (p) => percentileOf(samples.map((s) => s.ms), p),
  };
}

/** exchange: one connection through the listener, step by step, each step within stepTimeoutMs. */
function exchange(options: TcpLoadOptions, origin: number): Promise<TcpSample> {
  const stepMs = options.stepTimeoutMs ?? 1_000;
  const payload = randomBytes((options.payloadBytes ?? 32) / 2).toString('hex');
  const t0 = performance.now();
  const at = t0 - origin;
  return new Promise((resolve) => {
    const socket = net.connect({ host: options.host, port: options.port, allowHalfOpen: true, noDelay: true });
    let step: 'connect' | 'greeting' | 'echo' = 'connect';
    let received = '';
    let greeting: string | undefined;
    let greetingMs: number | undefined;
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    const arm = (): void => {
      clearTimeout(timer);
      timer = setTimeout(() => finish(`${step.toUpperCase()}_TIMEOUT`), stepMs);
    };
    const finish = (error?: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ at, ms: performance.now() - t0, status: error ? 0 : 200, backend: greeting, error, greetingMs });
      if (error) {
        socket.destroy();
        return;
      }
      // Our side ends; the balancer passes it on, the backend ends its side, and the socket closes.
      socket.end();
      setTimeout(() => socket.destroy(), 2_000).unref();
    };
    arm();
    socket.on('connect', () => {
      step = 'greeting';
      arm();
    });
    socket.on('data', (chunk: Buffer) => {
      if (settled) return;
      received += chunk.toString('latin1');
      if (greeting === undefined) {
        const end = received.indexOf('\n');
        if (end === -1) return;
        greeting = received.slice(0, end);
        greetingMs = performance.now() - t0;
        received = received.slice(end + 1);
        step = 'echo';
        arm();
        socket.write(payload);
      }
      if (received.length < payload.length) return;
      finish(received === payload ? undefined : 'ECHO_MISMATCH');
    });
    socket.on('end', () => finish(greeting === undefined ? 'CLOSED_BEFORE_GREETING' : 'CLOSED_BEFORE_ECHO'));
    socket.on('error', (error: NodeJS.ErrnoException) => finish(error.code ?? error.message));
    socket.on('close', () => finish(greeting === undefined ? 'CLOSED_BEFORE_GREETING' : 'CLOSED_BEFORE_ECHO'));
  });
}

/**
 * How a long-lived connection ended. client: we ended it (held.close()); clean says whether the other side
 * then ended too, without a reset. end: the other side sent a FIN first; reset: ECONNRESET (or another socket
 * error, named in `detail`); ping-timeout: an echo did not come back within the step timeout.
 */
export type HeldEnd = 'client' | 'end' | 'reset' | 'error' | 'ping-timeout' | 'echo-mismatch';

export interface HeldConnection {
  readonly index: number;
  /** the greeting: the backend it reached */
  backend: string | undefined;
  openedAt: number;
  pingsOk: number;
  /** when the last echo came back whole */
  lastOkAt: number | undefined;
  /** undefined while open */
  closedAt: number | undefined;
  closedBy: HeldEnd | undefined;
  /** the error code, for reset and error */
  detail: string | undefined;
  /** for closedBy client: the other side ended in turn and nothing was reset */
  clean: boolean | undefined;
}

export interface HoldOptions {
  host: string;
  port: number;
  count: number;
  /** a ping is sent this long after the previous echo came back (default 200) */
  pingEveryMs?: number;
  /** the greeting and each echo within this (default 1000) */
  stepTimeoutMs?: number;
  started: number;
}

export interface HeldConnections {
  readonly connections: readonly HeldConnection[];
  /** close ends every open connection from our side and waits (at most timeoutMs) for the other side to end too. */
  close(timeoutMs?: number): Promise<void>;
  /** summary: how many reached each backend, and how those on `backends` ended. */
  summary(backends: readonly string[]): Record<string, unknown>;
}

/** holdTcpConnections opens `count` connections at once, waits for every greeting, then pings each on a timer until it closes. */
export async function holdTcpConnections(options: HoldOptions): Promise<HeldConnections> {
  const stepMs = options.stepTimeoutMs ?? 1_000;
  const pingEveryMs = options.pingEveryMs ?? 200;
  const now = (): number => performance.now() - options.started;
  const closers: ((timeoutMs: number) => Promise<void>)[] = [];
  const connections = await Promise.all(
    Array.from({ length: options.count }, (_, index) =>
      new Promise<HeldConnection>((resolve, reject) => {
        const held: HeldConnection = { index, backend: undefined, openedAt: now(), pingsOk: 0, lastOkAt: undefined, closedAt: undefined, closedBy: undefined, detail: undefined, clean: undefined };
        const socket = net.connect({ host: options.host, port: options.port, allowHalfOpen: true, noDelay: true });
        let received = '';
        let expected: string | undefined;
        let pings = 0;
        let timer: NodeJS.Timeout | undefined;
        let pingTimer: NodeJS.Timeout | undefined;
        let closing: (() => void) | undefined;
        const ended = (by: HeldEnd, detail?: string): void => {
          clearTimeout(timer);
          clearTimeout(pingTimer);
          if (held.closedBy === undefined) {
            held.closedBy = by;
            held.closedAt = now();
            held.detail = detail;
          } else if (held.closedBy === 'client' && by !== 'end') {
            held.clean = false;
          }
          if (held.backend === undefined) reject(new Error(`held connection ${index}: ${by} ${detail ?? ''} before its greeting`));
          closing?.();
        };
        const ping = (): void => {
          if (held.closedBy !== undefined) return;
          expected = `ping-${String(index).padStart(2, '0')}-${String(pings++).padStart(6, '0')}\n`;
          socket.write(expected);
          timer = setTimeout(() => {
            ended('ping-timeout');
            socket.destroy();
          }, stepMs);
        };
        timer = setTimeout(() => {
          socket.destroy();
          reject(new Error(`held connection ${index}: no greeting within ${stepMs} ms`));
        }, stepMs + 1_000);
        socket.on('data', (chunk: Buffer) => {
          received += chunk.toString('latin1');
          if (held.backend === undefined) {
            const end = received.indexOf('\n');
            if (end === -1) return;
            clearTimeout(timer);
            held.backend = received.slice(0, end);
            received = received.slice(end + 1);
            resolve(held);
            pingTimer = setTimeout(ping, pingEveryMs);
            return;
          }
          if (expected === undefined || received.length < expected.length) return;
          clearTimeout(timer);
          const answer = received.slice(0, expected.length);
          received = received.slice(expected.length);
          if (answer !== expected) {
            ended('echo-mismatch', answer);
            socket.destroy();
            return;
          }
          expected = undefined;
          held.pingsOk++;
          held.lastOkAt = now();
          if (closing) closing();
          else pingTimer = setTimeout(ping, pingEveryMs);
        });
        socket.on('end', () => {
          if (held.closedBy === 'client') held.clean ??= true;
          ended('end');
          socket.end();
        });
        socket.on('error', (error: NodeJS.ErrnoException) => ended(error.code === 'ECONNRESET' ? 'reset' : 'error', error.code ?? error.message));
        socket.on('close', () => {
          if (held.closedBy === undefined) ended('error', 'closed without an end or an error');
          else if (held.closedBy === 'client') held.clean ??= false;
        });
        closers.push(async (timeoutMs) => {
          if (held.closedBy !== undefined || socket.destroyed) return;
          // A ping in flight is answered first, so that the close is not mistaken for a lost echo.
          if (expected !== undefined) await new Promise<void>((done) => (closing = done));
          clearTimeout(pingTimer);
          if (held.closedBy !== undefined) return;
          held.closedBy = 'client';
          held.closedAt = now();
          const closed = new Promise<void>((done) => socket.once('close', () => done()));
          socket.end();
          const limit = setTimeout(() => {
            held.clean = false;
            held.detail = `no end from the other side within ${timeoutMs} ms`;
            socket.destroy();
          }, timeoutMs);
          await closed;
          clearTimeout(limit);
        });
      }),
    ),
  );
  return {
    connections,
    close: async (timeoutMs = 2_000) => void (await Promise.all(closers.map((close) => close(timeoutMs)))),
    summary(backends) {
      const on = connections.filter((c) => c.backend !== undefined && backends.includes(c.backend));
      const ends: Record<string, number> = {};
      for (const c of on) ends[c.closedBy ?? 'open'] = (ends[c.closedBy ?? 'open'] ?? 0) + 1;
      return { count: on.length, pingsOk: on.reduce((sum, c) => sum + c.pingsOk, 0), ends };
    },
  };
}

/** heldByBackend: how many of the held connections reached each backend. */
export function heldByBackend(held: HeldConnections): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const c of held.connections) if (c.backend) counts[c.backend] = (counts[c.backend] ?? 0) + 1;
  return counts;
}
