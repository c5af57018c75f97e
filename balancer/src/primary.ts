import { createServer, type Server } from 'node:http';
import { once } from 'node:events';
import { parseArgs } from 'node:util';
import type { AddressInfo } from 'node:net';
import { ConfigError, loadConfigFile, workerCount, type Config } from './config.js';
import { createAdminApp } from './admin.js';
import { Balancer } from './balancer.js';
import type { ControlPlane } from './control-plane.js';
import { Supervisor } from './cluster/supervisor.js';
import { listenerScheme, trafficPort } from './listeners/ports.js';
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

/**
 * The primary: the control plane (backends, health checks, discovery, reloads, outlier detection),
 * the admin listener and the status page; the traffic listener is served by the workers it
 * supervises (cluster/supervisor.ts).
 */
export async function runPrimary(): Promise<void> {
  const { configFile, checkOnly } = readArgs();
  let config: Config;
  try {
    config = loadConfigFile(configFile);
  } catch (error) {
    if (error instanceof ConfigError) fail(error.message);
    throw error;
  }
  const workers = workerCount(config);
  if (checkOnly) {
    const listeners = config.listeners.map((listener) => `${listener.name} (${listener.mode}, ${listener.discovery ? `backends from DNS ${listener.discovery.dns.name}:${listener.discovery.dns.port}` : `${listener.backends.length} backends`}, ${listener.algorithm})`);
    process.stdout.write(`configuration ${configFile} is valid: ${config.listenersKey ? `listeners ${listeners.join(', ')}` : `${config.listeners[0]!.backends.length} backends, algorithm ${config.listeners[0]!.algorithm}`}, ${workers} worker${workers === 1 ? '' : 's'}\n`);
    return;
  }

  const balancer = new Balancer(config);
  const supervisor = new Supervisor(balancer, workers);
  const wire = (plane: ControlPlane): void => {
    const load = supervisor.load(plane.name);
    plane.connect((id) => load.view(id), (snapshot) => supervisor.publish(plane.name, snapshot));
  };
  balancer.listeners().forEach(wire);
  balancer.serveWith(supervisor, wire);
  const reload = (origin: string): void => {
    balancer.reloadFile(configFile, origin).catch((error: unknown) => {
      // A refused reload has been logged and counted; anything else is a fault of the balancer.
      if (!(error instanceof AdminError)) log.error(`${origin}: reload failed`, { error: (error as Error).stack ?? String(error) });
    });
  };
  const upgrade = (origin: string): void => {
    supervisor.upgrade(origin).catch((error: unknown) => log.error(`${origin}: upgrade refused`, { reason: (error as Error).message }));
  };
  // Watch from the start, so that an edit made while the balancer starts is not missed.
  const tlsFiles = [...new Set(config.listeners.flatMap((listener) => (listener.tls ? [listener.tls.cert, listener.tls.key] : [])))];
  const stops = [watchConfigFile(configFile, () => reload('file change')), ...tlsFiles.map((file) => watchConfigFile(file, () => reload(`change of ${file}`)))];
  const stopWatching = (): void => stops.forEach((stop) => stop());
  // Before anything slow: an unhandled SIGUSR2 or SIGHUP ends the process.
  process.on('SIGHUP', () => reload('SIGHUP'));
  process.on('SIGUSR2', () => upgrade('SIGUSR2'));
  await balancer.start();

  const adminServer = createServer(createAdminApp(balancer, configFile, supervisor));
  const shutdown = async (signal: string): Promise<void> => {
    stopWatching();
    const grace = Math.max(...balancer.listeners().map((plane) => plane.config.timeouts.shutdown));
    log.info(`${signal}: shutting down`, { inFlight: supervisor.inFlight(), workers: supervisor.views().length, graceMs: grace });
    adminServer.close();
    adminServer.closeIdleConnections();
    await supervisor.stop(grace);
    adminServer.closeAllConnections();
    balancer.stop();
    log.info('stopped');
  };
  onShutdown(shutdown);

  const ports = new Map<string, number>();
  for (const plane of balancer.listeners()) {
    plane.boundPort = await trafficPort(plane.config.listen.host, plane.config.listen.port);
    ports.set(plane.name, plane.boundPort);
  }
  await supervisor.start(ports);
  const adminUrl = await listen(adminServer, config.admin.host, config.admin.port);
  balancer.boundAdminPort = Number(new URL(adminUrl).port);
  const members = balancer.listeners().flatMap((plane) => plane.pool.all());
  const healthy = members.filter((backend) => backend.state === 'healthy').length;
  const urls = balancer.listeners().map((plane) => `${listenerScheme(plane.config)}://${hostPort(plane.config.listen.host, plane.boundPort)}`);
  const first = balancer.first.config;
  readyLine('balancer', {
    proxy: urls[0]!,
    ...(urls.length > 1 ? { listeners: balancer.listeners().map((plane, i) => `${plane.name}=${urls[i]}`).join(',') } : {}),
    admin: adminUrl,
    algorithm: first.algorithm,
    backends: members.length,
    healthy,
    engine: first.engine,
    workers,
    pid: process.pid,
  });
}

