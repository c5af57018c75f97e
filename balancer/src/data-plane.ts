import { createAlgorithm, type Algorithm } from './algorithms/index.js';
import type { Candidate } from './backends/view.js';
import { LoadStats } from './backends/load.js';
import type { Engine, Upstream, UpstreamTls } from './engines/engine.js';
import { SLOW_START_FLOOR, type BackendEntry, type Snapshot } from './snapshot.js';
import type { FailureKind } from './pipeline/error-mapping.js';

/**
 * Route is a backend on the request path: its snapshot entry, this process's load on it, and the
 * engine's connections to it. It lives as long as the backend is a member, across snapshots.
 */
export class Route implements Candidate {
  readonly id: string;
  readonly load = new LoadStats();
  readonly upstream: Upstream;
  entry: BackendEntry;

  constructor(entry: BackendEntry, source: UpstreamSource, tls: UpstreamTls | undefined) {
    this.id = entry.id;
    this.entry = entry;
    this.upstream = source.upstream(entry.url, tls);
  }

  get weight(): number {
    return this.entry.weight;
  }

  effectiveWeight(now: number): number {
    const ramp = this.entry.slowStart;
    if (ramp === undefined || now >= ramp.until) return this.entry.weight;
    return this.entry.weight * Math.max(SLOW_START_FLOOR, (now - ramp.from) / (ramp.until - ramp.from));
  }
}

/** Where routes get their connections to a backend: an HTTP engine, or a tcp listener's connector. */
export interface UpstreamSource {
  upstream(url: string, tls?: UpstreamTls): Upstream;
  close(): void;
}

/** What the request path reads for one request: derived from one snapshot, never changed after. */
export interface ActiveSnapshot {
  readonly snapshot: Snapshot;
  /** the routes that take new requests; the same array until the next snapshot */
  readonly available: readonly Route[];
  readonly algorithm: Algorithm;
}

/**
 * What the data plane reports to the control plane: every finished try (for passive health,
 * outlier detection) and a removed backend whose last request has finished. A worker batches
 * them to the primary over IPC (cluster/report.ts).
 */
export interface DataPlaneReporter {
  tryAnswered(id: string, status: number): void;
  tryFailed(id: string, kind: FailureKind, detail: string): void;
  drained(id: string): void;
}

/**
 * DataPlane owns what the request path needs: the routes (load and upstream connections) and the
 * active snapshot. apply() swaps the snapshot in one assignment; a request in progress keeps the
 * one it started with for its settings.
 */
export class DataPlane<S extends UpstreamSource = Engine> {
  private readonly routes = new Map<string, Route>();
  /** routes that left the snapshot while requests to them were still in flight */
  private readonly leaving = new Map<string, Route>();
  private active: ActiveSnapshot | undefined;
  shuttingDown = false;

  constructor(
    readonly engine: S,
    private readonly reporter: DataPlaneReporter,
  ) {}

  get current(): ActiveSnapshot {
    if (!this.active) throw new Error('the data plane has no snapshot yet');
    return this.active;
  }

  apply(snapshot: Snapshot): void {
    const previous = this.active;
    const available: Route[] = [];
    const seen = new Set<string>();
    for (const entry of snapshot.backends) {
      seen.add(entry.id);
      let route = this.routes.get(entry.id);
      if (!route) this.routes.set(entry.id, (route = new Route(entry, this.engine, snapshot.tls.upstream)));
      route.entry = entry;
      if (entry.available) available.push(route);
    }
    for (const [id, route] of this.routes) {
      if (seen.has(id)) continue;
      this.routes.delete(id);
      if (route.load.activeRequests > 0) this.leaving.set(id, route);
      else route.upstream.close();
    }
    const sameAlgorithm = previous && previous.snapshot.algorithm === snapshot.algorithm && previous.snapshot.virtualNodes === snapshot.virtualNodes;
    const algorithm = sameAlgorithm ? previous.algorithm : createAlgorithm(snapshot.algorithm, { virtualNodes: snapshot.virtualNodes });
    this.active = Object.freeze({ snapshot, available: Object.freeze(available), algorithm });
  }

  /** load: this process's load on a backend, for the admin API and metrics. */
  load(id: string): LoadStats | undefined {
    return this.routes.get(id)?.load ?? this.leaving.get(id)?.load;
  }

  /** loads: this process's load on every backend it routes to, or still has requests in flight to. */
  *loads(): Iterable<readonly [string, LoadStats]> {
    for (const route of this.routes.values()) yield [route.id, route.load];
    for (const route of this.leaving.values()) yield [route.id, route.load];
  }

  begin(route: Route): void {
    route.load.begin();
    this.active?.algorithm.loadChanged?.(route);
  }

  end(route: Route): void {
    const left = route.load.end();
    this.active?.algorithm.loadChanged?.(route);
    if (left > 0) return;
    if (route.entry.removing && this.routes.get(route.id) === route) this.reporter.drained(route.id);
    else if (this.leaving.get(route.id) === route) {
      this.leaving.delete(route.id);
      route.upstream.close();
    }
  }

  get reports(): DataPlaneReporter {
    return this.reporter;
  }

  /** inFlight: requests in flight over every backend. */
  inFlight(): number {
    let sum = 0;
    for (const route of this.routes.values()) sum += route.load.activeRequests;
    for (const route of this.leaving.values()) sum += route.load.activeRequests;
    return sum;
  }

  close(): void {
    for (const route of [...this.routes.values(), ...this.leaving.values()]) route.upstream.close();
    this.engine.close();
  }
}
