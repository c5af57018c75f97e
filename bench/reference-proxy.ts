import { Agent, createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { readyLine } from '../common/src/ready.js';

/**
 * A bare reverse proxy for the benchmark: round-robin over the given backends with the
 * balancer's agent settings and nothing else (no health checks, metrics, retries or header work).
 *
 *   node --import tsx bench/reference-proxy.ts --lib http-proxy|http-proxy-3 --backend URL --backend URL
 */
interface WebProxy {
  web(req: IncomingMessage, res: ServerResponse, options: { target: string; agent: Agent }, callback: (error: Error) => void): void;
}

const { values } = parseArgs({ options: { lib: { type: 'string' }, backend: { type: 'string', multiple: true } } });
const targets = values.backend ?? [];
if (targets.length === 0 || (values.lib !== 'http-proxy' && values.lib !== 'http-proxy-3')) {
  process.stderr.write('usage: reference-proxy.ts --lib http-proxy|http-proxy-3 --backend URL [--backend URL ...]\n');
  process.exit(2);
}

async function loadProxy(lib: 'http-proxy' | 'http-proxy-3'): Promise<WebProxy> {
  if (lib === 'http-proxy') return (await import('http-proxy')).default.createProxyServer({});
  return (await import('http-proxy-3')).createProxyServer({});
}

const proxy = await loadProxy(values.lib);
// The same agent settings as the balancer's pool (balancer/src/pool.ts), one agent per backend.
const upstreams = targets.map((target) => ({
  target,
  agent: new Agent({ keepAlive: true, maxFreeSockets: 256, scheduling: 'lifo', timeout: 4000 }),
}));
let next = 0;

const server = createServer({ keepAliveTimeout: 5_000 }, (req, res) => {
  const upstream = upstreams[next]!;
  next = (next + 1) % upstreams.length;
  proxy.web(req, res, upstream, () => {
    if (res.headersSent) res.destroy();
    else res.writeHead(502).end();
  });
});
server.listen(0, '127.0.0.1', () => {
  readyLine('reference-proxy', { lib: values.lib, port: (server.address() as AddressInfo).port });
});
// Exit normally on SIGTERM, so that `node --cpu-prof` can write its profile.
process.on('SIGTERM', () => process.exit(0));
