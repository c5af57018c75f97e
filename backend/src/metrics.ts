import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ChaosState } from './chaos.js';

/** Metric names of the backend, served on the control port's /metrics. Every series also carries `backend="<BACKEND_ID>"`. */
export const METRIC = {
  requests: 'backend_requests_total',
  duration: 'backend_request_duration_seconds',
  inFlight: 'backend_in_flight_requests',
  held: 'backend_held_requests',
  chaosLatency: 'backend_chaos_latency_seconds',
  chaosJitter: 'backend_chaos_latency_jitter_seconds',
  chaosErrorRate: 'backend_chaos_error_rate',
  chaosErrorStatus: 'backend_chaos_error_status',
  chaosHealthFailing: 'backend_chaos_health_failing',
  chaosHang: 'backend_chaos_hang',
} as const;

/** Upper bounds of the duration histogram, in seconds: from half a millisecond (an unloaded backend) to 30 s. */
export const DURATION_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** Code label of a traffic request whose client went away before it was answered. */
export const ABORTED = 'aborted';

export interface BackendMetrics {
  readonly registry: Registry;
  /** Counts one finished traffic request: its status (or ABORTED) and how long it took. */
  observe(code: number | typeof ABORTED, seconds: number): void;
}

export function createMetrics(backendId: string, chaos: ChaosState, inFlight: () => number): BackendMetrics {
  const registry = new Registry();
  registry.setDefaultLabels({ backend: backendId });
  collectDefaultMetrics({ register: registry });

  const requests = new Counter({
    name: METRIC.requests,
    help: 'Traffic requests answered, by status code ("aborted" when the client left first).',
    labelNames: ['code'],
    registers: [registry],
  });
  const duration = new Histogram({
    name: METRIC.duration,
    help: 'Time from receiving a traffic request to answering it, injected latency included.',
    buckets: DURATION_BUCKETS,
    registers: [registry],
  });
  const gauge = (name: string, help: string, value: () => number): void => {
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(value());
      },
    });
  };
  gauge(METRIC.inFlight, 'Traffic requests received and not yet answered.', inFlight);
  gauge(METRIC.held, 'Traffic requests held unanswered by the hang fault.', () => chaos.heldCount);
  gauge(METRIC.chaosLatency, 'Injected latency (chaos latencyMs), in seconds.', () => chaos.current.latencyMs / 1000);
  gauge(METRIC.chaosJitter, 'Injected random extra latency, up to this many seconds (chaos latencyJitterMs).', () => chaos.current.latencyJitterMs / 1000);
  gauge(METRIC.chaosErrorRate, 'Share of traffic requests answered with an injected error (chaos errorRate).', () => chaos.current.errorRate);
  gauge(METRIC.chaosErrorStatus, 'Status code of injected errors (chaos errorStatus).', () => chaos.current.errorStatus);
  gauge(METRIC.chaosHealthFailing, '1 while /health is made to fail (chaos health "fail").', () => (chaos.current.health === 'fail' ? 1 : 0));
  gauge(METRIC.chaosHang, '1 while traffic requests are held unanswered (chaos hang).', () => (chaos.current.hang ? 1 : 0));

  const codeLabels = new Map<number | string, { code: string }>();
  return {
    registry,
    observe(code, seconds) {
      let labels = codeLabels.get(code);
      if (labels === undefined) {
        labels = { code: String(code) };
        codeLabels.set(code, labels);
      }
      requests.inc(labels);
      duration.observe(seconds);
    },
  };
}
