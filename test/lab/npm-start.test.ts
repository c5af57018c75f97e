/**
 * `npm start` as a newcomer runs it: the lab comes up on the SPEC's fixed ports, serves through three
 * backends on :8080 within 30 s, the status page answers on :9090, and Ctrl-C (SIGINT to the whole
 * process group, as a terminal sends it) leaves no process and no listening port behind.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { test } from 'node:test';
import { httpRequest, waitFor } from '../helpers/http.js';
import { isAlive, repoRoot } from '../helpers/processes.js';

const labPorts = [8080, 9090, 9464, 3001, 3002, 3003, 3101, 3102, 3103];

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', () => resolve(false));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
  });
}

async function busyPorts(): Promise<number[]> {
  const busy: number[] = [];
  for (const port of labPorts) if (!(await portFree(port))) busy.push(port);
  return busy;
}

/** Every process below `root` in the process tree, from /proc. */
function descendants(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(parent, [...(children.get(parent) ?? []), Number(entry)]);
    } catch {
      // the process ended while we looked
    }
  }
  const found: number[] = [];
  const queue = [root];
  while (queue.length > 0) for (const child of children.get(queue.shift()!) ?? []) queue.push(child), found.push(child);
  return found;
}


const busyAtStart = await busyPorts();
const skip = busyAtStart.length > 0 && process.env.CI !== 'true' ? `ports ${busyAtStart.join(', ')} are in use on 127.0.0.1 (another lab running?)` : false;

test('npm start: 3 backends behind :8080 within 30 s, status page on :9090, Ctrl-C leaves nothing behind', { skip, timeout: 120_000 }, async (t) => {
  assert.deepEqual(busyAtStart, [], 'the lab ports must be free before npm start');
  const started = performance.now();
  const lab = spawn('npm', ['start'], { cwd: repoRoot, detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LAB_RATE: '20' } });
  let output = '';
  lab.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  lab.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<string>((resolve) => lab.once('exit', (code, signal) => resolve(signal ?? `code ${code}`)));
  t.after(() => {
    if (lab.exitCode === null && lab.signalCode === null) process.kill(-lab.pid!, 'SIGKILL');
  });

  const served = await waitFor(
    'requests through :8080 answered by 3 backends',
    async () => {
      const ids = new Set<string>();
      for (let i = 0; i < 12; i++) {
        const answer = await httpRequest('http://127.0.0.1:8080/hello', { timeoutMs: 2_000 });
        if (answer.status !== 200) return false;
        ids.add(String(answer.headers['x-backend-id']));
      }
      return ids.size === 3 && [...ids].sort();
    },
    30_000,
    250,
  ).catch((error: Error) => {
    throw new Error(`${error.message}\nnpm start printed:\n${output}`);
  });
  const upMs = performance.now() - started;
  console.log(`# npm start served through ${served.value.join(', ')} ${(upMs / 1000).toFixed(1)} s after the command (build included)`);
  assert.ok(upMs <= 30_000);

  const statusPage = await httpRequest('http://127.0.0.1:9090/');
  assert.equal(statusPage.status, 200);
  assert.match(String(statusPage.headers['content-type']), /text\/html/);
  await waitFor('the lab has printed its URLs', () => /the lab is up/.test(output), 5_000);
  for (const url of ['http://127.0.0.1:8080/', 'http://127.0.0.1:9090/ ', 'http://127.0.0.1:9464/metrics', '3101/chaos', '3103/chaos']) {
    assert.ok(output.includes(url), `npm start prints ${url.trim()}`);
  }
  for (const name of ['backend-1', 'backend-2', 'backend-3', 'balancer', 'loadgen']) assert.match(output, new RegExp(`^\\[${name}\\] \\S`, 'm'), `${name}'s lines are prefixed`);

  const children = descendants(lab.pid!);
  assert.ok(children.length >= 5, `npm start runs at least 5 processes below it; found ${children.length}`);
  const interrupted = performance.now();
  process.kill(-lab.pid!, 'SIGINT');
  const ended = await Promise.race([exited, new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 15_000).unref())]);
  assert.notEqual(ended, 'timeout', `npm start did not exit within 15 s of Ctrl-C; output:\n${output}`);
  const left = children.filter(isAlive);
  assert.deepEqual(left, [], 'no process of the lab is left');
  assert.deepEqual(await busyPorts(), [], 'no lab port is left listening');
  console.log(`# Ctrl-C: npm start ended (${ended}) ${((performance.now() - interrupted) / 1000).toFixed(1)} s after SIGINT; ${children.length} processes gone, ${labPorts.length} ports free`);
});
