import { createServer, type Server } from 'node:http';
import { Server as NetServer } from 'node:net';
import { once } from 'node:events';
import { DataPlane } from '../data-plane.js';
import { createEngine } from '../engines/index.js';
import { CLIENT_IDLE_TIMEOUT_MS } from '../engines/keep-alive.js';
import { TrafficMetrics, newRegistry } from '../metrics.js';
import { Accounting } from '../pipeline/accounting.js';
import { createRequestHandler } from '../pipeline/exchange.js';
import { createUpgradeHandler } from '../pipeline/upgrade.js';
import { log } from '@lab/common/log';
import { ReportBatcher } from './report.js';
import type { DrainMode, FromWorker, ToWorker } from './messages.js';
import { schedulingFromEnv } from './scheduling.js';

/** How often a worker sends its metrics without being asked. */
const METRICS_PUSH_MS = 1_000;

function send(message: FromWorker, then?: () => void): void {
  if (process.connected) process.send!(message, undefined, undefined, then);
  else then?.();
}

function firstStart(): Promise<Extract<ToWorker, { type: 'start' }>> {
  return new Promise((resolve) => {
    const onMessage = (message: ToWorker): void => {
      if (message.type !== 'start') return;
      process.off('message', onMessage);
      resolve(message);
    };
    process.on('message', onMessage);
  });
}

/**
 * runWorker is a traffic process: it serves the listener from the snapshots the primary sends,
 * reports every finished try and request back in batches, and drains when told to (an upgrade,
 * or the balancer stopping). The primary decides everything else.
 */
export async function runWorker(): Promise<void> {
  // A Ctrl-C reaches the whole process group; the primary drains the workers in order.
  for (const signal of ['SIGINT', 'SIGHUP', 'SIGUSR2'] as const) process.on(signal, () => undefined);
  const start = await firstStart();
  const { config } = start;
  let open = 0;
  let accepted = 0;
  const reports = new ReportBatcher(
    (report) => send(report),
    () => dataPlane.loads(),
    () => ({ active: dataPlane.inFlight(), connections: open, accepted }),
  );
  const dataPlane = new DataPlane(await createEngine(config.engine, { connectTimeout: config.timeouts.connect }), reports);
  dataPlane.apply(start.snapshot);
  const registry = newRegistry();
  const accounting = new Accounting(new TrafficMetrics(registry), reports);

  const server = createServer({ keepAliveTimeout: CLIENT_IDLE_TIMEOUT_MS }, createRequestHandler(dataPlane, accounting));
  server.on('upgrade', createUpgradeHandler(dataPlane, accounting));
  server.on('clientError', (_error, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n');
  });
  server.on('connection', (socket) => {
    open++;
    accepted++;
    socket.once('close', () => open--);
  });

  let draining = false;
  const drain = async (mode: DrainMode, graceMs: number): Promise<void> => {
    if (draining) return;
    draining = true;
    dataPlane.shuttingDown = true;
    const deadline = Date.now() + graceMs;
    await stopAccepting(server);
    // An upgrade keeps idle keep-alive connections until their next request, which is answered with
    // `Connection: close` (HAProxy's idle-close-on-response): closing them now races a client that is
    // sending on one. Stopping the balancer closes them at once.
    while (open > 0 && Date.now() < deadline) {
      if (mode === 'stop') server.closeIdleConnections();
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    const abandoned = dataPlane.inFlight();
    server.closeAllConnections();
    reports.stop();
    clearInterval(pushMetrics);
    dataPlane.close();
    const metrics = await registry.getMetricsAsJSON();
    send({ type: 'final', metrics, abandoned }, () => process.exit(0));
  };

  process.on('message', (message: ToWorker) => {
    if (message.type === 'snapshot') dataPlane.apply(message.snapshot);
    else if (message.type === 'drain') void drain(message.mode, message.graceMs);
    else if (message.type === 'metrics') void registry.getMetricsAsJSON().then((metrics) => send({ type: 'metrics', id: message.id, metrics }));
  });
  // Pushed every second as well as on request, so that a worker that dies loses at most a second of counts.
  const pushMetrics = setInterval(() => void registry.getMetricsAsJSON().then((metrics) => send({ type: 'metrics', id: 0, metrics })), METRICS_PUSH_MS);
  pushMetrics.unref();
  // SIGTERM sent to a worker itself: it drains and exits, and the primary starts another in its place.
  process.on('SIGTERM', () => void drain('stop', config.timeouts.shutdown));

  server.listen({ host: config.listen.host, port: start.port, reusePort: schedulingFromEnv() === 'reuseport' });
  try {
    await once(server, 'listening');
  } catch (error) {
    log.error(`worker ${process.pid}: cannot listen on ${config.listen.host}:${start.port}`, { error: (error as Error).message });
    process.exit(1);
  }
  send({ type: 'ready' });
}

/** How long a draining worker waits for the primary to confirm that it hands it no more connections. */
const CLOSED_TIMEOUT_MS = 2_000;

/**
 * stopAccepting closes the listening side only, and resolves once the primary has confirmed that
 * it will hand this worker no more connections (see the 'closing' message). http.Server#close
 * would also close every idle keep-alive connection (Node ≥ 19); net.Server#close leaves them,
 * and in a cluster worker it takes this worker out of the primary's round-robin.
 */
function stopAccepting(server: Server): Promise<void> {
  NetServer.prototype.close.call(server);
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      process.off('message', onMessage);
      resolve();
    };
    const onMessage = (message: ToWorker): void => {
      if (message.type === 'closed') done();
    };
    const timer = setTimeout(done, CLOSED_TIMEOUT_MS);
    process.on('message', onMessage);
    send({ type: 'closing' });
  });
}
