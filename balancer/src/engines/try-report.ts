import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import type { TryObserver } from './engine.js';
import { classifyError, type FailureKind } from '../pipeline/error-mapping.js';

/**
 * TryReport keeps one try's promise to the observer, for every engine: one onHead or one
 * onFailure, then at most one onBodyError; a try aborted before its head fails with the
 * abort's kind, whatever error the engine then sees.
 */
export class TryReport {
  private headSeen = false;
  private settled = false;
  private aborted: { kind: FailureKind; cause: Error } | undefined;

  constructor(
    readonly res: ServerResponse,
    private readonly observer: TryObserver,
  ) {}

  /** abortCause: why the try was aborted, if it was */
  get abortCause(): Error | undefined {
    return this.aborted?.cause;
  }

  /** abort records the abort; false when the try has settled already (nothing left to abort). */
  abort(kind: FailureKind, cause: Error): boolean {
    if (this.settled) return false;
    this.aborted = { kind, cause };
    if (this.headSeen) this.res.destroy();
    return true;
  }

  head(status: number, headers: IncomingHttpHeaders): void {
    this.headSeen = true;
    this.observer.onHead(status, headers);
  }

  /** ended: the response body went through whole. */
  ended(): void {
    this.settled = true;
  }

  fail(error: Error): void {
    if (this.settled) return;
    this.settled = true;
    if (this.headSeen) {
      this.res.destroy();
      this.observer.onBodyError(error);
    } else {
      this.observer.onFailure(this.aborted ?? { kind: classifyError(error), cause: error });
    }
  }
}
