import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readyLine } from '../common/src/ready.js';

/**
 * The benchmark's upstream: a plain node:http server that answers every request with the same
 * small JSON body over keep-alive, so that what differs between contenders is only the proxy.
 */
const id = process.env.BACKEND_ID ?? 'bench';
const body = Buffer.from(JSON.stringify({ backend: id, ok: true }));
const headers = { 'content-type': 'application/json', 'content-length': String(body.length), 'x-backend-id': id };

const server = createServer((req, res) => {
  req.resume();
  res.writeHead(200, headers);
  res.end(body);
});
// Longer than any proxy keeps an idle upstream connection, so the backend is never the side that closes one.
server.keepAliveTimeout = 65_000;
server.headersTimeout = 66_000;
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  readyLine('backend', { id, port: (server.address() as AddressInfo).port });
});
