/**
 * The compose lab, for real: `docker compose config` accepts the file, then the stack is built and
 * started with `up --wait`, traffic goes through the balancer to every replica, `--scale backend=5`
 * is followed by the balancer's DNS discovery, the https listener serves the certificate the `certs`
 * service made, and `down -v` leaves nothing behind.
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';
import { describe, test } from 'node:test';
import { load as loadYaml } from 'js-yaml';
import { parseDuration } from '../../common/src/durations.js';
import { composeCommand, composeFile, containerSuiteSkip, dockerUnavailableReason, labImageEnv, projectLeftovers, runOrThrow } from '../helpers/docker.js';
import { getJson, httpRequest, metricValue, waitFor } from '../helpers/http.js';
import { connectTcp } from '../helpers/tcp.js';
import { freePort } from '../helpers/processes.js';

const skip = containerSuiteSkip(await dockerUnavailableReason(), 'compose lab');

interface ComposeService {
  image?: string;
  build?: { dockerfile: string; args?: Record<string, string> };
  ports?: { host_ip?: string; published: string; target: number }[];
  deploy?: { replicas?: number };
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: unknown;
}

/** The balancer's compose config: the interval of DNS discovery and of health checks, and `rise`. */
const balancerConfig = loadYaml(readFileSync(new URL('../../balancer/examples/compose.yaml', import.meta.url), 'utf8')) as {
  discovery: { dns: { interval: string } };
  healthCheck: { interval: string; rise: number };
};

describe('docker-compose.yml', { skip, timeout: 600_000 }, () => {
  test('docker compose config accepts the file; backends publish nothing, every published port binds 127.0.0.1, images are overridable', async () => {
    assert.equal((loadYaml(readFileSync(composeFile, 'utf8')) as Record<string, unknown>).name, undefined, 'no top-level name: Compose v1 would refuse it');
    const config = JSON.parse(
      await runOrThrow('docker', ['compose', '-f', composeFile, 'config', '--format', 'json'], {
        env: { PROMETHEUS_IMAGE: 'example/prometheus:test', GRAFANA_IMAGE: 'example/grafana:test', NODE_IMAGE: 'example/node:test' },
      }),
    ) as { services: Record<string, ComposeService> };
    const services = config.services;
    assert.deepEqual(Object.keys(services).sort(), ['backend', 'balancer', 'certs', 'grafana', 'loadgen', 'loadgen-tcp', 'prometheus']);
    assert.equal(services.backend!.deploy?.replicas, 3);
    assert.equal(services.backend!.ports, undefined, 'backends are reachable only through the balancer');
    for (const [name, service] of Object.entries(services)) {
      for (const port of service.ports ?? []) assert.equal(port.host_ip, '127.0.0.1', `${name} publishes ${port.published} beyond 127.0.0.1`);
    }
    assert.equal(services.prometheus!.image, 'example/prometheus:test');
    assert.equal(services.grafana!.image, 'example/grafana:test');
    for (const name of ['balancer', 'backend', 'loadgen']) assert.equal(services[name]!.build?.args?.NODE_IMAGE, 'example/node:test', `${name} build takes NODE_IMAGE`);
    assert.equal(services.balancer!.depends_on?.backend?.condition, 'service_healthy');
    assert.equal(services.balancer!.depends_on?.certs?.condition, 'service_completed_successfully', 'the balancer starts once its certificates exist');
    assert.equal(services.loadgen!.depends_on?.balancer?.condition, 'service_healthy');
  });

  test('up --wait, traffic reaches all 3 replicas, --scale backend=5 is discovered, down -v leaves nothing', async (t) => {
    const project = `lbsmoke${process.pid}`;
    const ports = { LAB_PROXY_PORT: await freePort(), LAB_TCP_PORT: await freePort(), LAB_HTTPS_PORT: await freePort(), LAB_ADMIN_PORT: await freePort(), LAB_LOADGEN_PORT: await freePort(), LAB_PROMETHEUS_PORT: await freePort() };
    const env: Record<string, string> = { ...(await labImageEnv()), LAB_RATE: '20', LAB_ADMIN_TOKEN: '', ...Object.fromEntries(Object.entries(ports).map(([k, v]) => [k, String(v)])) };
    const compose = composeCommand(project, env);
    const proxy = `http://127.0.0.1:${ports.LAB_PROXY_PORT}`;
    const admin = `http://127.0.0.1:${ports.LAB_ADMIN_PORT}`;
    let down = false;
    t.after(async () => {
      if (!down) await compose(['down', '-v', '--rmi', 'local', '--remove-orphans', '--timeout', '5']).catch((error: Error) => console.error(error.message));
    });

    console.log(`# building and starting ${project} with ${JSON.stringify(env)}`);
    await compose(['up', '-d', '--build', '--wait', 'balancer', 'backend', 'loadgen', 'prometheus'], 480_000);

    const seen = new Map<string, number>();
    for (let i = 0; i < 60; i++) {
      const answer = await httpRequest(`${proxy}/smoke/${i}`);
      assert.equal(answer.status, 200, answer.body);
      const id = String(answer.headers['x-backend-id']);
      seen.set(id, (seen.get(id) ?? 0) + 1);
    }
    console.log(`# 60 requests through the balancer: ${JSON.stringify(Object.fromEntries(seen))}`);
    assert.equal(seen.size, 3, 'every replica answers');

    // The lab sets an admin token (LAB_ADMIN_TOKEN, or the default the README gives): writes need it, reads do not.
    const putAlgorithm = (authorization?: string): Promise<{ status: number }> =>
      httpRequest(`${admin}/algorithm`, { method: 'PUT', headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) }, body: JSON.stringify({ name: 'round-robin' }) });
    assert.equal((await putAlgorithm()).status, 401, 'a write without the token is refused');
    assert.equal((await putAlgorithm('Bearer lab-admin-token-change-me')).status, 200, 'the default token of docker-compose.yml is accepted');

    // The echo listener (L4) relays connections to the replicas' TCP port, found by the same DNS name.
    // It is least-connections: connections held open spread over the replicas (each worker counts its own).
    const held: Awaited<ReturnType<typeof connectTcp>>[] = [];
    const greetings = new Set<string>();
    try {
      await waitFor('the tcp listener to reach all 3 replicas', async () => {
        const client = await connectTcp(ports.LAB_TCP_PORT);
        held.push(client);
        greetings.add(await client.greeting(2_000));
        return greetings.size === 3 || held.length >= 30;
      }, 30_000, 20);
    } finally {
      for (const client of held) client.socket.destroy();
    }
    console.log(`# tcp listener: ${held.length} connections held, greetings from ${[...greetings].join(', ')}`);
    assert.equal(greetings.size, 3, 'connections reach every replica');

    // The https listener: the CA the certs service made, copied out as the README says, verifies the
    // certificate the balancer serves for localhost.
    const caDir = await mkdtemp(path.join(tmpdir(), 'compose-ca-'));
    t.after(() => rm(caDir, { recursive: true, force: true }));
    await compose(['cp', 'balancer:/certs/ca.pem', path.join(caDir, 'ca.pem')]);
    const ca = await readFile(path.join(caDir, 'ca.pem'));
    const https = await httpsGet(`https://localhost:${ports.LAB_HTTPS_PORT}/tls`, ca);
    console.log(`# https listener: HTTP ${https.status} from ${https.backend}, certificate for ${https.subjectAltName} issued by ${new X509Certificate(ca).subject}`);
    assert.equal(https.status, 200);
    assert.match(https.subjectAltName, /DNS:localhost/);

    const loadgenOk = await waitFor('the loadgen reports answered requests', async () => {
      const text = (await httpRequest(`http://127.0.0.1:${ports.LAB_LOADGEN_PORT}/metrics`)).body;
      return (metricValue(text, 'loadgen_requests_total', { code: '200' }) ?? 0) > 0 && text;
    }, 30_000, 500);
    assert.ok(loadgenOk.value);

    const targets = await waitFor('Prometheus finds and scrapes all 3 backends by DNS', async () => {
      const body = await getJson<{ data: { activeTargets: { labels: { job: string }; health: string }[] } }>(`http://127.0.0.1:${ports.LAB_PROMETHEUS_PORT}/api/v1/targets`);
      const up = body.data.activeTargets.filter((target) => target.health === 'up').map((target) => target.labels.job);
      return up.filter((job) => job === 'backend').length === 3 && up.includes('balancer') && up.includes('loadgen') && up;
    }, 60_000, 1_000);
    console.log(`# Prometheus targets up: ${targets.value.join(', ')} (after ${Math.round(targets.ms)} ms)`);

    // Measured from the moment the two new containers have started (no --wait: that would also wait out
    // Docker's own health check); the slack covers Node starting inside them.
    await compose(['up', '-d', '--no-recreate', '--scale', 'backend=5', 'backend'], 240_000);
    const limitMs = parseDuration(balancerConfig.discovery.dns.interval)! + balancerConfig.healthCheck.rise * parseDuration(balancerConfig.healthCheck.interval)! + 1_500;
    const five = await waitFor('5 healthy backends in GET /backends', async () => {
      const backends = await getJson<{ id: string; state: string }[]>(`${admin}/backends`);
      return backends.length === 5 && backends.every((backend) => backend.state === 'healthy') && backends;
    }, limitMs, 100);
    console.log(`# 5 healthy backends ${Math.round(five.ms)} ms after the scaled replicas started (limit ${limitMs} ms)`);
    const after5 = new Set<string>();
    for (let i = 0; i < 50; i++) after5.add(String((await httpRequest(`${proxy}/scaled/${i}`)).headers['x-backend-id']));
    assert.equal(after5.size, 5, 'traffic reaches all 5 replicas');

    await compose(['down', '-v', '--rmi', 'local', '--remove-orphans', '--timeout', '10'], 120_000);
    down = true;
    assert.deepEqual(await projectLeftovers(project), [], 'down -v leaves no container, network or volume');
  });
});

/** httpsGet: one GET that trusts only ca; the status, the backend that answered and the certificate's names. */
function httpsGet(url: string, ca: Buffer): Promise<{ status: number; backend: string; subjectAltName: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { ca, agent: false, timeout: 5_000 }, (res) => {
      const subjectAltName = (res.socket as TLSSocket).getPeerCertificate().subjectaltname ?? '';
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, backend: String(res.headers['x-backend-id']), subjectAltName }));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer from ${url} within 5 s`)));
    req.on('error', reject);
    req.end();
  });
}
