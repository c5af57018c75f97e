import { Agent, type IncomingMessage, type ServerResponse } from 'node:http';
import { badGateway, readProxyArgs, roundRobin, serve, UPSTREAM_IDLE_MS, usageError } from './reference-common.js';

/**
 * A bare reverse proxy for the benchmark: round-robin over the given backends with the
 * balancer's agent settings and nothing else (no health checks, metrics, retries or header work).
 *
 *   node --import tsx bench/reference-proxy.ts --lib http-proxy|http-proxy-3 --backend URL --backend URL
 */
interface WebProxy {
  web(req: IncomingMessage, res: ServerResponse, options: { target: string; agent: Agent }, callback: (error: Error) => void): void;
}

const usage = 'usage: reference-proxy.ts --lib http-proxy|http-proxy-3 --backend URL [--backend URL ...]';
const { targets, lib } = readProxyArgs(usage);
if (lib !== 'http-proxy' && lib !== 'http-proxy-3') usageError(usage);

async function loadProxy(name: 'http-proxy' | 'http-proxy-3'): Promise<WebProxy> {
  if (name === 'http-proxy') return (await import('http-proxy')).default.createProxyServer({});
  return (await import('http-proxy-3')).createProxyServer({});
}

const proxy = await loadProxy(lib);
// The same agent settings as the balancer's pool (balancer/src/pool.ts), one agent per backend.
const nextUpstream = roundRobin(
  targets.map((target) => ({ target, agent: new Agent({ keepAlive: true, maxFreeSockets: 256, scheduling: 'lifo', timeout: UPSTREAM_IDLE_MS }) })),
);

serve(lib, (req, res) => proxy.web(req, res, nextUpstream(), () => badGateway(res)));
