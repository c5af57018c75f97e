import type { AddressInfo } from 'node:net';
import replyFrom from '@fastify/reply-from';
import Fastify from 'fastify';
import { announce, CLIENT_IDLE_MS, readProxyArgs, roundRobin, UPSTREAM_IDLE_MS } from './reference-common.js';

/**
 * fastify 5 + @fastify/reply-from for the benchmark: logger off, round-robin over the given
 * backends, reply-from's undici agent (one pool per backend, keep-alive) and nothing else.
 *
 *   node --import tsx bench/fastify-proxy.ts --backend URL --backend URL
 */
const { targets } = readProxyArgs('usage: fastify-proxy.ts --backend URL [--backend URL ...]');
const nextTarget = roundRobin(targets);

const app = Fastify({ logger: false, keepAliveTimeout: CLIENT_IDLE_MS });
// Request bodies pass through as streams instead of being parsed.
app.removeAllContentTypeParsers();
app.addContentTypeParser('*', (_request, payload, done) => done(null, payload));
// keepAliveMaxTimeout too: undici would otherwise follow the backends' `Keep-Alive: timeout=65` hint.
await app.register(replyFrom, { undici: { keepAliveTimeout: UPSTREAM_IDLE_MS, keepAliveMaxTimeout: UPSTREAM_IDLE_MS } });
app.all('/*', (request, reply) => {
  reply.from(`${nextTarget()}${request.url}`);
});
await app.listen({ host: '127.0.0.1', port: 0 });
announce('fastify-reply-from', (app.server.address() as AddressInfo).port);
