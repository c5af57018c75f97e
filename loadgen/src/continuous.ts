import http from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { Command } from './args.js';
import { startLoad } from './engine.js';
import { createLoadgenMetrics } from './metrics.js';
import { startTcpLoad, type TcpOutcomes } from './tcp-engine.js';
import { sendError, sendJson } from '@lab/common/errors';
import { hostPort } from '@lab/common/host-port';
import { log } from '@lab/common/log';
import { readyLine } from '@lab/common/ready';
import { onShutdown } from '@lab/common/shutdown';

/** Highest rate PUT /rate accepts, in requests per second. */
const MAX_RATE = 1_000_000;
/** How often continuous mode logs a status line. */
const STATUS_EVERY_MS = 10_000;

type Continuous = Extract<Command, { mode: 'continuous' }>;

async function readBody(req: http.IncomingMessage, limit: number): Promise<string | undefined> {
  let text = '';
  for await (const chunk of req) {
    text += String(chunk);
    if (text.length > limit) return undefined;
  }
  return text;
}

/**
 * runContinuous keeps load running against the target until SIGTERM/SIGINT, and serves on the metrics port:
 * GET /metrics (Prometheus), GET /rate and PUT /rate {"rate": N} (0 pauses), GET /healthz.
 * For a tcp:// target the load is TCP echo connections, and the rate counts new connections per second.
 */
export async function runContinuous(command: Continuous): Promise<void> {
  const metrics = createLoadgenMetrics();
  let sent = 0;
  let failed = 0;
  const outcomes = {
    response: (status: number, latencyMs: number, backend: string | undefined) => {
      sent++;
      metrics.outcomes.response(status, latencyMs, backend);
    },
    error: (...args: Parameters<typeof metrics.outcomes.error>) => {
      sent++;
      failed++;
      metrics.outcomes.error(...args);
    },
  };
  const tcpOutcomes: TcpOutcomes = {
    ok: (...args) => {
      sent++;
      metrics.tcpOutcomes.ok(...args);
    },
    failed: (...args) => {
      sent++;
      failed++;
      metrics.tcpOutcomes.failed(...args);
    },
  };
  const { tcp } = command;
  const load =
    tcp === undefined
      ? startLoad(command, outcomes)
      : startTcpLoad({ ...tcp, connections: command.connections, rate: command.rate, timeoutSeconds: command.timeoutSeconds }, tcpOutcomes);
  metrics.attach(load);
  const [what, failures, unit] = tcp === undefined ? ['requests', 'errors', 'req/s'] : ['connections', 'failed', 'conn/s'];

  const server = http.createServer((req, res) => {
    void (async () => {
      const path = (req.url ?? '/').split('?')[0];
      if (req.method === 'GET' && path === '/metrics') {
        const text = await metrics.registry.metrics();
        res.writeHead(200, { 'content-type': metrics.registry.contentType });
        res.end(text);
      } else if (req.method === 'GET' && path === '/rate') {
        sendJson(res, 200, { rate: load.rate });
      } else if (req.method === 'PUT' && path === '/rate') {
        const text = await readBody(req, 4096);
        let body: unknown;
        try {
          body = text === undefined ? undefined : JSON.parse(text);
        } catch {
          body = undefined;
        }
        const rate = (body as { rate?: unknown } | undefined)?.rate;
        if (typeof body !== 'object' || body === null || typeof rate !== 'number' || !Number.isFinite(rate) || rate < 0 || rate > MAX_RATE) {
          const got = text === undefined ? 'a body over 4 KiB' : typeof body === 'object' && body !== null ? JSON.stringify(rate ?? null) : `the body ${JSON.stringify(text)}`;
          const problem = { path: 'rate', message: `must be a number of ${tcp === undefined ? 'requests' : 'new connections'} per second from 0 (paused) to ${MAX_RATE}; got ${got}` };
          sendError(res, 400, 'LOADGEN_ERR_INVALID_RATE', 'invalid rate; nothing changed', { problems: [problem] });
          return;
        }
        const previous = load.rate;
        load.rate = rate;
        log.info(`rate changed by PUT /rate: ${previous} -> ${rate} ${unit}`);
        sendJson(res, 200, { rate, previous });
      } else if (req.method === 'GET' && path === '/healthz') {
        sendJson(res, 200, { status: 'pass' });
      } else {
        sendError(res, 404, 'LOADGEN_ERR_NOT_FOUND', `no route ${req.method} ${path}; see GET /metrics, GET /rate, PUT /rate, GET /healthz`);
      }
    })().catch((error: Error) => sendError(res, 500, 'LOADGEN_ERR_INTERNAL', error.message));
  });
  server.listen(command.metricsPort, command.metricsHost);
  try {
    await once(server, 'listening');
  } catch (error) {
    log.error(`cannot listen on ${hostPort(command.metricsHost, command.metricsPort)}: ${(error as Error).message}`);
    await load.close();
    process.exit(1);
  }
  const { port } = server.address() as AddressInfo;

  let lastSent = 0;
  const status = setInterval(() => {
    log.info(`status: ${sent} ${what} (${failed} ${failures}), ${((sent - lastSent) / (STATUS_EVERY_MS / 1000)).toFixed(1)} ${unit} over the last ${STATUS_EVERY_MS / 1000} s, target ${load.rate} ${unit}`);
    lastSent = sent;
  }, STATUS_EVERY_MS);

  onShutdown(async (signal) => {
    log.info(`${signal}: stopping, waiting for ${load.inFlight} ${what} in flight`);
    clearInterval(status);
    await load.close();
    server.close();
    server.closeAllConnections();
    log.info(`stopped after ${sent} ${what} (${failed} ${failures})`);
  });
  const metricsUrl = `http://${hostPort(command.metricsHost, port)}/metrics`;
  readyLine(
    'loadgen',
    tcp === undefined
      ? { metrics: metricsUrl, target: command.url, method: command.method, rate: load.rate, connections: command.connections }
      : { metrics: metricsUrl, target: command.url, rate: load.rate, connections: command.connections, payload: tcp.payloadBytes, hold: tcp.holdSeconds },
  );
}
