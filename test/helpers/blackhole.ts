import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import type { TestContext } from 'node:test';
import { Worker } from 'node:worker_threads';

/**
 * blackholePort: a port on 127.0.0.1 that never answers a connect. A worker thread listens with a
 * backlog of 1 and then blocks, so it never accepts; once Linux has queued backlog + 1 connections
 * it drops every further SYN, and such a connect hangs until the client gives up.
 */
export async function blackholePort(t: TestContext): Promise<number> {
  const release = new Int32Array(new SharedArrayBuffer(4));
  const worker = new Worker(
    `const { createServer } = require('node:net');
     const { parentPort, workerData } = require('node:worker_threads');
     const server = createServer().listen({ host: '127.0.0.1', port: 0, backlog: 1 }, () => {
       parentPort.postMessage(server.address().port);
       Atomics.wait(workerData, 0, 0);
       process.exit(0);
     });`,
    { eval: true, workerData: release },
  );
  const [port] = (await once(worker, 'message')) as [number];
  const fillers: Socket[] = [];
  for (let queued = 0; queued < 2; queued++) {
    const filler = connect({ host: '127.0.0.1', port });
    filler.on('error', () => {});
    fillers.push(filler);
    await once(filler, 'connect');
  }
  t.after(async () => {
    for (const filler of fillers) filler.destroy();
    Atomics.store(release, 0, 1);
    Atomics.notify(release, 0);
    await once(worker, 'exit');
  });
  return port;
}
