import type { Command } from './args.js';
import { startLoad, type Load } from './engine.js';
import { RunStats, type RunReport } from './stats.js';
import { startTcpLoad } from './tcp-engine.js';
import { TcpStats, type TcpRunReport } from './tcp-stats.js';

type OneOff = Extract<Command, { mode: 'run' }>;

/**
 * runOnce sends load for the duration (or until SIGINT/SIGTERM), then waits for the requests in flight,
 * so that every request sent is counted with its outcome. A progress line goes to stderr every second:
 * rewritten in place on a terminal, one line per second otherwise.
 */
export async function runOnce(command: OneOff): Promise<RunReport> {
  const stats = new RunStats();
  const load = startLoad(command, stats);
  const durationSeconds = await runFor(command, load, {
    total: () => stats.requests,
    line: (now) => `${stats.requests} requests, ${now} req/s now, ${stats.errors} errors, ${stats.non2xx} non-2xx, ${load.inFlight} in flight`,
  });
  return stats.report({ url: command.url, method: command.method, connections: command.connections, rate: command.rate, durationSeconds });
}

/** runTcpOnce is runOnce for a tcp:// target: every connection opened is counted with its outcome. */
export async function runTcpOnce(command: OneOff & { tcp: NonNullable<OneOff['tcp']> }): Promise<TcpRunReport> {
  const stats = new TcpStats();
  const { tcp } = command;
  const load = startTcpLoad({ ...tcp, connections: command.connections, rate: command.rate, timeoutSeconds: command.timeoutSeconds }, stats);
  const durationSeconds = await runFor(command, load, {
    total: () => stats.requests,
    line: (now) => `${stats.requests} connections, ${now} conn/s now, ${stats.errors} failed, ${load.inFlight} open`,
  });
  return stats.report({ url: command.url, connections: command.connections, rate: command.rate, payloadBytes: tcp.payloadBytes, holdSeconds: tcp.holdSeconds, durationSeconds });
}

/** The progress line: the running total, and the line that shows it with the count of the last second. */
interface Progress {
  total(): number;
  line(lastSecond: number): string;
}

/** runFor lets `load` run for the duration or until a signal, drains and closes it; resolves with the seconds it ran, to the last outcome. */
async function runFor(command: OneOff, load: Load, progress: Progress): Promise<number> {
  const started = performance.now();
  const tty = process.stderr.isTTY === true;
  let lastTotal = 0;
  const ticker = setInterval(() => {
    const seconds = (performance.now() - started) / 1000;
    const total = progress.total();
    const text = `loadgen ${seconds.toFixed(0)}s: ${progress.line(total - lastTotal)}`;
    lastTotal = total;
    process.stderr.write(tty ? `\r\x1b[2K${text}` : `${text}\n`);
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
  clearInterval(ticker);
  if (tty) process.stderr.write('\n');
  process.removeListener('SIGINT', onSignal);
  process.removeListener('SIGTERM', onSignal);
  await load.close();
  return durationSeconds;
}
