import { Server as NetServer, type Server } from 'node:net';
import { once } from 'node:events';
import { newRegistry } from '../metrics.js';
import { serveHttp } from '../listeners/http.js';
import { serveTcp } from '../listeners/tcp.js';
import type { ServedListener } from '../listeners/served.js';
import { log } from '@lab/common/log';
import type { DrainMode, FromWorker, ListenerStart, MetricsJson, ToWorker, WorkerReport } from './messages.js';
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
    // Asked for only now: a message that arrives before a 'message' listener exists is lost.
    send({ type: 'waiting' });
  });
}

function serve(start: ListenerStart): Promise<ServedListener> {
  const listener = start.config.name;
  const report = (batch: WorkerReport): void => send({ ...batch, listener });
  return start.config.mode === 'tcp' ? serveTcp(start, report) : serveHttp(start, report);
}

/**
 * runWorker is a traffic process: it serves every listener from the snapshots the primary sends,
 * reports every finished try and request back in batches, and drains when told to (an upgrade,
 * or the balancer stopping). The primary decides everything else.
 */
export async function runWorker(): Promise<void> {
  // A Ctrl-C reaches the whole process group; the primary drains the workers in order.
  for (const signal of ['SIGINT', 'SIGHUP', 'SIGUSR2'] as const) process.on(signal, () => undefined);
  const start = await firstStart();
  let served = await Promise.all(start.listeners.map(serve));
  const byName = new Map(served.map((listener) => [listener.name, listener]));
  const reusePort = schedulingFromEnv() === 'reuseport';
  const processMetrics = newRegistry();
  const metricsJson = async (): Promise<MetricsJson> =>
    (await Promise.all([processMetrics, ...served.map((listener) => listener.registry)].map((registry) => registry.getMetricsAsJSON()))).flat();

  let draining = false;
  const drain = async (mode: DrainMode, graceMs: number): Promise<void> => {
    if (draining) return;
    draining = true;
    for (const listener of served) listener.startDraining();
    const deadline = Date.now() + graceMs;
    await stopAccepting(served.map((listener) => listener.server));
    // An upgrade keeps idle keep-alive connections until their next request, which is answered with
    // `Connection: close` (HAProxy's idle-close-on-response): closing them now races a client that is
    // sending on one. Stopping the balancer closes them at once.
    const abandoned = await finish(served, mode === 'stop', deadline);
    clearInterval(pushMetrics);
    const metrics = await metricsJson();
    send({ type: 'final', metrics, abandoned }, () => process.exit(0));
  };

  /** open: a listener added by a reload */
  const open = async (listener: ListenerStart): Promise<void> => {
    try {
      const added = await serve(listener);
      await listen(added, listener, reusePort);
      served = [...served, added];
      byName.set(added.name, added);
      send({ type: 'listening', listener: added.name });
    } catch (error) {
      send({ type: 'listening', listener: listener.config.name, error: (error as Error).message });
    }
  };
  /** close: a listener removed by a reload stops accepting, lets its connections finish for at most graceMs, and closes */
  const close = async (name: string, graceMs: number): Promise<void> => {
    const listener = byName.get(name);
    if (listener) {
      listener.startDraining();
      listener.server.close();
      await finish([listener], true, Date.now() + graceMs);
      byName.delete(name);
      served = served.filter((other) => other !== listener);
    }
    send({ type: 'unlistened', listener: name });
  };

  process.on('message', (message: ToWorker) => {
    if (message.type === 'snapshot') byName.get(message.listener)?.apply(message.snapshot);
    else if (message.type === 'listen') void open(message.listener);
    else if (message.type === 'unlisten') void close(message.listener, message.graceMs);
    else if (message.type === 'drain') void drain(message.mode, message.graceMs);
    else if (message.type === 'metrics') void metricsJson().then((metrics) => send({ type: 'metrics', id: message.id, metrics }));
  });
  // Pushed every second as well as on request, so that a worker that dies loses at most a second of counts.
  const pushMetrics = setInterval(() => void metricsJson().then((metrics) => send({ type: 'metrics', id: 0, metrics })), METRICS_PUSH_MS);
  pushMetrics.unref();
  // SIGTERM sent to a worker itself: it drains and exits, and the primary starts another in its place.
  process.on('SIGTERM', () => void drain('stop', start.graceMs));

  for (const [index, listener] of served.entries()) {
    try {
      await listen(listener, start.listeners[index]!, reusePort);
    } catch (error) {
      log.error(`worker ${process.pid}: ${(error as Error).message}`);
      process.exit(1);
    }
  }
  send({ type: 'ready' });
}

/**
 * finish waits until the listeners' client connections have ended or the deadline has passed
 * (closing idle ones as it goes when closeIdle), then closes what is left and their data planes.
 * Returns the requests (or connections) cut off in flight.
 */
async function finish(listeners: readonly ServedListener[], closeIdle: boolean, deadline: number): Promise<number> {
  const open = (): number => listeners.reduce((sum, listener) => sum + listener.openConnections(), 0);
  while (open() > 0 && Date.now() < deadline) {
    if (closeIdle) for (const listener of listeners) listener.closeIdle();
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  const abandoned = listeners.reduce((sum, listener) => sum + listener.inFlight(), 0);
  for (const listener of listeners) {
    listener.closeAll();
    listener.reports.stop();
    listener.close();
  }
  return abandoned;
}

/**
 * The accept queue of every listener (the kernel caps it at net.core.somaxconn, 4096 on these
 * machines). Node's default, 511, overflows in a burst of new connections, and each SYN dropped
 * then costs its client a 1 s retransmit: the steady clients of a listener too, not only the burst.
 */
const LISTEN_BACKLOG = 4096;

async function listen(listener: ServedListener, start: ListenerStart, reusePort: boolean): Promise<void> {
  const { config, port } = start;
  listener.server.listen({ host: config.listen.host, port, reusePort, backlog: LISTEN_BACKLOG });
  try {
    await once(listener.server, 'listening');
  } catch (error) {
    throw new Error(`listener ${config.name} cannot listen on ${config.listen.host}:${port}: ${(error as Error).message}`);
  }
}

/** How long a draining worker waits for the primary to confirm that it hands it no more connections. */
const CLOSED_TIMEOUT_MS = 2_000;

/**
 * stopAccepting closes the listening side only, and resolves once the primary has confirmed that
 * it will hand this worker no more connections (see the 'closing' message). http.Server#close
 * would also close every idle keep-alive connection (Node ≥ 19); net.Server#close leaves them,
 * and in a cluster worker it takes this worker out of the primary's round-robin.
 */
function stopAccepting(servers: readonly Server[]): Promise<void> {
  for (const server of servers) NetServer.prototype.close.call(server);
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
