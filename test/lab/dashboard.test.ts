import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { load as parseYaml } from 'js-yaml';
import { DASHBOARD_FILE, dashboardJson } from '../../grafana/src/dashboard.js';
import { BALANCER_METRIC, LOADGEN_METRIC } from '../../common/src/metric-names.js';
import { findBinary, freePort, repoRoot, startService } from '../helpers/processes.js';
import { restartablePorts, startTcpBackend, type TcpBackend } from '../helpers/tcp.js';
import { startBalancer, type RunningBalancer } from '../helpers/lab.js';
import { getJson, metricValue, sleep, waitFor } from '../helpers/http.js';
import { startPrometheus, type PromSample } from '../helpers/prometheus.js';

interface DatasourceRef {
  type?: string;
  uid?: string;
}
interface Target {
  refId?: string;
  expr?: string;
  datasource?: DatasourceRef;
}
interface Panel {
  id?: unknown;
  type?: string;
  title?: string;
  collapsed?: boolean;
  datasource?: DatasourceRef;
  targets?: Target[];
  /** the panels of a collapsed row */
  panels?: Panel[];
}
interface Variable {
  name: string;
  type: string;
  query?: unknown;
  allValue?: string;
  includeAll?: boolean;
  multi?: boolean;
  datasource?: DatasourceRef;
}
interface DashboardJson {
  id?: unknown;
  uid?: unknown;
  title?: unknown;
  schemaVersion?: unknown;
  panels?: Panel[];
  templating?: { list?: Variable[] };
}

const read = (file: string): string => readFileSync(path.join(repoRoot, file), 'utf8');
const committed = (): DashboardJson => JSON.parse(readFileSync(DASHBOARD_FILE, 'utf8')) as DashboardJson;

/** Every panel that can hold queries: rows only group them. */
const queryPanels = (dashboard: DashboardJson): Panel[] =>
  (dashboard.panels ?? []).flatMap((panel) => [panel, ...(panel.panels ?? [])]).filter((panel) => panel.type !== 'row');

function provisionedDatasourceUid(): string {
  const file = parseYaml(read('grafana/provisioning/datasources/prometheus.yaml')) as { datasources?: { type?: string; uid?: string; url?: string }[] };
  const prometheus = (file.datasources ?? []).filter((ds) => ds.type === 'prometheus');
  assert.equal(prometheus.length, 1, 'one provisioned Prometheus datasource');
  assert.ok(prometheus[0]!.uid, 'the provisioned datasource has a uid');
  return prometheus[0]!.uid;
}

test('the committed dashboard JSON is what grafana/src/dashboard.ts generates (regenerate with npm run dashboard)', () => {
  assert.ok(existsSync(DASHBOARD_FILE), `${DASHBOARD_FILE} is missing: run npm run dashboard`);
  assert.equal(readFileSync(DASHBOARD_FILE, 'utf8'), dashboardJson(), 'grafana/dashboards/load-balancer-lab.json was edited by hand or not regenerated: run npm run dashboard');
});

test('the dashboard has what Grafana provisioning needs, with the provisioned datasource everywhere', () => {
  const dashboard = committed();
  assert.equal(typeof dashboard.uid, 'string');
  assert.match(dashboard.uid as string, /^[A-Za-z0-9_-]{1,40}$/, 'uid: at most 40 letters, digits, - and _');
  assert.equal(typeof dashboard.title, 'string');
  assert.ok((dashboard.title as string).length > 0, 'title');
  assert.equal(typeof dashboard.schemaVersion, 'number', 'schemaVersion is a number');
  assert.ok(dashboard.id === undefined || dashboard.id === null, 'no instance-specific dashboard id in a provisioned file');

  const uid = provisionedDatasourceUid();
  const panels = queryPanels(dashboard);
  assert.ok(panels.length > 0, 'the dashboard has panels');
  const ids = panels.map((panel) => panel.id);
  for (const id of ids) assert.equal(typeof id, 'number', `panel id ${JSON.stringify(id)} is a number`);
  assert.equal(new Set(ids).size, ids.length, `panel ids are unique: ${ids.join(', ')}`);
  for (const panel of panels) {
    const name = `panel ${String(panel.id)} "${panel.title}"`;
    assert.ok(panel.title, `${name} has a title`);
    assert.equal(panel.datasource?.uid, uid, `${name}: datasource uid`);
    const targets = panel.targets ?? [];
    assert.ok(targets.some((target) => typeof target.expr === 'string' && target.expr.trim() !== ''), `${name} has a target with an expr`);
    const refIds = targets.map((target) => target.refId);
    assert.equal(new Set(refIds).size, refIds.length, `${name}: refIds are unique`);
    for (const target of targets) {
      assert.equal(target.datasource?.uid, uid, `${name} target ${target.refId}: datasource uid`);
      // Range windows follow the scrape interval Grafana knows of, never a fixed length that may hold under two samples.
      for (const [window] of (target.expr ?? '').matchAll(/\[[^\]]*\]/g)) assert.equal(window, '[$__rate_interval]', `${name} target ${target.refId}: ${target.expr}`);
    }
  }
  for (const variable of dashboard.templating?.list ?? []) {
    if (variable.type === 'query') assert.equal(variable.datasource?.uid, uid, `variable ${variable.name}: datasource uid`);
  }

  // The dashboards provider reads the folder that the documented home dashboard path is in.
  const providers = (parseYaml(read('grafana/provisioning/dashboards/lab.yaml')) as { providers?: { type?: string; options?: { path?: string } }[] }).providers ?? [];
  assert.equal(providers.length, 1, 'one dashboards provider');
  assert.equal(providers[0]!.type, 'file');
  const providerPath = providers[0]!.options?.path?.replace(/\/+$/, '');
  assert.ok(providerPath, 'the provider has options.path');
  const readme = read('grafana/README.md');
  const home = readme.match(/GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH:\s*(\S+)/)?.[1];
  assert.ok(home, 'grafana/README.md documents GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH');
  assert.equal(path.posix.dirname(home), providerPath, 'the home dashboard lies in the folder the provider reads');
  assert.equal(path.posix.basename(home), path.basename(DASHBOARD_FILE), 'the home dashboard is the generated file');
  assert.ok(readme.includes(`./grafana/dashboards:${providerPath}`), `grafana/README.md mounts ./grafana/dashboards at ${providerPath}`);
});

/** The panels of a row: held in it when collapsed, else those after it up to the next row. */
function rowPanels(dashboard: DashboardJson, title: string): Panel[] | undefined {
  const panels = dashboard.panels ?? [];
  const at = panels.findIndex((panel) => panel.type === 'row' && panel.title === title);
  if (at === -1) return undefined;
  const row = panels[at]!;
  if (row.collapsed) return row.panels ?? [];
  const next = panels.findIndex((panel, i) => i > at && panel.type === 'row');
  return panels.slice(at + 1, next === -1 ? undefined : next);
}

const exprsOf = (panel: Panel): string[] => (panel.targets ?? []).map((target) => target.expr ?? '');

/** The L4 row's panels, each with what its queries must read. */
const L4_PANELS: { title: string; reads: RegExp[] }[] = [
  { title: 'Connections/s by backend', reads: [/^sum by \(backend\) \(rate\(lb_tcp_connections_total\{result="ok", backend=~"\$backend", listener=~"\$listener"\}\[\$__rate_interval\]\)\)$/] },
  { title: 'Open connections by backend', reads: [/^sum by \(backend\) \(lb_tcp_active_connections\{backend=~"\$backend", listener=~"\$listener"\}\)$/] },
  { title: 'Bytes/s in and out', reads: [/lb_tcp_bytes_total\{direction="in", backend=~"\$backend"/, /lb_tcp_bytes_total\{direction="out", backend=~"\$backend"/] },
  { title: 'Connect failures/s', reads: [/^sum by \(backend\) \(rate\(lb_tcp_connections_total\{result="connect_failed", backend=~"\$backend"/, /lb_tcp_connections_total\{result="no_backend", listener=~"\$listener"\}/] },
  { title: 'TCP clients: target vs settled, by result', reads: [/^sum by \(result\) \(rate\(loadgen_tcp_connections_total\[\$__rate_interval\]\)\)$/, /loadgen_target_rate and on \(job, instance\) loadgen_tcp_connections_total/] },
  { title: 'Connection duration p50 / p95 / p99: balancer vs client', reads: [/lb_tcp_connection_duration_seconds_bucket\{backend=~"\$backend"/, /loadgen_tcp_connection_duration_seconds_bucket/] },
];

/** Metrics of the whole balancer: they never carry a listener label. */
const WHOLE_BALANCER: readonly string[] = [BALANCER_METRIC.workers, BALANCER_METRIC.workerRestarts, BALANCER_METRIC.configReloads];

test('the dashboard has an "L4 (TCP)" row: connections, open connections, bytes, connect failures, what the TCP clients saw, durations', () => {
  const dashboard = committed();
  const panels = rowPanels(dashboard, 'L4 (TCP)');
  assert.ok(panels, `no row "L4 (TCP)" among ${JSON.stringify((dashboard.panels ?? []).filter((p) => p.type === 'row').map((p) => p.title))}`);
  assert.deepEqual(panels.map((panel) => panel.title), L4_PANELS.map((panel) => panel.title), 'the panels of the L4 (TCP) row');
  for (const { title, reads } of L4_PANELS) {
    const exprs = exprsOf(panels.find((panel) => panel.title === title)!);
    for (const read of reads) assert.ok(exprs.some((expr) => read.test(expr)), `"${title}": no query matches ${read}: ${JSON.stringify(exprs)}`);
  }
  // The TCP loadgen's target is on the L4 row only: the HTTP one leaves it out.
  const http = queryPanels(dashboard).find((panel) => panel.title === 'Load generator: target vs achieved');
  assert.ok(http && exprsOf(http).includes(`sum(${LOADGEN_METRIC.targetRate} unless on (job, instance) ${LOADGEN_METRIC.tcpConnections})`), 'the HTTP loadgen panel leaves the TCP loadgens\' target out');
});

test('every query of a listener\'s lb_ metric keeps to the listener variable; whole-balancer metrics have no listener', () => {
  const dashboard = committed();
  const variables = dashboard.templating?.list ?? [];
  assert.deepEqual(variables.map((variable) => variable.name), ['listener', 'backend'], 'variables, in the order they depend on each other');
  const listener = variables[0]!;
  assert.equal(listener.query, `label_values(${BALANCER_METRIC.info}, listener)`);
  // All must match a balancer without listeners: too, whose series have no listener label: ".*" matches the empty value.
  assert.equal(listener.allValue, '.*');
  assert.ok(listener.includeAll && listener.multi, 'listener: multi-value with All');
  assert.match(String(variables[1]!.query), /^label_values\(lb_backend_up\{listener=~"\$listener"\}, backend\)$/);

  const problems: string[] = [];
  for (const panel of queryPanels(dashboard)) {
    for (const expr of exprsOf(panel)) {
      for (const match of expr.matchAll(/\b(lb_\w+)(\{[^}]*\})?/g)) {
        const [, metric, selector = ''] = match;
        const whole = WHOLE_BALANCER.includes(metric!);
        if (whole && selector.includes('listener')) problems.push(`"${panel.title}": ${metric} has no listener label: ${expr}`);
        if (!whole && !selector.includes('listener=~"$listener"')) problems.push(`"${panel.title}": ${metric} without listener=~"$listener": ${expr}`);
      }
    }
  }
  assert.deepEqual(problems, []);
});

/** PromQL regex for a multi-value selection, escaped as Grafana's Prometheus datasource does. */
const regexOf = (values: readonly string[]): string => `(${values.map((value) => value.replace(/[\\^$*+?.()|[\]{}]/g, (c) => `\\\\${c}`)).join('|')})`;

/**
 * interpolate replaces $name, ${name} and [[name]] as Grafana does before it sends a query; an unknown variable throws.
 * `$1` is label_replace's, not a variable: Grafana leaves a name it does not know as it is, and no variable is a number.
 */
function interpolate(expr: string, values: Record<string, string>): string {
  return expr.replace(/\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|\$(?!\d+\b)(\w+)/g, (match, braced?: string, bracketed?: string, plain?: string) => {
    const value = values[braced ?? bracketed ?? plain ?? ''];
    if (value === undefined) throw new Error(`no test value for ${match} in ${expr}`);
    return value;
  });
}

const prometheusBinary = findBinary('prometheus');
const inCi = process.env.CI === 'true';
const hostPort = (url: string): string => new URL(url).host;
/** The variables Grafana itself defines, as the test fills them in. */
const builtinVariables: Readonly<Record<string, string>> = { __rate_interval: '15s', __interval: '5s', __range: '5m', __range_s: '300' };

/** The one panel query of the dashboard that reads this metric, with Grafana's own variables filled in. */
function panelQueryOn(dashboard: DashboardJson, metric: string): string {
  const reads = new RegExp(`(?<![\\w:])${metric}(?![\\w:])`);
  const exprs = queryPanels(dashboard).flatMap((panel) => (panel.targets ?? []).map((target) => target.expr ?? '')).filter((expr) => reads.test(expr));
  assert.equal(exprs.length, 1, `one panel query reads ${metric}: ${JSON.stringify(exprs)}`);
  return interpolate(exprs[0]!, builtinVariables);
}

/** A panel's target by panel title and refId. */
function targetOf(dashboard: DashboardJson, title: string, refId: string): string {
  const expr = queryPanels(dashboard).find((panel) => panel.title === title)?.targets?.find((target) => target.refId === refId)?.expr;
  assert.ok(expr, `no target ${refId} on a panel "${title}"`);
  return expr;
}

/** listenerPort: the port a listener of the balancer got (from GET /listeners). */
async function listenerPort(lb: RunningBalancer, name: string): Promise<number> {
  const listener = (await getJson<{ name: string; address: string }[]>(`${lb.adminUrl}/listeners`)).find((view) => view.name === name);
  assert.ok(listener, `no listener ${name}`);
  return Number(listener.address.split(':').pop());
}

/** knock opens a TCP connection, writes bytes if given, and waits until the other side closes it (at most 3 s). */
const knock = (port: number, bytes?: string): Promise<void> =>
  new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    if (bytes) socket.write(bytes);
    const timer = setTimeout(() => socket.destroy(), 3_000);
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve();
    });
    socket.resume();
  });

test(
  'every panel query returns series from a real Prometheus scraping a running lab (http and tcp listeners, kill, 5xx, ejection, reload, worker upgrade and crash), with All and with the listeners picked',
  { skip: prometheusBinary === undefined && !inCi ? 'prometheus is not on PATH (apt-get install prometheus); with CI=true this fails instead' : false, timeout: 150_000 },
  async (t) => {
    assert.ok(prometheusBinary, 'prometheus is not on PATH and CI=true: install it (apt-get install prometheus)');
    const started = performance.now();
    const mark = (what: string): void => t.diagnostic(`${((performance.now() - started) / 1000).toFixed(1)} s: ${what}`);

    // The lab: three backend processes (HTTP and TCP echo ports), a balancer of two workers with three listeners,
    // fast health checks and outlier detection: web (http) and echo (tcp) over the same three backends, named alike
    // (so that a query that kept listeners apart where it should not would show each backend twice), and void (tcp),
    // whose one backend listens nowhere (connect failures, then no backend). An HTTP and a TCP loadgen.
    const launch = async (id: string, env: Record<string, string> = {}): Promise<TcpBackend> => {
      const backend = await startTcpBackend(id, env);
      t.after(() => backend.service.stop('SIGKILL'));
      return backend;
    };
    const backends = await Promise.all(['b1', 'b2', 'b3'].map(async (id) => launch(id, await restartablePorts())));
    const nowhere = await freePort();
    const outlierDetection = { consecutiveFailures: 3, baseEjectionTime: '1s', maxEjectionTime: '3s', maxEjectionPercent: 50 };
    const lb = await startBalancer(t, {
      workers: 2,
      algorithm: 'round-robin',
      outlierDetection,
      listeners: [
        { name: 'web', listen: { host: '127.0.0.1', port: 0 }, backends: backends.map((b) => ({ url: b.url, name: b.id })) },
        { name: 'echo', mode: 'tcp', listen: { host: '127.0.0.1', port: 0 }, backends: backends.map((b) => ({ url: `tcp://127.0.0.1:${b.tcp.port}`, name: b.id })) },
        { name: 'void', mode: 'tcp', listen: { host: '127.0.0.1', port: 0 }, backends: [{ url: `tcp://127.0.0.1:${nowhere}`, name: 'gone' }] },
      ],
    });
    t.after(() => rmSync(path.dirname(lb.configFile), { recursive: true, force: true }));
    // And a balancer without listeners: (no listener label) over the same backends: the dashboard must read it as it always did.
    const plain = await startBalancer(t, { algorithm: 'round-robin', backends: backends.map((b) => ({ url: b.url, name: b.id })) });
    t.after(() => rmSync(path.dirname(plain.configFile), { recursive: true, force: true }));
    const [echoPort, voidPort] = await Promise.all([listenerPort(lb, 'echo'), listenerPort(lb, 'void')]);

    const HTTP_RATE = 100;
    const TCP_RATE = 20;
    const { service: loadgen, ready } = await startService('loadgen', 'loadgen/dist/main.js', {
      env: { TARGET_URL: `${lb.url}/lab`, RATE: String(HTTP_RATE), CONNECTIONS: '8', METRICS_PORT: '0', METRICS_HOST: '127.0.0.1' },
      ready: 'loadgen',
    });
    t.after(() => loadgen.stop('SIGKILL'));
    // Each TCP connection reads the greeting, is echoed, and stays open 2 s: about 40 open at a time.
    const { service: tcpLoadgen, ready: tcpReady } = await startService('loadgen tcp', 'loadgen/dist/main.js', {
      env: { TARGET_URL: `tcp://127.0.0.1:${echoPort}`, RATE: String(TCP_RATE), HOLD: '2', METRICS_PORT: '0', METRICS_HOST: '127.0.0.1' },
      ready: 'loadgen',
    });
    t.after(() => tcpLoadgen.stop('SIGKILL'));

    // Prometheus with the compose configuration's jobs, static targets instead of DNS, 1 s scrapes; the balancer
    // without listeners: in a job of its own, without the whole-balancer metrics (the Workers panel counts the lab's).
    const compose = parseYaml(read('prometheus/prometheus.yml')) as { scrape_configs: ({ job_name: string } & Record<string, unknown>)[] };
    const localTargets = (self: string): Record<string, string[]> => ({
      balancer: [hostPort(lb.adminUrl)],
      backend: backends.map((b) => hostPort(b.controlUrl)),
      loadgen: [hostPort(ready!.metrics!), hostPort(tcpReady!.metrics!)],
      prometheus: [self],
    });
    assert.deepEqual(compose.scrape_configs.map((job) => job.job_name).sort(), Object.keys(localTargets('')).sort(), 'prometheus/prometheus.yml scrapes the lab\'s jobs');
    const statically = ({ dns_sd_configs: _dns, static_configs: _static, ...job }: { job_name: string } & Record<string, unknown>, targets: string[]): Record<string, unknown> => ({
      ...job,
      static_configs: [{ targets }],
    });
    const balancerJob = compose.scrape_configs.find((job) => job.job_name === 'balancer')!;
    const prometheus = await startPrometheus(prometheusBinary, (self) => ({
      global: { scrape_interval: '1s', scrape_timeout: '1s', evaluation_interval: '1s' },
      scrape_configs: [
        ...compose.scrape_configs.map((job) => statically(job, localTargets(self)[job.job_name]!)),
        {
          ...statically(balancerJob, [hostPort(plain.adminUrl)]),
          job_name: 'balancer-without-listeners',
          metric_relabel_configs: [{ source_labels: ['__name__'], regex: WHOLE_BALANCER.join('|'), action: 'drop' }],
        },
      ],
    }));
    t.after(() => prometheus.stop());
    await waitFor('Prometheus to scrape all 8 targets', async () => (await prometheus.query('up == 1')).length === 8, 15_000, 250);
    const backendInstances = (await prometheus.query('up{job="backend"}')).map((s) => s.metric.instance).sort();
    assert.deepEqual(backendInstances, backends.map((b) => hostPort(b.controlUrl)).sort(), 'backend targets are named by their address');
    mark('lab and Prometheus up');

    const stateOf = async (id: string): Promise<string | undefined> => (await lb.backends()).find((b) => b.id === id)?.state;
    const metric = async (name: string, labels: Record<string, string>): Promise<number> => metricValue(await lb.metrics(), name, labels) ?? 0;
    /** The TCP loadgen's connections by result, from its /metrics. */
    const tcpClientResults = async (): Promise<Record<string, number>> => {
      const results: Record<string, number> = {};
      for (const line of (await (await fetch(tcpReady!.metrics!)).text()).split('\n')) {
        const result = line.startsWith(`${LOADGEN_METRIC.tcpConnections}{`) ? line.match(/result="(\w+)"/)?.[1] : undefined;
        if (result) results[result] = (results[result] ?? 0) + Number(line.split(' ').pop());
      }
      return results;
    };
    const tcpClientFailures = async (): Promise<number> => Object.entries(await tcpClientResults()).reduce((sum, [result, n]) => sum + (result === 'ok' ? 0 : n), 0);
    // Requests through the balancer without listeners too: its lb_requests_total must add to the same backends' bands.
    for (let i = 0; i < 30; i++) await (await fetch(`${plain.url}/plain`)).arrayBuffer();
    // The void listener: its only backend refuses, so its clients are closed without one.
    await waitFor('no_backend on the void listener', async () => {
      await knock(voidPort);
      return (await metric(BALANCER_METRIC.tcpConnections, { listener: 'void', result: 'no_backend' })) > 0;
    }, 10_000, 200);
    // A smuggling-shaped request (two Content-Lengths) on the web listener: 400 before any backend, a client error.
    await waitFor('a bad_request on the web listener', async () => {
      await knock(Number(new URL(lb.url).port), 'GET /smuggle HTTP/1.1\r\nHost: lab\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nx');
      return (await metric(BALANCER_METRIC.clientErrors, { listener: 'web', reason: 'bad_request' })) > 0;
    }, 10_000, 200);
    await sleep(3_000);

    // A backend killed and brought back on the same ports: retries, failed health checks, and at L4 connect failures
    // (new connections fail over) and broken connections (the ones open on it).
    const killed = backends[1]!;
    const failedBefore = await tcpClientFailures();
    await killed.service.stop('SIGKILL');
    await waitFor('the balancer to see b2 down', async () => (await stateOf('b2')) === 'unhealthy', 10_000, 100);
    await waitFor('connect failures to b2 on the echo listener', async () => (await metric(BALANCER_METRIC.tcpConnections, { listener: 'echo', backend: 'b2', result: 'connect_failed' })) > 0, 10_000, 100);
    await waitFor('the TCP clients to see the connections open on b2 break', async () => (await tcpClientFailures()) > failedBefore, 10_000, 100);
    mark(`b2 killed and seen down; TCP clients so far: ${JSON.stringify(await tcpClientResults())}`);
    await sleep(1_500);
    backends[1] = await launch('b2', { PORT: new URL(killed.url).port, CONTROL_PORT: new URL(killed.controlUrl).port, TCP_PORT: String(killed.tcp.port) });
    await waitFor('b2 healthy again', async () => (await stateOf('b2')) === 'healthy', 10_000, 100);
    assert.ok((await metric('lb_retries_total', { listener: 'web', backend: 'b2' })) > 0, 'requests to the killed backend were retried');
    mark('b2 back');

    // A backend answering only 500: balancer and client 5xx, and ejections.
    const b3 = backends[2]!;
    await b3.chaos({ errorRate: 1, errorStatus: 500 });
    await waitFor('b3 to be ejected', async () => (await metric('lb_ejections_total', { listener: 'web', backend: 'b3' })) > 0, 10_000, 100);
    await sleep(1_500);
    const reset = await fetch(`${b3.controlUrl}/chaos`, { method: 'DELETE' });
    assert.ok(reset.ok, `DELETE /chaos answered ${reset.status}`);
    await waitFor('b3 back in rotation', async () => (await stateOf('b3')) === 'healthy', 15_000, 100);
    mark('b3 answered 500, was ejected, and is back');

    // A refused reload, then one that changes the algorithm (of every listener: none sets its own).
    const config = JSON.parse(readFileSync(lb.configFile, 'utf8')) as Record<string, unknown>;
    writeFileSync(lb.configFile, JSON.stringify({ ...config, algorithm: 'no-such-algorithm' }, null, 2));
    lb.service.child.kill('SIGHUP');
    await waitFor('the reload to be refused', async () => (await metric('lb_config_reloads_total', { result: 'failure' })) >= 1, 10_000, 100);
    writeFileSync(lb.configFile, JSON.stringify({ ...config, algorithm: 'least-connections' }, null, 2));
    lb.service.child.kill('SIGHUP');
    await waitFor('the reload to apply', async () => (await metric('lb_info', { listener: 'echo', algorithm: 'least-connections' })) === 1 && (await metric('lb_config_reloads_total', { result: 'success' })) >= 1, 10_000, 100);
    mark('configuration refused, then reloaded');

    // Workers: an upgrade keeps two serving and counts no restart; a killed worker is replaced and counted.
    // Checked with the Workers panel's own queries, over the seconds each event took.
    const dashboard = committed();
    const serving = panelQueryOn(dashboard, BALANCER_METRIC.workers);
    const restarts = panelQueryOn(dashboard, BALANCER_METRIC.workerRestarts);
    const valueOf = async (expr: string): Promise<number> => Number((await prometheus.query(expr))[0]?.value[1] ?? Number.NaN);
    /** expr over the time since `since` (a performance.now()), as a subquery at the scrape interval */
    const overSince = (fn: 'min_over_time' | 'max_over_time', expr: string, since: number): string => `${fn}((${expr})[${Math.ceil((performance.now() - since) / 1000) + 1}s:1s])`;
    const workersOf = (): Promise<{ pid: number; state: string }[]> => getJson(`${lb.adminUrl}/workers`);
    const first = await workersOf();
    assert.equal(first.length, 2, `two workers: ${JSON.stringify(first)}`);
    await waitFor(`Prometheus to see 2 workers (${serving})`, async () => (await valueOf(serving)) === 2, 10_000, 250);

    const upgradeStarted = performance.now();
    lb.service.child.kill('SIGUSR2');
    await waitFor('two fresh workers serving and the old ones gone', async () => {
      const now = await workersOf();
      return now.length === 2 && now.every((w) => w.state === 'serving' && !first.some((old) => old.pid === w.pid));
    }, 20_000, 100);
    await sleep(2_000);
    assert.equal(await metric(BALANCER_METRIC.workerRestarts, {}), 0, 'an upgrade is not a restart');
    assert.equal(await valueOf(overSince('min_over_time', serving, upgradeStarted)), 2, `${serving} stayed at 2 through the upgrade`);
    assert.equal(await valueOf(overSince('max_over_time', restarts, upgradeStarted)), 0, `${restarts} stayed at 0 through the upgrade`);
    t.diagnostic(`upgrade: at most ${await valueOf(overSince('max_over_time', serving, upgradeStarted))} workers serving while the fresh ones started`);
    mark(`workers upgraded by SIGUSR2; TCP clients so far: ${JSON.stringify(await tcpClientResults())}`);

    const [victim] = await workersOf();
    const crashed = performance.now();
    process.kill(victim!.pid, 'SIGKILL');
    await waitFor('a new worker in place of the killed one', async () => {
      const now = await workersOf();
      return now.length === 2 && now.every((w) => w.state === 'serving' && w.pid !== victim!.pid);
    }, 10_000, 100);
    await waitFor('lb_worker_restarts_total to count the killed worker', async () => (await metric(BALANCER_METRIC.workerRestarts, {})) === 1, 5_000, 100);
    const { value: counted } = await waitFor(`the restart on the Workers panel (${restarts})`, async () => {
      const value = await valueOf(restarts);
      return value >= 0.5 && value;
    }, 10_000, 250);
    await waitFor(`Prometheus to see 2 workers again (${serving})`, async () => (await valueOf(serving)) === 2, 10_000, 250);
    t.diagnostic(`crash: ${counted.toFixed(2)} restarts per rate interval; at least ${await valueOf(overSince('min_over_time', serving, crashed))} workers serving after the kill`);
    mark(`worker ${victim!.pid} killed and replaced; TCP clients so far: ${JSON.stringify(await tcpClientResults())}`);

    // Let Prometheus take a few scrapes after the last event, so each new series has a rate.
    await sleep(5_000);

    // Every target of every panel, with the variables as Grafana fills them in: All (each variable's allValue),
    // then every value of each picked (which leaves the balancer without listeners: out).
    const all: Record<string, string> = { ...builtinVariables };
    const picked: Record<string, string> = { ...builtinVariables };
    const expected: Record<string, string[]> = { listener: ['echo', 'void', 'web'], backend: ['b1', 'b2', 'b3', 'gone'] };
    for (const variable of dashboard.templating?.list ?? []) {
      const labelValues = typeof variable.query === 'string' ? variable.query.match(/^label_values\((.+),\s*(\w+)\)$/) : null;
      assert.ok(labelValues, `variable ${variable.name}: a label_values(metric, label) query`);
      for (const values of [all, picked]) {
        const found = await prometheus.labelValues(labelValues[2]!, interpolate(labelValues[1]!, values));
        assert.deepEqual(found.sort(), expected[variable.name], `variable ${variable.name}: ${variable.query}`);
        values[variable.name] = values === all ? variable.allValue! : regexOf(found);
      }
    }
    const failures: string[] = [];
    for (const [which, variables] of [['All', all], ['picked', picked]] as const) {
      for (const panel of queryPanels(dashboard)) {
        for (const target of panel.targets ?? []) {
          const where = `${which}: panel "${panel.title}" target ${target.refId}: ${target.expr}`;
          const expr = interpolate(target.expr ?? '', variables);
          let series: PromSample[] = [];
          const deadline = performance.now() + 5_000;
          try {
            while ((series = await prometheus.query(expr)).length === 0 && performance.now() < deadline) await sleep(250);
          } catch (error) {
            failures.push(`${where}\n    refused by Prometheus: ${(error as Error).message}`);
            continue;
          }
          if (series.length === 0) failures.push(`${where}\n    no series for ${expr}`);
          else t.diagnostic(`${which}: ${panel.title} [${target.refId}]: ${series.map((s) => `${JSON.stringify(s.metric)}=${s.value[1]}`).join(' ')}`);
        }
      }
    }
    assert.deepEqual(failures, [], `queries without data:\n${failures.join('\n')}\nPrometheus output:\n${prometheus.output()}`);
    mark('all panel queries answered, with All and with the listeners picked');

    // With All, as the dashboard opens: listeners summed where a panel is by backend, kept apart where each listener
    // decides for itself, and the balancer without listeners: shown under its plain names.
    const seriesOf = async (title: string, refId: string, label: string): Promise<string[]> =>
      (await prometheus.query(interpolate(targetOf(dashboard, title, refId), all))).map((s) => s.metric[label] ?? JSON.stringify(s.metric)).sort();
    const valueOf1 = async (title: string, refId: string): Promise<number> => {
      const series = await prometheus.query(interpolate(targetOf(dashboard, title, refId), all));
      assert.equal(series.length, 1, `${title} [${refId}]: one series: ${JSON.stringify(series)}`);
      return Number(series[0]!.value[1]);
    };
    assert.deepEqual(await seriesOf('Requests/s by backend', 'A', 'backend'), ['b1', 'b2', 'b3'], 'Requests/s by backend: one band per backend, over both balancers');
    assert.deepEqual(await seriesOf('Share of traffic', 'A', 'backend'), ['b1', 'b2', 'b3'], 'Share of traffic: one line per backend');
    assert.deepEqual(
      await seriesOf('Backend health', 'A', 'name'),
      ['b1', 'b2', 'b3', 'echo/b1', 'echo/b2', 'echo/b3', 'void/gone', 'web/b1', 'web/b2', 'web/b3'],
      'Backend health: a row per listener and backend, plain names without listeners:',
    );
    assert.deepEqual(await seriesOf('Algorithm', 'A', 'name'), ['echo: least-connections', 'round-robin', 'void: least-connections', 'web: least-connections'], 'Algorithm: one per listener');
    assert.deepEqual(await seriesOf('Active requests by backend', 'A', 'backend'), ['b1', 'b2', 'b3'], 'Active requests by backend: http listeners only');
    // In one evaluation: the panel equals the http listeners' (and the plain balancer's) gauge, while TCP connections are open.
    const activeExpr = interpolate(targetOf(dashboard, 'Active requests by backend', 'A'), all);
    const tcpOpen = `sum(${BALANCER_METRIC.tcpActiveConnections}{listener="echo"})`;
    const [activeCheck] = await prometheus.query(`max(abs((${activeExpr}) - on (backend) sum by (backend) (${BALANCER_METRIC.activeRequests}{listener!~"echo|void"})))`);
    assert.equal(Number(activeCheck?.value[1]), 0, 'Active requests by backend leaves the tcp listeners\' open connections out');
    assert.ok(Number((await prometheus.query(tcpOpen))[0]?.value[1]) > 0, 'TCP connections were open');
    assert.equal(await valueOf1('Load generator: target vs achieved', 'A'), HTTP_RATE, 'the HTTP loadgen target leaves the TCP loadgen out');
    assert.equal(await valueOf1('TCP clients: target vs settled, by result', 'A'), TCP_RATE, 'the TCP loadgen target');

    // The L4 row.
    assert.deepEqual(await seriesOf('Connections/s by backend', 'A', 'backend'), ['b1', 'b2', 'b3'], 'Connections/s by backend');
    assert.deepEqual(await seriesOf('Open connections by backend', 'A', 'backend'), ['b1', 'b2', 'b3', 'gone'], 'Open connections by backend');
    assert.ok((await seriesOf('Connect failures/s', 'A', 'backend')).includes('b2'), 'Connect failures/s: the killed backend');
    const results = await seriesOf('TCP clients: target vs settled, by result', 'B', 'result');
    assert.ok(results.includes('ok') && results.some((result) => result !== 'ok'), `TCP clients: ok, and the connections broken by the kill: ${results.join(', ')}`);

    const clientErrors = (await prometheus.query('sum(loadgen_requests_total{code="error"})'))[0]?.value[1];
    t.diagnostic(`requests the client got no answer to: ${clientErrors}; TCP client results: ${results.join(', ')}`);
    mark('the listener checks pass');
  },
);
