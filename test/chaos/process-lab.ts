/**
 * The chaos lab as local processes: backend/dist/main.js and balancer/dist/main.js on 127.0.0.1, faults by
 * real signals (SIGKILL, SIGTERM, SIGSTOP/SIGCONT, SIGHUP) and restarts on the same port.
 *
 * The L4 lab (LabOptions.tcp) puts each backend on an address of its own, 127.0.0.11 to 127.0.0.13, with the
 * same HTTP and echo ports: the tcp listener's healthCheck.port is one port for all its backends. A restarted
 * backend gets its address and ports back.
 */
import { writeFileSync } from 'node:fs';
import type { TestContext } from 'node:test';
import { startBackend, type RunningBackend } from '../helpers/backend.js';
import { httpRequest } from '../helpers/http.js';
import { startBackendProcess, startBalancer, type RunningBalancer } from '../helpers/lab.js';
import { childrenOf, freePort } from '../helpers/processes.js';
import { BACKENDS, balancerSettings, l4BalancerSettings, type BackendId, type ChaosLab, type L4Layout, type LabDriver, type LabOptions } from './scenarios.js';

export const processDriver: LabDriver = {
  suite: 'processes',
  noPartition: 'a partition of a local process would need a network namespace or firewall rules on the host',
  start: startProcessLab,
};

async function startProcessLab(t: TestContext, options: LabOptions = {}): Promise<ChaosLab> {
  if (options.tcp) return startL4ProcessLab(t, options);
  const ports = await Promise.all(BACKENDS.map(() => freePort()));
  const backends = new Map<BackendId, RunningBackend>();
  const startOne = async (id: BackendId): Promise<void> => {
    backends.set(id, await startBackendProcess(t, id, ports[BACKENDS.indexOf(id)]));
  };
  await Promise.all(BACKENDS.map(startOne));
  const backend = (id: BackendId): RunningBackend => backends.get(id)!;

  // Fixed ports, so that a restarted balancer answers where the load goes.
  const listen = { host: '127.0.0.1', port: await freePort() };
  const admin = { host: '127.0.0.1', port: await freePort() };
  const config = (o: LabOptions): Record<string, unknown> => ({ listen, admin, ...balancerSettings(ports.map((port) => `http://127.0.0.1:${port}`), o) });
  return processLab(t, { backend, startOne, config, options });
}

/** The L4 lab: backends on 127.0.0.11-13 with one HTTP port and one echo port, the listeners `web` and `echo` (and the witness). */
async function startL4ProcessLab(t: TestContext, options: LabOptions): Promise<ChaosLab> {
  const hosts = BACKENDS.map((_, i) => `127.0.0.${11 + i}`);
  const [httpPort, tcpPort] = [await freePort(), await freePort()];
  const backends = new Map<BackendId, RunningBackend>();
  const startOne = async (id: BackendId): Promise<void> => {
    const backend = await startBackend(id, { HOST: hosts[BACKENDS.indexOf(id)]!, PORT: String(httpPort), TCP_PORT: String(tcpPort) });
    t.after(() => backend.service.stop('SIGKILL'));
    backends.set(id, backend);
  };
  await Promise.all(BACKENDS.map(startOne));
  const backend = (id: BackendId): RunningBackend => backends.get(id)!;

  const admin = { host: '127.0.0.1', port: await freePort() };
  const layout: L4Layout = {
    web: { host: '127.0.0.1', port: await freePort() },
    echo: { host: '127.0.0.1', port: await freePort() },
    witness: { host: '127.0.0.1', port: 0 },
    httpUrls: hosts.map((host) => `http://${host}:${httpPort}`),
    tcpUrls: hosts.map((host) => `tcp://${host}:${tcpPort}`),
    healthPort: httpPort,
  };
  const config = (o: LabOptions): Record<string, unknown> => ({ admin, ...l4BalancerSettings(layout, o) });
  // A reload keeps the lab's tcp listener whatever the scenario's options say.
  return processLab(t, { backend, startOne, config, options, tcp: layout.echo, keep: (o) => ({ ...o, tcp: options.tcp }) });
}

interface ProcessLabParts {
  backend: (id: BackendId) => RunningBackend;
  startOne: (id: BackendId) => Promise<void>;
  /** the balancer's configuration for these options */
  config: (options: LabOptions) => Record<string, unknown>;
  options: LabOptions;
  tcp?: ChaosLab['tcp'];
  /** keep: the options a reload applies (default: those given) */
  keep?: (options: LabOptions) => LabOptions;
}

/** processLab starts the balancer and makes its faults with real signals to real processes: the same for both layouts. */
async function processLab(t: TestContext, { backend, startOne, config, options, tcp, keep = (o) => o }: ProcessLabParts): Promise<ChaosLab> {
  let current = options;
  let balancer: RunningBalancer = await startBalancer(t, config(current));
  return {
    proxyUrl: balancer.url,
    adminUrl: balancer.adminUrl,
    ...(tcp ? { tcp } : {}),
    kill: async (id) => void (await backend(id).service.stop('SIGKILL')),
    stop: async (id) => void (await backend(id).service.stop('SIGTERM')),
    pause: async (id) => void backend(id).service.child.kill('SIGSTOP'),
    unpause: async (id) => void backend(id).service.child.kill('SIGCONT'),
    start: startOne,
    healthy: async (id) => (await httpRequest(`${backend(id).url}/health`, { timeoutMs: 300 })).status === 200,
    chaos: async (id, patch) => void (await backend(id).chaos(patch)),
    async reload(o) {
      current = keep(o);
      writeFileSync(balancer.configFile, JSON.stringify(config(current), null, 2));
      balancer.service.child.kill('SIGHUP');
    },
    async restartBalancer() {
      await balancer.service.stop('SIGTERM');
      balancer = await startBalancer(t, config(current));
    },
    upgradeBalancer: async () => void balancer.service.child.kill('SIGUSR2'),
    balancerProcesses: async () => 1 + childrenOf(balancer.service.child.pid!).length,
    balancerLog: () => balancer.service.output(),
  };
}
