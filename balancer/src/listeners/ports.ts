import { createServer } from 'node:net';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { ListenerConfig } from '../config.js';

/**
 * trafficPort: the port a listener's workers listen on: the configured one (checked to be free:
 * a worker could only fail later), or for port 0 one that is free now, so that every worker
 * (and every later one) listens on the same.
 */
export async function trafficPort(host: string, port: number): Promise<number> {
  const probe = createServer();
  probe.listen(port, host);
  try {
    await once(probe, 'listening');
  } catch (error) {
    throw new Error(`cannot listen on ${host}:${port}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  const free = (probe.address() as AddressInfo).port;
  probe.close();
  await once(probe, 'close');
  return free;
}

/** listenerScheme: how a client reaches the listener: http, https, tcp, or tls (TLS over tcp). */
export function listenerScheme(listener: ListenerConfig): string {
  if (listener.mode === 'tcp') return listener.tls ? 'tls' : 'tcp';
  return listener.tls ? 'https' : 'http';
}
