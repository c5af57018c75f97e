import path from 'node:path';
import type { DataSourceRef } from '@grafana/grafana-foundation-sdk/common';
import {
  BigValueColorMode,
  BigValueGraphMode,
  BigValueTextMode,
  GraphDrawStyle,
  LegendDisplayMode,
  LegendPlacement,
  LineInterpolation,
  ReduceDataOptionsBuilder,
  SortOrder,
  StackingConfigBuilder,
  StackingMode,
  TooltipDisplayMode,
  AxisPlacement,
  VizLegendOptionsBuilder,
  VizTooltipOptionsBuilder,
} from '@grafana/grafana-foundation-sdk/common';
import {
  DashboardBuilder,
  DashboardCursorSync,
  MappingType,
  QueryVariableBuilder,
  RowBuilder,
  ThresholdsConfigBuilder,
  ThresholdsMode,
  VariableRefresh,
  VariableSort,
  type Dashboard,
} from '@grafana/grafana-foundation-sdk/dashboard';
import { DataqueryBuilder } from '@grafana/grafana-foundation-sdk/prometheus';
import * as stat from '@grafana/grafana-foundation-sdk/stat';
import * as statetimeline from '@grafana/grafana-foundation-sdk/statetimeline';
import * as timeseries from '@grafana/grafana-foundation-sdk/timeseries';
import { BALANCER_METRIC, LOADGEN_METRIC } from '../../common/src/metric-names.js';

/** The provisioned Prometheus datasource (grafana/provisioning/datasources/prometheus.yaml). */
export const DATASOURCE: DataSourceRef = { type: 'prometheus', uid: 'prometheus' };

export const DASHBOARD_UID = 'load-balancer-lab';

/** Where `npm run dashboard` writes the JSON that Grafana's file provider reads. */
export const DASHBOARD_FILE = path.resolve(import.meta.dirname, '..', 'dashboards', `${DASHBOARD_UID}.json`);

/** Per-backend series keep to the backends picked in the `backend` variable. */
const BACKENDS = 'backend=~"$backend"';

/**
 * Series of the balancer's listeners keep to those picked in the `listener` variable. A file without
 * `listeners:` has no listener label: the variable has no values, stays at All (`.*`), and `.*` matches
 * the missing label, so the dashboard reads such a balancer as it always did. Not for the metrics of
 * the whole balancer (lb_workers, lb_worker_restarts_total, lb_config_reloads_total), which never carry it.
 */
const LISTENERS = 'listener=~"$listener"';

/** Both: the series of the picked backends of the picked listeners. */
const PICKED = `${BACKENDS}, ${LISTENERS}`;

/**
 * named adds the label `name` for a legend: "<listener><separator><label>" where the series has a
 * listener label (a file with `listeners:`), the plain label value where it has none, so that a file
 * without listeners keeps the names it always showed. A legend cannot do it: Grafana writes a missing
 * label's name in its place ("listener/b1"). For panels that keep listeners apart: each listener checks,
 * ejects and balances its backends itself, also when two listeners name a backend alike.
 */
function named(expr: string, label = 'backend', separator = '/'): string {
  return `label_replace(label_join(${expr}, "name", "${separator}", "listener", "${label}"), "name", "$1", "name", "${separator}(.*)")`;
}

function query(refId: string, expr: string, legend: string): DataqueryBuilder {
  return new DataqueryBuilder().datasource(DATASOURCE).refId(refId).expr(expr).legendFormat(legend);
}

const legend = (): VizLegendOptionsBuilder =>
  new VizLegendOptionsBuilder().showLegend(true).displayMode(LegendDisplayMode.List).placement(LegendPlacement.Bottom);

const tooltip = (): VizTooltipOptionsBuilder => new VizTooltipOptionsBuilder().mode(TooltipDisplayMode.Multi).sort(SortOrder.Descending);

/** A time series panel with what every graph here shares: datasource, legend, tooltip, size. */
function graph(id: number, title: string, description: string, width: number): timeseries.PanelBuilder {
  return new timeseries.PanelBuilder()
    .id(id)
    .title(title)
    .description(description)
    .datasource(DATASOURCE)
    .span(width)
    .height(8)
    .legend(legend())
    .tooltip(tooltip())
    .lineWidth(1)
    .fillOpacity(10)
    .min(0);
}

/** The override that draws a series dashed: the client's side, or a target beside what was achieved. */
const dashed = [{ id: 'custom.lineStyle', value: { fill: 'dash', dash: [10, 10] } }];

const quantiles = [0.5, 0.95, 0.99];

/** p50, p95 and p99 of a histogram at the balancer (refIds A-C) and of one at the client (D-F). */
function quantileQueries(balancerBuckets: string, clientBuckets: string): DataqueryBuilder[] {
  const at = (side: string, bucket: string, firstRef: number): DataqueryBuilder[] =>
    quantiles.map((q, i) =>
      query(String.fromCharCode(firstRef + i), `histogram_quantile(${q}, sum by (le) (rate(${bucket}[$__rate_interval])))`, `${side} p${Math.round(q * 100)}`),
    );
  return [...at('balancer', balancerBuckets, 'A'.charCodeAt(0)), ...at('client', clientBuckets, 'D'.charCodeAt(0))];
}

/**
 * A loadgen in TCP mode (a tcp:// target) serves the same loadgen_target_rate, in new connections/s,
 * and loadgen_tcp_connections_total once a connection has settled; an HTTP one never has the latter.
 */
const tcpLoadgens = (expr: string): string => `(${expr} and on (job, instance) ${LOADGEN_METRIC.tcpConnections})`;
const httpLoadgens = (expr: string): string => `(${expr} unless on (job, instance) ${LOADGEN_METRIC.tcpConnections})`;

/** buildDashboard is the "Load balancer lab" dashboard, made to be watched while an experiment runs. */
export function buildDashboard(): Dashboard {
  const listenerVariable = new QueryVariableBuilder('listener')
    .label('Listener')
    .description('The balancer\'s listeners, by the name they have under listeners: in its file. A file without listeners: has one listener and no listener label: the list is empty and All shows everything.')
    .datasource(DATASOURCE)
    .query(`label_values(${BALANCER_METRIC.info}, listener)`)
    .definition(`label_values(${BALANCER_METRIC.info}, listener)`)
    .refresh(VariableRefresh.OnTimeRangeChanged)
    .sort(VariableSort.NaturalAsc)
    .multi(true)
    .includeAll(true)
    // "All" matches every listener, and the series of a balancer without listeners: (no listener label).
    .allValue('.*')
    .current({ selected: true, text: ['All'], value: ['$__all'] });

  const backendVariable = new QueryVariableBuilder('backend')
    .label('Backend')
    .description('Backends of the picked listeners as the balancer names them (the name key, else host:port)')
    .datasource(DATASOURCE)
    .query(`label_values(${BALANCER_METRIC.backendUp}{${LISTENERS}}, backend)`)
    .definition(`label_values(${BALANCER_METRIC.backendUp}{${LISTENERS}}, backend)`)
    .refresh(VariableRefresh.OnTimeRangeChanged)
    .sort(VariableSort.NaturalAsc)
    .multi(true)
    .includeAll(true)
    // "All" matches every backend, also one found by DNS discovery after the options were loaded.
    .allValue('.*')
    .current({ selected: true, text: ['All'], value: ['$__all'] });

  const algorithm = new stat.PanelBuilder()
    .id(1)
    .title('Algorithm')
    .description(`The balancing algorithm in force and the engine that forwards requests (labels algorithm and engine of ${BALANCER_METRIC.info}), one per listener in a file with listeners: ("web: round-robin"), since each listener has its own. The algorithm changes with PUT /algorithm (the first listener), PUT /listeners/<name>/algorithm or a configuration reload; the engine only with a restart.`)
    .datasource(DATASOURCE)
    .gridPos({ h: 4, w: 4, x: 0, y: 0 })
    .withTarget(query('A', named(`max by (listener, algorithm, engine) (${BALANCER_METRIC.info}{${LISTENERS}})`, 'algorithm', ': '), '{{name}} ({{engine}})').instant())
    .reduceOptions(new ReduceDataOptionsBuilder().calcs(['lastNotNull']).values(false))
    .textMode(BigValueTextMode.Name)
    .colorMode(BigValueColorMode.None)
    .graphMode(BigValueGraphMode.None);

  const workers = new stat.PanelBuilder()
    .id(11)
    .title('Workers')
    .description(`Serving: traffic workers serving now (${BALANCER_METRIC.workers}). An upgrade (SIGUSR2 or POST /workers/restart) keeps it at the configured count: the fresh workers serve before the old ones drain, and draining ones are not counted (while the fresh ones start it may read more for a moment). A worker that dies lowers it until its replacement listens, often too briefly for a scrape to see. Restarts: workers replaced after they died, per rate interval (increase of ${BALANCER_METRIC.workerRestarts}); a crash shows as a bump in its sparkline, an upgrade counts none.`)
    .datasource(DATASOURCE)
    .gridPos({ h: 4, w: 4, x: 0, y: 4 })
    .withTarget(query('A', `sum(${BALANCER_METRIC.workers})`, 'serving'))
    .withTarget(query('B', `sum(increase(${BALANCER_METRIC.workerRestarts}[$__rate_interval]))`, 'restarts'))
    .reduceOptions(new ReduceDataOptionsBuilder().calcs(['lastNotNull']).values(false))
    .textMode(BigValueTextMode.ValueAndName)
    .colorMode(BigValueColorMode.Value)
    .graphMode(BigValueGraphMode.Area)
    .unit('none')
    .decimals(0)
    .min(0)
    // No worker serving is red; so is a restart in the last rate interval (increase extrapolates, hence 0.5).
    .overrideByQuery('A', [{ id: 'thresholds', value: { mode: ThresholdsMode.Absolute, steps: [{ value: null, color: 'red' }, { value: 1, color: 'green' }] } }])
    .overrideByQuery('B', [{ id: 'thresholds', value: { mode: ThresholdsMode.Absolute, steps: [{ value: null, color: 'green' }, { value: 0.5, color: 'red' }] } }]);

  const requests = graph(
    2,
    'Requests/s by backend',
    'Requests answered per second, stacked by the backend that answered (over the picked http listeners: a backend behind two is one band): the top edge is the total. A killed or ejected backend\'s band drops to 0 and the others widen; the total should not dip while a healthy backend remains.',
    10,
  )
    .gridPos({ h: 8, w: 10, x: 4, y: 0 })
    .unit('reqps')
    .fillOpacity(60)
    .stacking(new StackingConfigBuilder().mode(StackingMode.Normal))
    .withTarget(query('A', `sum by (backend) (rate(${BALANCER_METRIC.requests}{${PICKED}}[$__rate_interval]))`, '{{backend}}'));

  const share = graph(
    3,
    'Share of traffic',
    'Each backend\'s share of the requests the backends answered. With equal weights and round-robin the lines sit together at 1/N; a weight change, slow start, drain or ejection moves them apart; a dead backend goes to 0 % and the others rise.',
    10,
  )
    .gridPos({ h: 8, w: 10, x: 14, y: 0 })
    .unit('percentunit')
    .max(1)
    .withTarget(
      query(
        'A',
        `sum by (backend) (rate(${BALANCER_METRIC.requests}{${PICKED}}[$__rate_interval])) / ignoring (backend) group_left sum(rate(${BALANCER_METRIC.requests}{backend!="none", ${LISTENERS}}[$__rate_interval]))`,
        '{{backend}}',
      ),
    );

  const health = new statetimeline.PanelBuilder()
    .id(4)
    .title('Backend health')
    .description('Active health checks as the balancer sees them: up (green) after rise passes in a row, down (red) after fall failures in a row. In a file with listeners: one row per listener and backend ("echo/b1"): each listener checks its own backends (an http listener GETs the health path, a tcp listener connects). A killed backend turns red within fall × interval, on every listener it serves, and green again soon after it is back. Ejections by outlier detection are not shown here (see Retries, health-check failures, ejections).')
    .datasource(DATASOURCE)
    .span(12)
    .height(8)
    .withTarget(query('A', named(`max by (listener, backend) (${BALANCER_METRIC.backendUp}{${PICKED}})`), '{{name}}'))
    .mappings([
      {
        type: MappingType.ValueToText,
        options: {
          '1': { text: 'up', color: 'green', index: 0 },
          '0': { text: 'down', color: 'red', index: 1 },
        },
      },
    ])
    .thresholds(
      new ThresholdsConfigBuilder().mode(ThresholdsMode.Absolute).steps([
        { value: null, color: 'red' },
        { value: 1, color: 'green' },
      ]),
    )
    .mergeValues(true)
    .rowHeight(0.8)
    .legend(legend())
    .tooltip(tooltip());

  const active = graph(
    5,
    'Active requests by backend',
    'Requests in flight from the balancer to each backend, sampled at every scrape (http listeners only: the open connections of tcp listeners are on Open connections by backend, in the L4 row). A slow or hanging backend piles up here first; least-connections, p2c and ewma steer new requests away from the tallest line.',
    12,
  )
    .unit('short')
    .decimals(0)
    // lb_backend_active_requests of a tcp listener counts its open connections: left out by the listener's tcp gauge.
    .withTarget(query('A', `sum by (backend) (${BALANCER_METRIC.activeRequests}{${PICKED}} unless on (listener) ${BALANCER_METRIC.tcpActiveConnections}{${LISTENERS}})`, '{{backend}}'));

  const errors = graph(
    6,
    'Errors: balancer 5xx vs clients',
    'Solid: 5xx answers of the balancer per second by code (502 upstream failed, 503 no backend available, 504 upstream timeout, or a backend\'s own 5xx passed on). Dashed: what the load generator saw that was not 2xx, by code ("error": no answer at all). A failure that was retried on another backend shows in neither: while one backend is killed both should stay at 0.',
    8,
  )
    .unit('reqps')
    .withTarget(query('A', `sum by (code) (rate(${BALANCER_METRIC.requests}{code=~"5..", ${LISTENERS}}[$__rate_interval]))`, 'balancer {{code}}'))
    .withTarget(query('B', `sum by (code) (rate(${LOADGEN_METRIC.requests}{code!~"2.."}[$__rate_interval]))`, 'client {{code}}'))
    .overrideByQuery('B', dashed);

  const latency = graph(
    7,
    'Latency p50 / p95 / p99: balancer vs client',
    'Quantiles estimated from the histograms (bucket bounds limit precision). Solid: at the balancer, from request received to response finished. Dashed: at the client, from request written to answer complete; the gap is the network and client-side queueing. Injected latency on one backend lifts p99 first; a try that hits timeouts.perTry and is retried shows as p99 near that timeout.',
    8,
  )
    .unit('s')
    .targets(quantileQueries(`${BALANCER_METRIC.requestDuration}_bucket{${PICKED}}`, `${LOADGEN_METRIC.duration}_bucket`))
    .overrideByRegexp('^client ', dashed);

  const loadgen = graph(
    8,
    'Load generator: target vs achieved',
    'Target: the rate the HTTP load generators are asked for (RATE, changed at run time with PUT /rate; a TCP-mode loadgen\'s target, in new connections/s, is on TCP clients in the L4 row). Settled: requests that got an answer or failed, per second; 2xx: those answered with success. Settled below target means the lab cannot keep up: every connection is waiting on a slow answer.',
    8,
  )
    .unit('reqps')
    .withTarget(query('A', `sum${httpLoadgens(LOADGEN_METRIC.targetRate)}`, 'target'))
    .withTarget(query('B', `sum(rate(${LOADGEN_METRIC.requests}[$__rate_interval]))`, 'settled'))
    .withTarget(query('C', `sum(rate(${LOADGEN_METRIC.requests}{code=~"2.."}[$__rate_interval]))`, '2xx'))
    .overrideByQuery('A', dashed);

  const failures = graph(
    9,
    'Retries, health-check failures, ejections',
    'Retries/s: tries that failed on this backend (refused, reset, per-try timeout) and went to another one: failures the clients did not see (at L4 a failed connect is on Connect failures/s instead). Health-check failures/s: one per check interval while a backend is down, per listener that checks it ("echo/b1" in a file with listeners:). Ejections (bars, right axis, per rate interval): outlier detection took the backend out of that listener after consecutive 5xx or failed tries.',
    8,
  )
    .unit('ops')
    .withTarget(query('A', `sum by (backend) (rate(${BALANCER_METRIC.retries}{${PICKED}}[$__rate_interval]))`, 'retries from {{backend}}'))
    .withTarget(query('B', named(`sum by (listener, backend) (rate(${BALANCER_METRIC.healthChecks}{result="fail", ${PICKED}}[$__rate_interval]))`), 'health check failed {{name}}'))
    .withTarget(query('C', named(`sum by (listener, backend) (increase(${BALANCER_METRIC.ejections}{${PICKED}}[$__rate_interval]))`), 'ejections {{name}}'))
    .overrideByQuery('C', [
      { id: 'custom.drawStyle', value: GraphDrawStyle.Bars },
      { id: 'custom.axisPlacement', value: AxisPlacement.Right },
      { id: 'custom.axisLabel', value: 'ejections' },
      { id: 'custom.fillOpacity', value: 80 },
      { id: 'unit', value: 'none' },
    ]);

  const reloads = graph(
    10,
    'Configuration reloads',
    'Reloads since the balancer started (SIGHUP, a change to the file, POST /config/reload, PUT /config), by result. A step in success: a new configuration is in force. A step in failure: one was refused and the previous one still runs; the balancer log lists every problem.',
    8,
  )
    .unit('none')
    .decimals(0)
    .lineInterpolation(LineInterpolation.StepAfter)
    .withTarget(query('A', `sum by (result) (${BALANCER_METRIC.configReloads})`, '{{result}}'))
    .overrideByName('success', [{ id: 'color', value: { mode: 'fixed', fixedColor: 'green' } }])
    .overrideByName('failure', [{ id: 'color', value: { mode: 'fixed', fixedColor: 'red' } }]);

  const clientErrors = graph(
    19,
    'Client errors/s by reason',
    'Clients a listener refused before (or instead of) their request reaching a backend, per second, by reason: header_timeout (408: a head not complete within timeouts.clientHeader, a slowloris or a connection that sent nothing), headers_too_large (431, limits.maxHeaderBytes), body_too_large (413, limits.maxBodyBytes), bad_request (400: malformed, smuggling-shaped, or HTTP/1.1 without Host), overloaded (503 over limits.maxConnections; a tcp listener closes such a connection at once). No backend sees any of these. header_timeout rising while traffic does not: slow or hostile clients holding connections open.',
    8,
  )
    .unit('reqps')
    .withTarget(query('A', named(`sum by (listener, reason) (rate(${BALANCER_METRIC.clientErrors}{${LISTENERS}}[$__rate_interval]))`, 'reason', ': '), '{{name}}'));

  // L4 (TCP): the tcp listeners and the TCP-mode loadgen. A backend killed at L4 breaks the connections
  // open on it at once (clients see them reset), and new connections fail over: each connect to it
  // fails and is retried on another backend until health checks take it out.
  const l4Row = new RowBuilder('L4 (TCP)').id(12).collapsed(false);

  const tcpConnections = graph(
    13,
    'Connections/s by backend',
    'Client connections of the tcp listeners relayed per second (result="ok"), stacked by the backend that took them: the top edge is the total. A killed backend\'s band drops to 0 at once and the others widen: its new connections fail over (see Connect failures/s), so the total should not dip while a healthy backend remains. A connection is counted when it is relayed, however long it then stays open.',
    8,
  )
    .unit('cps')
    .fillOpacity(60)
    .stacking(new StackingConfigBuilder().mode(StackingMode.Normal))
    .withTarget(query('A', `sum by (backend) (rate(${BALANCER_METRIC.tcpConnections}{result="ok", ${PICKED}}[$__rate_interval]))`, '{{backend}}'));

  const tcpOpen = graph(
    14,
    'Open connections by backend',
    'Connections the tcp listeners relay now, by backend, sampled at every scrape (summed over the workers). Long-held connections pile up here; least-connections picks the lowest line. When a backend is killed its line falls to 0 at once: the connections open on it break (the clients see them reset) and are not moved; new ones go to the others. A drained or removed backend keeps its connections until they end or timeouts.drain closes them.',
    8,
  )
    .unit('short')
    .decimals(0)
    .withTarget(query('A', `sum by (backend) (${BALANCER_METRIC.tcpActiveConnections}{${PICKED}})`, '{{backend}}'));

  const tcpBytes = graph(
    15,
    'Bytes/s in and out',
    'Bytes the tcp listeners relayed per second, for the picked backends. In: from the clients to the backends; out: from the backends to the clients (an echo backend sends back what it got, plus its greeting). A connection\'s bytes are counted when it closes, so long-held connections arrive as steps at their end, and those broken by a killed backend count what they had relayed until then.',
    8,
  )
    .unit('Bps')
    .withTarget(query('A', `sum(rate(${BALANCER_METRIC.tcpBytes}{direction="in", ${PICKED}}[$__rate_interval]))`, 'in: client → backend'))
    .withTarget(query('B', `sum(rate(${BALANCER_METRIC.tcpBytes}{direction="out", ${PICKED}}[$__rate_interval]))`, 'out: backend → client'));

  const tcpFailures = graph(
    16,
    'Connect failures/s',
    'Connect failed: connects to this backend that were refused or timed out (timeouts.connect), per second; the client was retried on another backend (retries.attempts) and, when one took it, saw nothing of it. A killed backend shows a burst here until health checks (or outlier detection) take it out, then 0. No backend: client connections closed without a backend, because none was available or every try failed: these the clients do see, as resets.',
    8,
  )
    .unit('cps')
    .withTarget(query('A', `sum by (backend) (rate(${BALANCER_METRIC.tcpConnections}{result="connect_failed", ${PICKED}}[$__rate_interval]))`, 'connect failed {{backend}}'))
    .withTarget(query('B', `sum(rate(${BALANCER_METRIC.tcpConnections}{result="no_backend", ${LISTENERS}}[$__rate_interval]))`, 'no backend'))
    .overrideByName('no backend', [{ id: 'color', value: { mode: 'fixed', fixedColor: 'red' } }]);

  const tcpClients = graph(
    17,
    'TCP clients: target vs settled, by result',
    'What the TCP-mode load generators saw, per second: connections settled by result. ok: greeting read, the payload echoed back intact, closed; refused, reset (closed before the echo was complete), timeout, mismatch (the echo or greeting was not what was sent), other. Target (dashed): new connections/s asked for. A killed backend shows as a burst of reset, one per connection it held; new connections keep succeeding on the others.',
    8,
  )
    .unit('cps')
    .withTarget(query('A', `sum${tcpLoadgens(LOADGEN_METRIC.targetRate)}`, 'target'))
    .withTarget(query('B', `sum by (result) (rate(${LOADGEN_METRIC.tcpConnections}[$__rate_interval]))`, '{{result}}'))
    .overrideByQuery('A', dashed)
    .overrideByName('ok', [{ id: 'color', value: { mode: 'fixed', fixedColor: 'green' } }]);

  const tcpDuration = graph(
    18,
    'Connection duration p50 / p95 / p99: balancer vs client',
    'How long relayed connections lasted, from the histograms (bucket bounds limit precision). Solid: at the balancer, from the client\'s connection to its close. Dashed: at the client, from opening the connection to its last echo (ok connections only). Held connections (the loadgen\'s HOLD) sit at the hold time; connections broken by a killed backend end early and are left out at the client.',
    8,
  )
    .unit('s')
    .targets(quantileQueries(`${BALANCER_METRIC.tcpConnectionDuration}_bucket{${PICKED}}`, `${LOADGEN_METRIC.tcpDuration}_bucket`))
    .overrideByRegexp('^client ', dashed);

  return new DashboardBuilder('Load balancer lab')
    .uid(DASHBOARD_UID)
    .description('The balancer, its backends and the load generators during an experiment: traffic split, errors, latency, health and reloads, and L4 (TCP) connections.')
    .tags(['load-balancer-lab'])
    .readonly()
    .refresh('5s')
    .time({ from: 'now-15m', to: 'now' })
    .timezone('browser')
    .tooltip(DashboardCursorSync.Crosshair)
    .withVariable(listenerVariable)
    .withVariable(backendVariable)
    // Rows of 24 grid units; the builder places panels left to right. The first row is placed by hand:
    // Algorithm and Workers share its first 4 units, one above the other, which the builder cannot do.
    .withPanel(algorithm)
    .withPanel(workers)
    .withPanel(requests)
    .withPanel(share)
    .withPanel(health)
    .withPanel(active)
    .withPanel(errors)
    .withPanel(latency)
    .withPanel(loadgen)
    .withPanel(failures)
    .withPanel(reloads)
    .withPanel(clientErrors)
    // An expanded row: its panels follow it on the dashboard (a collapsed row would hold them).
    .withRow(l4Row)
    .withPanel(tcpConnections)
    .withPanel(tcpOpen)
    .withPanel(tcpBytes)
    .withPanel(tcpFailures)
    .withPanel(tcpClients)
    .withPanel(tcpDuration)
    .build();
}

/** dashboardJson is the exact text of the committed dashboard file. */
export function dashboardJson(): string {
  return `${JSON.stringify(buildDashboard(), null, 2)}\n`;
}
