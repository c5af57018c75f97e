import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { BALANCER_METRIC } from '@lab/common/metric-names';
import { LATENCY_BUCKETS } from '@lab/common/buckets';


/** The backend label of requests refused because no backend was available. */
export const NO_BACKEND_LABEL = 'none';

const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'CONNECT', 'TRACE']);

/** methodLabel keeps the method label's values to a fixed set, whatever clients send. */
export function methodLabel(method: string | undefined): string {
  return method && KNOWN_METHODS.has(method) ? method : 'OTHER';
}

export interface BackendGaugeSource {
  readonly id: string;
  readonly up: boolean;
  readonly activeRequests: number;
}

/** newRegistry: a prom-client registry with the process metrics (CPU, memory, event loop) of this process. */
export function newRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return registry;
}

/**
 * listenerRegistry: a registry for one listener's metrics. Their `listener` label is there when the
 * file has `listeners:`; a file without keeps the exposition it always had.
 */
export function listenerRegistry(listener: string, labelled: boolean): Registry {
  const registry = new Registry();
  if (labelled) registry.setDefaultLabels({ listener });
  return registry;
}

/**
 * TrafficMetrics are recorded where requests are served: in each worker, summed over the workers
 * on the primary's /metrics. Per-request updates go through cached label children.
 */
export class TrafficMetrics {
  readonly requests: Counter<'backend' | 'method' | 'code'>;
  readonly requestDuration: Histogram<'backend'>;
  readonly retries: Counter<'backend'>;

  /** Label children by backend, then method, then status code: lookups allocate nothing. */
  private readonly requestChildren = new Map<string, Map<string, Map<number, Counter.Internal>>>();
  private readonly durationChildren = new Map<string, Histogram.Internal<'backend'>>();
  private readonly retryChildren = new Map<string, Counter.Internal>();

  constructor(readonly registry: Registry) {
    this.requests = counter(registry, BALANCER_METRIC.requests, 'Requests answered to clients, by the backend that answered (none if refused), method and status code', ['backend', 'method', 'code']);
    this.requestDuration = new Histogram({
      name: BALANCER_METRIC.requestDuration,
      help: 'Time from request received to response finished, in seconds, by the backend that answered',
      labelNames: ['backend'] as const,
      buckets: [...LATENCY_BUCKETS],
      registers: [registry],
    });
    this.retries = counter(registry, BALANCER_METRIC.retries, 'Tries that failed and were retried on another backend, by the backend that failed', ['backend']);
  }

  /** recordRequest counts one answered request; children are cached so the hot path does no label hashing. */
  recordRequest(backend: string, method: string, code: number, seconds: number): void {
    let byMethod = this.requestChildren.get(backend);
    if (!byMethod) this.requestChildren.set(backend, (byMethod = new Map()));
    let byCode = byMethod.get(method);
    if (!byCode) byMethod.set(method, (byCode = new Map()));
    let counter = byCode.get(code);
    if (!counter) byCode.set(code, (counter = this.requests.labels(backend, method, String(code))));
    counter.inc();
    let histogram = this.durationChildren.get(backend);
    if (!histogram) {
      histogram = this.requestDuration.labels(backend);
      this.durationChildren.set(backend, histogram);
    }
    histogram.observe(seconds);
  }

  recordRetry(backend: string): void {
    let counter = this.retryChildren.get(backend);
    if (!counter) this.retryChildren.set(backend, (counter = this.retries.labels(backend)));
    counter.inc();
  }
}

/**
 * ControlMetrics belong to the primary, which makes the decisions they count: health checks,
 * state changes and ejections of one listener's backends (its registry labels them with the
 * listener). Its gauges are read at scrape time, so that none is multiplied by the number of workers.
 */
export class ControlMetrics {
  readonly healthChecks: Counter<'backend' | 'result'>;
  readonly stateChanges: Counter<'backend' | 'to'>;
  readonly ejections: Counter<'backend'>;
  readonly info: Gauge<'algorithm' | 'engine' | 'version'>;

  constructor(
    readonly registry: Registry,
    backends: () => Iterable<BackendGaugeSource>,
  ) {
    this.healthChecks = counter(registry, BALANCER_METRIC.healthChecks, 'Active health checks, by backend and result', ['backend', 'result']);
    this.stateChanges = counter(registry, BALANCER_METRIC.stateChanges, 'Backend state changes, by backend and the state entered', ['backend', 'to']);
    this.ejections = counter(registry, BALANCER_METRIC.ejections, 'Ejections by outlier detection (passive health), by backend', ['backend']);
    this.info = new Gauge({
      name: BALANCER_METRIC.info,
      help: 'Always 1 per listener; labels carry the algorithm in use, the engine and the balancer version',
      labelNames: ['algorithm', 'engine', 'version'] as const,
      registers: [registry],
    });
    backendGauge(registry, BALANCER_METRIC.backendUp, '1 while the backend passes its health checks, else 0', backends, (backend) => (backend.up ? 1 : 0));
    backendGauge(registry, BALANCER_METRIC.activeRequests, 'Requests (tcp: connections) in flight to the backend, over all workers', backends, (backend) => backend.activeRequests);
  }

  setInfo(info: { algorithm: string; engine: string; version: string }): void {
    this.info.reset();
    this.info.set(info, 1);
  }
}

/** BalancerMetrics: the whole balancer's, on the primary: reloads and workers, and the primary's process metrics. */
export class BalancerMetrics {
  readonly registry = newRegistry();
  readonly configReloads = counter(this.registry, BALANCER_METRIC.configReloads, 'Configuration reloads, by result', ['result']);
  readonly workerRestarts = new Counter({ name: BALANCER_METRIC.workerRestarts, help: 'Traffic workers replaced after they died (not counting upgrades)', registers: [this.registry] });
  readonly workers = new Gauge({ name: BALANCER_METRIC.workers, help: 'Traffic workers serving now (not counting old ones draining after an upgrade)', registers: [this.registry] });

  constructor() {
    this.configReloads.inc({ result: 'success' }, 0);
    this.configReloads.inc({ result: 'failure' }, 0);
  }
}

/** How a relayed TCP connection began: relayed to a backend, no backend could be connected, or none was available. */
export type TcpResult = 'ok' | 'connect_failed' | 'no_backend';

/** TcpMetrics are recorded where tcp listeners relay connections: in each worker, labelled with the listener by its registry. */
/** Why a client was refused before (or instead of) its request reaching a backend: lb_client_errors_total's reason. */
export type ClientErrorReason = 'header_timeout' | 'headers_too_large' | 'body_too_large' | 'bad_request' | 'overloaded';

export class ClientErrorMetrics {
  private readonly counter: Counter<'reason'>;

  constructor(registry: Registry) {
    this.counter = counter(registry, BALANCER_METRIC.clientErrors, 'Clients refused by a listener limit or timeout, or for a malformed request, by reason', ['reason']);
  }

  count(reason: ClientErrorReason): void {
    this.counter.inc({ reason });
  }
}

export class TcpMetrics {
  readonly connections: Counter<'backend' | 'result'>;
  readonly bytes: Counter<'backend' | 'direction'>;
  readonly duration: Histogram<'backend'>;

  constructor(registry: Registry, open: () => Iterable<readonly [string, number]>) {
    this.connections = counter(registry, BALANCER_METRIC.tcpConnections, 'Client connections of tcp listeners, by the backend that took them (none if no backend) and result', ['backend', 'result']);
    this.bytes = counter(registry, BALANCER_METRIC.tcpBytes, 'Bytes relayed by tcp listeners: in from client to backend, out from backend to client', ['backend', 'direction']);
    this.duration = new Histogram({
      name: BALANCER_METRIC.tcpConnectionDuration,
      help: 'How long relayed tcp connections lasted, in seconds',
      labelNames: ['backend'] as const,
      buckets: [0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 1800],
      registers: [registry],
    });
    new Gauge({
      name: BALANCER_METRIC.tcpActiveConnections,
      help: 'Open relayed tcp connections, by backend (summed over the workers)',
      labelNames: ['backend'] as const,
      registers: [registry],
      collect() {
        this.reset();
        for (const [backend, count] of open()) this.set({ backend }, count);
      },
    });
  }
}

function counter<L extends string>(registry: Registry, name: string, help: string, labelNames: readonly L[]): Counter<L> {
  return new Counter({ name, help, labelNames, registers: [registry] });
}

/** backendGauge is a gauge labelled by backend whose values are read from the pool at scrape time, never on the request path. */
function backendGauge(registry: Registry, name: string, help: string, backends: () => Iterable<BackendGaugeSource>, value: (backend: BackendGaugeSource) => number): void {
  new Gauge({
    name,
    help,
    labelNames: ['backend'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const backend of backends()) this.set({ backend: backend.id }, value(backend));
    },
  });
}
