import { createServer, type Server } from 'node:http';
import { once } from 'node:events';
import { parseArgs } from 'node:util';
import type { AddressInfo } from 'node:net';
import { ConfigError, loadConfigFile, type Config } from './config.js';
import { createAdminApp } from './admin.js';
import { ControlPlane } from './control-plane.js';
import { DataPlane } from './data-plane.js';
import { createEngine } from './engines/index.js';
import { Accounting } from './pipeline/accounting.js';
import { createRequestHandler } from './pipeline/exchange.js';
import { createUpgradeHandler } from './pipeline/upgrade.js';
import { AdminError } from './errors.js';
import { watchConfigFile } from './watch.js';
import { log } from './log.js';

const USAGE = `usage: node balancer/dist/main.js --config FILE [--check]
  --config FILE   the YAML configuration (or set BALANCER_CONFIG=FILE)
  --check         validate the configuration, print the result and exit`;

function readArgs(): { configFile: string; checkOnly: boolean } {
  let values;
  try {
    ({ values } = parseArgs({
      options: { config: { type: 'string', short: 'c' }, check: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
    }));
  } catch (error) {
    fail(`${(error as Error).message}\n${USAGE}`);
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const configFile = values.config ?? process.env.BALANCER_CONFIG;
  if (!configFile) fail(`no configuration given: pass --config FILE or set BALANCER_CONFIG\n${USAGE}`);
  return { configFile, checkOnly: values.check ?? false };
}

function fail(message: string): never {
  process.stderr.write(`balancer: ${message}\n`);
  process.exit(2);
}

async function listen(server: Server, host: string, port: number): Promise<string> {
  server.listen(port, host);
  await once(server, 'listening');
  const address = server.address() as AddressInfo;
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return `http://${shownHost}:${address.port}`;
}

async function main(): Promise<void> {
  const { configFile, checkOnly } = readArgs();
  let config: Config;
  try {
    config = loadConfigFile(configFile);
  } catch (error) {
    if (error instanceof ConfigError) fail(error.message);
    throw error;
  }
  if (checkOnly) {
    process.stdout.write(`configuration ${configFile} is valid: ${config.backends.length} backends, algorithm ${config.algorithm}\n`);
    return;
  }

  const balancer = new ControlPlane(config);
  const dataPlane = new DataPlane(await createEngine(config.engine, { connectTimeout: config.timeouts.connect }), balancer);
  balancer.connect((id) => dataPlane.load(id), (snapshot) => dataPlane.apply(snapshot));
  const accounting = new Accounting(balancer.metrics, balancer.stats);
  const reload = (origin: string): void => {
    try {
      balancer.reloadFile(configFile, origin);
    } catch (error) {
      if (!(error instanceof AdminError)) throw error;
    }
  };
  // Watch from the start, so that an edit made while the balancer starts is not missed.
  const stopWatching = watchConfigFile(configFile, () => reload('file change'));
  await balancer.start();

  const trafficServer = createServer({ keepAliveTimeout: 5_000 }, createRequestHandler(dataPlane, accounting));
  trafficServer.on('upgrade', createUpgradeHandler(dataPlane, accounting));
  trafficServer.on('clientError', (_error, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n');
  });
  const adminServer = createServer(createAdminApp(balancer, configFile));

  const shutdown = async (signal: string): Promise<void> => {
    if (dataPlane.shuttingDown) return;
    dataPlane.shuttingDown = true;
    stopWatching();
    const inFlight = (): number => dataPlane.inFlight();
    const grace = balancer.config.timeouts.shutdown;
    log(`${signal}: shutting down`, { inFlight: inFlight(), graceMs: grace });
    trafficServer.close();
    adminServer.close();
    trafficServer.closeIdleConnections();
    adminServer.closeIdleConnections();
    const deadline = Date.now() + grace;
    while (inFlight() > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 25));
      trafficServer.closeIdleConnections();
    }
    const abandoned = inFlight();
    trafficServer.closeAllConnections();
    adminServer.closeAllConnections();
    balancer.stop();
    dataPlane.close();
    log('stopped', { abandonedRequests: abandoned });
    process.exit(0);
  };
  // Before the "listening" line: whoever reads it may signal at once, and an unhandled SIGHUP ends the process.
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGHUP', () => reload('SIGHUP'));

  const proxyUrl = await listen(trafficServer, config.listen.host, config.listen.port);
  const adminUrl = await listen(adminServer, config.admin.host, config.admin.port);
  balancer.setBoundPorts(Number(new URL(proxyUrl).port), Number(new URL(adminUrl).port));
  log(`balancer listening`, { proxy: proxyUrl, admin: adminUrl, algorithm: config.algorithm, backends: balancer.pool.all().length, healthy: dataPlane.current.available.length, engine: config.engine });
}

main().catch((error: unknown) => {
  process.stderr.write(`balancer: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
