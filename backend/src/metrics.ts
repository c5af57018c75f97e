import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { LATENCY_BUCKETS } from '@lab/common/buckets';
import { BACKEND_METRIC } from '@lab/common/metric-names';
import type { ChaosState } from './chaos.js';

/** Code label of a traffic request whose client went away before it was answered. */
export const ABORTED = 'aborted';

export interface BackendMetrics {
  readonly registry: Registry;
  /** Counts one finished traffic request: its status (or ABORTED) and how long it took. */
  observe(code: number | typeof ABORTED, seconds: number): void;
  /** Counts one connection accepted on the TCP echo port. */
  tcpConnection(): void;
}

export function createMetrics(backendId: string, chaos: ChaosState, inFlight: () => number, tcpOpen: () => number = () => 0): BackendMetrics {
  const registry = new Registry();
  registry.setDefaultLabels({ backend: backendId });
  collectDefaultMetrics({ register: registry });

  const requests = new Counter({
    name: BACKEND_METRIC.requests,
    help: 'Traffic requests answered, by status code ("aborted" when the client left first).',
    labelNames: ['code'],
    registers: [registry],
  });
  const duration = new Histogram({
    name: BACKEND_METRIC.duration,
    help: 'Time from receiving a traffic request to answering it, injected latency included.',
    buckets: [...LATENCY_BUCKETS],
    registers: [registry],
  });
  const tcpConnections = new Counter({
    name: BACKEND_METRIC.tcpConnections,
    help: 'Connections accepted on the TCP echo port.',
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
  gauge(BACKEND_METRIC.inFlight, 'Traffic requests received and not yet answered.', inFlight);
  gauge(BACKEND_METRIC.held, 'Traffic requests and TCP echoes held unanswered by the hang fault.', () => chaos.heldCount);
  gauge(BACKEND_METRIC.tcpActiveConnections, 'Connections open on the TCP echo port.', tcpOpen);
  gauge(BACKEND_METRIC.chaosLatency, 'Injected latency (chaos latencyMs), in seconds.', () => chaos.current.latencyMs / 1000);
  gauge(BACKEND_METRIC.chaosJitter, 'Injected random extra latency, up to this many seconds (chaos latencyJitterMs).', () => chaos.current.latencyJitterMs / 1000);
  gauge(BACKEND_METRIC.chaosErrorRate, 'Share of traffic requests answered with an injected error (chaos errorRate).', () => chaos.current.errorRate);
  gauge(BACKEND_METRIC.chaosErrorStatus, 'Status code of injected errors (chaos errorStatus).', () => chaos.current.errorStatus);
  gauge(BACKEND_METRIC.chaosHealthFailing, '1 while /health is made to fail (chaos health "fail").', () => (chaos.current.health === 'fail' ? 1 : 0));
  gauge(BACKEND_METRIC.chaosHang, '1 while traffic requests are held unanswered (chaos hang).', () => (chaos.current.hang ? 1 : 0));

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
    tcpConnection() {
      tcpConnections.inc();
    },
  };
}
