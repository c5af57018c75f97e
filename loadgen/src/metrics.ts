import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { LATENCY_BUCKETS } from '@lab/common/buckets';
import { LOADGEN_METRIC } from '@lab/common/metric-names';
import type { ErrorKind, Load, Outcomes } from './engine.js';
import type { TcpOutcomes } from './tcp-engine.js';

export interface LoadgenMetrics {
  readonly registry: Registry;
  /** Records each request's outcome; give it to startLoad. */
  readonly outcomes: Outcomes;
  /** Records each TCP connection's outcome; give it to startTcpLoad. */
  readonly tcpOutcomes: TcpOutcomes;
  /** The running load, read at every scrape for the gauges. */
  attach(load: Load): void;
}

export function createLoadgenMetrics(): LoadgenMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  let load: Load | undefined;

  const requests = new Counter({
    name: LOADGEN_METRIC.requests,
    help: 'Requests sent and settled, by answer status; code="error" when no answer came (see loadgen_errors_total).',
    labelNames: ['code'],
    registers: [registry],
  });
  const errors = new Counter({
    name: LOADGEN_METRIC.errors,
    help: 'Requests without an answer, by kind: refused, reset (closed before the answer), timeout, other.',
    labelNames: ['kind'],
    registers: [registry],
  });
  const duration = new Histogram({
    name: LOADGEN_METRIC.duration,
    help: 'Time from writing a request to its complete answer, as the client saw it (answered requests only).',
    buckets: [...LATENCY_BUCKETS],
    registers: [registry],
  });
  const backendResponses = new Counter({
    name: LOADGEN_METRIC.backendResponses,
    help: 'Answers by their x-backend-id header.',
    labelNames: ['backend'],
    registers: [registry],
  });
  const tcpConnections = new Counter({
    name: LOADGEN_METRIC.tcpConnections,
    help: 'TCP connections settled, by result (ok, or why it failed: refused, reset, timeout, mismatch, other) and backend (from the greeting; "none" before it).',
    labelNames: ['result', 'backend'],
    registers: [registry],
  });
  const tcpDuration = new Histogram({
    name: LOADGEN_METRIC.tcpDuration,
    help: 'Time from opening a TCP connection to its last echo, as the client saw it (ok connections only).',
    buckets: [...LATENCY_BUCKETS],
    registers: [registry],
  });
  new Gauge({
    name: LOADGEN_METRIC.targetRate,
    help: 'Requests (tcp:// targets: new connections) per second the loadgen is asked to send (0: paused); change it with PUT /rate.',
    registers: [registry],
    collect() {
      this.set(load?.rate ?? 0);
    },
  });
  new Gauge({
    name: LOADGEN_METRIC.inFlight,
    help: 'Requests sent and not yet answered or failed (tcp:// targets: connections open and not yet settled).',
    registers: [registry],
    collect() {
      this.set(load?.inFlight ?? 0);
    },
  });
  for (const kind of ['refused', 'reset', 'timeout', 'other'] satisfies ErrorKind[]) errors.inc({ kind }, 0);
  requests.inc({ code: 'error' }, 0);

  const tcpLabels = new Map<string, { result: string; backend: string }>();
  const codeLabels = new Map<number, { code: string }>();
  const backendLabels = new Map<string, { backend: string }>();
  const errorLabel = { code: 'error' };
  const tcpLabel = (result: string, backend: string): { result: string; backend: string } => {
    const key = `${result}\n${backend}`;
    let labels = tcpLabels.get(key);
    if (labels === undefined) tcpLabels.set(key, (labels = { result, backend }));
    return labels;
  };
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
    tcpOutcomes: {
      ok(latencyMs, backend) {
        tcpConnections.inc(tcpLabel('ok', backend));
        tcpDuration.observe(latencyMs / 1000);
      },
      failed(kind, _code, backend) {
        tcpConnections.inc(tcpLabel(kind, backend ?? 'none'));
      },
    },
  };
}
