import { createServer, type RequestListener, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { readyLine } from '../common/src/ready.js';

/**
 * What the bench's bare reference proxies share: their arguments, the round-robin, the keep-alive
 * settings, the 502 on upstream errors and the ready line that bench/contenders.ts waits for.
 */

/** How long an idle upstream connection is kept: 4 s, as the balancer's engines (balancer/src/engines/keep-alive.ts). */
export const UPSTREAM_IDLE_MS = 4_000;
/** How long an idle client connection is kept open. */
export const CLIENT_IDLE_MS = 5_000;

/** readProxyArgs reads `--backend URL` (at least one, repeated) and `--lib NAME` (for the programs that take one). */
export function readProxyArgs(usage: string): { targets: string[]; lib: string | undefined } {
  const { values } = parseArgs({ options: { lib: { type: 'string' }, backend: { type: 'string', multiple: true } } });
  const targets = values.backend ?? [];
  if (targets.length === 0) usageError(usage);
  return { targets, lib: values.lib };
}

export function usageError(usage: string): never {
  process.stderr.write(`${usage}\n`);
  process.exit(2);
}

/** roundRobin hands out the items one after the other, starting again after the last. */
export function roundRobin<T>(items: readonly T[]): () => T {
  let next = 0;
  return () => {
    const item = items[next]!;
    next = (next + 1) % items.length;
    return item;
  };
}

/** badGateway answers 502, or cuts the connection when the answer has already begun. */
export function badGateway(res: ServerResponse): void {
  if (res.headersSent) res.destroy();
  else res.writeHead(502).end();
}

/** announce makes SIGTERM a normal exit (so that `node --cpu-prof` writes its profile), then prints the ready line. */
export function announce(name: string, port: number): void {
  process.on('SIGTERM', () => process.exit(0));
  readyLine('reference-proxy', { lib: name, port });
}

/** serve runs handler on a node:http server on a free loopback port and announces it once listening. */
export function serve(name: string, handler: RequestListener): Server {
  const server = createServer({ keepAliveTimeout: CLIENT_IDLE_MS }, handler);
  server.listen(0, '127.0.0.1', () => announce(name, (server.address() as AddressInfo).port));
  return server;
}
