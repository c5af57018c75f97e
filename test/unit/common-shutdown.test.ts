import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { parseReadyLine } from '../../common/src/ready.js';

const source = (file: string): string => JSON.stringify(new URL(`../../common/src/${file}`, import.meta.url).href);

/**
 * Runs a process that calls onShutdown with a close function whose body is `closeBody`, prints its ready line,
 * then gets `signals` one after the other; resolves with its exit code and its lines without the time.
 */
async function service(closeBody: string, signals: NodeJS.Signals[]): Promise<{ code: number | null; lines: string[] }> {
  const code = `import { onShutdown } from ${source('shutdown.js')}; import { readyLine } from ${source('ready.js')}; import { log } from ${source('log.js')};
onShutdown(async (signal) => { log.info('closing on ' + signal); ${closeBody} });
readyLine('child', { pid: process.pid });
setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  let output = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (exitCode) => resolve(exitCode)));
  await new Promise<void>((resolve) => {
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (output.split('\n').some((line) => parseReadyLine(line)?.service === 'child')) resolve();
    });
    void exited.then(() => resolve());
  });
  // At once after the ready line, as the bug this guards against needed.
  for (const signal of signals) {
    child.kill(signal);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const exitCode = await exited;
  return { code: exitCode, lines: output.trim().split('\n').map((line) => line.replace(/^\S+ /, '')) };
}

test('a signal right after the ready line runs close once, and the process exits 0', async () => {
  const { code, lines } = await service('', ['SIGTERM']);
  assert.equal(code, 0);
  assert.deepEqual(lines.slice(1), ['info closing on SIGTERM']);
});

test('a close that throws is logged, and the process exits 1', async () => {
  const { code, lines } = await service("throw new Error('port still busy');", ['SIGINT']);
  assert.equal(code, 1);
  assert.deepEqual(lines.slice(1), ['info closing on SIGINT', 'error SIGINT: shutdown failed error="port still busy"']);
});

test('Ctrl-C pressed again while close runs exits 1 at once', async () => {
  const { code, lines } = await service('await new Promise(() => setInterval(() => {}, 1000));', ['SIGINT', 'SIGINT']);
  assert.equal(code, 1);
  assert.deepEqual(lines.slice(1), ['info closing on SIGINT', 'warn SIGINT again: exiting at once']);
});

test('a supervisor\'s SIGTERM after the terminal\'s SIGINT changes nothing: close finishes, exit 0', async () => {
  const { code, lines } = await service('await new Promise((resolve) => setTimeout(resolve, 400));', ['SIGINT', 'SIGTERM']);
  assert.equal(code, 0);
  assert.deepEqual(lines.slice(1), ['info closing on SIGINT', 'info SIGTERM: already shutting down (SIGINT)']);
});
