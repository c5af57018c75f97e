import { readFileSync } from 'node:fs';
import type { ListenerConfig } from './config.js';
import type { UpstreamTls } from './engines/engine.js';

/** A listener's TLS as the data plane needs it: PEM contents, read by the primary, sent to the workers in the snapshot. */
export interface TlsMaterial {
  /** the certificate and key the listener terminates TLS with */
  readonly server: Readonly<{ cert: string; key: string }> | undefined;
  /** how https:// backends are verified */
  readonly upstream: Readonly<UpstreamTls & { ca?: string }> | undefined;
}

/** readTlsMaterial reads the listener's PEM files (validateConfig has checked that they can be read and go together). */
export function readTlsMaterial(config: ListenerConfig): TlsMaterial {
  const read = (file: string): string => readFileSync(file, 'utf8');
  const upstream = config.upstreamTls;
  return {
    server: config.tls ? { cert: read(config.tls.cert), key: read(config.tls.key) } : undefined,
    upstream: upstream
      ? {
          ...(upstream.ca !== undefined ? { ca: read(upstream.ca) } : {}),
          ...(upstream.servername !== undefined ? { servername: upstream.servername } : {}),
          rejectUnauthorized: upstream.verify,
        }
      : undefined,
  };
}
