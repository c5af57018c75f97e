import http from 'node:http';
import express from 'express';
import { once } from 'node:events';
import type { AddressInfo, Server } from 'node:net';
import { readConfig, type BackendConfig } from './config.js';
import { ChaosState } from './chaos.js';
import { createMetrics } from './metrics.js';
import { createTrafficHandler } from './app.js';
import { CRASH_EXIT_CODE, createControlApp } from './control.js';
import { createTcpEcho } from './tcp-echo.js';
import { hostPort } from '@lab/common/host-port';
import { log } from '@lab/common/log';
import { readyLine } from '@lab/common/ready';
import { onShutdown } from '@lab/common/shutdown';

/**
 * Keep-alive idle timeout of the traffic port (65 s): longer than a proxy's usual idle timeout, so that the
 * proxy closes idle connections first and never reuses one the backend is closing at that moment.
 */
const KEEP_ALIVE_TIMEOUT_MS = 65_000;

/** Listens and resolves with the port; a failure names the variable, say "TCP_PORT=4000: listen EADDRINUSE ...". */
async function listen(server: Server, variable: string, port: number, host: string): Promise<number> {
  server.listen(port, host);
  try {
    await once(server, 'listening');
  } catch (error) {
    throw new Error(`${variable}=${port}: ${(error as Error).message}`);
  }
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
  const metrics = createMetrics(backendId, chaos, () => traffic.inFlight(), () => tcp.open());
  const traffic = createTrafficHandler({ backendId, chaos, metrics, closing: () => closing });
  const tcp = createTcpEcho({ backendId, chaos, metrics, closing: () => closing });
  const control = createControlApp({
    backendId,
    chaos,
    metrics,
    crash: () => {
      log.warn(`crashing on request (POST /chaos/crash): exit code ${CRASH_EXIT_CODE}, ${traffic.inFlight()} traffic requests and ${tcp.open()} TCP connections dropped`);
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
  let tcpPort: number;
  try {
    port = await listen(trafficServer, 'PORT', config.port, config.host);
    controlPort = await listen(controlServer, 'CONTROL_PORT', config.controlPort, config.host);
    tcpPort = await listen(tcp.server, 'TCP_PORT', config.tcpPort, config.host);
  } catch (error) {
    log.error(`cannot listen: ${(error as Error).message}`);
    process.exit(1);
  }

  onShutdown(async (signal) => {
    closing = true;
    log.info(`${signal}: closing listeners, draining ${traffic.inFlight()} in-flight requests and ${tcp.open()} TCP connections (${chaos.heldCount} held by hang are released)`);
    chaos.releaseAll();
    tcp.endAll();
    let forced = false;
    const sweep = setInterval(() => {
      trafficServer.closeIdleConnections();
      controlServer.closeIdleConnections();
    }, 100);
    const deadline = setTimeout(() => {
      forced = true;
      log.warn(`shutdown timeout (${config.shutdownTimeoutMs} ms): closing ${traffic.inFlight()} requests still in flight and ${tcp.open()} TCP connections still open`);
      trafficServer.closeAllConnections();
      controlServer.closeAllConnections();
      tcp.destroyAll();
    }, config.shutdownTimeoutMs);
    const closed = (server: Server): Promise<void> => new Promise((resolve) => server.close(() => resolve()));
    await Promise.all([closed(trafficServer), closed(controlServer), closed(tcp.server)]);
    clearInterval(sweep);
    clearTimeout(deadline);
    if (forced) throw new Error(`requests or TCP connections were still open after the shutdown timeout (${config.shutdownTimeoutMs} ms)`);
    log.info('stopped');
  });
  readyLine('backend', {
    id: backendId,
    traffic: `http://${hostPort(config.host, port)}`,
    control: `http://${hostPort(config.host, controlPort)}`,
    tcp: `tcp://${hostPort(config.host, tcpPort)}`,
  });
}

await main();
