import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import { once } from 'node:events';
import { startService, type Service } from './processes.js';
import type { RunReport } from '../../loadgen/src/stats.js';

/** The `--json` report of a one-off loadgen run; the tests check the written JSON against the SPEC's fields. */
export type LoadgenReport = RunReport;

export interface LoadgenRun {
  code: number | null;
  stdout: string;
  stderr: string;
  /** The --json report, when the run wrote one. */
  report: LoadgenReport | undefined;
  service: Service;
}

/**
 * runLoadgen runs `node loadgen/dist/main.js <args> --json <tmp file>` to its end and returns its exit code,
 * stdout and stderr apart, and the parsed report. `during` runs while the load is going.
 */
export async function runLoadgen(args: string[], options: { json?: boolean; during?: (service: Service) => Promise<void>; env?: Record<string, string> } = {}): Promise<LoadgenRun> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'loadgen-test-'));
  const file = path.join(dir, 'report.json');
  try {
    const { service } = await startService('loadgen', 'loadgen/dist/main.js', {
      args: options.json === false ? args : [...args, '--json', file],
      env: options.env ?? {},
    });
    let stdout = '';
    let stderr = '';
    service.child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    service.child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    await options.during?.(service);
    const code = await service.exited;
    const report = fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, 'utf8')) as LoadgenReport) : undefined;
    return { code, stdout, stderr, report, service };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** A TCP server on 127.0.0.1 that does `onConnection` with every socket and counts connections. */
export async function startRawServer(onConnection: (socket: net.Socket) => void): Promise<{ url: string; connections: () => number; close: () => Promise<void> }> {
  let connections = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    onConnection(socket);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    connections: () => connections,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      server.close();
      await once(server, 'close');
    },
  };
}
