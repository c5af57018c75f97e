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

function latencyQueries(): DataqueryBuilder[] {
  const at = (side: string, bucket: string, firstRef: number): DataqueryBuilder[] =>
    quantiles.map((q, i) =>
      query(String.fromCharCode(firstRef + i), `histogram_quantile(${q}, sum by (le) (rate(${bucket}[$__rate_interval])))`, `${side} p${Math.round(q * 100)}`),
    );
  return [
    ...at('balancer', `${BALANCER_METRIC.requestDuration}_bucket{${BACKENDS}}`, 'A'.charCodeAt(0)),
    ...at('client', `${LOADGEN_METRIC.duration}_bucket`, 'D'.charCodeAt(0)),
  ];
}

/** buildDashboard is the "Load balancer lab" dashboard, made to be watched while an experiment runs. */
export function buildDashboard(): Dashboard {
  const backendVariable = new QueryVariableBuilder('backend')
    .label('Backend')
    .description('Backends as the balancer names them (the name key, else host:port)')
    .datasource(DATASOURCE)
    .query(`label_values(${BALANCER_METRIC.backendUp}, backend)`)
    .definition(`label_values(${BALANCER_METRIC.backendUp}, backend)`)
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
    .description(`The balancing algorithm in force and the engine that forwards requests (labels algorithm and engine of ${BALANCER_METRIC.info}). The algorithm changes with PUT /algorithm or a configuration reload; the engine only with a restart.`)
    .datasource(DATASOURCE)
    .gridPos({ h: 4, w: 4, x: 0, y: 0 })
    .withTarget(query('A', `max by (algorithm, engine) (${BALANCER_METRIC.info})`, '{{algorithm}} ({{engine}})').instant())
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
    'Requests answered per second, stacked by the backend that answered: the top edge is the total. A killed or ejected backend\'s band drops to 0 and the others widen; the total should not dip while a healthy backend remains.',
    10,
  )
    .gridPos({ h: 8, w: 10, x: 4, y: 0 })
    .unit('reqps')
    .fillOpacity(60)
    .stacking(new StackingConfigBuilder().mode(StackingMode.Normal))
    .withTarget(query('A', `sum by (backend) (rate(${BALANCER_METRIC.requests}{${BACKENDS}}[$__rate_interval]))`, '{{backend}}'));

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
        `sum by (backend) (rate(${BALANCER_METRIC.requests}{${BACKENDS}}[$__rate_interval])) / ignoring (backend) group_left sum(rate(${BALANCER_METRIC.requests}{backend!="none"}[$__rate_interval]))`,
        '{{backend}}',
      ),
    );

  const health = new statetimeline.PanelBuilder()
    .id(4)
    .title('Backend health')
    .description('Active health checks as the balancer sees them: up (green) after rise passes in a row, down (red) after fall failures in a row. A killed backend turns red within fall × interval and green again soon after it is back. Ejections by outlier detection are not shown here (see Retries, health-check failures, ejections).')
    .datasource(DATASOURCE)
    .span(12)
    .height(8)
    .withTarget(query('A', `max by (backend) (${BALANCER_METRIC.backendUp}{${BACKENDS}})`, '{{backend}}'))
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
    'Requests in flight from the balancer to each backend, sampled at every scrape. A slow or hanging backend piles up here first; least-connections, p2c and ewma steer new requests away from the tallest line.',
    12,
  )
    .unit('short')
    .decimals(0)
    .withTarget(query('A', `sum by (backend) (${BALANCER_METRIC.activeRequests}{${BACKENDS}})`, '{{backend}}'));

  const errors = graph(
    6,
    'Errors: balancer 5xx vs clients',
    'Solid: 5xx answers of the balancer per second by code (502 upstream failed, 503 no backend available, 504 upstream timeout, or a backend\'s own 5xx passed on). Dashed: what the load generator saw that was not 2xx, by code ("error": no answer at all). A failure that was retried on another backend shows in neither: while one backend is killed both should stay at 0.',
    8,
  )
    .unit('reqps')
    .withTarget(query('A', `sum by (code) (rate(${BALANCER_METRIC.requests}{code=~"5.."}[$__rate_interval]))`, 'balancer {{code}}'))
    .withTarget(query('B', `sum by (code) (rate(${LOADGEN_METRIC.requests}{code!~"2.."}[$__rate_interval]))`, 'client {{code}}'))
    .overrideByQuery('B', dashed);

  const latency = graph(
    7,
    'Latency p50 / p95 / p99: balancer vs client',
    'Quantiles estimated from the histograms (bucket bounds limit precision). Solid: at the balancer, from request received to response finished. Dashed: at the client, from request written to answer complete; the gap is the network and client-side queueing. Injected latency on one backend lifts p99 first; a try that hits timeouts.perTry and is retried shows as p99 near that timeout.',
    8,
  )
    .unit('s')
    .targets(latencyQueries())
    .overrideByRegexp('^client ', dashed);

  const loadgen = graph(
    8,
    'Load generator: target vs achieved',
    'Target: the rate the load generator is asked for (RATE, changed at run time with PUT /rate). Settled: requests that got an answer or failed, per second; 2xx: those answered with success. Settled below target means the lab cannot keep up: every connection is waiting on a slow answer.',
    8,
  )
    .unit('reqps')
    .withTarget(query('A', `sum(${LOADGEN_METRIC.targetRate})`, 'target'))
    .withTarget(query('B', `sum(rate(${LOADGEN_METRIC.requests}[$__rate_interval]))`, 'settled'))
    .withTarget(query('C', `sum(rate(${LOADGEN_METRIC.requests}{code=~"2.."}[$__rate_interval]))`, '2xx'))
    .overrideByQuery('A', dashed);

  const failures = graph(
    9,
    'Retries, health-check failures, ejections',
    'Retries/s: tries that failed on this backend (refused, reset, per-try timeout) and went to another one: failures the clients did not see. Health-check failures/s: one per check interval while a backend is down. Ejections (bars, right axis, per rate interval): outlier detection took the backend out after consecutive 5xx or failed tries.',
    12,
  )
    .unit('ops')
    .withTarget(query('A', `sum by (backend) (rate(${BALANCER_METRIC.retries}{${BACKENDS}}[$__rate_interval]))`, 'retries from {{backend}}'))
    .withTarget(query('B', `sum by (backend) (rate(${BALANCER_METRIC.healthChecks}{result="fail", ${BACKENDS}}[$__rate_interval]))`, 'health check failed {{backend}}'))
    .withTarget(query('C', `sum by (backend) (increase(${BALANCER_METRIC.ejections}{${BACKENDS}}[$__rate_interval]))`, 'ejections {{backend}}'))
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
    12,
  )
    .unit('none')
    .decimals(0)
    .lineInterpolation(LineInterpolation.StepAfter)
    .withTarget(query('A', `sum by (result) (${BALANCER_METRIC.configReloads})`, '{{result}}'))
    .overrideByName('success', [{ id: 'color', value: { mode: 'fixed', fixedColor: 'green' } }])
    .overrideByName('failure', [{ id: 'color', value: { mode: 'fixed', fixedColor: 'red' } }]);

  return new DashboardBuilder('Load balancer lab')
    .uid(DASHBOARD_UID)
    .description('The balancer, its backends and the load generator during an experiment: traffic split, errors, latency, health and reloads.')
    .tags(['load-balancer-lab'])
    .readonly()
    .refresh('5s')
    .time({ from: 'now-15m', to: 'now' })
    .timezone('browser')
    .tooltip(DashboardCursorSync.Crosshair)
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
    .build();
}

/** dashboardJson is the exact text of the committed dashboard file. */
export function dashboardJson(): string {
  return `${JSON.stringify(buildDashboard(), null, 2)}\n`;
}
