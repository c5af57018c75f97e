import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Server as TlsServer } from 'node:tls';
import { DataPlane } from '../data-plane.js';
import { createEngine } from '../engines/index.js';
import { ClientErrorMetrics, listenerRegistry, TrafficMetrics } from '../metrics.js';
import { Accounting } from '../pipeline/accounting.js';
import { createRequestHandler } from '../pipeline/exchange.js';
import { createUpgradeHandler } from '../pipeline/upgrade.js';
import { ReportBatcher } from '../cluster/report.js';
import type { ListenerStart, WorkerReport } from '../cluster/messages.js';
import { ClientGuard, guardedServerOptions } from './client-guard.js';
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
  const clientErrors = new ClientErrorMetrics(registry);
  const accounting = new Accounting(new TrafficMetrics(registry), reports, clientErrors);

  const exchange = createRequestHandler(dataPlane, accounting);
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    if (!guard.refused(req, res)) exchange(req, res);
  };
  const tls = start.snapshot.tls.server;
  // The guard sets the timeouts and the head size from the snapshot before the server listens.
  const server: Server = tls ? createHttpsServer({ ...guardedServerOptions, cert: tls.cert, key: tls.key }, handler) : createServer(guardedServerOptions, handler);
  const guard: ClientGuard = new ClientGuard(server, connections, clientErrors, start.snapshot, tls !== undefined);
  const swapCertificate = tls ? watchTls(server as unknown as TlsServer, tls) : () => undefined;
  server.on('upgrade', createUpgradeHandler(dataPlane, accounting));
  return {
    name: config.name,
    server,
    registry,
    reports,
    apply: (snapshot) => {
      dataPlane.apply(snapshot);
      guard.apply(snapshot);
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
