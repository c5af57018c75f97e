import { log } from '@lab/common/log';

export interface OutlierSettings {
  consecutiveFailures: number;
  baseEjectionTime: number;
  maxEjectionTime: number;
  maxEjectionPercent: number;
}

/** What outlier detection reads of the backends, and the one call it makes. */
export interface EjectionSetter {
  /** ejectable: the backend is a member, up, not draining and not ejected */
  ejectable(id: string): boolean;
  /** counts: members, and how many of them are ejected now */
  counts(): { total: number; ejected: number };
  setEjected(id: string, ejected: boolean, why: string): void;
}

interface Record {
  consecutiveErrors: number;
  /** ejections in a row */
  ejections: number;
  lastEjectionEnd: number;
  timer: NodeJS.Timeout | undefined;
}

/**
 * OutlierDetector is passive health as Envoy's: every finished try counts; consecutiveFailures
 * 5xx answers or failed tries in a row eject the backend for baseEjectionTime, n times that the
 * nth time in a row, up to maxEjectionTime, and never more than maxEjectionPercent of the
 * backends at once (at least one may be).
 */
export class OutlierDetector {
  private readonly records = new Map<string, Record>();

  constructor(
    private readonly setter: EjectionSetter,
    private settings: OutlierSettings | undefined,
    private readonly onEjection: (id: string, forMs: number, why: string) => void,
  ) {}

  configure(settings: OutlierSettings | undefined): void {
    this.settings = settings;
  }

  /** success: a try got an answer below 500, which resets the count. */
  success(id: string): void {
    const record = this.records.get(id);
    if (record) record.consecutiveErrors = 0;
  }

  /** failure: a 5xx answer or a failed try. */
  failure(id: string, detail: string): void {
    const settings = this.settings;
    if (!settings) return;
    const record = this.recordOf(id);
    record.consecutiveErrors++;
    if (record.consecutiveErrors >= settings.consecutiveFailures && this.setter.ejectable(id)) this.eject(id, record, settings, detail);
  }

  forget(id: string): void {
    clearTimeout(this.records.get(id)?.timer);
    this.records.delete(id);
  }

  stop(): void {
    for (const record of this.records.values()) clearTimeout(record.timer);
  }

  private eject(id: string, record: Record, settings: OutlierSettings, detail: string): void {
    const { total, ejected } = this.setter.counts();
    const allowed = settings.maxEjectionPercent > 0 ? Math.max(1, Math.floor((total * settings.maxEjectionPercent) / 100)) : 0;
    record.consecutiveErrors = 0;
    if (ejected >= allowed) {
      log.info(`backend ${id} not ejected: ${ejected} of ${total} already ejected (maxEjectionPercent ${settings.maxEjectionPercent})`);
      return;
    }
    const now = Date.now();
    // Ejections in a row grow longer; a backend that stayed clean for maxEjectionTime starts over.
    if (record.lastEjectionEnd !== 0 && now - record.lastEjectionEnd > settings.maxEjectionTime) record.ejections = 0;
    record.ejections++;
    const forMs = Math.min(settings.baseEjectionTime * record.ejections, settings.maxEjectionTime);
    const why = `${settings.consecutiveFailures} consecutive failures (last: ${detail}); ejection ${record.ejections} for ${forMs} ms`;
    this.setter.setEjected(id, true, why);
    this.onEjection(id, forMs, why);
    record.timer = setTimeout(() => {
      record.timer = undefined;
      record.lastEjectionEnd = Date.now();
      this.setter.setEjected(id, false, 'ejection time over');
    }, forMs);
    record.timer.unref();
  }

  private recordOf(id: string): Record {
    let record = this.records.get(id);
    if (!record) this.records.set(id, (record = { consecutiveErrors: 0, ejections: 0, lastEjectionEnd: 0, timer: undefined }));
    return record;
  }
}
