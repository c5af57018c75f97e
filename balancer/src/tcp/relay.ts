import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { TlsConnectOptions } from '../engines/upstream-tls.js';
import { connectWithin, type ConnectFailureReason, type PendingConnect } from './connect.js';
import { proxyHeader, type ProxyProtocolSetting } from './proxy-protocol.js';

/** A backend to connect to, as the caller's algorithm picked it. */
export interface RelayTarget {
  readonly id: string;
  readonly host: string;
  readonly port: number;
  /** a tls:// backend: the relay speaks TLS to it */
  readonly tls?: TlsConnectOptions | undefined;
}

/**
 * Why a relayed connection ended. done: both sides ended (half-close both ways); client-error,
 * backend-error: that side failed (a reset...) and the other was reset; idle-timeout: no byte
 * either way for idleTimeoutMs; closed: close() was called or a socket was destroyed by its owner;
 * reset-before-data: the backend reset or closed before any byte went either way (a process dying
 * with its listening socket still open completes handshakes it never serves), and the client was
 * given to another backend, as for a failed connect.
 */
export type RelayCloseReason = 'done' | 'client-error' | 'backend-error' | 'idle-timeout' | 'closed' | 'reset-before-data';

export interface RelayStats {
  /** bytesIn: client to backend, the PROXY header not counted */
  readonly bytesIn: number;
  /** bytesOut: backend to client */
  readonly bytesOut: number;
  /** seconds from the backend connection to the last of the two sockets closing */
  readonly seconds: number;
  readonly reason: RelayCloseReason;
}

/**
 * What a relay reports, enough for metrics and least-connections counts. Every connecting(id)
 * is followed by exactly one of connected(id), connectFailed(id) and connectAbandoned(id) (the
 * client went away or close() was called during the connect); every connected(id) by exactly one
 * closed(id). noBackend: the first pick found no backend. connecting and noBackend may be called
 * before relay() returns. For lb_tcp_connections_total: connected is ok, connectFailed is
 * connect_failed (one per failed try), noBackend is no_backend.
 */
export interface RelayObserver {
  connecting?(id: string): void;
  connected(id: string): void;
  connectFailed(id: string, reason: ConnectFailureReason, detail: string): void;
  connectAbandoned?(id: string): void;
  noBackend(): void;
  closed(id: string, stats: RelayStats): void;
}

export interface RelayOptions {
  /** pick: the caller's algorithm; called again for each retry with the ids already tried */
  pick(tried: ReadonlySet<string>): RelayTarget | undefined;
  connectTimeoutMs: number;
  /** attempts: further connects after the first, each on the backend pick returns */
  attempts: number;
  /** idleTimeoutMs: no byte either way for this long closes both sides; 0: no limit */
  idleTimeoutMs: number;
  proxyProtocol: ProxyProtocolSetting;
  observer: RelayObserver;
}

/** One client connection being relayed. */
export interface RelayedConnection {
  /** the backend connected to; undefined until then */
  readonly backendId: string | undefined;
  /** bytes this process holds for the connection, both directions, both sockets' stream buffers */
  readonly bufferedBytes: number;
  /** close ends the connection at once (drain deadline passed, shutdown); a no-op once closed */
  close(): void;
}

/**
 * The options of a net.Server (or tls.Server) whose connections go to relay(): half-open
 * connections, and no byte read from a client before its backend connection is up, so that what
 * a client sends meanwhile waits in the kernel rather than in this process.
 */
export const relayServerOptions = { allowHalfOpen: true, pauseOnConnect: true } as const;

/**
 * relay connects an accepted client socket to a backend, with retries on failed connects, and
 * then passes bytes both ways, with backpressure, until both sides have ended (half-close is
 * passed on), one fails (the other is reset), the idle timeout passes or close() is called.
 */
export function relay(client: Socket, options: RelayOptions): RelayedConnection {
  return new Relay(client, options);
}

type RelayState = 'connecting' | 'relaying' | 'done';

class Relay implements RelayedConnection {
  backendId: string | undefined;
  private state: RelayState = 'connecting';
  private readonly tried = new Set<string>();
  private tries = 0;
  private pending: { readonly id: string; readonly connect: PendingConnect } | undefined;
  private backend: Socket | undefined;
  private reason: RelayCloseReason | undefined;
  private headerLength = 0;
  private connectedAt = 0;
  private openSockets = 2;

  constructor(
    private readonly client: Socket,
    private readonly options: RelayOptions,
  ) {
    if (client.destroyed) {
      this.state = 'done';
      return;
    }
    // Documented as settable before 'end': the relay works whatever options the server had.
    client.allowHalfOpen = true;
    client.pause();
    client.on('error', () => this.failed('client-error'));
    client.on('close', () => this.clientClosed());
    this.connectNext();
  }

  get bufferedBytes(): number {
    const { client, backend } = this;
    return client.readableLength + client.writableLength + (backend ? backend.readableLength + backend.writableLength : 0);
  }

  close(): void {
    if (this.state === 'connecting') this.abandon();
    else if (this.state === 'relaying') this.destroyBoth('closed');
  }

  private connectNext(): void {
    const target = this.options.pick(this.tried);
    if (!target) {
      if (this.tries === 0) this.options.observer.noBackend();
      this.giveUp();
      return;
    }
    this.tries++;
    this.tried.add(target.id);
    this.options.observer.connecting?.(target.id);
    const connect = connectWithin(
      target.host,
      target.port,
      this.options.connectTimeoutMs,
      {
        connected: (socket) => this.start(target.id, socket),
        failed: (reason, detail) => this.connectFailed(target.id, reason, detail),
      },
      target.tls,
    );
    // connectWithin reports asynchronously, so this is set before any outcome.
    this.pending = { id: target.id, connect };
  }

  private connectFailed(id: string, reason: ConnectFailureReason, detail: string): void {
    this.pending = undefined;
    this.options.observer.connectFailed(id, reason, detail);
    if (this.state !== 'connecting') return;
    if (this.tries <= this.options.attempts) this.connectNext();
    else this.giveUp();
  }

  private giveUp(): void {
    this.state = 'done';
    this.client.destroy();
  }

  /** abandon: the client went away, or close() was called, while a backend connect was in progress. */
  private abandon(): void {
    this.state = 'done';
    const pending = this.pending;
    this.pending = undefined;
    if (pending) {
      pending.connect.cancel();
      this.options.observer.connectAbandoned?.(pending.id);
    }
    this.client.destroy();
  }

  private start(id: string, backend: Socket): void {
    const { client, options } = this;
    this.pending = undefined;
    this.state = 'relaying';
    this.backendId = id;
    this.backend = backend;
    this.connectedAt = performance.now();
    backend.on('error', () => (this.early(backend) ? this.retryElsewhere(id, backend) : this.failed('backend-error')));
    backend.on('close', () => {
      if (backend === this.backend) this.sideClosed(backend, client);
    });
    if (options.idleTimeoutMs > 0) {
      // Every byte relayed is read from or written to the backend socket, so its inactivity
      // timer (reads and writes both refresh it) is the connection's: one timer, not two.
      backend.setTimeout(options.idleTimeoutMs);
      backend.on('timeout', () => this.destroyBoth('idle-timeout'));
    }
    options.observer.connected(id);
    if (this.reason !== undefined) return; // close() was called from the hook
    if (options.proxyProtocol !== 'off') {
      const header = proxyHeader(
        options.proxyProtocol,
        { address: client.remoteAddress, port: client.remotePort },
        { address: client.localAddress, port: client.localPort },
      );
      this.headerLength = header.length;
      backend.write(header);
    }
    client.setNoDelay(true);
    // pipe() pauses the source while the destination's buffer is above its high-water mark and
    // ends the destination when the source ends: backpressure and half-close, both ways.
    client.pipe(backend);
    // The backend's end is passed on by hand: an end before any byte gives the client to another backend.
    backend.pipe(client, { end: false });
    backend.once('end', () => {
      if (this.early(backend)) this.retryElsewhere(id, backend);
      else if (backend === this.backend) client.end();
    });
  }

  /** early: nothing went either way on this backend connection yet, and another try is left: it can be given up like a failed connect. */
  private early(backend: Socket): boolean {
    return backend === this.backend && this.state === 'relaying' && backend.bytesRead === 0 && this.client.bytesRead === 0 && this.tries <= this.options.attempts;
  }

  /** retryElsewhere: the backend went away before any byte; the client, still paused and unread, goes to the next backend. */
  private retryElsewhere(id: string, backend: Socket): void {
    const { client } = this;
    this.backend = undefined;
    this.backendId = undefined;
    this.state = 'connecting';
    client.unpipe(backend);
    backend.unpipe(client);
    client.pause();
    backend.destroy();
    this.headerLength = 0;
    this.options.observer.closed(id, { bytesIn: 0, bytesOut: 0, seconds: (performance.now() - this.connectedAt) / 1000, reason: 'reset-before-data' });
    if (client.destroyed) {
      this.state = 'done';
      return;
    }
    this.connectNext();
  }

  private clientClosed(): void {
    if (this.state === 'connecting') this.abandon();
    else if (this.state === 'relaying') this.sideClosed(this.client, this.backend!);
  }

  /** failed: a socket errored (its 'close' follows); reset the other, so its peer sees an abort and not a clean end. */
  private failed(reason: RelayCloseReason): void {
    if (this.state !== 'relaying') return;
    this.reason ??= reason;
    reset(reason === 'client-error' ? this.backend! : this.client);
  }

  private destroyBoth(reason: RelayCloseReason): void {
    this.reason ??= reason;
    this.client.destroy();
    this.backend!.destroy();
  }

  private sideClosed(closed: Socket, other: Socket): void {
    // A socket closes cleanly once it has ended both ways; the other then closes on its own
    // after flushing. Closed any other way, it takes the other down with it.
    if (!(closed.readableEnded && closed.writableFinished) && !other.destroyed) {
      this.reason ??= 'closed';
      other.destroy();
    }
    if (--this.openSockets > 0) return;
    this.state = 'done';
    const backend = this.backend!;
    this.options.observer.closed(this.backendId!, {
      bytesIn: backend.bytesWritten - this.headerLength,
      bytesOut: backend.bytesRead,
      seconds: (performance.now() - this.connectedAt) / 1000,
      reason: this.reason ?? 'done',
    });
  }
}

/** reset closes a TCP socket with an RST; a socket that is not plain TCP (TLS) is destroyed. */
function reset(socket: Socket): void {
  if (socket.destroyed) return;
  try {
    socket.resetAndDestroy();
  } catch {
    socket.destroy();
  }
}
