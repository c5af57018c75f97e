import { createServer, type Server, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { createServer as createTlsServer } from 'node:tls';
import { DataPlane, type Route, type UpstreamSource } from '../data-plane.js';
import type { Upstream, UpstreamTls } from '../engines/engine.js';
import { tlsConnectOptions, type TlsConnectOptions } from '../engines/upstream-tls.js';
import { ClientErrorMetrics, listenerRegistry, NO_BACKEND_LABEL, TcpMetrics } from '../metrics.js';
import { ReportBatcher } from '../cluster/report.js';
import type { ListenerStart, WorkerReport } from '../cluster/messages.js';
import type { Snapshot } from '../snapshot.js';
import { relay, relayServerOptions, type RelayedConnection } from '../tcp/relay.js';
import { ConnectionCount, type ServedListener } from './served.js';
import { watchTls } from './tls.js';
import { loopLateness, stallExplains } from '../health/loop-lateness.js';

/** Where a tcp backend is: its URL parsed once, when it joins; for tls://, how it is verified. */
interface TcpUpstream extends Upstream {
  readonly host: string;
  readonly port: number;
  readonly tls: TlsConnectOptions | undefined;
}

const tcpUpstreams: UpstreamSource = {
  upstream(url: string, tls?: UpstreamTls): TcpUpstream {
    const parsed = new URL(url);
    // An IPv6 literal comes in brackets in a URL, and without them to net.connect.
    const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1');
    return { host, port: Number(parsed.port), tls: parsed.protocol === 'tls:' ? tlsConnectOptions(parsed, tls) : undefined, close: () => undefined };
  },
  close: () => undefined,
};

/**
 * serveTcp makes a tcp listener's server (not yet listening): each client connection goes to one
 * backend that the algorithm picks (retried on another when the connect fails), and its bytes are
 * relayed both ways. A backend's load is its open connections. A draining or removed backend's
 * connections are closed once timeouts.drain has passed.
 */
export async function serveTcp(start: ListenerStart, send: (report: WorkerReport) => void): Promise<ServedListener> {
  const { config } = start;
  const connections = new ConnectionCount();
  const reports: ReportBatcher = new ReportBatcher(
    send,
    () => dataPlane.loads(),
    () => ({ active: dataPlane.inFlight(), connections: connections.open, accepted: connections.accepted }),
  );
  const dataPlane = new DataPlane(tcpUpstreams, reports);
  const registry = listenerRegistry(config.name, start.labelled);
  const metrics = new TcpMetrics(registry, function* () {
    for (const [id, load] of dataPlane.loads()) yield [id, load.activeRequests] as const;
  });
  const clientErrors = new ClientErrorMetrics(registry);
  /** the connections relayed to each backend now */
  const relayed = new Map<string, Set<RelayedConnection>>();
  const drainTimers = new Map<string, NodeJS.Timeout>();

  let swapCertificate: (next: Snapshot['tls']['server']) => void = () => undefined;
  const apply = (snapshot: Snapshot): void => {
    dataPlane.apply(snapshot);
    swapCertificate(snapshot.tls.server);
    for (const entry of snapshot.backends) {
      const leaving = entry.draining || entry.removing;
      const timer = drainTimers.get(entry.id);
      if (leaving && !timer) {
        const closeAll = (): void => {
          drainTimers.delete(entry.id);
          for (const connection of relayed.get(entry.id) ?? []) connection.close();
        };
        drainTimers.set(entry.id, setTimeout(closeAll, snapshot.timeouts.drain).unref());
      } else if (!leaving && timer) {
        clearTimeout(timer);
        drainTimers.delete(entry.id);
      }
    }
  };
  apply(start.snapshot);

  const onConnection = (client: Socket): void => {
    connections.track(client);
    const settings = dataPlane.current.snapshot;
    if (connections.open > settings.limits.maxConnections) {
      // There is no protocol to say why at L4: the client is closed at once, before any backend is asked.
      clientErrors.count('overloaded');
      client.destroy();
      return;
    }
    const address = client.remoteAddress ?? '';
    const context = { clientAddress: address, hashKey: address };
    /** the routes this connection tried, by id: each connecting() is matched by one end() */
    const tried = new Map<string, Route>();
    let failedConnects = 0;
    let abandoned = false;
    /** when the connect in progress started, and what this process's loop had lost by then */
    let connectStartedAt = 0;
    let connectLostBefore = 0;
    // A client whose every connect failed is closed without a backend: counted once, as no_backend.
    client.once('close', () => {
      if (failedConnects > 0 && !abandoned && connection.backendId === undefined) metrics.connections.inc({ backend: NO_BACKEND_LABEL, result: 'no_backend' });
    });
    const end = (id: string): void => {
      const route = tried.get(id);
      if (route) dataPlane.end(route);
    };
    const connection = relay(client, {
      pick: (ids) => {
        const active = dataPlane.current;
        const candidates = ids.size > 0 ? active.available.filter((route) => !ids.has(route.id)) : active.available;
        const route = active.algorithm.pick(candidates, context);
        if (!route) return undefined;
        tried.set(route.id, route);
        const target = route.upstream as TcpUpstream;
        return { id: route.id, host: target.host, port: target.port, tls: target.tls };
      },
      connectTimeoutMs: settings.timeouts.connect,
      attempts: settings.retryAttempts,
      idleTimeoutMs: settings.timeouts.idle,
      proxyProtocol: settings.proxyProtocol,
      observer: {
        connecting: (id) => {
          connectStartedAt = performance.now();
          connectLostBefore = loopLateness.lost();
          dataPlane.begin(tried.get(id)!);
        },
        connected: (id) => {
          reports.tryAnswered(id, 200);
          metrics.connections.inc({ backend: id, result: 'ok' });
          let set = relayed.get(id);
          if (!set) relayed.set(id, (set = new Set()));
          set.add(connection);
        },
        connectFailed: (id, reason, detail) => {
          end(id);
          const what = `connect ${reason === 'timeout' ? 'timed out' : 'failed'}: ${detail}`;
          // A connect timeout the balancer's own stall explains is not held against the backend.
          if (reason !== 'timeout' || !stallExplains(connectLostBefore, connectStartedAt, `${id}: ${what}`)) reports.tryFailed(id, reason === 'timeout' ? 'timeout' : 'connect', what);
          metrics.connections.inc({ backend: id, result: 'connect_failed' });
          failedConnects++;
        },
        connectAbandoned: (id) => {
          abandoned = true;
          end(id);
        },
        noBackend: () => metrics.connections.inc({ backend: NO_BACKEND_LABEL, result: 'no_backend' }),
        closed: (id, stats) => {
          end(id);
          relayed.get(id)?.delete(connection);
          if (stats.reason === 'reset-before-data') {
            // Counted as relayed when its connect succeeded; it closed before any byte and the client went on to another backend.
            reports.tryFailed(id, 'reset', 'closed before any byte; the client was given to another backend');
            metrics.connections.inc({ backend: id, result: 'connect_failed' });
            failedConnects++;
            return;
          }
          metrics.bytes.inc({ backend: id, direction: 'in' }, stats.bytesIn);
          metrics.bytes.inc({ backend: id, direction: 'out' }, stats.bytesOut);
          metrics.duration.observe({ backend: id }, stats.seconds);
          reports.record(id, 200, stats.seconds);
        },
      },
    });
  };
  // TLS over tcp: the relay sees the decrypted stream; a TLS socket's 'data' waits for the handshake.
  const tls = start.snapshot.tls.server;
  let server: Server;
  if (tls) {
    const tlsServer = createTlsServer({ cert: tls.cert, key: tls.key, allowHalfOpen: true }, onConnection);
    swapCertificate = watchTls(tlsServer, tls);
    server = tlsServer;
  } else {
    server = createServer(relayServerOptions, onConnection);
  }

  return {
    name: config.name,
    server,
    registry,
    reports,
    apply,
    startDraining: () => undefined,
    openConnections: () => connections.open,
    inFlight: () => dataPlane.inFlight(),
    loads: () => dataPlane.loads(),
    closeIdle: () => undefined,
    closeAll: () => {
      for (const set of relayed.values()) for (const connection of set) connection.close();
    },
    close: () => {
      for (const timer of drainTimers.values()) clearTimeout(timer);
      dataPlane.close();
    },
  };
}
