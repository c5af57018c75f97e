import { promises as dns } from 'node:dns';
import { log } from '@lab/common/log';

export interface DnsDiscoverySettings {
  /** name is the DNS name whose A records are the backends, e.g. "backend" in docker compose. */
  name: string;
  /** port is the port of every discovered backend; not used here, it is kept for the caller that builds the backends. */
  port: number;
  /** interval is the time in ms from the end of one lookup to the start of the next. */
  interval: number;
  /** server is the "ip:port" of the DNS server to ask, "[ipv6]:port" for IPv6 (default: the system's resolv.conf servers). */
  server?: string;
}

/**
 * DnsDiscovery resolves the A records of one name with node:dns and reports the address set when it changes.
 *
 * - start() resolves once and waits for that lookup; after it, a lookup runs `interval` ms after the
 *   previous one ended, so lookups never overlap, until stop(). The timer is unref'd.
 * - Each lookup is one query (tries: 1) with a timeout of half the interval, at least 100 ms and at most 2 s.
 * - onChange gets the sorted, de-duplicated addresses, only when they differ from the last reported set;
 *   the first successful lookup always reports. An error thrown by onChange is logged, not rethrown.
 * - A failed lookup keeps the last known set and does not call onChange: timeouts, refused queries,
 *   SERVFAIL, and also NXDOMAIN (ENOTFOUND) and an answer without A records (ENODATA), so that a
 *   transient DNS hiccup never empties the pool. One line is logged when a failure streak starts
 *   and one when lookups work again. If the first lookup fails, start() still resolves, with nothing
 *   reported yet.
 * - The constructor throws (ERR_INVALID_IP_ADDRESS, from node:dns setServers) if `server` is not an IP address
 *   with an optional port; a host name is not accepted there.
 */
export class DnsDiscovery {
  private readonly resolver: dns.Resolver;
  private readonly settings: DnsDiscoverySettings;
  private readonly onChange: (addresses: readonly string[]) => void;
  private timer: NodeJS.Timeout | undefined;
  private started = false;
  private stopped = false;
  private reported: readonly string[] | undefined;
  private failing = false;

  constructor(settings: DnsDiscoverySettings, onChange: (addresses: readonly string[]) => void) {
    this.settings = settings;
    this.onChange = onChange;
    this.resolver = new dns.Resolver({ timeout: Math.min(2000, Math.max(100, Math.floor(settings.interval / 2))), tries: 1 });
    if (settings.server !== undefined) this.resolver.setServers([settings.server]);
  }

  async start(): Promise<void> {
    if (this.started) throw new Error('DnsDiscovery.start() called twice');
    this.started = true;
    await this.lookup();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.resolver.cancel();
  }

  private async lookup(): Promise<void> {
    const { name } = this.settings;
    let addresses: string[] = [];
    let failure: string | undefined;
    try {
      addresses = await this.resolver.resolve4(name);
      if (addresses.length === 0) failure = 'ENODATA';
    } catch (error) {
      failure = (error as NodeJS.ErrnoException).code ?? String(error);
    }
    if (this.stopped) return;

    if (failure !== undefined) {
      if (!this.failing) {
        const kept = this.reported === undefined ? 'no addresses known yet' : `keeping the last ${this.reported.length} addresses`;
        log.warn(`dns discovery: lookup of ${name} failed (${failure}); ${kept}`);
      }
      this.failing = true;
    } else {
      if (this.failing) log.info(`dns discovery: lookup of ${name} works again`, { addresses: addresses.length });
      this.failing = false;
      const next = Object.freeze([...new Set(addresses)].sort(byAddress));
      if (this.reported === undefined || next.join(',') !== this.reported.join(',')) {
        this.reported = next;
        try {
          this.onChange(next);
        } catch (error) {
          log.error(`dns discovery: applying the addresses of ${name} failed`, { error: String(error) });
        }
      }
    }

    if (this.stopped) return;
    this.timer = setTimeout(() => void this.lookup(), this.settings.interval);
    this.timer.unref();
  }
}

function byAddress(a: string, b: string): number {
  const key = (address: string): string => address.split('.').map((octet) => octet.padStart(3, '0')).join('.');
  return key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0;
}
