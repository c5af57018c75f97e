import { log } from './log.js';

/**
 * onShutdown installs the SIGTERM and SIGINT handlers of a service. The first signal runs `close` once;
 * the process then exits 0, or 1 with the error logged when `close` throws. While `close` runs, a
 * second SIGINT (Ctrl-C pressed again) exits 1 at once; any other signal is logged and changes
 * nothing, so that a supervisor's SIGTERM after the terminal's SIGINT (npm start) still drains.
 * Call it before the ready line: whoever reads that line may signal at once, and a signal without
 * a handler ends the process.
 */
export function onShutdown(close: (signal: NodeJS.Signals) => Promise<void>): void {
  let closing: NodeJS.Signals | undefined;
  const handle = (signal: NodeJS.Signals): void => {
    if (closing && signal === 'SIGINT' && closing === 'SIGINT') {
      log.warn('SIGINT again: exiting at once');
      process.exit(1);
    }
    if (closing) {
      log.info(`${signal}: already shutting down (${closing})`);
      return;
    }
    closing = signal;
    close(signal).then(
      () => process.exit(0),
      (error: unknown) => {
        log.error(`${signal}: shutdown failed`, { error: error instanceof Error ? error.message : String(error) });
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', handle);
  process.on('SIGINT', handle);
}
