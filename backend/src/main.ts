import http from 'node:http';
import express from 'express';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { readConfig, type BackendConfig } from './config.js';
import { ChaosState } from './chaos.js';
import { createMetrics } from './metrics.js';
import { createTrafficHandler } from './app.js';
import { CRASH_EXIT_CODE, createControlApp } from './control.js';

/**
 * Keep-alive idle timeout of the traffic port (65 s): longer than a proxy's usual idle timeout, so that the
 * proxy closes idle connections first and never reuses one the backend is closing at that moment.
 */
const KEEP_ALIVE_TIMEOUT_MS = 65_000;

function hostForUrl(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

async function listen(server: http.Server, port: number, host: string): Promise<number> {
  server.listen(port, host);
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

async function main(): Promise<void> {
  let config: BackendConfig;
  try {
    config = readConfig(process.env);
  } catch (error) {
    process.stderr.write(`backend: ${(error as Error).message}\n`);
    process.exit(2);
  }
  const { backendId } = config;
  const log = (line: string): void => {
    process.stdout.write(`backend ${backendId} ${line}\n`);
  };

  let closing = false;
  const chaos = new ChaosState(log);
  const metrics = createMetrics(backendId, chaos, () => traffic.inFlight());
  const traffic = createTrafficHandler({ backendId, chaos, metrics, closing: () => closing });
  const control = createControlApp({
    backendId,
    chaos,
    metrics,
    crash: () => {
      log(`crashing on request (POST /chaos/crash): exit code ${CRASH_EXIT_CODE}, ${traffic.inFlight()} traffic requests dropped`);
      process.exit(CRASH_EXIT_CODE);
    },
  });

  const trafficApp = express();
  trafficApp.disable('x-powered-by');
  trafficApp.disable('etag');
  trafficApp.use(traffic.handler);
  const trafficServer = http.createServer(trafficApp);
  trafficServer.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
  const controlServer = http.createServer(control);

  let port: number;
  let controlPort: number;
  try {
    port = await listen(trafficServer, config.port, config.host);
    controlPort = await listen(controlServer, config.controlPort, config.host);
  } catch (error) {
    process.stderr.write(`backend ${backendId}: cannot listen: ${(error as Error).message}\n`);
    process.exit(1);
  }
  const host = hostForUrl(config.host);

  const shutdown = (signal: NodeJS.Signals): void => {
    if (closing) {
      log(`${signal} again: exiting at once with ${traffic.inFlight()} requests in flight`);
      process.exit(1);
    }
    closing = true;
    log(`${signal}: closing listeners, draining ${traffic.inFlight()} in-flight requests (${chaos.heldCount} held by hang are released)`);
    chaos.releaseAll();
    let forced = false;
    const sweep = setInterval(() => {
      trafficServer.closeIdleConnections();
      controlServer.closeIdleConnections();
    }, 100);
    const deadline = setTimeout(() => {
      forced = true;
      log(`shutdown timeout (${config.shutdownTimeoutMs} ms): closing ${traffic.inFlight()} requests still in flight`);
      trafficServer.closeAllConnections();
      controlServer.closeAllConnections();
    }, config.shutdownTimeoutMs);
    const closed = (server: http.Server): Promise<void> => new Promise((resolve) => server.close(() => resolve()));
    void Promise.all([closed(trafficServer), closed(controlServer)]).then(() => {
      clearInterval(sweep);
      clearTimeout(deadline);
      log(forced ? 'stopped (forced)' : 'stopped');
      process.exit(forced ? 1 : 0);
    });
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
  // Only now: whoever reads this line may signal at once.
  process.stdout.write(`backend ${backendId} listening on http://${host}:${port} (control http://${host}:${controlPort})\n`);
}

await main();
