import http from 'node:http';
import express from 'express';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { readConfig, type BackendConfig } from './config.js';
import { ChaosState } from './chaos.js';
import { createMetrics } from './metrics.js';
import { createTrafficHandler } from './app.js';
import { CRASH_EXIT_CODE, createControlApp } from './control.js';
import { hostPort } from '@lab/common/host-port';
import { log } from '@lab/common/log';
import { readyLine } from '@lab/common/ready';
import { onShutdown } from '@lab/common/shutdown';

/**
 * Keep-alive idle timeout of the traffic port (65 s): longer than a proxy's usual idle timeout, so that the
 * proxy closes idle connections first and never reuses one the backend is closing at that moment.
 */
const KEEP_ALIVE_TIMEOUT_MS = 65_000;

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

  let closing = false;
  const chaos = new ChaosState((line) => log.info(line));
  const metrics = createMetrics(backendId, chaos, () => traffic.inFlight());
  const traffic = createTrafficHandler({ backendId, chaos, metrics, closing: () => closing });
  const control = createControlApp({
    backendId,
    chaos,
    metrics,
    crash: () => {
      log.warn(`crashing on request (POST /chaos/crash): exit code ${CRASH_EXIT_CODE}, ${traffic.inFlight()} traffic requests dropped`);
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
    log.error(`cannot listen: ${(error as Error).message}`);
    process.exit(1);
  }

  onShutdown(async (signal) => {
    closing = true;
    log.info(`${signal}: closing listeners, draining ${traffic.inFlight()} in-flight requests (${chaos.heldCount} held by hang are released)`);
    chaos.releaseAll();
    let forced = false;
    const sweep = setInterval(() => {
      trafficServer.closeIdleConnections();
      controlServer.closeIdleConnections();
    }, 100);
    const deadline = setTimeout(() => {
      forced = true;
      log.warn(`shutdown timeout (${config.shutdownTimeoutMs} ms): closing ${traffic.inFlight()} requests still in flight`);
      trafficServer.closeAllConnections();
      controlServer.closeAllConnections();
    }, config.shutdownTimeoutMs);
    const closed = (server: http.Server): Promise<void> => new Promise((resolve) => server.close(() => resolve()));
    await Promise.all([closed(trafficServer), closed(controlServer)]);
    clearInterval(sweep);
    clearTimeout(deadline);
    if (forced) throw new Error(`requests were still in flight after the shutdown timeout (${config.shutdownTimeoutMs} ms)`);
    log.info('stopped');
  });
  readyLine('backend', { id: backendId, traffic: `http://${hostPort(config.host, port)}`, control: `http://${hostPort(config.host, controlPort)}` });
}

await main();
