import { accessSync, constants, readFileSync, readdirSync } from 'node:fs';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { randomInt } from 'node:crypto';
import path from 'node:path';
import { parseReadyLine } from '../../common/src/ready.js';

export const repoRoot = path.resolve(import.meta.dirname, '..', '..');

/** A child process of one of the lab's services, with its output kept for assertions and failure reports. */
export interface Service {
  readonly child: ChildProcess;
  readonly name: string;
  /** Everything the process wrote to stdout and stderr so far. */
  output(): string;
  /** Resolves with the next output line that matches, or rejects after timeoutMs. */
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Resolves with the fields of the next `<service> listening key=value ...` line (common/src/ready.ts). */
  waitForReady(service: string, timeoutMs?: number): Promise<Record<string, string>>;
  /** Sends the signal (default SIGTERM) and resolves with the exit code once the process is gone. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  readonly exited: Promise<number | null>;
}

export interface StartOptions {
  args?: string[];
  env?: Record<string, string>;
  /** The service whose ready line (`<service> listening ...`) startService waits for and resolves with. */
  ready?: string;
  timeoutMs?: number;
}

/** Starts `node <script>` (a path relative to the repository root) as a real process. */
export async function startService(name: string, script: string, options: StartOptions = {}): Promise<{ service: Service; ready: Record<string, string> | null }> {
  const child = spawn(process.execPath, [path.join(repoRoot, script), ...(options.args ?? [])], {
    cwd: repoRoot,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  let pending = '';
  const lineListeners = new Set<(line: string) => void>();
  const onData = (chunk: Buffer): void => {
    text += chunk.toString();
    pending += chunk.toString();
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) for (const listener of [...lineListeners]) listener(line);
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  let exitedBy = '';
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code, signal) => {
      exitedBy = signal ? `signal ${signal}` : `code ${code}`;
      resolve(code ?? (signal ? null : code));
    }),
  );

  /** Resolves with what `match` finds in the next line it finds something in. */
  const waitFor = <T>(what: string, match: (line: string) => T | undefined, timeoutMs = 10_000): Promise<T> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        lineListeners.delete(listener);
        reject(new Error(`${name}: no line matching ${what} within ${timeoutMs} ms; output so far:\n${text}`));
      }, timeoutMs);
      const listener = (line: string): void => {
        const found = match(line);
        if (found === undefined) return;
        clearTimeout(timer);
        lineListeners.delete(listener);
        resolve(found);
      };
      lineListeners.add(listener);
      void exited.then((code) => {
        if (!lineListeners.has(listener)) return;
        clearTimeout(timer);
        lineListeners.delete(listener);
        reject(new Error(`${name} exited (${exitedBy || `code ${code}`}) before printing ${what}; output:\n${text}`));
      });
    });
  const waitForLine = (pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray> => waitFor(String(pattern), (line) => line.match(pattern) ?? undefined, timeoutMs);
  const waitForReady = (readyService: string, timeoutMs?: number): Promise<Record<string, string>> =>
    waitFor(`"${readyService} listening"`, (line) => {
      const ready = parseReadyLine(line);
      return ready?.service === readyService ? ready.fields : undefined;
    }, timeoutMs);

  const service: Service = {
    child,
    name,
    output: () => text,
    waitForLine,
    waitForReady,
    exited,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill(signal);
      return exited;
    },
  };
  const ready = options.ready ? await waitForReady(options.ready, options.timeoutMs) : null;
  return { service, ready };
}

/**
 * A TCP port that is free on 127.0.0.1, for a service that listens on it later or must be restarted on the same port.
 *
 * It comes from below the kernel's ephemeral range (ip_local_port_range), so that the outgoing connections of a
 * test under load cannot take it between this check and the service's listen, or while the service is down for a
 * restart: a CI run lost a backend to EADDRINUSE that way, with listen(0)'s port.
 */
export async function freePort(): Promise<number> {
  const [low, high] = portsBelowEphemeralRange();
  for (let tries = 0; tries < 50; tries++) {
    const port = randomInt(low, high);
    if (await canListen(port)) return port;
  }
  throw new Error(`no free port on 127.0.0.1 in ${low}-${high - 1} after 50 tries`);
}

function portsBelowEphemeralRange(): [number, number] {
  let ephemeralLow = 32_768;
  try {
    ephemeralLow = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || ephemeralLow;
  } catch {
    // not Linux: the usual default
  }
  const low = Math.max(10_000, ephemeralLow - 20_000);
  if (ephemeralLow - low < 1_000) throw new Error(`the ephemeral port range starts at ${ephemeralLow}: too few ports below it for the tests`);
  return [low, ephemeralLow];
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** findBinary looks for an executable in PATH and in the sbin directories where Debian installs nginx and haproxy. */
export function findBinary(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/local/sbin', '/usr/sbin', '/sbin'];
  for (const dir of dirs.filter(Boolean)) {
    const file = path.join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** isAlive: a process with this pid exists on this host (signal 0 checks without sending anything). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** childrenOf: the pids whose parent is pid, read from /proc (Linux). */
export function childrenOf(pid: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // The fields after the command name, which is in parentheses and may hold spaces: state, then ppid.
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) children.push(Number(entry));
    } catch {
      // the process has just exited
    }
  }
  return children;
}
