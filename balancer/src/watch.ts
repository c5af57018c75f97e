import { watch, readFileSync, type FSWatcher } from 'node:fs';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { log } from '@lab/common/log';

/** Editors write a file in several steps (truncate, write, rename): wait for them to settle. */
const DEBOUNCE_MS = 300;

function digest(file: string): string | undefined {
  try {
    return createHash('sha256').update(readFileSync(file)).digest('hex');
  } catch {
    return undefined;
  }
}

/**
 * watchConfigFile calls onChange when the file's content changes. It watches the folder rather
 * than the file, so that editors that replace the file by a rename are seen too. Returns a stop function.
 */
export function watchConfigFile(file: string, onChange: () => void): () => void {
  const folder = path.dirname(path.resolve(file));
  const name = path.basename(file);
  let last = digest(file);
  let timer: NodeJS.Timeout | undefined;
  let watcher: FSWatcher;
  try {
    watcher = watch(folder, (_event, changed) => {
      if (changed !== null && changed !== name) return;
      clearTimeout(timer);
      timer = setTimeout(() => {
        const now = digest(file);
        if (now === undefined || now === last) return;
        last = now;
        onChange();
      }, DEBOUNCE_MS);
    });
  } catch (error) {
    log.info(`config file is not watched (${(error as Error).message}); use SIGHUP or PUT /config to reload`);
    return () => {};
  }
  watcher.on('error', (error) => log.info(`config file watch stopped (${error.message}); use SIGHUP or PUT /config to reload`));
  watcher.unref();
  return () => {
    clearTimeout(timer);
    watcher.close();
  };
}
