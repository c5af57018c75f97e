import { log } from './log.js';

/**
 * onShutdown installs the SIGTERM and SIGINT handlers of a service. The first signal runs `close` once;
 * the process then exits 0, or 1 with the error logged when `close` throws. A second signal while
 * `close` runs exits 1 at once. Call it before the ready line: whoever reads that line may signal at
 * once, and a signal without a handler ends the process.
 */
export function onShutdown(close: (signal: NodeJS.Signals) => Promise<void>): void {
  let closing = false;
  const handle = (signal: NodeJS.Signals): void => {
    if (closing) {
      log.warn(`${signal} again: exiting at once`);
      process.exit(1);
    }
    closing = true;
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
