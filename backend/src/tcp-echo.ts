import net from 'node:net';
import type { ChaosState } from './chaos.js';
import type { BackendMetrics } from './metrics.js';

export interface TcpEchoOptions {
  backendId: string;
  chaos: ChaosState;
  metrics: BackendMetrics;
  /** True once shutdown began: nothing is held any more, and a connection released from `hang` is ended at once. */
  closing: () => boolean;
}

export interface TcpEcho {
  readonly server: net.Server;
  /** Connections open now. */
  open(): number;
  /** Shutdown: every connection stops reading, echoes what it already read, then ends its side. */
  endAll(): void;
  /** Shutdown timeout: drops every connection at once. */
  destroyAll(): void;
}

/** Most bytes a connection holds back for the latency fault before it stops reading. */
const MAX_DELAYED_BYTES = 1024 * 1024;

/**
 * Echo is one connection's echo, a delay line: each chunk is written back once the latency has passed since
 * it arrived, in arrival order (a later chunk never leaves before an earlier one, jitter or not), so that the
 * latency delays the bytes without slowing the stream down. Reading pauses while the client does not read
 * what is written back (the socket wants a drain), while MAX_DELAYED_BYTES wait for their latency, and while
 * `hang` holds a chunk. The stream API's Transform is not used: its callback handling assumes output is
 * pushed while a chunk is transformed, and a delay line pushes later, which can stall it.
 */
class Echo {
  readonly #socket: net.Socket;
  readonly #chaos: ChaosState;
  readonly #closing: () => boolean;
  readonly #queue: { chunk: Buffer; due: number }[] = [];
  #queuedBytes = 0;
  #lastDue = 0;
  #timer: NodeJS.Timeout | undefined;
  /** Chunks read while `hang` is set, echoed once it is cleared. */
  #held: Buffer[] = [];
  #forget: (() => void) | undefined;
  /** The client ended its side, or shutdown stopped the reading: end ours once everything read is echoed. */
  #inputDone = false;

  constructor(socket: net.Socket, chaos: ChaosState, closing: () => boolean) {
    this.#socket = socket;
    this.#chaos = chaos;
    this.#closing = closing;
    socket.on('data', (chunk: Buffer) => this.#take(chunk));
    socket.on('end', () => {
      this.#inputDone = true;
      this.#endIfDone();
    });
    socket.on('drain', () => this.#flow());
  }

  /** Shutdown: what was read is still echoed; what comes later is read and dropped. */
  stop(): void {
    this.#inputDone = true;
    this.#socket.resume();
    this.#endIfDone();
  }

  dispose(): void {
    clearTimeout(this.#timer);
    this.#forget?.();
  }

  #take(chunk: Buffer): void {
    if (this.#inputDone) return;
    if (this.#held.length > 0 || (this.#chaos.current.hang && !this.#closing())) {
      this.#held.push(chunk);
      this.#socket.pause();
      this.#forget ??= this.#chaos.hold(() => {
        this.#forget = undefined;
        const held = this.#held;
        this.#held = [];
        for (const one of held) this.#admit(one);
        this.#flow();
        this.#endIfDone();
      });
      return;
    }
    this.#admit(chunk);
    if (this.#full()) this.#socket.pause();
  }

  #admit(chunk: Buffer): void {
    const faults = this.#chaos.current;
    const wait = faults.latencyMs + (faults.latencyJitterMs > 0 ? Math.random() * faults.latencyJitterMs : 0);
    if (wait <= 0 && this.#queue.length === 0) {
      this.#socket.write(chunk);
      return;
    }
    this.#lastDue = Math.max(performance.now() + wait, this.#lastDue);
    this.#queue.push({ chunk, due: this.#lastDue });
    this.#queuedBytes += chunk.length;
    this.#schedule();
  }

  #full(): boolean {
    return this.#queuedBytes >= MAX_DELAYED_BYTES || this.#socket.writableNeedDrain;
  }

  #flow(): void {
    if (!this.#inputDone && this.#held.length === 0 && !this.#full() && this.#socket.isPaused()) this.#socket.resume();
  }

  #schedule(): void {
    if (this.#timer !== undefined || this.#queue.length === 0) return;
    // Timers may fire a fraction of a millisecond early; #release checks the due time, so the latency is a lower bound.
    this.#timer = setTimeout(() => this.#release(), Math.max(0, this.#queue[0]!.due - performance.now()));
  }

  #release(): void {
    this.#timer = undefined;
    const now = performance.now();
    while (this.#queue.length > 0 && this.#queue[0]!.due <= now) {
      const { chunk } = this.#queue.shift()!;
      this.#queuedBytes -= chunk.length;
      this.#socket.write(chunk);
    }
    this.#flow();
    this.#endIfDone();
    this.#schedule();
  }

  #endIfDone(): void {
    if (this.#inputDone && this.#queue.length === 0 && this.#held.length === 0 && !this.#socket.writableEnded) this.#socket.end();
  }
}

/**
 * createTcpEcho is the TCP port: each connection gets `BACKEND_ID\n`, then every byte it sends back.
 * `hang` holds a new connection before its greeting, and an open one before its next echo; clearing it
 * releases them. When the client ends its side, what it sent is echoed and then this side ends too.
 */
export function createTcpEcho(options: TcpEchoOptions): TcpEcho {
  const { backendId, chaos, metrics, closing } = options;
  const greeting = Buffer.from(`${backendId}\n`);
  const connections = new Map<net.Socket, Echo | undefined>();

  const start = (socket: net.Socket): void => {
    if (socket.destroyed) return;
    if (closing()) {
      socket.end();
      return;
    }
    socket.write(greeting);
    connections.set(socket, new Echo(socket, chaos, closing));
  };

  const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (socket) => {
    connections.set(socket, undefined);
    metrics.tcpConnection();
    let forget: (() => void) | undefined;
    socket.on('error', () => {});
    socket.once('close', () => {
      forget?.();
      connections.get(socket)?.dispose();
      connections.delete(socket);
    });
    if (chaos.current.hang && !closing()) {
      forget = chaos.hold(() => {
        forget = undefined;
        start(socket);
      });
    } else {
      start(socket);
    }
  });

  return {
    server,
    open: () => connections.size,
    endAll() {
      for (const [socket, echo] of connections) {
        if (echo === undefined) socket.end();
        else echo.stop();
      }
    },
    destroyAll() {
      for (const socket of connections.keys()) socket.destroy();
    },
  };
}
