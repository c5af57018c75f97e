import { connect, createServer, type AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { readyLine } from '../common/src/ready.js';

/**
 * The tcp part's reference relay: the least a Node TCP relay does, with the socket options of
 * the balancer's (balancer/src/tcp/relay.ts): half-open allowed, the client paused until its
 * backend connection is up, Nagle off both ways, pipe() both ways for backpressure and
 * half-close. No retries, timeouts, metrics or cluster: what the balancer costs beyond this is
 * its own. `--backend PORT` on 127.0.0.1.
 */
const { values } = parseArgs({ options: { backend: { type: 'string' }, port: { type: 'string', default: '0' } } });
const backendPort = Number(values.backend);
if (!Number.isInteger(backendPort) || backendPort <= 0) throw new Error('tcp-relay: --backend PORT is required');

const server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (client) => {
  const backend = connect({ host: '127.0.0.1', port: backendPort, allowHalfOpen: true, noDelay: true });
  client.on('error', () => backend.destroy());
  backend.on('error', () => client.destroy());
  client.on('close', () => backend.destroy());
  backend.once('connect', () => {
    client.setNoDelay(true);
    client.pipe(backend);
    backend.pipe(client);
  });
});
server.listen(Number(values.port), '127.0.0.1', () => {
  readyLine('tcp-relay', { port: (server.address() as AddressInfo).port, backend: backendPort });
});
process.on('SIGTERM', () => {
  server.close();
  process.exit(0);
});
