import { createServer, type AddressInfo } from 'node:net';
import { readyLine } from '../common/src/ready.js';

/**
 * The tcp part's backend: a net server on 127.0.0.1 that reads everything a connection sends,
 * counts the bytes and, once the client has ended its side, answers with that count as one line
 * of text and ends its own. The client stops its clock on that line, so that a transfer counts
 * as done only when every byte has reached this process, not when it has left the client's
 * buffers. A connection that ends without a byte (the balancer's TCP health check) gets "0".
 */
const server = createServer({ allowHalfOpen: true, noDelay: true }, (socket) => {
  let bytes = 0;
  socket.on('data', (chunk: Buffer) => {
    bytes += chunk.length;
  });
  socket.on('end', () => socket.end(`${bytes}\n`));
  socket.on('error', () => socket.destroy());
});
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  readyLine('tcp-sink', { port: (server.address() as AddressInfo).port });
});
process.on('SIGTERM', () => {
  server.close();
  process.exit(0);
});
