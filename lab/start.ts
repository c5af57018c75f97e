/**
 * `npm start`: the lab as local processes — three backends, the balancer in front of them and a
 * steady load through it. Each child's output is prefixed with its name; Ctrl-C stops them all.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import path from 'node:path';
import { parseReadyLine } from '../common/src/ready.js';
import { ensureCerts } from '../common/src/certs.js';

const root = path.resolve(import.meta.dirname, '..');
const rate = Number(process.env.LAB_RATE ?? 50);

interface ChildSpec {
  name: string;
  script: string;
  args?: string[];
  env?: Record<string, string>;
  ports: number[];
  /** the service whose ready line (`<service> listening ...`) says the child is ready */
  ready: string;
}

const backends: ChildSpec[] = [1, 2, 3].map((n) => ({
  name: `backend-${n}`,
  script: 'backend/dist/main.js',
  env: { PORT: String(3000 + n), CONTROL_PORT: String(3100 + n), TCP_PORT: String(4000 + n), BACKEND_ID: `backend-${n}`, HOST: '127.0.0.1' },
  ports: [3000 + n, 3100 + n, 4000 + n],
  ready: 'backend',
}));
const balancer: ChildSpec = { name: 'balancer', script: 'balancer/dist/main.js', args: ['--config', 'lab/balancer.yaml'], ports: [8080, 8081, 8443, 9090], ready: 'balancer' };
const loadgen: ChildSpec = {
  name: 'loadgen',
  script: 'loadgen/dist/main.js',
  env: { TARGET_URL: 'http://127.0.0.1:8080/', RATE: String(rate), CONNECTIONS: '10', METRICS_PORT: '9464' },
  ports: [9464],
  ready: 'loadgen',
};

const loadgenTcp: ChildSpec = {
  name: 'loadgen-tcp',
  script: 'loadgen/dist/main.js',
  env: { TARGET_URL: 'tcp://127.0.0.1:8081', RATE: String(Number(process.env.LAB_TCP_RATE ?? 5)), HOLD: '10', CONNECTIONS: '200', METRICS_PORT: '9465' },
  ports: [9465],
  ready: 'loadgen',
};

const colours = [36, 32, 33, 35, 34, 31, 90];
const running = new Map<string, ChildProcess>();
let stopping = false;

function say(message: string): void {
  process.stdout.write(`${process.stdout.isTTY ? '\x1b[1m[lab]\x1b[0m' : '[lab]'} ${message}\n`);
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', () => resolve(false));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
  });
}

function start(spec: ChildSpec, index: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [spec.script, ...(spec.args ?? [])], {
      cwd: root,
      env: { ...process.env, ...spec.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    running.set(spec.name, child);
    const prefix = process.stdout.isTTY ? `\x1b[${colours[index % colours.length]}m[${spec.name}]\x1b[0m ` : `[${spec.name}] `;
    let ready = false;
    let pending = '';
    const onData = (chunk: Buffer): void => {
      pending += chunk.toString();
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) {
        process.stdout.write(`${prefix}${line}\n`);
        if (!ready && parseReadyLine(line)?.service === spec.ready) {
          ready = true;
          resolve();
        }
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code, signal) => {
      running.delete(spec.name);
      if (stopping) return;
      if (!ready) reject(new Error(`${spec.name} exited (${signal ?? `code ${code}`}) before it was ready`));
      say(`${spec.name} exited (${signal ?? `code ${code}`}).${spec.name.startsWith('backend') ? ' The lab goes on without it: watch the balancer route around it.' : ''}`);
      if (spec === balancer) void stop(1);
    });
  });
}

async function stop(exitCode: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  say('stopping every process…');
  const exits = [...running.values()].map((child) => new Promise((resolve) => child.once('exit', resolve)));
  for (const child of running.values()) child.kill('SIGTERM');
  const timer = setTimeout(() => {
    for (const child of running.values()) child.kill('SIGKILL');
  }, 5_000);
  await Promise.all(exits);
  clearTimeout(timer);
  say('all stopped.');
  process.exit(exitCode);
}

async function main(): Promise<void> {
  process.on('SIGINT', () => void stop(0));
  process.on('SIGTERM', () => void stop(0));

  const all = [...backends, balancer, loadgen, loadgenTcp];
  const busy: string[] = [];
  for (const spec of all) for (const port of spec.ports) if (!(await portFree(port))) busy.push(`${port} (${spec.name})`);
  if (busy.length > 0) {
    say(`cannot start: port${busy.length > 1 ? 's' : ''} ${busy.join(', ')} already in use on 127.0.0.1. Is another lab running?`);
    process.exit(1);
  }

  say('building…');
  const build = spawnSync('npm', ['run', 'build', '--silent'], { cwd: root, stdio: 'inherit' });
  if (build.status !== 0) {
    say('the build failed; see above.');
    process.exit(1);
  }

  try {
    // The https listener's certificate, made here (and kept while it is good): no key is committed.
    const certs = await ensureCerts(path.join(root, 'certs'));
    say(`TLS certificates in certs/ (trust ${path.relative(root, certs.caCert)} to verify https://localhost:8443)`);
    await Promise.all(backends.map((spec, i) => start(spec, i)));
    await start(balancer, 3);
    await start(loadgen, 4);
    await start(loadgenTcp, 5);
  } catch (error) {
    say((error as Error).message);
    await stop(1);
    return;
  }

  say(`the lab is up:
      proxy          http://127.0.0.1:8080/   (L7, listener web)
      tcp echo       127.0.0.1:8081            (L4, listener echo: nc 127.0.0.1 8081)
      https          https://localhost:8443/  (TLS, listener https: curl --cacert certs/ca.pem https://localhost:8443/)
      status page    http://127.0.0.1:9090/ (live backend states; switch the algorithm there)
      admin API      http://127.0.0.1:9090/backends   http://127.0.0.1:9090/metrics
      loadgen        ${rate} requests/s, client metrics on http://127.0.0.1:9464/metrics
      loadgen-tcp    ${loadgenTcp.env!.RATE} connections/s to :8081, each held 10 s, client metrics on http://127.0.0.1:9465/metrics
      backends       http://127.0.0.1:3001 … 3003 (direct, bypassing the balancer)
      fault control  http://127.0.0.1:3101/chaos … 3103/chaos, e.g.
                     curl -X PUT localhost:3102/chaos -d '{"latencyMs": 300}'
                     curl -X PUT localhost:3102/chaos -d '{"health": "fail"}'
                     curl -X POST localhost:3102/chaos/crash
      Ctrl-C stops everything.`);
}

void main();
