import { createServer, type Server } from 'node:http';
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { freePort, startService, type Service } from './processes.js';
import { startBackend, type RunningBackend } from './backend.js';
import { getJson, httpRequest } from './http.js';
import { engineNames, type EngineName } from '../../balancer/src/engines/engine.js';

/** An in-process HTTP backend on 127.0.0.1: answers any path with its id, /health with 200. */
export interface TestBackend {
  readonly id: string;
  readonly url: string;
  readonly port: number;
  readonly server: Server;
  /** requests answered on paths other than /health */
  requests: number;
  /** their paths, in order of arrival */
  readonly paths: string[];
  /** added before every answer except /health */
  delayMs: number;
  close(): Promise<void>;
}

export async function startHttpBackend(t: TestContext, id: string, options: { delayMs?: number; port?: number } = {}): Promise<TestBackend> {
  const server = createServer({ keepAliveTimeout: 5_000 }, (req, res) => {
    req.resume();
    if (req.url === '/health') {
      res.end('ok');
      return;
    }
    backend.requests++;
    backend.paths.push(req.url ?? '');
    const answer = (): void => {
      res.setHeader('x-backend-id', id);
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ backend: id, method: req.method, path: req.url, headers: req.headers }));
    };
    if (backend.delayMs > 0) setTimeout(answer, backend.delayMs);
    else answer();
  });
  server.listen(options.port ?? 0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  const backend: TestBackend = {
    id,
    url: `http://127.0.0.1:${port}`,
    port,
    server,
    requests: 0,
    paths: [],
    delayMs: options.delayMs ?? 0,
    close: async () => {
      if (!server.listening) return;
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
  t.after(() => backend.close());
  return backend;
}

/** A backend service process (backend/dist/main.js) that tests can kill, stop and restart with real signals, on a port freePort() chose unless given. */
export async function startBackendProcess(t: TestContext, id: string, port?: number): Promise<RunningBackend & { port: number }> {
  const backend = await startBackend(id, { PORT: String(port ?? (await freePort())) });
  t.after(() => backend.service.stop('SIGKILL'));
  return { ...backend, port: Number(new URL(backend.url).port) };
}

/**
 * The engine the suites run the balancer with: LAB_ENGINE (http-proxy by default); `npm test`
 * runs the integration and chaos suites once with each engine.
 */
export const testEngine: EngineName = engineFromEnv(process.env.LAB_ENGINE);

function engineFromEnv(value: string | undefined): EngineName {
  if (value === undefined || value === '') return 'http-proxy';
  if (!(engineNames as readonly string[]).includes(value)) throw new Error(`LAB_ENGINE=${JSON.stringify(value)}: expected one of ${engineNames.join(', ')}`);
  return value as EngineName;
}

/** Test defaults: short health intervals and timeouts so that failures are seen quickly. */
export const fastHealth = { interval: '1s', timeout: '500ms', rise: 2, fall: 2 };
export const fastTimeouts = { connect: '300ms', perTry: '500ms', request: '10s', shutdown: '5s' };

export interface RunningBalancer {
  readonly service: Service;
  readonly url: string;
  readonly adminUrl: string;
  readonly configFile: string;
  metrics(): Promise<string>;
  backends(): Promise<{ id: string; url: string; weight: number; state: string; activeRequests: number; totalRequests: number }[]>;
}

export function writeConfigFile(contents: string | object): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'lb-test-'));
  const file = path.join(dir, 'balancer.yaml');
  // JSON is valid YAML: objects are written as JSON, strings as given.
  writeFileSync(file, typeof contents === 'string' ? contents : JSON.stringify(contents, null, 2));
  return file;
}

/** startBalancer runs balancer/dist/main.js with the given configuration (listeners on 127.0.0.1 port 0 unless set). */
export async function startBalancer(t: TestContext, config: Record<string, unknown>, env: Record<string, string> = {}): Promise<RunningBalancer> {
  const configFile = writeConfigFile({
    listen: { host: '127.0.0.1', port: 0 },
    admin: { host: '127.0.0.1', port: 0 },
    engine: testEngine,
    healthCheck: fastHealth,
    timeouts: fastTimeouts,
    ...config,
  });
  const { service, ready } = await startService('balancer', 'balancer/dist/main.js', {
    args: ['--config', configFile],
    env,
    ready: 'balancer',
  });
  t.after(() => service.stop('SIGKILL'));
  const adminUrl = ready!.admin;
  return {
    service,
    url: ready!.proxy,
    adminUrl,
    configFile,
    metrics: async () => (await httpRequest(`${adminUrl}/metrics`)).body,
    backends: () => getJson(`${adminUrl}/backends`),
  };
}

export function counts<T extends string>(values: readonly (T | undefined)[]): Record<string, number> {
  const result: Record<string, number> = {};
  for (const value of values) if (value !== undefined) result[value] = (result[value] ?? 0) + 1;
  return result;
}
