import cluster from 'node:cluster';

/**
 * The balancer's entry point, run by the primary and, through node:cluster, by every traffic
 * worker. Each loads only its own side: a worker needs neither the admin API nor the config parser.
 */
async function main(): Promise<void> {
  if (cluster.isWorker) await (await import('./cluster/worker.js')).runWorker();
  else await (await import('./primary.js')).runPrimary();
}

main().catch((error: unknown) => {
  const who = cluster.isWorker ? `balancer worker ${process.pid}` : 'balancer';
  process.stderr.write(`${who}: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
