/**
 * Hostile clients in a process of their own, so that the test's own load client shares no event
 * loop with them: `node --import tsx test/helpers/hostile-clients.ts PORT SLOW SILENT TRICKLE_MS`
 * opens SLOW connections that send a request line and then one header line every TRICKLE_MS, and
 * SILENT connections that send nothing, all to 127.0.0.1:PORT, and prints one JSON line once the
 * balancer has closed every one: how long each lasted from its handshake, and what it was answered.
 */
import net from 'node:net';
import { performance } from 'node:perf_hooks';

export interface HostileResult {
  kind: 'slow' | 'silent';
  /** from the TCP handshake to the close */
  closedAfterMs: number;
  status: number;
  code: string | undefined;
  json: boolean;
}

function open(port: number, kind: HostileResult['kind'], trickleMs: number): Promise<HostileResult> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let started = performance.now();
    let text = '';
    let timer: NodeJS.Timeout | undefined;
    socket.once('connect', () => {
      started = performance.now();
      if (kind !== 'slow') return;
      socket.write('GET /slow HTTP/1.1\r\nHost: x\r\n');
      let n = 0;
      timer = setInterval(() => socket.writable && socket.write(`x-slow-${n++}: a\r\n`), trickleMs);
    });
    socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
    socket.on('error', () => {});
    socket.on('close', () => {
      clearInterval(timer);
      resolve({
        kind,
        closedAfterMs: performance.now() - started,
        status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0),
        code: /"code":"([A-Z_]+)"/.exec(text)?.[1],
        json: /\r\ncontent-type: application\/json\r\n/i.test(text),
      });
    });
  });
}

const [port, slow, silent, trickleMs] = process.argv.slice(2).map(Number);
if (!port || slow === undefined || silent === undefined || !trickleMs) {
  process.stderr.write('usage: hostile-clients.ts PORT SLOW SILENT TRICKLE_MS\n');
  process.exit(2);
}
const results = await Promise.all([
  ...Array.from({ length: slow }, () => open(port, 'slow', trickleMs)),
  ...Array.from({ length: silent }, () => open(port, 'silent', trickleMs)),
]);
process.stdout.write(`${JSON.stringify(results)}\n`);
