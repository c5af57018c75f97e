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
import { log } from '@lab/common/log';
import { onShutdown } from '@lab/common/shutdown';
import { readyLine } from '@lab/common/ready';
import { hostPort } from '@lab/common/host-port';

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
  return `http://${hostPort(address.address, address.port)}`;
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
    dataPlane.shuttingDown = true;
    stopWatching();
    const inFlight = (): number => dataPlane.inFlight();
    const grace = balancer.config.timeouts.shutdown;
    log.info(`${signal}: shutting down`, { inFlight: inFlight(), graceMs: grace });
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
    log.info('stopped', { abandonedRequests: abandoned });
  };
  // Before the ready line: whoever reads it may signal at once, and an unhandled SIGHUP ends the process.
  onShutdown(shutdown);
  process.on('SIGHUP', () => reload('SIGHUP'));

  const proxyUrl = await listen(trafficServer, config.listen.host, config.listen.port);
  const adminUrl = await listen(adminServer, config.admin.host, config.admin.port);
  balancer.setBoundPorts(Number(new URL(proxyUrl).port), Number(new URL(adminUrl).port));
  readyLine('balancer', { proxy: proxyUrl, admin: adminUrl, algorithm: config.algorithm, backends: balancer.pool.all().length, healthy: dataPlane.current.available.length, engine: config.engine });
}

main().catch((error: unknown) => {
  process.stderr.write(`balancer: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
