/**
 * The chaos lab in containers (testcontainers): the project's own backend and balancer images on one
 * user-defined network per suite, backends reached by their network alias, load through the balancer's
 * published port, faults through the Docker API (dockerode): kill, stop, pause/unpause, network
 * disconnect/connect, start, restart, and SIGHUP. In the L4 lab (LabOptions.tcp) the balancer's tcp listener
 * `echo` (container port 8081, published on a fixed host port) relays to the backends' echo port 4000.
 */
import type { TestContext } from 'node:test';
import { GenericContainer, Network, Wait, getContainerRuntimeClient, type StartedNetwork, type StartedTestContainer } from 'testcontainers';
import { putChaos } from '../helpers/backend.js';
import { labImageEnv } from '../helpers/docker.js';
import { httpRequest } from '../helpers/http.js';
import { freePort, repoRoot } from '../helpers/processes.js';
import { BACKENDS, balancerSettings, l4BalancerSettings, type BackendId, type ChaosLab, type LabDriver, type LabOptions } from './scenarios.js';

// Ryuk (testcontainers' reaper) is an image that cannot be pulled without a registry; this suite removes what it starts.
process.env.TESTCONTAINERS_RYUK_DISABLED ??= 'true';

type Docker = Awaited<ReturnType<typeof getContainerRuntimeClient>>['container']['dockerode'];

const IMAGES = { backend: 'lb-lab-chaos/backend:latest', balancer: 'lb-lab-chaos/balancer:latest' };
/** Every container this suite starts carries this label with the test process id, so that teardown finds leftovers. */
const SUITE_LABEL = 'lb-lab.chaos-suite';
const TRAFFIC_PORT = 3000;
const CONTROL_PORT = 3100;
/** The backend's TCP echo port (TCP_PORT's default), and the balancer's tcp listeners in the L4 lab. */
const ECHO_PORT = 4000;
const ECHO_LISTEN_PORT = 8081;
const WITNESS_LISTEN_PORT = 8082;
const CONFIG_FILE = '/etc/balancer/chaos.yaml';
/** docker stop's grace period for a backend: it drains its requests in flight well within this. */
const STOP_GRACE_S = 10;

/** The container driver; setup() builds the images and creates the network, teardown() removes everything. */
export class ContainerDriver implements LabDriver {
  readonly suite = 'containers';
  private docker: Docker | undefined;
  private network: StartedNetwork | undefined;

  async setup(): Promise<void> {
    const { NODE_IMAGE } = await labImageEnv();
    for (const [service, tag] of Object.entries(IMAGES)) {
      const started = performance.now();
      await GenericContainer.fromDockerfile(repoRoot)
        .withTarget(service)
        .withBuildArgs(NODE_IMAGE ? { NODE_IMAGE } : {})
        .build(tag, { deleteOnExit: false });
      console.log(`# built ${tag} from Dockerfile --target ${service}${NODE_IMAGE ? ` on ${NODE_IMAGE}` : ''} in ${Math.round(performance.now() - started)} ms`);
    }
    this.docker = (await getContainerRuntimeClient()).container.dockerode;
    this.network = await new Network().start();
  }

  /** teardown removes every container of this suite still there (even after a failed test), then the network. */
  async teardown(): Promise<void> {
    if (this.docker) {
      const left = await this.docker.listContainers({ all: true, filters: { label: [`${SUITE_LABEL}=${process.pid}`] } });
      await removeContainers(this.docker, left.map((c) => c.Id));
    }
    await this.network?.stop();
  }

  async start(t: TestContext, options: LabOptions = {}): Promise<ChaosLab> {
    const docker = this.docker;
    const network = this.network;
    if (!docker || !network) throw new Error('ContainerDriver.setup() has not run');
    const started: string[] = [];
    t.after(() => removeContainers(docker, started));
    const labelled = (image: string): GenericContainer => new GenericContainer(image).withNetwork(network).withLabels({ [SUITE_LABEL]: String(process.pid) }).withStartupTimeout(60_000);

    const backends = new Map<BackendId, { container: StartedTestContainer; host: string; trafficPort: number; controlPort: number }>();
    await Promise.all(
      BACKENDS.map(async (id) => {
        const container = await labelled(IMAGES.backend)
          .withNetworkAliases(id)
          .withEnvironment({ BACKEND_ID: id })
          .withExposedPorts(TRAFFIC_PORT, CONTROL_PORT)
          .withWaitStrategy(Wait.forLogMessage(/ backend listening /))
          .start();
        started.push(container.getId());
        backends.set(id, { container, host: hostOf(container), trafficPort: container.getMappedPort(TRAFFIC_PORT), controlPort: container.getMappedPort(CONTROL_PORT) });
      }),
    );
    const backend = (id: BackendId) => backends.get(id)!;
    const dockerContainer = (id: BackendId) => docker.getContainer(backend(id).container.getId());
    /** Docker publishes a restarted or reconnected container on new host ports. */
    const republished = async (id: BackendId): Promise<void> => {
      const ports = (await dockerContainer(id).inspect()).NetworkSettings.Ports;
      const hostPort = (port: number): number => Number(ports[`${port}/tcp`]?.[0]?.HostPort);
      Object.assign(backend(id), { trafficPort: hostPort(TRAFFIC_PORT), controlPort: hostPort(CONTROL_PORT) });
    };

    // Published on fixed host ports, so that the balancer keeps its address across a restart.
    const [proxyPort, adminPort, tcpPort] = [await freePort(), await freePort(), await freePort()];
    const httpUrls = BACKENDS.map((id) => `http://${id}:${TRAFFIC_PORT}`);
    const admin = { host: '0.0.0.0', port: 9090 };
    const config = (o: LabOptions): string =>
      JSON.stringify(
        options.tcp
          ? {
              admin,
              // A reload keeps the lab's listeners: the tcp ones do not come and go with a scenario's variants.
              ...l4BalancerSettings(
                {
                  web: { host: '0.0.0.0', port: 8080 },
                  echo: { host: '0.0.0.0', port: ECHO_LISTEN_PORT },
                  witness: { host: '0.0.0.0', port: WITNESS_LISTEN_PORT },
                  httpUrls,
                  tcpUrls: BACKENDS.map((id) => `tcp://${id}:${ECHO_PORT}`),
                  healthPort: TRAFFIC_PORT,
                },
                { ...o, tcp: options.tcp },
              ),
            }
          : { listen: { host: '0.0.0.0', port: 8080 }, admin, ...balancerSettings(httpUrls, o) },
        null,
        2,
      );
    const exposed = [{ container: 8080, host: proxyPort }, { container: 9090, host: adminPort }, ...(options.tcp ? [{ container: ECHO_LISTEN_PORT, host: tcpPort }] : [])];
    let log = '';
    const balancer = await labelled(IMAGES.balancer)
      .withEnvironment({ BALANCER_CONFIG: CONFIG_FILE })
      .withCopyContentToContainer([{ content: config(options), target: CONFIG_FILE, mode: 0o644 }])
      .withExposedPorts(...exposed)
      .withWaitStrategy(Wait.forLogMessage(/balancer listening/))
      .withLogConsumer((stream) => stream.on('data', (chunk: Buffer | string) => (log += chunk.toString())))
      .start();
    started.push(balancer.getId());
    const host = hostOf(balancer);

    return {
      proxyUrl: `http://${host}:${proxyPort}`,
      adminUrl: `http://${host}:${adminPort}`,
      ...(options.tcp ? { tcp: { host, port: tcpPort } } : {}),
      async kill(id) {
        await dockerContainer(id).kill({ signal: 'SIGKILL' });
        await dockerContainer(id).wait({ condition: 'not-running' });
      },
      stop: async (id) => void (await dockerContainer(id).stop({ t: STOP_GRACE_S })),
      pause: async (id) => void (await dockerContainer(id).pause()),
      unpause: async (id) => void (await dockerContainer(id).unpause()),
      disconnect: async (id) => void (await docker.getNetwork(network.getId()).disconnect({ Container: backend(id).container.getId() })),
      async reconnect(id) {
        await docker.getNetwork(network.getId()).connect({ Container: backend(id).container.getId(), EndpointConfig: { Aliases: [id] } });
        await republished(id);
      },
      async start(id) {
        await dockerContainer(id).start();
        await republished(id);
      },
      healthy: async (id) => (await httpRequest(`http://${backend(id).host}:${backend(id).trafficPort}/health`, { timeoutMs: 300 })).status === 200,
      chaos: async (id, patch) => void (await putChaos(`http://${backend(id).host}:${backend(id).controlPort}`, patch)),
      async reload(o) {
        await balancer.copyContentToContainer([{ content: config(o), target: CONFIG_FILE, mode: 0o644 }]);
        await docker.getContainer(balancer.getId()).kill({ signal: 'SIGHUP' });
      },
      restartBalancer: async () => void (await docker.getContainer(balancer.getId()).restart({ t: STOP_GRACE_S })),
      upgradeBalancer: async () => void (await docker.getContainer(balancer.getId()).kill({ signal: 'SIGUSR2' })),
      balancerProcesses: async () => (await docker.getContainer(balancer.getId()).top()).Processes?.length ?? 0,
      balancerLog: () => log,
    };
  }
}

/** The address of the container's published ports as seen from this process: 127.0.0.1 for a local engine. */
function hostOf(container: StartedTestContainer): string {
  const host = container.getHost();
  return host === 'localhost' ? '127.0.0.1' : host;
}

/** Removes containers whatever their state (paused ones are unpaused first); errors are reported, not thrown. */
async function removeContainers(docker: Docker, ids: readonly string[]): Promise<void> {
  await Promise.all(
    ids.map(async (id) => {
      const container = docker.getContainer(id);
      await container.unpause().catch(() => undefined);
      await container.remove({ force: true, v: true }).catch((error: Error) => {
        if (!/no such container/i.test(error.message)) console.error(`could not remove container ${id}: ${error.message}`);
      });
    }),
  );
}
