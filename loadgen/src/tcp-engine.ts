import net from 'node:net';
import { randomFillSync } from 'node:crypto';
import { errorKind, type Load } from './engine.js';
import { Pacer } from './pacer.js';

/** Why a TCP connection failed: the HTTP error kinds, plus `mismatch` for an echo (or greeting) that is not what was sent. */
export type TcpFailure = 'refused' | 'reset' | 'timeout' | 'mismatch' | 'other';
export const TCP_FAILURES: readonly TcpFailure[] = ['refused', 'reset', 'timeout', 'mismatch', 'other'];

/** Where startTcpLoad reports the outcome of every connection it opened: exactly one call per connection. */
export interface TcpOutcomes {
  /** Greeted, and every payload came back. `latencyMs`: the whole exchange, from the connect to the last payload's whole echo. */
  ok(latencyMs: number, backend: string): void;
  /**
   * `code` is the socket error code (ECONNREFUSED, ...), "CLOSED" for a connection closed before the exchange
   * was done, "TIMEOUT", "MISMATCH" for a wrong echo or "BAD_GREETING". `backend` is set once the greeting was read.
   */
  failed(kind: TcpFailure, code: string, backend: string | undefined): void;
}

export interface TcpLoadOptions {
  host: string;
  port: number;
  /** Connections open at once, at most. */
  connections: number;
  /** New connections per second; Infinity opens them as fast as `connections` allows, 0 pauses. */
  rate: number;
  payloadBytes: number;
  /** Seconds a connection stays open after its first echo, echoing the payload again every second. */
  holdSeconds: number;
  /** Seconds each step may take: the connect, the greeting, every echo. */
  timeoutSeconds: number;
}

/** Longest greeting line accepted: a backend id, not a stream. */
const MAX_GREETING_BYTES = 1024;
/** How often a held connection sends its payload again. */
const HOLD_EVERY_MS = 1000;

/**
 * startTcpLoad opens TCP connections to an echo service at `rate` per second and reports each one's outcome to
 * `outcomes`. Each connection reads the greeting line (the backend's id), sends a fresh random payload, checks
 * that the same bytes come back, and closes (or, with holdSeconds, sends it again every second for that long).
 * Stopping opens no new connection, lets each one finish its exchange, and closes the held ones early.
 */
export function startTcpLoad(options: TcpLoadOptions, outcomes: TcpOutcomes): Load {
  const pacer = new Pacer(options.rate);
  const timeoutMs = options.timeoutSeconds * 1000;
  /** Connections whose outcome is not reported yet: `fail` reports one now, `closeHeld` ends a held one early. */
  const unsettled = new Map<net.Socket, { fail: (kind: TcpFailure, code: string) => void; closeHeld: () => void }>();
  /** Every socket not yet closed, settled or not: close() destroys what is left. */
  const sockets = new Set<net.Socket>();
  let waiting = false;
  let stopping = false;
  let drained: (() => void) | undefined;

  const open = (): void => {
    const started = performance.now();
    const socket = net.connect({ host: options.host, port: options.port, noDelay: true });
    sockets.add(socket);
    let backend: string | undefined;
    let greeting = Buffer.alloc(0);
    let payload: Buffer | undefined;
    let echoed = 0;
    let firstEcho = 0;
    let lastEcho = 0;
    let settled = false;
    /** Bounds the step under way; after the outcome, how long the peer may take to close. */
    let timer: NodeJS.Timeout | undefined;
    /** While held: the next send (or the close once holdSeconds are over). */
    let holdTimer: NodeJS.Timeout | undefined;
    const arm = (): void => {
      clearTimeout(timer);
      timer = setTimeout(() => (settled ? socket.destroy() : fail('timeout', 'TIMEOUT')), timeoutMs);
    };

    const settle = (): void => {
      settled = true;
      clearTimeout(holdTimer);
      unsettled.delete(socket);
      if (!stopping) pump();
      else if (unsettled.size === 0) drained?.();
    };
    const fail = (kind: TcpFailure, code: string): void => {
      if (settled) return;
      clearTimeout(timer);
      outcomes.failed(kind, code, backend);
      settle();
      socket.destroy();
    };
    const succeed = (): void => {
      if (settled) return;
      outcomes.ok(lastEcho - started, backend!);
      settle();
      // The echo service ends its side once ours is ended; the timer drops a peer that does not.
      arm();
      socket.end();
    };
    const send = (): void => {
      holdTimer = undefined;
      payload = randomFillSync(Buffer.allocUnsafe(options.payloadBytes));
      echoed = 0;
      arm();
      socket.write(payload);
    };
    const echoDone = (): void => {
      const now = performance.now();
      firstEcho ||= now;
      lastEcho = now;
      const left = options.holdSeconds * 1000 - (now - firstEcho);
      if (stopping || left <= 0) {
        succeed();
        return;
      }
      clearTimeout(timer);
      holdTimer = left > HOLD_EVERY_MS ? setTimeout(send, HOLD_EVERY_MS) : setTimeout(succeed, left);
    };
    unsettled.set(socket, {
      fail,
      closeHeld: () => {
        if (holdTimer !== undefined) succeed();
      },
    });

    const onEcho = (chunk: Buffer): void => {
      if (payload === undefined || echoed + chunk.length > payload.length || !chunk.equals(payload.subarray(echoed, echoed + chunk.length))) {
        fail('mismatch', 'MISMATCH');
        return;
      }
      echoed += chunk.length;
      if (echoed === payload.length) echoDone();
    };
    arm();
    socket.on('connect', arm);
    socket.on('data', (chunk: Buffer) => {
      if (settled) return;
      if (backend !== undefined) {
        onEcho(chunk);
        return;
      }
      greeting = Buffer.concat([greeting, chunk]);
      const end = greeting.indexOf(0x0a);
      if (end === -1) {
        if (greeting.length > MAX_GREETING_BYTES) fail('mismatch', 'BAD_GREETING');
        return;
      }
      const id = greeting.subarray(0, end).toString().replace(/\r$/, '');
      if (id === '' || end > MAX_GREETING_BYTES) {
        fail('mismatch', 'BAD_GREETING');
        return;
      }
      backend = id;
      send();
      if (end + 1 < greeting.length) onEcho(greeting.subarray(end + 1));
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      const code = error.code ?? 'UNKNOWN';
      fail(errorKind(code), code);
    });
    socket.on('end', () => fail('reset', 'CLOSED'));
    socket.on('close', () => {
      fail('reset', 'CLOSED');
      clearTimeout(timer);
      sockets.delete(socket);
    });
  };

  const pump = (): void => {
    while (!stopping && !waiting && unsettled.size < options.connections) {
      if (!pacer.take()) {
        waiting = true;
        pacer.wait(() => {
          waiting = false;
          if (stopping) return;
          open();
          pump();
        });
        return;
      }
      open();
    }
  };
  pump();

  let draining: Promise<void> | undefined;
  const drain = (): Promise<void> => {
    draining ??= (async () => {
      stopping = true;
      pacer.clear();
      for (const { closeHeld } of [...unsettled.values()]) closeHeld();
      if (unsettled.size > 0) {
        await new Promise<void>((resolve) => {
          drained = resolve;
          // Each connection settles within its steps' timeouts; this is only a backstop.
          setTimeout(resolve, 3 * timeoutMs + 2000).unref();
        });
      }
      for (const { fail } of [...unsettled.values()]) fail('timeout', 'TIMEOUT');
    })();
    return draining;
  };
  let closing: Promise<void> | undefined;
  return {
    get rate() {
      return pacer.rate;
    },
    set rate(rate: number) {
      pacer.rate = rate;
      if (!stopping) pump();
    },
    get inFlight() {
      return unsettled.size;
    },
    drain,
    close() {
      closing ??= (async () => {
        await drain();
        for (const socket of sockets) socket.destroy();
      })();
      return closing;
    },
  };
}
