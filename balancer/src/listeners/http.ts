import { createServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Server as TlsServer } from 'node:tls';
import { DataPlane } from '../data-plane.js';
import { createEngine } from '../engines/index.js';
import { CLIENT_IDLE_TIMEOUT_MS } from '../engines/keep-alive.js';
import { listenerRegistry, TrafficMetrics } from '../metrics.js';
import { Accounting } from '../pipeline/accounting.js';
import { createRequestHandler } from '../pipeline/exchange.js';
import { createUpgradeHandler } from '../pipeline/upgrade.js';
import { ReportBatcher } from '../cluster/report.js';
import type { ListenerStart, WorkerReport } from '../cluster/messages.js';
import { ConnectionCount, type ServedListener } from './served.js';
import { watchTls } from './tls.js';

/** serveHttp makes an http listener's server (not yet listening): the request pipeline over its data plane. */
export async function serveHttp(start: ListenerStart, send: (report: WorkerReport) => void): Promise<ServedListener> {
  const { config } = start;
  const connections = new ConnectionCount();
  const reports: ReportBatcher = new ReportBatcher(
    send,
    () => dataPlane.loads(),
    () => ({ active: dataPlane.inFlight(), connections: connections.open, accepted: connections.accepted }),
  );
  const dataPlane = new DataPlane(await createEngine(config.engine, { connectTimeout: config.timeouts.connect }), reports);
  dataPlane.apply(start.snapshot);
  const registry = listenerRegistry(config.name, start.labelled);
  const accounting = new Accounting(new TrafficMetrics(registry), reports);

  const handler = createRequestHandler(dataPlane, accounting);
  const tls = start.snapshot.tls.server;
  const server: Server = tls ? createHttpsServer({ cert: tls.cert, key: tls.key, keepAliveTimeout: CLIENT_IDLE_TIMEOUT_MS }, handler) : createServer({ keepAliveTimeout: CLIENT_IDLE_TIMEOUT_MS }, handler);
  const swapCertificate = tls ? watchTls(server as unknown as TlsServer, tls) : () => undefined;
  server.on('upgrade', createUpgradeHandler(dataPlane, accounting));
  server.on('clientError', (_error, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n');
  });
  server.on('connection', (socket) => connections.track(socket));
  return {
    name: config.name,
    server,
    registry,
    reports,
    apply: (snapshot) => {
      dataPlane.apply(snapshot);
      swapCertificate(snapshot.tls.server);
    },
    startDraining: () => void (dataPlane.shuttingDown = true),
    openConnections: () => connections.open,
    inFlight: () => dataPlane.inFlight(),
    loads: () => dataPlane.loads(),
    closeIdle: () => server.closeIdleConnections(),
    closeAll: () => server.closeAllConnections(),
    close: () => dataPlane.close(),
  };
}
