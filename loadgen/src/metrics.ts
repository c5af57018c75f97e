import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ErrorKind, Load, Outcomes } from './engine.js';

/** Metric names of the continuous mode's /metrics: what the clients saw. */
export const METRIC = {
  requests: 'loadgen_requests_total',
  errors: 'loadgen_errors_total',
  duration: 'loadgen_request_duration_seconds',
  backendResponses: 'loadgen_backend_responses_total',
  targetRate: 'loadgen_target_rate',
  inFlight: 'loadgen_in_flight_requests',
} as const;

/** Upper bounds of the latency histogram, in seconds. */
export const DURATION_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export interface LoadgenMetrics {
  readonly registry: Registry;
  /** Records each request's outcome; give it to startLoad. */
  readonly outcomes: Outcomes;
  /** The running load, read at every scrape for the gauges. */
  attach(load: Load): void;
}

export function createLoadgenMetrics(): LoadgenMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  let load: Load | undefined;

  const requests = new Counter({
    name: METRIC.requests,
    help: 'Requests sent and settled, by answer status; code="error" when no answer came (see loadgen_errors_total).',
    labelNames: ['code'],
    registers: [registry],
  });
  const errors = new Counter({
    name: METRIC.errors,
    help: 'Requests without an answer, by kind: refused, reset (closed before the answer), timeout, other.',
    labelNames: ['kind'],
    registers: [registry],
  });
  const duration = new Histogram({
    name: METRIC.duration,
    help: 'Time from writing a request to its complete answer, as the client saw it (answered requests only).',
    buckets: DURATION_BUCKETS,
    registers: [registry],
  });
  const backendResponses = new Counter({
    name: METRIC.backendResponses,
    help: 'Answers by their x-backend-id header.',
    labelNames: ['backend'],
    registers: [registry],
  });
  new Gauge({
    name: METRIC.targetRate,
    help: 'Requests per second the loadgen is asked to send (0: paused); change it with PUT /rate.',
    registers: [registry],
    collect() {
      this.set(load?.rate ?? 0);
    },
  });
  new Gauge({
    name: METRIC.inFlight,
    help: 'Requests sent and not yet answered or failed.',
    registers: [registry],
    collect() {
      this.set(load?.inFlight ?? 0);
    },
  });
  for (const kind of ['refused', 'reset', 'timeout', 'other'] satisfies ErrorKind[]) errors.inc({ kind }, 0);
  requests.inc({ code: 'error' }, 0);

  const codeLabels = new Map<number, { code: string }>();
  const backendLabels = new Map<string, { backend: string }>();
  const errorLabel = { code: 'error' };
  return {
    registry,
    attach(running) {
      load = running;
    },
    outcomes: {
      response(status, latencyMs, backend) {
        let code = codeLabels.get(status);
        if (code === undefined) codeLabels.set(status, (code = { code: String(status) }));
        requests.inc(code);
        duration.observe(latencyMs / 1000);
        if (backend !== undefined) {
          let labels = backendLabels.get(backend);
          if (labels === undefined) backendLabels.set(backend, (labels = { backend }));
          backendResponses.inc(labels);
        }
      },
      error(kind) {
        requests.inc(errorLabel);
        errors.inc({ kind });
      },
    },
  };
}
