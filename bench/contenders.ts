import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Scheduling } from '../balancer/src/cluster/scheduling.js';
import { findBinary, freePort, repoRoot, startService, type Service } from '../test/helpers/processes.js';
import { processTree } from './cpu.js';

/** A child process of the benchmark; every one is registered until stopped, so that stopAll leaves nothing behind. */
export interface BenchProcess {
  readonly name: string;
  readonly pid: number;
  stop(): Promise<void>;
}

/** A proxy under test: where to send load and whose CPU to read. */
export interface Contender extends BenchProcess {
  readonly url: string;
  /** what exactly runs, for the JSON report */
  readonly version: string;
  /** the balancer's admin listener; the other contenders have none */
  readonly adminUrl?: string;
}

export type ContenderName =
  | 'balancer'
  | 'balancer-undici'
  | 'http-proxy'
  | 'http-proxy-3'
  | 'fastify-reply-from'
  | 'undici'
  | 'nginx'
  | 'haproxy'
  | 'caddy'
  | 'balancer-w1-rr'
  | 'balancer-w2-rr'
  | 'balancer-w2-reuseport';

/** Contenders in table order: the balancer on each engine, the Node baselines, the native references, then the balancer in cluster mode (the workers part only). */
export const contenderNames: readonly ContenderName[] = [
  'balancer',
  'balancer-undici',
  'http-proxy',
  'http-proxy-3',
  'fastify-reply-from',
  'undici',
  'nginx',
  'haproxy',
  'caddy',
  'balancer-w1-rr',
  'balancer-w2-rr',
  'balancer-w2-reuseport',
];

/** The balancer in cluster mode: how many traffic workers, and how connections reach them (LB_SCHEDULING). */
export const clusterSetups = {
  'balancer-w1-rr': { workers: 1, scheduling: 'rr' },
  'balancer-w2-rr': { workers: 2, scheduling: 'rr' },
  'balancer-w2-reuseport': { workers: 2, scheduling: 'reuseport' },
} as const satisfies Partial<Record<ContenderName, { workers: number; scheduling: Scheduling }>>;

/** The native binary a contender needs; it is skipped when the binary is not installed. */
export const requiredBinary: Partial<Record<ContenderName, string>> = { nginx: 'nginx', haproxy: 'haproxy', caddy: 'caddy' };


const running = new Set<BenchProcess>();
const STOP_GRACE_MS = 5_000;
/** Backends and reference proxies are TypeScript: children load tsx as `npm run bench` itself does. */
export const TSX_ENV = { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import tsx`.trim() };

/** stopAll stops every child still running (SIGTERM, SIGKILL after a grace period). */
export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((child) => child.stop()));
}

/** killAllNow is the last resort on exit: SIGKILL whatever is still registered, with its descendants. */
export function killAllNow(): void {
  for (const child of running) {
    for (const pid of processTree(child.pid)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  running.clear();
}

function register(name: string, pid: number, stop: () => Promise<void>): BenchProcess {
  const child: BenchProcess = {
    name,
    pid,
    stop: async () => {
      running.delete(child);
      await stop();
    },
  };
  running.add(child);
  return child;
}

/** startNode starts `node <script>` through the test helper and waits for the ready line of `ready`, registered from the moment it spawns. */
export async function startNode(name: string, script: string, args: string[], ready: string, env: Record<string, string> = {}) {
  const { service } = await startService(name, script, { args, env });
  const child = register(name, service.child.pid!, () => stopService(service));
  const fields = await service.waitForReady(ready);
  return { child, fields };
}

async function stopService(service: Service): Promise<void> {
  const timer = setTimeout(() => service.child.kill('SIGKILL'), STOP_GRACE_MS);
  await service.stop('SIGTERM');
  clearTimeout(timer);
}

/** startBackend starts one bench backend and returns its port. */
export async function startBackend(id: string): Promise<{ child: BenchProcess; port: number }> {
  const { child, fields } = await startNode(`backend ${id}`, 'bench/backend.ts', [], 'backend', { ...TSX_ENV, BACKEND_ID: id });
  return { child, port: Number(fields.port) };
}

export interface Setup {
  /** a private temporary directory for generated configuration files and logs */
  readonly dir: string;
  readonly backendPorts: readonly number[];
}

export async function startContender(name: ContenderName, setup: Setup): Promise<Contender> {
  switch (name) {
    case 'balancer':
      return startBalancer(name, setup, '');
    case 'balancer-undici':
      return startBalancer(name, setup, UNDICI_ENGINE);
    case 'balancer-w1-rr':
    case 'balancer-w2-rr':
    case 'balancer-w2-reuseport': {
      const { workers, scheduling } = clusterSetups[name];
      return startBalancer(name, setup, `workers: ${workers}\n`, { LB_SCHEDULING: scheduling });
    }
    case 'http-proxy':
    case 'http-proxy-3':
      return startNodeProxy(name, setup, 'bench/reference-proxy.ts', ['--lib', name], `bare ${name} ${packageVersion(`node_modules/${name}`)}`);
    case 'fastify-reply-from':
      return startNodeProxy(name, setup, 'bench/fastify-proxy.ts', [], replyFromVersion());
    case 'undici':
      return startNodeProxy(name, setup, 'bench/undici-proxy.ts', [], `bare undici ${packageVersion('node_modules/undici')}`);
    case 'nginx':
      return startNginx(setup);
    case 'haproxy':
      return startHaproxy(setup);
    case 'caddy':
      return startCaddy(setup);
  }
}

/** What balancer-undici adds to bench/configs/balancer.yaml: the engine key (the balancer's undici engine). */
const UNDICI_ENGINE = 'engine: undici\n';

/**
 * startBalancer runs balancer/dist/main.js on bench/configs/balancer.yaml plus `extra` (top-level
 * keys) with `env` added to its environment, and waits until every backend is healthy.
 */
async function startBalancer(name: ContenderName, setup: Setup, extra: string, env: Record<string, string> = {}): Promise<Contender> {
  const backends = setup.backendPorts.map((port, index) => `  - { url: http://127.0.0.1:${port}, name: b${index + 1} }`).join('\n');
  const file = writeFile(setup, `${name}.yaml`, `${fillTemplate('balancer.yaml', { backends })}${extra}`);
  const { child, fields } = await startNode(name, 'balancer/dist/main.js', ['--config', file], 'balancer', env);
  await waitForHealthyBackends(fields.admin!);
  const library = extra === UNDICI_ENGINE ? `undici ${packageVersion('node_modules/undici')}` : `http-proxy-3 ${packageVersion('node_modules/http-proxy-3')}`;
  const cluster = env.LB_SCHEDULING === undefined ? '' : `, ${extra.trim()}, LB_SCHEDULING=${env.LB_SCHEDULING}`;
  return { ...child, url: fields.proxy!, adminUrl: fields.admin!, version: `balancer ${packageVersion('balancer')} on ${library}${cluster}` };
}

/** startNodeProxy runs one of the bench's own proxy programs (TypeScript, through tsx) with the backends as --backend arguments. */
async function startNodeProxy(name: ContenderName, setup: Setup, script: string, args: string[], version: string): Promise<Contender> {
  const backendArgs = setup.backendPorts.flatMap((port) => ['--backend', `http://127.0.0.1:${port}`]);
  const { child, fields } = await startNode(name, script, [...args, ...backendArgs], 'reference-proxy', TSX_ENV);
  return { ...child, url: `http://127.0.0.1:${fields.port}`, version };
}

function replyFromVersion(): string {
  const replyFrom = 'node_modules/@fastify/reply-from';
  return `fastify ${packageVersion('node_modules/fastify')} + @fastify/reply-from ${packageVersion(replyFrom)} (undici ${packageVersion(`${replyFrom}/node_modules/undici`)})`;
}

async function startNginx(setup: Setup): Promise<Contender> {
  const binary = findBinary('nginx')!;
  const port = await freePort();
  const servers = setup.backendPorts.map((backendPort) => `    server 127.0.0.1:${backendPort};`).join('\n');
  const file = writeConfig(setup, 'nginx.conf', { dir: setup.dir, port: String(port), servers });
  return startBinary('nginx', binary, ['-p', setup.dir, '-e', path.join(setup.dir, 'nginx-error.log'), '-c', file], port, binaryVersion(binary, '-v'));
}

async function startHaproxy(setup: Setup): Promise<Contender> {
  const binary = findBinary('haproxy')!;
  const port = await freePort();
  const servers = setup.backendPorts.map((backendPort, index) => `  server b${index + 1} 127.0.0.1:${backendPort}`).join('\n');
  const file = writeConfig(setup, 'haproxy.cfg', { port: String(port), servers });
  return startBinary('haproxy', binary, ['-db', '-f', file], port, binaryVersion(binary, '-v'));
}

/**
 * startCaddy runs Caddy on bench/configs/Caddyfile: admin endpoint off, one Go thread (GOMAXPROCS=1,
 * the per-core comparison of nginx's one worker), and HOME and the XDG folders in the setup's
 * directory, so that whatever Caddy writes (autosave.json, its storage) stays there.
 */
async function startCaddy(setup: Setup): Promise<Contender> {
  const binary = findBinary('caddy')!;
  const port = await freePort();
  const upstreams = setup.backendPorts.map((backendPort) => `127.0.0.1:${backendPort}`).join(' ');
  const home = path.join(setup.dir, 'caddy');
  mkdirSync(home, { recursive: true });
  const file = writeConfig(setup, 'Caddyfile', { home, port: String(port), upstreams });
  const env = { HOME: home, XDG_CONFIG_HOME: path.join(home, 'config'), XDG_DATA_HOME: path.join(home, 'data'), GOMAXPROCS: '1' };
  const version = `caddy ${binaryVersion(binary, 'version', env)}`;
  return startBinary('caddy', binary, ['run', '--config', file, '--adapter', 'caddyfile'], port, version, env);
}

/** startBinary runs a native proxy in the foreground and waits until it answers 200 on its port. */
async function startBinary(name: string, binary: string, args: string[], port: number, version: string, env: Record<string, string> = {}): Promise<Contender> {
  const spawned = spawn(binary, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<void>((resolve) => spawned.once('exit', () => resolve()));
  await once(spawned, 'spawn'); // rejects with the spawn error, if any
  let output = '';
  const keep = (chunk: Buffer): void => {
    output = (output + chunk.toString()).slice(-4000);
  };
  spawned.stdout.on('data', keep);
  spawned.stderr.on('data', keep);
  const pid = spawned.pid!;
  const child = register(name, pid, async () => {
    if (spawned.exitCode !== null || spawned.signalCode !== null) return;
    const tree = processTree(pid);
    spawned.kill('SIGTERM');
    const stopped = await Promise.race([exited.then(() => true), sleep(STOP_GRACE_MS).then(() => false)]);
    if (stopped) return;
    for (const member of tree) {
      try {
        process.kill(member, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await exited;
  });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (spawned.exitCode !== null || spawned.signalCode !== null) throw new Error(`${name} exited before answering on ${url}:\n${output}`);
    if ((await httpGet(url)).status === 200) break;
    if (Date.now() > deadline) throw new Error(`${name} did not answer 200 on ${url} within 10 s:\n${output}`);
    await sleep(100);
  }
  return { ...child, url, version };
}

/** httpGet makes one GET on a fresh connection; status 0 if the request failed. */
export function httpGet(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    const request = get(url, { agent: false, timeout: 1_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', () => resolve({ status: 0, body }));
    });
    request.on('timeout', () => request.destroy());
    request.on('error', () => resolve({ status: 0, body: '' }));
  });
}

/** waitForHealthyBackends polls the balancer's admin API until every backend is healthy, so that no run measures a warming pool. */
export async function waitForHealthyBackends(adminUrl: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const { status, body } = await httpGet(`${adminUrl}/backends`);
    if (status === 200 && (JSON.parse(body) as { state: string }[]).every((backend) => backend.state === 'healthy')) return;
    if (Date.now() > deadline) throw new Error(`balancer: backends not all healthy within 10 s: ${status} ${body}`);
    await sleep(100);
  }
}

/** fillTemplate fills the {{name}} placeholders of bench/configs/<template>. */
export function fillTemplate(template: string, values: Record<string, string>): string {
  return readFileSync(path.join(repoRoot, 'bench', 'configs', template), 'utf8').replace(/\{\{(\w+)\}\}/g, (_, key: string) => {
    const value = values[key];
    if (value === undefined) throw new Error(`bench/configs/${template}: no value for {{${key}}}`);
    return value;
  });
}

/** writeFile writes a generated file into the setup's directory and returns its path. */
export function writeFile(setup: Setup, name: string, text: string): string {
  const file = path.join(setup.dir, name);
  writeFileSync(file, text);
  return file;
}

/** writeConfig writes bench/configs/<template>, filled in, into the setup's directory. */
function writeConfig(setup: Setup, template: string, values: Record<string, string>): string {
  return writeFile(setup, template, fillTemplate(template, values));
}

export function packageVersion(folder: string): string {
  try {
    return (JSON.parse(readFileSync(path.join(repoRoot, folder, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

function binaryVersion(binary: string, flag: string, env: Record<string, string> = {}): string {
  const result = spawnSync(binary, [flag], { encoding: 'utf8', env: { ...process.env, ...env } });
  const text = `${result.stdout ?? ''}${result.stderr ?? ''}`;
  return text.split('\n')[0]?.trim() || path.basename(binary);
}
