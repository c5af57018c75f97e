import type { IncomingHttpHeaders } from 'node:http';
import { Pool } from 'undici';
import { badGateway, readProxyArgs, roundRobin, serve, UPSTREAM_IDLE_MS } from './reference-common.js';

/**
 * A bare undici reverse proxy for the benchmark: node:http in front, one undici Pool per backend
 * (keep-alive, no connection limit, no pipelining), round-robin, each answer streamed to the
 * client with pool.stream; hop-by-hop headers are dropped both ways and nothing else is done.
 *
 *   node --import tsx bench/undici-proxy.ts --backend URL --backend URL
 */
const { targets } = readProxyArgs('usage: undici-proxy.ts --backend URL [--backend URL ...]');
// keepAliveMaxTimeout too: undici would otherwise follow the backends' `Keep-Alive: timeout=65` hint.
const nextPool = roundRobin(targets.map((target) => new Pool(target, { keepAliveTimeout: UPSTREAM_IDLE_MS, keepAliveMaxTimeout: UPSTREAM_IDLE_MS })));

/** Hop-by-hop headers (RFC 9110 section 7.6.1), and transfer-encoding: each side frames its own body. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

/** endToEnd copies the headers without the hop-by-hop ones and without those the Connection header names. */
function endToEnd(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  const named = new Set((headers.connection ?? '').split(',').map((token) => token.trim().toLowerCase()));
  const kept: IncomingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) if (!HOP_BY_HOP.has(name) && !named.has(name)) kept[name] = value;
  return kept;
}

serve('undici', (req, res) => {
  const body = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined ? req : null;
  const options = { path: req.url ?? '/', method: req.method ?? 'GET', headers: endToEnd(req.headers), body };
  nextPool().stream(
    options,
    ({ statusCode, headers }) => res.writeHead(statusCode, endToEnd(headers)),
    (error) => {
      if (error) badGateway(res);
    },
  );
});
