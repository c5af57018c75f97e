import { backendId, type BackendConfig } from '../config.js';
import { log } from '@lab/common/log';
import type { BackendEntry } from '../snapshot.js';
import type { StatusSetter } from './rise-fall.js';
import type { EjectionSetter } from './outlier.js';

export type BackendState = 'healthy' | 'unhealthy' | 'draining' | 'ejected';

/** Where a backend came from: the config file (or PUT /config), the admin API, or DNS discovery. */
export type BackendSource = 'config' | 'api' | 'dns';

/** A member as everyone but the pool sees it: read-only. */
export interface BackendStatus {
  readonly id: string;
  readonly url: string;
  readonly weight: number;
  readonly source: BackendSource;
  /** up: passes its health checks (true from the start when checks are disabled) */
  readonly up: boolean;
  readonly draining: boolean;
  /** removing: draining, and leaves once its last request has finished */
  readonly removing: boolean;
  readonly ejected: boolean;
  readonly state: BackendState;
  toConfig(): BackendConfig;
}

export interface PoolSettings {
  /** healthChecked: active checks run, so backends start down until their first check passes */
  healthChecked: boolean;
  panicThreshold: number;
  slowStart: number;
}

export type PoolEvent =
  | { type: 'state'; id: string; from: BackendState; to: BackendState; why: string }
  | { type: 'added'; backend: BackendStatus }
  | { type: 'removed'; backend: BackendStatus }
  | { type: 'panic'; active: boolean; available: number; total: number }
  | { type: 'changed' };

class Member implements BackendStatus {
  readonly id: string;
  readonly url: string;
  readonly host: string;
  weight: number;
  source: BackendSource;
  up: boolean;
  draining = false;
  removing = false;
  ejected = false;
  slowStart: { from: number; until: number } | undefined;

  constructor(config: BackendConfig, up: boolean, source: BackendSource) {
    this.id = backendId(config);
    this.url = config.url;
    this.host = new URL(config.url).host;
    this.weight = config.weight;
    this.up = up;
    this.source = source;
  }

  get state(): BackendState {
    if (this.draining) return 'draining';
    if (!this.up) return 'unhealthy';
    return this.ejected ? 'ejected' : 'healthy';
  }

  get available(): boolean {
    return this.up && !this.draining && !this.ejected && this.weight > 0;
  }

  toConfig(): BackendConfig {
    return this.id === this.host ? { url: this.url, weight: this.weight } : { url: this.url, weight: this.weight, name: this.id };
  }
}

/**
 * Pool holds the members and their status: membership and configured settings, up or down,
 * ejected, draining, slow start. It is the only place where these change; health state and
 * outlier detection reach it through their narrow setters, and everyone else reads
 * BackendStatus views. Load (requests in flight, latency) is the data plane's.
 */
export class Pool implements StatusSetter, EjectionSetter {
  private readonly members = new Map<string, Member>();
  private readonly listeners: ((event: PoolEvent) => void)[] = [];
  private panicking = false;
  /** startup: true until markStarted(); backends there at start take full weight at once */
  private startup = true;

  constructor(private settings: PoolSettings) {}

  onEvent(listener: (event: PoolEvent) => void): void {
    this.listeners.push(listener);
  }

  private emit(event: PoolEvent): void {
    for (const listener of this.listeners) listener(event);
  }

  configure(settings: PoolSettings): void {
    this.settings = settings;
    this.emit({ type: 'changed' });
  }

  markStarted(): void {
    this.startup = false;
  }

  get(id: string): BackendStatus | undefined {
    return this.members.get(id);
  }

  all(): BackendStatus[] {
    return [...this.members.values()];
  }

  /** add puts a backend in the pool: down until its first health check passes (when checks run). */
  add(config: BackendConfig, source: BackendSource): BackendStatus {
    const member = new Member(config, !this.settings.healthChecked, source);
    if (member.up) this.startSlowStart(member);
    this.members.set(member.id, member);
    log.info(`backend ${member.id} added`, { url: member.url, weight: member.weight, source });
    this.emit({ type: 'added', backend: member });
    this.emit({ type: 'changed' });
    return member;
  }

  /** remove drains a backend; it leaves at finishRemoval, once the data plane has no request in flight to it. */
  remove(id: string, why: string): void {
    const member = this.members.get(id);
    if (!member || member.removing) return;
    member.removing = true;
    if (!member.draining) this.setDraining(id, true, why);
    else this.emit({ type: 'changed' });
  }

  /** finishRemoval takes a removing backend out of the pool. */
  finishRemoval(id: string, totalRequests: number): void {
    const member = this.members.get(id);
    if (!member?.removing) return;
    this.members.delete(id);
    log.info(`backend ${id} removed`, { totalRequests });
    this.emit({ type: 'removed', backend: member });
    this.emit({ type: 'changed' });
  }

  /** restore cancels a removal that has not completed yet: the backend stays, and takes traffic again. */
  restore(id: string, why: string): void {
    const member = this.members.get(id);
    if (!member?.removing) return;
    member.removing = false;
    this.setDraining(id, false, why);
  }

  setDraining(id: string, draining: boolean, why: string): void {
    const member = this.members.get(id);
    if (!member || member.draining === draining || (member.removing && !draining)) return;
    this.update(member, why, () => (member.draining = draining));
  }

  setWeight(id: string, weight: number): void {
    const member = this.members.get(id);
    if (!member || member.weight === weight) return;
    log.info(`backend ${id} weight ${member.weight} → ${weight}`);
    this.update(member, `weight ${member.weight} → ${weight}`, () => (member.weight = weight));
  }

  isUp(id: string): boolean | undefined {
    return this.members.get(id)?.up;
  }

  setStatus(id: string, up: boolean, why: string): void {
    const member = this.members.get(id);
    if (member) this.update(member, why, () => (member.up = up));
  }

  ejectable(id: string): boolean {
    const member = this.members.get(id);
    return member !== undefined && member.up && !member.draining && !member.ejected;
  }

  counts(): { total: number; ejected: number } {
    let ejected = 0;
    for (const member of this.members.values()) if (member.ejected) ejected++;
    return { total: this.members.size, ejected };
  }

  setEjected(id: string, ejected: boolean, why: string): void {
    const member = this.members.get(id);
    if (member && member.ejected !== ejected) this.update(member, why, () => (member.ejected = ejected));
  }

  /**
   * entries: every member as the data plane needs it. Below panicThreshold percent available,
   * every backend that is not draining takes traffic (Envoy's panic mode): better to try them
   * all than to refuse every request.
   */
  entries(): BackendEntry[] {
    const members = [...this.members.values()];
    const candidates = members.filter((member) => !member.draining && member.weight > 0);
    const available = members.filter((member) => member.available).length;
    const threshold = this.settings.panicThreshold;
    const panic = threshold > 0 && candidates.length > 0 && (available / candidates.length) * 100 < threshold;
    if (panic !== this.panicking) {
      this.panicking = panic;
      log.info(panic ? 'panic mode: too few backends available, balancing over all of them' : 'panic mode over', { available, total: candidates.length, threshold: `${threshold}%` });
      this.emit({ type: 'panic', active: panic, available, total: candidates.length });
    }
    const now = Date.now();
    return members.map((member) => ({
      id: member.id,
      url: member.url,
      weight: member.weight,
      available: panic ? !member.draining && member.weight > 0 : member.available,
      removing: member.removing,
      draining: member.draining,
      slowStart: member.slowStart && member.slowStart.until > now ? member.slowStart : undefined,
    }));
  }

  /** update applies one change, starts slow start when the backend became available, and logs and emits a state change. */
  private update(member: Member, why: string, change: () => void): void {
    const from = member.state;
    const wasAvailable = member.available;
    change();
    if (!wasAvailable && member.available) this.startSlowStart(member);
    const to = member.state;
    if (from !== to) {
      log.info(`backend ${member.id} ${from} → ${to}`, { why });
      this.emit({ type: 'state', id: member.id, from, to, why });
    }
    this.emit({ type: 'changed' });
  }

  private startSlowStart(member: Member): void {
    if (this.settings.slowStart <= 0 || this.startup) return;
    const now = Date.now();
    member.slowStart = { from: now, until: now + this.settings.slowStart };
  }
}
