import type { Command } from './args.js';
import { startLoad } from './engine.js';
import { RunStats, type RunReport } from './stats.js';

type OneOff = Extract<Command, { mode: 'run' }>;

/**
 * runOnce sends load for the duration (or until SIGINT/SIGTERM), then waits for the requests in flight,
 * so that every request sent is counted with its outcome. A progress line goes to stderr every second:
 * rewritten in place on a terminal, one line per second otherwise.
 */
export async function runOnce(command: OneOff): Promise<RunReport> {
  const stats = new RunStats();
  const started = performance.now();
  const load = startLoad(command, stats);

  const tty = process.stderr.isTTY === true;
  let lastRequests = 0;
  const progress = setInterval(() => {
    const seconds = (performance.now() - started) / 1000;
    const requests = stats.requests;
    const line = `loadgen ${seconds.toFixed(0)}s: ${requests} requests, ${requests - lastRequests} req/s now, ${stats.errors} errors, ${stats.non2xx} non-2xx, ${load.inFlight} in flight`;
    lastRequests = requests;
    process.stderr.write(tty ? `\r\x1b[2K${line}` : `${line}\n`);
  }, 1000);

  let endEarly: (() => void) | undefined;
  const onSignal = (): void => endEarly?.();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, command.durationSeconds * 1000);
    endEarly = () => {
      clearTimeout(timer);
      process.stderr.write(`${tty ? '\n' : ''}loadgen: interrupted, ending the run\n`);
      resolve();
    };
  });
  await load.drain();
  const durationSeconds = (performance.now() - started) / 1000;
  clearInterval(progress);
  if (tty) process.stderr.write('\n');
  process.removeListener('SIGINT', onSignal);
  process.removeListener('SIGTERM', onSignal);
  await load.close();
  return stats.report({ url: command.url, method: command.method, connections: command.connections, rate: command.rate, durationSeconds });
}
