import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { load as parseYaml } from 'js-yaml';
import { DASHBOARD_FILE, dashboardJson } from '../../grafana/src/dashboard.js';
import { BALANCER_METRIC } from '../../common/src/metric-names.js';
import { findBinary, repoRoot, startService } from '../helpers/processes.js';
import { startBackend, type RunningBackend } from '../helpers/backend.js';
import { startBalancer } from '../helpers/lab.js';
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

/** PromQL regex for a multi-value selection, escaped as Grafana's Prometheus datasource does. */
const regexOf = (values: readonly string[]): string => `(${values.map((value) => value.replace(/[\\^$*+?.()|[\]{}]/g, (c) => `\\\\${c}`)).join('|')})`;

/** interpolate replaces $name, ${name} and [[name]] as Grafana does before it sends a query; an unknown variable throws. */
function interpolate(expr: string, values: Record<string, string>): string {
  return expr.replace(/\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|\$(\w+)/g, (match, braced?: string, bracketed?: string, plain?: string) => {
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

test(
  'every panel query returns series from a real Prometheus scraping a running lab (kill, 5xx, ejection, reload, worker upgrade and crash)',
  { skip: prometheusBinary === undefined && !inCi ? 'prometheus is not on PATH (apt-get install prometheus); with CI=true this fails instead' : false, timeout: 120_000 },
  async (t) => {
    assert.ok(prometheusBinary, 'prometheus is not on PATH and CI=true: install it (apt-get install prometheus)');
    const started = performance.now();
    const mark = (what: string): void => t.diagnostic(`${((performance.now() - started) / 1000).toFixed(1)} s: ${what}`);

    // The lab: three backend processes, a balancer of two workers with fast health checks and outlier detection, a steady loadgen.
    const launch = async (id: string, env: Record<string, string> = {}): Promise<RunningBackend> => {
      const backend = await startBackend(id, env);
      t.after(() => backend.service.stop('SIGKILL'));
      return backend;
    };
    const backends = await Promise.all(['b1', 'b2', 'b3'].map((id) => launch(id)));
    const lb = await startBalancer(t, {
      workers: 2,
      algorithm: 'round-robin',
      backends: backends.map((b) => ({ url: b.url, name: b.id })),
      outlierDetection: { consecutiveFailures: 3, baseEjectionTime: '1s', maxEjectionTime: '3s', maxEjectionPercent: 50 },
    });
    t.after(() => rmSync(path.dirname(lb.configFile), { recursive: true, force: true }));
    const { service: loadgen, ready } = await startService('loadgen', 'loadgen/dist/main.js', {
      env: { TARGET_URL: `${lb.url}/lab`, RATE: '100', CONNECTIONS: '8', METRICS_PORT: '0', METRICS_HOST: '127.0.0.1' },
      ready: 'loadgen',
    });
    t.after(() => loadgen.stop('SIGKILL'));

    // Prometheus with the compose configuration's jobs, static targets instead of DNS, 1 s scrapes.
    const compose = parseYaml(read('prometheus/prometheus.yml')) as { scrape_configs: ({ job_name: string } & Record<string, unknown>)[] };
    const localTargets = (self: string): Record<string, string[]> => ({
      balancer: [hostPort(lb.adminUrl)],
      backend: backends.map((b) => hostPort(b.controlUrl)),
      loadgen: [hostPort(ready!.metrics)],
      prometheus: [self],
    });
    assert.deepEqual(compose.scrape_configs.map((job) => job.job_name).sort(), Object.keys(localTargets('')).sort(), 'prometheus/prometheus.yml scrapes the lab\'s jobs');
    const prometheus = await startPrometheus(prometheusBinary, (self) => ({
      global: { scrape_interval: '1s', scrape_timeout: '1s', evaluation_interval: '1s' },
      scrape_configs: compose.scrape_configs.map(({ dns_sd_configs: _dns, static_configs: _static, ...job }) => ({
        ...job,
        static_configs: [{ targets: localTargets(self)[job.job_name] }],
      })),
    }));
    t.after(() => prometheus.stop());
    await waitFor('Prometheus to scrape all 6 targets', async () => (await prometheus.query('up == 1')).length === 6, 15_000, 250);
    const backendInstances = (await prometheus.query('up{job="backend"}')).map((s) => s.metric.instance).sort();
    assert.deepEqual(backendInstances, backends.map((b) => hostPort(b.controlUrl)).sort(), 'backend targets are named by their address');
    mark('lab and Prometheus up');

    const stateOf = async (id: string): Promise<string | undefined> => (await lb.backends()).find((b) => b.id === id)?.state;
    const metric = async (name: string, labels: Record<string, string>): Promise<number> => metricValue(await lb.metrics(), name, labels) ?? 0;
    await sleep(4_000);

    // A backend killed and brought back on the same ports: retries and failed health checks.
    const killed = backends[1]!;
    await killed.service.stop('SIGKILL');
    await waitFor('the balancer to see b2 down', async () => (await stateOf('b2')) === 'unhealthy', 10_000, 100);
    mark('b2 killed and seen down');
    await sleep(1_500);
    backends[1] = await launch('b2', { PORT: new URL(killed.url).port, CONTROL_PORT: new URL(killed.controlUrl).port });
    await waitFor('b2 healthy again', async () => (await stateOf('b2')) === 'healthy', 10_000, 100);
    assert.ok((await metric('lb_retries_total', { backend: 'b2' })) > 0, 'requests to the killed backend were retried');
    mark('b2 back');

    // A backend answering only 500: balancer and client 5xx, and ejections.
    const b3 = backends[2]!;
    await b3.chaos({ errorRate: 1, errorStatus: 500 });
    await waitFor('b3 to be ejected', async () => (await metric('lb_ejections_total', { backend: 'b3' })) > 0, 10_000, 100);
    await sleep(1_500);
    const reset = await fetch(`${b3.controlUrl}/chaos`, { method: 'DELETE' });
    assert.ok(reset.ok, `DELETE /chaos answered ${reset.status}`);
    await waitFor('b3 back in rotation', async () => (await stateOf('b3')) === 'healthy', 15_000, 100);
    mark('b3 answered 500, was ejected, and is back');

    // A refused reload, then one that changes the algorithm.
    const config = JSON.parse(readFileSync(lb.configFile, 'utf8')) as Record<string, unknown>;
    writeFileSync(lb.configFile, JSON.stringify({ ...config, algorithm: 'no-such-algorithm' }, null, 2));
    lb.service.child.kill('SIGHUP');
    await waitFor('the reload to be refused', async () => (await metric('lb_config_reloads_total', { result: 'failure' })) >= 1, 10_000, 100);
    writeFileSync(lb.configFile, JSON.stringify({ ...config, algorithm: 'least-connections' }, null, 2));
    lb.service.child.kill('SIGHUP');
    await waitFor('the reload to apply', async () => (await metric('lb_info', { algorithm: 'least-connections' })) === 1 && (await metric('lb_config_reloads_total', { result: 'success' })) >= 1, 10_000, 100);
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
    mark('workers upgraded by SIGUSR2');

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
    mark(`worker ${victim!.pid} killed and replaced`);

    // Let Prometheus take a few scrapes after the last event, so each new series has a rate.
    await sleep(5_000);

    // Every target of every panel, with the variables as Grafana fills them in.
    const variables: Record<string, string> = { ...builtinVariables };
    for (const variable of dashboard.templating?.list ?? []) {
      const labelValues = typeof variable.query === 'string' ? variable.query.match(/^label_values\((.+),\s*(\w+)\)$/) : null;
      assert.ok(labelValues, `variable ${variable.name}: a label_values(metric, label) query`);
      const values = await prometheus.labelValues(labelValues[2]!, labelValues[1]!);
      assert.deepEqual(values.sort(), ['b1', 'b2', 'b3'], `variable ${variable.name}: ${variable.query}`);
      variables[variable.name] = regexOf(values);
    }
    const failures: string[] = [];
    for (const panel of queryPanels(dashboard)) {
      for (const target of panel.targets ?? []) {
        const where = `panel "${panel.title}" target ${target.refId}: ${target.expr}`;
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
        else t.diagnostic(`${panel.title} [${target.refId}]: ${series.map((s) => `${JSON.stringify(s.metric)}=${s.value[1]}`).join(' ')}`);
      }
    }
    assert.deepEqual(failures, [], `queries without data:\n${failures.join('\n')}\nPrometheus output:\n${prometheus.output()}`);

    const clientErrors = (await prometheus.query('sum(loadgen_requests_total{code="error"})'))[0]?.value[1];
    t.diagnostic(`requests the client got no answer to: ${clientErrors}`);
    mark('all panel queries answered');
  },
);
