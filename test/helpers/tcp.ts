import net from 'node:net';
import { once } from 'node:events';
import { putChaos, sumCounter, type RunningBackend } from './backend.js';
import { freePort, startService } from './processes.js';

/** A running backend whose TCP echo port is known too. */
export interface TcpBackend extends RunningBackend {
  /** The TCP echo port's address, from the ready line's `tcp=tcp://host:port`. */
  readonly tcp: { host: string; port: number };
}

/** The ports of a backend that a test restarts on the same ports, from freePort(): see there why not listen(0)'s. */
export async function restartablePorts(): Promise<{ PORT: string; CONTROL_PORT: string; TCP_PORT: string }> {
  const [port, control, tcp] = [await freePort(), await freePort(), await freePort()];
  return { PORT: String(port), CONTROL_PORT: String(control), TCP_PORT: String(tcp) };
}

/** startTcpBackend spawns `node backend/dist/main.js` on 127.0.0.1, with every port OS-chosen unless env sets it, and waits for its ready line. */
export async function startTcpBackend(id: string, env: Record<string, string> = {}): Promise<TcpBackend> {
  const { service, ready } = await startService(`backend ${id}`, 'backend/dist/main.js', {
    env: { PORT: '0', CONTROL_PORT: '0', TCP_PORT: '0', HOST: '127.0.0.1', BACKEND_ID: id, ...env },
    ready: 'backend',
  });
  const { id: readyId, traffic: url, control: controlUrl, tcp } = ready!;
  if (tcp === undefined) throw new Error(`backend ${id}: the ready line has no tcp= field: ${JSON.stringify(ready)}`);
  const address = new URL(tcp);
  return {
    service,
    id: readyId!,
    url: url!,
    controlUrl: controlUrl!,
    tcp: { host: address.hostname.replace(/^\[|\]$/g, ''), port: Number(address.port) },
    chaos: (patch) => putChaos(controlUrl!, patch),
    async requestsCounted() {
      return sumCounter(await (await fetch(`${controlUrl}/metrics`)).text(), 'backend_requests_total');
    },
  };
}

/** A client connection that keeps everything it received, to wait on and assert against. */
export interface TcpClient {
  readonly socket: net.Socket;
  /** Every byte received so far. */
  received(): Buffer;
  /** Resolves once at least `bytes` bytes were received in all; rejects after timeoutMs or if the connection ends first. */
  waitForBytes(bytes: number, timeoutMs?: number): Promise<Buffer>;
  /** Resolves with the first line received (without its newline). */
  greeting(timeoutMs?: number): Promise<string>;
  /** Resolves once the other side ended (FIN), with everything received. */
  ended: Promise<Buffer>;
  /** Resolves once the socket is closed; true if it closed with an error. */
  closed: Promise<boolean>;
}

/** connectTcp opens a connection to 127.0.0.1 (half-open allowed: ending our side leaves the reading side open). */
export async function connectTcp(port: number, host = '127.0.0.1'): Promise<TcpClient> {
  const socket = net.connect({ port, host, allowHalfOpen: true });
  const chunks: Buffer[] = [];
  let total = 0;
  const waiters = new Set<() => void>();
  socket.on('data', (chunk: Buffer) => {
    chunks.push(chunk);
    total += chunk.length;
    for (const waiter of [...waiters]) waiter();
  });
  socket.on('error', () => {});
  const received = (): Buffer => Buffer.concat(chunks);
  const ended = new Promise<Buffer>((resolve, reject) => {
    socket.once('end', () => resolve(received()));
    socket.once('close', () => reject(new Error('closed without an end from the other side')));
  });
  ended.catch(() => {});
  const closed = new Promise<boolean>((resolve) => socket.once('close', resolve));
  const waitFor = <T>(what: string, check: () => T | undefined, timeoutMs: number): Promise<T> =>
    new Promise((resolve, reject) => {
      const done = (error?: Error): void => {
        clearTimeout(timer);
        waiters.delete(waiter);
        socket.off('close', onClose);
        if (error) reject(error);
      };
      const waiter = (): void => {
        const found = check();
        if (found === undefined) return;
        done();
        resolve(found);
      };
      const onClose = (): void => done(new Error(`closed before ${what}; received ${total} bytes`));
      const timer = setTimeout(() => done(new Error(`no ${what} within ${timeoutMs} ms; received ${total} bytes`)), timeoutMs);
      waiters.add(waiter);
      socket.once('close', onClose);
      waiter();
    });
  await once(socket, 'connect');
  return {
    socket,
    received,
    waitForBytes: (bytes, timeoutMs = 5000) => waitFor(`${bytes} bytes`, () => (total >= bytes ? received() : undefined), timeoutMs),
    greeting: (timeoutMs = 5000) =>
      waitFor('greeting line', () => {
        const text = received();
        const end = text.indexOf(0x0a);
        return end === -1 ? undefined : text.subarray(0, end).toString();
      }, timeoutMs),
    ended,
    closed,
  };
}

/**
 * startEchoServer is a small TCP echo server on 127.0.0.1 that greets with `id\n`, as the backend's TCP port does.
 * `onConnection` may replace the behaviour for a connection: return true to say it handled the socket itself.
 */
export async function startEchoServer(id: string, onConnection?: (socket: net.Socket) => boolean): Promise<{ port: number; url: string; connections: () => number; close: () => Promise<void> }> {
  let connections = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    if (onConnection?.(socket)) return;
    socket.write(`${id}\n`);
    socket.pipe(socket);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  return {
    port,
    url: `tcp://127.0.0.1:${port}`,
    connections: () => connections,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      server.close();
      await once(server, 'close');
    },
  };
}
