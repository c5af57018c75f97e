/**
 * The chaos scenarios of issue 6, written once against ChaosLab and run by two drivers: local processes
 * (process-lab.ts) and containers (container-lab.ts). Three backends, a steady 200 GET/s through the
 * balancer, health interval 1 s, rise 2, fall 2, connect timeout 300 ms, per-try 500 ms, 2 retries.
 * Each scenario makes one kind of failure, prints its figures as a `# ...` line and writes its timeline.
 *
 * The L4 scenarios of issue 12 (L4a-L4c) run against a lab with a tcp listener (LabOptions.tcp): the same
 * three backends' echo ports behind the listener `echo`, 50 new connections a second (connect, greeting,
 * payload, echo, close) and long-lived connections that ping on a timer.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { parseDuration } from '../../common/src/durations.js';
import { sumCounter } from '../helpers/backend.js';
import { getJson, httpRequest, metricValue, sleep, waitFor } from '../helpers/http.js';
import { fastHealth, fastTimeouts, testEngine } from '../helpers/lab.js';
import { describeFailures, runLoad, type LoadRun } from '../helpers/load.js';
import { heldByBackend, holdTcpConnections, runTcpLoad, type HeldConnection, type HeldConnections } from '../helpers/tcp-load.js';
import {
  expectAtMost,
  expectErrorsOnlyWithin,
  expectEvery503Within,
  expectNoClientErrors,
  expectP99Below,
  expectShareBelow,
  expectShareNear,
  expectWithin,
  msUntilServed,
  msUntilShare,
  sentBetween,
  shareOf,
} from './measure.js';
import { perSecond, watchStates, writeTimeline, type Marker, type StateWatch } from './timeline.js';

export const BACKENDS = ['backend-1', 'backend-2', 'backend-3'] as const;
export type BackendId = (typeof BACKENDS)[number];
const RATE = 200;
const VICTIM: BackendId = 'backend-2';

const INTERVAL_MS = parseDuration(fastHealth.interval)!;
const CHECK_TIMEOUT_MS = parseDuration(fastHealth.timeout)!;
const PER_TRY_MS = parseDuration(fastTimeouts.perTry)!;

/** The issue's numbers. */
const LIMITS = {
  killedDownMs: 3_000,
  backInRotationMs: 4_000,
  shareBackMs: 10_000,
  shareTolerance: 0.1,
  blackHoleDownMs: fastHealth.fall * INTERVAL_MS + CHECK_TIMEOUT_MS + 1_000,
  blackHoleP99Ms: PER_TRY_MS + 200,
  allDown503Ms: 100,
  resumeMs: fastHealth.rise * INTERVAL_MS + 1_000,
  flapToggleMs: 700,
  flapForMs: 20_000,
  flapChanges: 6,
  ejectionMs: 2_000,
  ejectedShare: 0.05,
  slowLatencyMs: 300,
  slowShare: 0.1,
};

export interface LabOptions {
  /** the balancer's traffic workers (default 1) */
  workers?: number;
  algorithm?: string;
  weights?: readonly number[];
  outlierDetection?: Record<string, unknown>;
  /**
   * The L4 lab: the balancer's file has `listeners:`, the http listener `web` (the same settings as without
   * this option) and the tcp listener `echo` over the backends' echo ports, checked by GET /health on their
   * HTTP port. tcpCheckWitness adds the tcp listener `echo-tcp-check` over the same echo ports with the tcp
   * (connect) check and no traffic, to see what that check makes of a fault.
   */
  tcp?: { tcpCheckWitness?: boolean };
  /** timeouts.perTry and healthCheck.timeout, for a scenario whose fault must not read as a failure */
  perTry?: string;
  healthTimeout?: string;
}

/** The tcp listeners of the L4 lab. */
export const ECHO_LISTENER = 'echo';
export const TCP_CHECK_WITNESS = 'echo-tcp-check';
/** The echo listener's timeouts: drain longer than any scenario, idle longer than any pause between pings. */
export const ECHO_TIMEOUTS = { connect: fastTimeouts.connect, idle: '30s', drain: '30s' };

/** Where a driver puts the L4 lab's listeners and backends. */
export interface L4Layout {
  web: { host: string; port: number };
  echo: { host: string; port: number };
  witness: { host: string; port: number };
  /** each backend's HTTP base URL and echo port URL (tcp://host:port), in BACKENDS order */
  httpUrls: readonly string[];
  tcpUrls: readonly string[];
  /** the backends' HTTP port, the same for every backend: the echo listener's healthCheck.port */
  healthPort: number;
}

/**
 * l4BalancerSettings: the L4 lab's configuration except `admin`. The top-level keys are balancerSettings'
 * (the defaults of every listener); `web` has the backends that balancerSettings gives the one listener of
 * the HTTP lab.
 */
export function l4BalancerSettings(layout: L4Layout, options: LabOptions): Record<string, unknown> {
  const { backends, ...defaults } = balancerSettings(layout.httpUrls, options);
  const echoBackends = BACKENDS.map((name, i) => ({ name, url: layout.tcpUrls[i] }));
  return {
    ...defaults,
    listeners: [
      { name: 'web', listen: layout.web, backends },
      {
        name: ECHO_LISTENER,
        mode: 'tcp',
        listen: layout.echo,
        backends: echoBackends,
        healthCheck: { type: 'http', path: '/health', port: layout.healthPort },
        timeouts: ECHO_TIMEOUTS,
      },
      ...(options.tcp?.tcpCheckWitness
        ? [{ name: TCP_CHECK_WITNESS, mode: 'tcp', listen: layout.witness, backends: echoBackends, healthCheck: { type: 'tcp' }, timeouts: ECHO_TIMEOUTS }]
        : []),
    ],
  };
}

/** balancerSettings: the balancer's configuration for these backend URLs, except `listen` and `admin`. */
export function balancerSettings(urls: readonly string[], options: LabOptions = {}): Record<string, unknown> {
  return {
    algorithm: options.algorithm ?? 'round-robin',
    engine: testEngine,
    workers: options.workers ?? 1,
    backends: BACKENDS.map((name, i) => ({ name, url: urls[i], weight: options.weights?.[i] ?? 1 })),
    healthCheck: { ...fastHealth, ...(options.healthTimeout ? { timeout: options.healthTimeout } : {}) },
    retries: { attempts: 2 },
    timeouts: { ...fastTimeouts, ...(options.perTry ? { perTry: options.perTry } : {}) },
    ...(options.outlierDetection ? { outlierDetection: options.outlierDetection } : {}),
  };
}

/** A balancer and three backends (BACKENDS), and the faults a driver makes with real signals or the Docker API. */
export interface ChaosLab {
  readonly proxyUrl: string;
  readonly adminUrl: string;
  /** Where clients connect to the tcp listener `echo` (the L4 lab only). */
  readonly tcp?: { host: string; port: number };
  /** SIGKILL; resolves once the backend is gone. */
  kill(id: BackendId): Promise<void>;
  /** SIGTERM, with a grace period to drain; resolves once it has exited. */
  stop(id: BackendId): Promise<void>;
  /** Freezes the backend: connections are accepted and never answered (a black hole). */
  pause(id: BackendId): Promise<void>;
  unpause(id: BackendId): Promise<void>;
  /** Takes the backend off the network it shares with the balancer, and back with the same name (containers only). */
  disconnect?(id: BackendId): Promise<void>;
  reconnect?(id: BackendId): Promise<void>;
  /** Starts a killed or stopped backend again at the same address. */
  start(id: BackendId): Promise<void>;
  /** GET /health on the backend itself: true on a 200. */
  healthy(id: BackendId): Promise<boolean>;
  /** PUT /chaos on the backend's control port. */
  chaos(id: BackendId, patch: Record<string, unknown>): Promise<void>;
  /** Rewrites the balancer's configuration file with these options, then sends it SIGHUP. */
  reload(options: LabOptions): Promise<void>;
  /** Stops the balancer gracefully (SIGTERM) and starts it again on the same ports. */
  restartBalancer(): Promise<void>;
  /** Sends the balancer's primary SIGUSR2: a hitless upgrade of its workers. */
  upgradeBalancer(): Promise<void>;
  /** The balancer's processes now: the primary and its workers, whatever state they are in. */
  balancerProcesses(): Promise<number>;
  balancerLog(): string;
}

export interface LabDriver {
  /** Names the suite in test names and timeline files: "processes" or "containers". */
  readonly suite: string;
  /** Why this driver cannot partition a backend, when it cannot. */
  readonly noPartition?: string;
  /** Starts a lab whose processes or containers are removed after the test. */
  start(t: TestContext, options?: LabOptions): Promise<ChaosLab>;
}

/** One scenario's run: the load, the state polls, and the faults the test marked, all timed from the start of the load. */
const staleRetries = (run: LoadRun): number => run.samples.filter((sample) => 'retried' in sample && sample.retried === true).length;

class Session {
  readonly started = performance.now();
  readonly markers: Marker[] = [];
  /** The backends' states as the scenario's listener shows them: the http one, or `echo` in the L4 lab. */
  readonly states: StateWatch;
  reported = false;
  private readonly load: Promise<LoadRun>;
  private ended: Promise<LoadRun> | undefined;
  private readonly held: HeldConnections[] = [];

  constructor(
    private readonly suite: string,
    private readonly key: string,
    private readonly title: string,
    readonly lab: ChaosLab,
    durationMs: number,
  ) {
    if (lab.tcp) {
      this.load = runTcpLoad({ host: lab.tcp.host, port: lab.tcp.port, rate: TCP_RATE, durationMs, stepTimeoutMs: TCP_STEP_TIMEOUT_MS, started: this.started });
      this.states = watchStates(lab.adminUrl, this.started, 100, `/listeners/${ECHO_LISTENER}/backends`);
    } else {
      this.load = runLoad({ url: `${lab.proxyUrl}/chaos`, rate: RATE, durationMs });
      this.states = watchStates(lab.adminUrl, this.started);
    }
  }

  /** hold opens long-lived connections through the tcp listener (closed at the end of the run if the scenario did not close them). */
  async hold(count: number): Promise<HeldConnections> {
    const held = await holdTcpConnections({ host: this.lab.tcp!.host, port: this.lab.tcp!.port, count, pingEveryMs: PING_EVERY_MS, stepTimeoutMs: TCP_STEP_TIMEOUT_MS, started: this.started });
    this.held.push(held);
    const counts = heldByBackend(held);
    this.mark(`${count} held open (${BACKENDS.map((id) => counts[id] ?? 0).join(' + ')})`);
    return held;
  }

  now(): number {
    return performance.now() - this.started;
  }

  async until(atMs: number): Promise<void> {
    await sleep(Math.max(0, atMs - this.now()));
  }

  /** mark notes something the test did now, for the timeline; returns when. */
  mark(label: string): number {
    const atMs = this.now();
    this.markers.push({ atMs, label });
    return atMs;
  }

  /** fault marks the moment, makes the fault, and returns when it began. */
  async fault(label: string, make: () => Promise<unknown>): Promise<number> {
    const atMs = this.mark(label);
    await make();
    return atMs;
  }

  /** healthAnswers polls the backend's own /health every 50 ms; returns when it first answered 200. */
  async healthAnswers(id: BackendId): Promise<number> {
    await waitFor(`${id} to answer GET /health`, () => this.lab.healthy(id), 30_000, 50);
    return this.now();
  }

  /** settle waits (without failing: the figures tell) until the balancer shows the backend in that state, for at most timeoutMs. */
  async settle(id: BackendId, state: string, fromMs: number, timeoutMs: number): Promise<void> {
    await waitFor(`${id} to be ${state}`, () => this.states.firstChange(id, state, fromMs) !== undefined, timeoutMs, 50).catch(() => undefined);
  }

  /** msUntilState: from fromMs to the first poll that showed the backend enter that state. */
  msUntilState(id: BackendId, state: string, fromMs: number): number | undefined {
    const atMs = this.states.firstChange(id, state, fromMs);
    return atMs === undefined ? undefined : atMs - fromMs;
  }

  end(): Promise<LoadRun> {
    this.ended ??= (async () => {
      const run = await this.load;
      await this.states.stop();
      await Promise.all(this.held.map((held) => held.close()));
      return run;
    })();
    return this.ended;
  }

  /** report prints the figures as one `# ...` line and writes the timeline (JSON and SVG). */
  report(run: LoadRun, figures: Record<string, unknown>): void {
    this.reported = true;
    const errors = run.failures().length;
    const measured = this.lab.tcp
      ? {
          connections: run.samples.length,
          failed: errors,
          ...(errors > 0 ? { failureKinds: describeFailures(run), firstFailures: run.failures().slice(0, 5).map((x) => `${Math.round(x.at)} ms +${Math.round(x.ms)} ms ${x.error}${x.backend ? ` after the greeting of ${x.backend}` : ''}`) } : {}),
          p99Ms: run.percentile(99),
          ...figures,
          shares: run.byBackend(),
        }
      : {
          requests: run.samples.length,
          errors,
          ...(errors > 0 ? { errorKinds: describeFailures(run) } : {}),
          // Sent again, as real clients do, after a reused keep-alive connection was reset before any answer.
          ...(staleRetries(run) > 0 ? { staleConnectionRetries: staleRetries(run) } : {}),
          p99Ms: run.percentile(99),
          ...figures,
          shares: run.byBackend(),
        };
    // A figure that was never seen (undefined) is written as null, so that the JSON says so.
    const all = Object.fromEntries(Object.entries(measured).map(([key, value]) => [key, value ?? null]));
    const file = writeTimeline({
      suite: this.suite,
      scenario: this.key,
      title: this.title,
      ...(this.lab.tcp ? { unit: 'connections' as const } : {}),
      backends: [...BACKENDS],
      figures: all,
      seconds: perSecond(run, BACKENDS),
      markers: this.markers,
      stateChanges: this.states.changes,
    });
    const text = Object.entries(all).map(([key, value]) => `${key}=${typeof value === 'number' ? Number(value.toFixed(3)) : JSON.stringify(value)}`);
    console.log(`# ${this.suite} ${this.key}: ${text.join(' ')} (timeline ${file})`);
  }
}

interface Scenario {
  key: string;
  title: string;
  durationMs: number;
  options?: LabOptions;
  skip?: string | undefined;
  run(s: Session): Promise<void>;
}

function defineScenario(driver: LabDriver, scenario: Scenario): void {
  // Names the engine in test names and timeline files, e.g. "processes (undici)" and processes-undici-1-sigkill.json.
  const suite = testEngine === 'http-proxy' ? driver.suite : `${driver.suite}-${testEngine}`;
  test(`${driver.suite} (${testEngine}): ${scenario.title}`, { skip: scenario.skip ?? false }, async (t) => {
    const lab = await driver.start(t, scenario.options);
    const readyMs = await allHealthy(lab, listingsOf(scenario.options));
    console.log(`# ${suite} ${scenario.key}: all ${BACKENDS.length} backends healthy ${Math.round(readyMs)} ms after the balancer was ready`);
    const session = new Session(suite, scenario.key, scenario.title, lab, scenario.durationMs);
    try {
      await scenario.run(session);
    } catch (error) {
      // What the balancer said about its backends, to read beside the timeline: a state change says why.
      const said = lab.balancerLog().split('\n').filter((line) => / warn | error |→/.test(line));
      console.log(`# ${suite} ${scenario.key}: failed; the balancer's warnings and state changes (last 30 of ${said.length}):\n${said.slice(-30).map((line) => `#   ${line}`).join('\n')}`);
      throw error;
    } finally {
      const run = await session.end();
      if (!session.reported) session.report(run, { incomplete: true });
    }
  });
}

/**
 * allHealthy waits until the balancer itself shows every backend healthy, so that a scenario starts from the
 * state it assumes. A first health check that times out in a cold container keeps a backend down for rise ×
 * interval, and the load would meet 503s that the fault did not cause.
 */
async function allHealthy(lab: ChaosLab, listings: readonly string[] = ['/backends']): Promise<number> {
  const { ms } = await waitFor(
    `the balancer to show all of ${BACKENDS.join(', ')} healthy${listings.length > 1 ? ` in ${listings.join(', ')}` : ''}`,
    async () => {
      for (const listing of listings) {
        const views = await getJson<{ id: string; state: string }[]>(`${lab.adminUrl}${listing}`);
        if (!BACKENDS.every((id) => views.some((view) => view.id === id && view.state === 'healthy'))) return false;
      }
      return true;
    },
    15_000,
    50,
  );
  return ms;
}

/** listingsOf: the admin listings of backends that must all show healthy before a scenario starts. */
function listingsOf(options: LabOptions | undefined): string[] {
  if (!options?.tcp) return ['/backends'];
  return ['/backends', `/listeners/${ECHO_LISTENER}/backends`, ...(options.tcp.tcpCheckWitness ? [`/listeners/${TCP_CHECK_WITNESS}/backends`] : [])];
}

interface Outage {
  key: string;
  title: string;
  skip?: string | undefined;
  /** What makes the backend fail, what lifts the failure, and how the fault is named on the timeline. */
  cut: [label: string, make: (lab: ChaosLab) => Promise<void>];
  mend: [label: string, make: (lab: ChaosLab) => Promise<void>];
  downLimitMs: number;
  /** The limit for the p99 latency of the whole run, where the scenario sets one. */
  p99LimitMs?: number;
}

/**
 * Scenarios 1, 3 and 4: one backend fails under load, is marked down, then comes back; no client notices,
 * and the backend is back in rotation, with its share, in time.
 */
function outage(o: Outage): Scenario {
  return {
    key: o.key,
    title: o.title,
    skip: o.skip,
    durationMs: 14_000,
    async run(s) {
      await s.until(2_000);
      const cutAt = await s.fault(`${o.cut[0]} ${VICTIM}`, () => o.cut[1](s.lab));
      await s.settle(VICTIM, 'unhealthy', cutAt, o.downLimitMs + 2_000);
      await s.until(Math.max(4_000, s.now() + 1_000));
      await s.fault(`${o.mend[0]} ${VICTIM}`, () => o.mend[1](s.lab));
      const healthAt = await s.healthAnswers(VICTIM);
      const run = await s.end();
      const figures = {
        detectionMs: s.msUntilState(VICTIM, 'unhealthy', cutAt),
        rotationMs: msUntilServed(run, VICTIM, healthAt),
        shareBackMs: msUntilShare(run, VICTIM, healthAt, 1 / 3, LIMITS.shareTolerance),
      };
      s.report(run, figures);
      expectNoClientErrors(run);
      if (o.p99LimitMs !== undefined) expectP99Below(run, o.p99LimitMs);
      expectWithin(`marked down after ${o.cut[0]}`, figures.detectionMs, o.downLimitMs);
      expectWithin('back in rotation after its /health answered', figures.rotationMs, LIMITS.backInRotationMs);
      expectWithin('share back to 1/3 ± 10% after its /health answered', figures.shareBackMs, LIMITS.shareBackMs);
    },
  };
}

async function putJson(url: string, body: unknown): Promise<void> {
  const answer = await httpRequest(url, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  assert.equal(answer.status, 200, `PUT ${url}: ${answer.body}`);
}

/** The nine scenarios, registered as node:test tests with this driver. */
export function defineChaosScenarios(driver: LabDriver): void {
  const scenarios: Scenario[] = [
    outage({
      key: '1-sigkill',
      title: '1. SIGKILL one backend: 0 errors, down within 3 s, back within 4 s of /health, share 1/3 within 10 s',
      cut: ['SIGKILL', (lab) => lab.kill(VICTIM)],
      mend: ['restart', (lab) => lab.start(VICTIM)],
      downLimitMs: LIMITS.killedDownMs,
    }),
    {
      key: '2-sigterm',
      title: '2. Graceful stop (SIGTERM) of one backend: 0 errors',
      durationMs: 8_000,
      async run(s) {
        await s.until(2_000);
        const stoppedAt = await s.fault(`SIGTERM ${VICTIM}`, () => s.lab.stop(VICTIM));
        const exitedMs = s.now() - stoppedAt;
        const run = await s.end();
        s.report(run, { exitedMs, detectionMs: s.msUntilState(VICTIM, 'unhealthy', stoppedAt) });
        expectNoClientErrors(run);
      },
    },
    outage({
      key: '3-pause',
      title: '3. Pause one backend (black hole): 0 errors, p99 below per-try + 200 ms, down in time; unpaused, back as in 1',
      cut: ['pause', (lab) => lab.pause(VICTIM)],
      mend: ['unpause', (lab) => lab.unpause(VICTIM)],
      downLimitMs: LIMITS.blackHoleDownMs,
      p99LimitMs: LIMITS.blackHoleP99Ms,
    }),
    outage({
      key: '4-partition',
      title: '4. Network partition of one backend (disconnect): as 3; reconnected, back as in 1',
      skip: driver.noPartition && `containers only: ${driver.noPartition}`,
      cut: ['disconnect', (lab) => lab.disconnect!(VICTIM)],
      mend: ['reconnect', (lab) => lab.reconnect!(VICTIM)],
      downLimitMs: LIMITS.blackHoleDownMs,
      p99LimitMs: LIMITS.blackHoleP99Ms,
    }),
    {
      key: '5-all-killed',
      title: '5. All backends killed: every answer a 503 within 100 ms; one restarted, 200s resume within rise × interval + 1 s',
      durationMs: 10_000,
      async run(s) {
        await s.until(2_000);
        await s.fault('SIGKILL all backends', () => Promise.all(BACKENDS.map((id) => s.lab.kill(id))));
        const allDeadAt = s.now();
        await s.until(allDeadAt + 2_000);
        const restartAt = await s.fault('restart backend-1', () => s.lab.start('backend-1'));
        const healthAt = await s.healthAnswers('backend-1');
        const run = await s.end();
        const resumeMs = msUntilServed(run, 'backend-1', healthAt);
        const down = sentBetween(run, allDeadAt, healthAt + (resumeMs ?? Infinity));
        s.report(run, {
          answersWhileDown: down.length,
          not503: down.filter((x) => x.status !== 503).length,
          slowest503Ms: Math.max(0, ...down.map((x) => x.ms)),
          healthAfterRestartMs: healthAt - restartAt,
          resumeMs,
        });
        expectEvery503Within(down, LIMITS.allDown503Ms);
        expectWithin('200s resume after the restarted backend answered /health', resumeMs, LIMITS.resumeMs);
      },
    },
    {
      key: '6-flapping',
      title: '6. Flapping /health (toggled every 700 ms for 20 s): at most 6 state changes, 0 errors',
      durationMs: 23_000,
      async run(s) {
        const changesSoFar = async (): Promise<number> => sumCounter((await httpRequest(`${s.lab.adminUrl}/metrics`)).body, 'lb_backend_state_changes_total', `backend="${VICTIM}"`);
        await s.until(1_000);
        const before = await changesSoFar();
        const flapAt = s.mark(`${VICTIM} /health toggles every ${LIMITS.flapToggleMs} ms`);
        for (let k = 0; k * LIMITS.flapToggleMs < LIMITS.flapForMs; k++) {
          await s.until(flapAt + k * LIMITS.flapToggleMs);
          await s.lab.chaos(VICTIM, { health: k % 2 === 0 ? 'fail' : 'pass' });
        }
        await s.until(flapAt + LIMITS.flapForMs);
        const stateChanges = (await changesSoFar()) - before;
        const flapEnd = await s.fault(`${VICTIM} /health passes`, () => s.lab.chaos(VICTIM, { health: 'pass' }));
        const run = await s.end();
        const polled = s.states.changes.filter((c) => c.backend === VICTIM && c.atMs >= flapAt && c.atMs <= flapEnd).length;
        s.report(run, { stateChanges, polledStateChanges: polled });
        expectAtMost('state changes while /health flapped', stateChanges, LIMITS.flapChanges);
        expectNoClientErrors(run);
      },
    },
    {
      key: '7-outlier',
      title: '7. One backend answers 500 to half its requests: ejected within 2 s, under 5% of traffic while ejected',
      durationMs: 10_000,
      options: { outlierDetection: { consecutiveFailures: 3, baseEjectionTime: '2s', maxEjectionTime: '10s', maxEjectionPercent: 50 } },
      async run(s) {
        await s.until(2_000);
        const failingAt = await s.fault(`${VICTIM} answers 500 to 50%`, () => s.lab.chaos(VICTIM, { errorRate: 0.5, errorStatus: 500 }));
        const run = await s.end();
        const ejected = (atMs: number): boolean => s.states.stateAt(VICTIM, atMs) === 'ejected';
        // Requests sent while the polls showed the backend ejected, leaving out 100 ms at each edge of an ejection.
        const whileEjected = run.samples.filter((x) => ejected(x.at) && ejected(x.at - 100) && ejected(x.at + 100));
        const figures = {
          ejectionMs: s.msUntilState(VICTIM, 'ejected', failingAt),
          ejections: s.states.changes.filter((c) => c.backend === VICTIM && c.to === 'ejected').length,
          requestsWhileEjected: whileEjected.length,
          shareWhileEjected: shareOf(whileEjected, VICTIM),
        };
        s.report(run, figures);
        expectWithin('ejected after it began answering 500', figures.ejectionMs, LIMITS.ejectionMs);
        assert.ok(whileEjected.length >= RATE, `only ${whileEjected.length} requests were sent while it was ejected`);
        expectShareBelow('share of traffic while ejected', figures.shareWhileEjected, LIMITS.ejectedShare);
      },
    },
    {
      key: '8-slow',
      title: '8. One backend 300 ms slower: under 10% of traffic with least-connections and ewma, about 1/3 with round-robin',
      durationMs: 15_000,
      // The backend is slow, not failing: 300 ms against the lab's 500 ms per-try and check timeouts left
      // 200 ms, and one CI run's host stall turned two tries into timeouts, took it out of round-robin
      // (share 0.116) and failed the scenario on something it does not measure.
      options: { perTry: '2s', healthTimeout: '900ms' },
      async run(s) {
        const phases = [
          { algorithm: 'round-robin', fromMs: 0 },
          { algorithm: 'least-connections', fromMs: 5_000 },
          { algorithm: 'ewma', fromMs: 10_000 },
        ];
        await s.fault(`${VICTIM} +${LIMITS.slowLatencyMs} ms`, () => s.lab.chaos(VICTIM, { latencyMs: LIMITS.slowLatencyMs }));
        for (const phase of phases.slice(1)) {
          await s.until(phase.fromMs);
          await s.fault(phase.algorithm, () => putJson(`${s.lab.adminUrl}/algorithm`, { name: phase.algorithm }));
        }
        const run = await s.end();
        // Each phase from 500 ms after its switch (the first one: after the latency was set) to the next switch.
        const share = (i: number): number => shareOf(sentBetween(run, phases[i]!.fromMs + 500, phases[i + 1]?.fromMs ?? Infinity), VICTIM);
        const shares = Object.fromEntries(phases.map((phase, i) => [phase.algorithm, Number(share(i).toFixed(3))]));
        s.report(run, { slowShare: shares });
        expectShareNear('slow backend share with round-robin', share(0), 1 / 3, LIMITS.shareTolerance);
        expectShareBelow('slow backend share with least-connections', share(1), LIMITS.slowShare);
        expectShareBelow('slow backend share with ewma', share(2), LIMITS.slowShare);
        expectNoClientErrors(run);
      },
    },
    {
      key: '9a-reload',
      title: '9a. Ten config reloads by SIGHUP under load: 0 errors',
      durationMs: 10_000,
      async run(s) {
        const variants: LabOptions[] = [{ algorithm: 'weighted-round-robin', weights: [3, 1, 1] }, { algorithm: 'round-robin' }];
        const reloads = 10;
        for (let i = 0; i < reloads; i++) {
          await s.until(1_000 + i * 800);
          await s.fault(`SIGHUP ${i + 1}`, () => s.lab.reload(variants[i % 2]!));
        }
        await sleep(500);
        const run = await s.end();
        const log = s.lab.balancerLog();
        const figures = { reloads: (log.match(/configuration reloaded \(SIGHUP\)/g) ?? []).length, refused: (log.match(/configuration refused/g) ?? []).length };
        s.report(run, figures);
        expectNoClientErrors(run);
        assert.equal(figures.reloads, reloads, 'every SIGHUP reloaded the configuration');
        assert.equal(figures.refused, 0, 'no reload was refused');
      },
    },
    {
      key: '9b-balancer-restart',
      title: '9b. Balancer restart under load: errors only inside the restart window, counted',
      durationMs: 10_000,
      async run(s) {
        await s.until(3_000);
        const windowStart = await s.fault('balancer restart', () => s.lab.restartBalancer());
        await waitFor('the balancer to answer /healthz again', async () => (await httpRequest(`${s.lab.adminUrl}/healthz`, { timeoutMs: 500 })).status === 200, 30_000, 20);
        const windowEnd = s.mark('balancer answers again');
        const run = await s.end();
        const inside = run.failures().filter((x) => x.at + x.ms >= windowStart && x.at <= windowEnd);
        s.report(run, {
          windowMs: windowEnd - windowStart,
          requestsInWindow: sentBetween(run, windowStart, windowEnd).length,
          errorsInWindow: inside.length,
          errorsOutside: run.failures().length - inside.length,
        });
        expectErrorsOnlyWithin(run, windowStart, windowEnd);
      },
    },
    upgradeScenario(),
  ];
  for (const scenario of scenarios) defineScenario(driver, scenario);
  for (const scenario of l4Scenarios()) {
    // The engine is how an http listener's tries reach a backend; a tcp listener relays without one.
    defineScenario(driver, testEngine === 'http-proxy' ? scenario : { ...scenario, skip: `a tcp listener does not use the engine (${testEngine}): the L4 scenarios run in the http-proxy pass` });
  }
  // Cluster mode: the same failures with two workers, whose reports the primary must add up (processes only, to bound the suite's time).
  if (driver.suite !== 'processes') return;
  for (const scenario of scenarios.filter((s) => ['1-sigkill', '3-pause', '7-outlier'].includes(s.key))) {
    defineScenario(driver, { ...scenario, key: `${scenario.key}-workers2`, title: `${scenario.title} (workers: 2)`, options: { ...scenario.options, workers: 2 } });
  }
}

interface WorkerInfo {
  pid: number;
  state: string;
}

/** Scenario 9c: two upgrades (SIGUSR2) 3 s apart under load, with two workers: no client error, every worker replaced, none left behind. */
function upgradeScenario(): Scenario {
  return {
    key: '9c-hitless-upgrade',
    title: '9c. Two hitless upgrades (SIGUSR2) 3 s apart under load, workers: 2: 0 errors, every worker new, no old one left',
    durationMs: 11_000,
    options: { workers: 2 },
    async run(s) {
      const workers = async (): Promise<WorkerInfo[]> => JSON.parse((await httpRequest(`${s.lab.adminUrl}/workers`)).body) as WorkerInfo[];
      const before = (await workers()).map((w) => w.pid);
      const upgradeMs: number[] = [];
      const seen = new Set(before);
      for (const atMs of [2_000, 5_000]) {
        await s.until(atMs);
        const servingBefore = new Set((await workers()).filter((w) => w.state === 'serving').map((w) => w.pid));
        const signalledAt = await s.fault('SIGUSR2 (upgrade)', () => s.lab.upgradeBalancer());
        await waitFor('fresh workers to serve', async () => {
          const serving = (await workers()).filter((w) => w.state === 'serving');
          return serving.length === 2 && serving.every((w) => !servingBefore.has(w.pid));
        }, 20_000, 50);
        upgradeMs.push(s.mark('fresh workers serve') - signalledAt);
        for (const w of await workers()) seen.add(w.pid);
      }
      const run = await s.end();
      await waitFor('the old workers to exit', async () => (await s.lab.balancerProcesses()) === 3, 15_000, 100);
      const after = (await workers()).map((w) => w.pid);
      const exitedLines = [...s.lab.balancerLog().matchAll(/worker (\d+) drained and exited/g)].map((m) => Number(m[1]));
      s.report(run, { upgradeMs, workersBefore: before, workersAfter: after, balancerProcesses: await s.lab.balancerProcesses(), drainedAndExited: exitedLines.length });
      expectNoClientErrors(run);
      assert.equal(after.filter((pid) => before.includes(pid)).length, 0, `every worker is new (before ${before}, after ${after})`);
      for (const pid of seen) if (!after.includes(pid)) assert.ok(exitedLines.includes(pid), `old worker ${pid} drained and exited`);
    },
  };
}

/** The L4 load: new connections a second through `echo`; each step (connect, greeting, echo) within 1 s; held connections ping every 200 ms. */
const TCP_RATE = 50;
const TCP_STEP_TIMEOUT_MS = 1_000;
const PING_EVERY_MS = 200;
const HELD = 15;
const OTHERS = BACKENDS.filter((id) => id !== VICTIM);
/** The spec's bound for a backend state decided by the primary to reach every worker. */
const STATE_PROPAGATION_MS = 100;
/** Worst case from a pause to the second failed check: each check starts up to interval + 10% jitter after the previous one ended, and fails after its timeout. */
const PAUSE_DETECTION_WORST_MS = fastHealth.fall * (INTERVAL_MS * 1.1 + CHECK_TIMEOUT_MS);

const L4_LIMITS = {
  /** every held connection on a killed backend is closed by then */
  heldClosedAfterKillMs: 1_000,
  /** the other held connections answered a ping this recently when they were closed by the client */
  heldLastEchoMs: 2 * PING_EVERY_MS + TCP_STEP_TIMEOUT_MS,
  /** the balancer's view of a drained backend's open connections is 0 this long after the clients closed them */
  drainedToZeroMs: 1_000,
};

async function tcpConnectsOk(lab: ChaosLab, backend: BackendId): Promise<number> {
  const metrics = (await httpRequest(`${lab.adminUrl}/metrics`)).body;
  return metricValue(metrics, 'lb_tcp_connections_total', { listener: ECHO_LISTENER, backend, result: 'ok' }) ?? 0;
}

const on = (held: HeldConnections, ids: readonly string[]): HeldConnection[] => held.connections.filter((c) => c.backend !== undefined && ids.includes(c.backend));
const describeHeld = (connections: readonly HeldConnection[]): string =>
  connections.map((c) => `#${c.index} ${c.backend} ${c.closedBy ?? 'open'}${c.detail ? ` (${c.detail})` : ''} at ${c.closedAt?.toFixed(0) ?? '-'} ms, ${c.pingsOk} echoes`).join('; ');

/** expectHeldOnEach: the held connections reached every backend (round-robin over 15 gives about 5 each). */
function expectHeldOnEach(held: HeldConnections): void {
  const counts = heldByBackend(held);
  for (const id of BACKENDS) assert.ok((counts[id] ?? 0) >= 1, `no held connection reached ${id}: ${JSON.stringify(counts)}`);
}

/** expectKeptWorking: these held connections answered every ping until the client closed them, and closed cleanly. */
function expectKeptWorking(what: string, connections: readonly HeldConnection[]): void {
  const broken = connections.filter((c) => c.closedBy !== 'client' || c.clean !== true || c.lastOkAt === undefined || c.closedAt! - c.lastOkAt > L4_LIMITS.heldLastEchoMs);
  assert.equal(broken.length, 0, `${what}: ${describeHeld(broken)}`);
}

/** The L4 scenarios of issue 12, each against the L4 lab (LabOptions.tcp). */
function l4Scenarios(): Scenario[] {
  return [
    {
      key: 'l4a-tcp-sigkill',
      title: `L4a. SIGKILL one backend under ${TCP_RATE} new TCP connections/s with ${HELD} held open: 0 failed new connections; those open on it (held, or in the middle of their exchange) closed and counted, the others keep working; back after its restart`,
      durationMs: 14_000,
      options: { tcp: {} },
      async run(s) {
        const held = await s.hold(HELD);
        expectHeldOnEach(held);
        await s.until(3_000);
        const okBefore = await tcpConnectsOk(s.lab, VICTIM);
        const killAt = await s.fault(`SIGKILL ${VICTIM}`, () => s.lab.kill(VICTIM));
        const goneAt = s.now();
        await s.settle(VICTIM, 'unhealthy', killAt, LIMITS.killedDownMs + 2_000);
        const okAfterKill = (await tcpConnectsOk(s.lab, VICTIM)) - okBefore;
        await s.until(Math.max(7_000, s.now() + 1_000));
        await s.fault(`restart ${VICTIM}`, () => s.lab.start(VICTIM));
        const healthAt = await s.healthAnswers(VICTIM);
        const run = await s.end();
        const victims = on(held, [VICTIM]);
        const others = on(held, OTHERS);
        const cut = run.failures().filter((x) => x.backend === VICTIM);
        const failedNew = run.failures().filter((x) => x.backend !== VICTIM);
        const figures = {
          detectionMs: s.msUntilState(VICTIM, 'unhealthy', killAt),
          killMs: goneAt - killAt,
          // A short connection that had its greeting from the victim was open on it when it died, like the held
          // ones: no balancer can move it. Every other failure is a new connection that failed.
          cutInTheMiddle: cut.length,
          failedNew: failedNew.length,
          // Of those, the ones sent from the SIGKILL until the driver saw the backend gone (the process exited, the container stopped).
          failedNewWhileDying: failedNew.filter((x) => x.at >= killAt && x.at < goneAt).length,
          // Connects to it that the balancer counted ok from just before the SIGKILL until it was marked down.
          balancerConnectsOkAroundKill: okAfterKill,
          rotationMs: msUntilServed(run, VICTIM, healthAt),
          heldByBackend: heldByBackend(held),
          heldOnVictimClosed: victims.filter((c) => c.closedBy !== 'client').length,
          heldOnVictimEnds: held.summary([VICTIM]).ends,
          heldOnVictimClosedMs: victims.map((c) => (c.closedAt === undefined ? null : Math.round(c.closedAt - killAt))),
          heldOthersEnds: held.summary(OTHERS).ends,
          heldOthersWorkingAfterKill: others.reduce((sum, c) => sum + (c.lastOkAt !== undefined && c.lastOkAt > killAt ? 1 : 0), 0),
          slowestNewMs: Math.max(0, ...run.samples.map((x) => x.ms)),
        };
        s.report(run, figures);
        const notClosed = victims.filter((c) => c.closedBy === 'client' || c.closedAt === undefined || c.closedAt - killAt > L4_LIMITS.heldClosedAfterKillMs);
        assert.equal(notClosed.length, 0, `every held connection on ${VICTIM} is closed within ${L4_LIMITS.heldClosedAfterKillMs} ms of the kill: ${describeHeld(notClosed)}`);
        expectKeptWorking(`held connections on ${OTHERS.join(' and ')}`, others);
        expectWithin('marked down after SIGKILL', figures.detectionMs, LIMITS.killedDownMs);
        expectWithin('back in rotation after its /health answered', figures.rotationMs, LIMITS.backInRotationMs);
        // The restarted backend-2 greets as well: a failure greeted by it after the kill was over is not one that was open on it when it died.
        const lateCut = cut.filter((x) => x.at > goneAt);
        assert.equal(lateCut.length, 0, `failed connections greeted by ${VICTIM} sent after it was gone: ${lateCut.map((x) => `${Math.round(x.at)} ms ${x.error}`).join(', ')}`);
        assert.equal(
          failedNew.length,
          0,
          `failed new connections (not greeted by ${VICTIM}), SIGKILL at ${Math.round(killAt)} ms, gone at ${Math.round(goneAt)} ms: ${failedNew.map((x) => `${Math.round(x.at)} ms +${Math.round(x.ms)} ms ${x.error}`).join(', ')}`,
        );
      },
    },
    {
      key: 'l4b-tcp-pause',
      title: `L4b. Pause one backend under ${TCP_RATE} new TCP connections/s: the handshake completes, the greeting never comes; failed connections only before it is marked down, at most its round-robin share of that window; then 0`,
      durationMs: 14_000,
      options: { tcp: { tcpCheckWitness: true } },
      async run(s) {
        const witness = watchStates(s.lab.adminUrl, s.started, 100, `/listeners/${TCP_CHECK_WITNESS}/backends`);
        try {
          await s.until(3_000);
          const okBefore = await tcpConnectsOk(s.lab, VICTIM);
          const pauseAt = await s.fault(`pause ${VICTIM}`, () => s.lab.pause(VICTIM));
          const pausedAt = s.now();
          await s.settle(VICTIM, 'unhealthy', pauseAt, LIMITS.blackHoleDownMs + 2_000);
          // The balancer's connects to the paused backend: counted as ok, since the kernel completed them.
          await sleep(STATE_PROPAGATION_MS + TCP_STEP_TIMEOUT_MS);
          const okWhilePaused = (await tcpConnectsOk(s.lab, VICTIM)) - okBefore;
          await s.until(9_000);
          const unpauseAt = await s.fault(`unpause ${VICTIM}`, () => s.lab.unpause(VICTIM));
          const healthAt = await s.healthAnswers(VICTIM);
          const run = await s.end();
          await witness.stop();

          const downAt = s.states.firstChange(VICTIM, 'unhealthy', pauseAt);
          // A new connection may be sent to the paused backend from the pause until the first poll that showed it
          // down, plus the time the primary's decision takes to reach the worker; one sent just before the pause is
          // exposed too if its exchange was not over when the backend stopped (the balancer accepts and connects a
          // few ms after the client's connect, later when the CPU is busy).
          const windowTo = (downAt ?? Infinity) + STATE_PROPAGATION_MS;
          const failures = run.failures();
          const exposed = run.samples.filter((x) => x.at < windowTo && x.at + x.ms >= pauseAt);
          const bound = Math.ceil(exposed.length / BACKENDS.length) + 1;
          // +2: the rounding of round-robin, and a connection in flight at the pause.
          const aPrioriBound = Math.ceil((TCP_RATE * (PAUSE_DETECTION_WORST_MS + STATE_PROPAGATION_MS)) / 1000 / BACKENDS.length) + 2;
          const outside = failures.filter((x) => x.at >= windowTo);
          // A connection greeted before the backend stopped waits for its echo instead; every other one connected
          // (the kernel completed the handshake) and then waited for its greeting.
          const inTheMiddle = failures.filter((x) => x.error === 'ECHO_TIMEOUT' && x.backend === VICTIM && x.at < pausedAt);
          const unexplained = failures.filter((x) => x.error !== 'GREETING_TIMEOUT' && !inTheMiddle.includes(x));
          const figures = {
            detectionMs: downAt === undefined ? undefined : downAt - pauseAt,
            connectionsExposed: exposed.length,
            failedSentBeforePause: failures.filter((x) => x.at < pauseAt).length,
            failedInTheMiddle: inTheMiddle.length,
            failedInWindow: failures.length - outside.length,
            boundInWindow: bound,
            aPrioriBound,
            failedAfterDetection: outside.length,
            failedFirstMs: failures.length ? Math.round(failures[0]!.at - pauseAt) : undefined,
            failedLastMs: failures.length ? Math.round(failures.at(-1)!.at - pauseAt) : undefined,
            balancerConnectsOkWhilePaused: okWhilePaused,
            tcpCheckChangesWhilePaused: witness.changes.filter((c) => c.backend === VICTIM && c.atMs >= pauseAt && c.atMs < unpauseAt).map((c) => c.to),
            tcpCheckStateWhilePaused: witness.stateAt(VICTIM, unpauseAt - 1),
            rotationMs: msUntilServed(run, VICTIM, healthAt),
          };
          s.report(run, figures);
          expectWithin('marked down after the pause (HTTP check on the backend\'s HTTP port)', figures.detectionMs, LIMITS.blackHoleDownMs);
          assert.equal(
            unexplained.length,
            0,
            `every failed connection connected and then waited for its greeting (or for its echo, when greeted just before the pause): ${unexplained.slice(0, 5).map((x) => `${Math.round(x.at)} ms ${x.error}${x.backend ? ` after the greeting of ${x.backend}` : ''}`).join(', ')}`,
          );
          assert.equal(outside.length, 0, `failed connections sent ${STATE_PROPAGATION_MS} ms or more after the poll that showed ${VICTIM} down (${Math.round(windowTo)} ms): ${outside.slice(0, 5).map((x) => `${Math.round(x.at)} ms ${x.error}`).join(', ')}`);
          expectAtMost('failed new connections while the pause was undetected (its round-robin share of those exposed + 1)', failures.length, bound);
          expectAtMost(`failed new connections (a priori: its share of rate × (worst detection ${PAUSE_DETECTION_WORST_MS} ms + propagation))`, failures.length, aPrioriBound);
          assert.ok(failures.length >= 1, 'some new connection was sent to the paused backend before it was marked down');
          assert.deepEqual(figures.tcpCheckChangesWhilePaused, [], `the tcp (connect) check kept ${VICTIM} healthy while paused`);
          expectWithin('back in rotation after its /health answered', figures.rotationMs, LIMITS.backInRotationMs);
        } finally {
          await witness.stop();
        }
      },
    },
    {
      key: 'l4c-tcp-drain',
      title: `L4c. Drain one backend with ${HELD} connections held open: no new connection reaches it; the open ones keep working until their clients close them`,
      durationMs: 11_000,
      options: { tcp: {} },
      async run(s) {
        const held = await s.hold(HELD);
        expectHeldOnEach(held);
        await s.until(2_000);
        const drainAt = await s.fault(`drain ${VICTIM}`, async () => {
          const answer = await httpRequest(`${s.lab.adminUrl}/listeners/${ECHO_LISTENER}/backends/${VICTIM}`, { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ drain: true }) });
          assert.equal(answer.status, 200, `PATCH drain: ${answer.status} ${answer.body}`);
        });
        const answeredAt = s.now();
        await s.settle(VICTIM, 'draining', drainAt, 2_000);
        await s.until(9_000);
        const closeAt = await s.fault('clients close the held connections', () => held.close());
        const { ms: toZeroMs } = await waitFor(
          `${VICTIM}'s open connections to be 0 in the balancer's view`,
          async () => (await getJson<{ id: string; activeRequests: number }[]>(`${s.lab.adminUrl}/listeners/${ECHO_LISTENER}/backends`)).find((b) => b.id === VICTIM)?.activeRequests === 0,
          L4_LIMITS.drainedToZeroMs + 2_000,
          20,
        ).catch(() => ({ ms: undefined }));
        const run = await s.end();
        const victims = on(held, [VICTIM]);
        const reached = (fromMs: number, toMs: number): number => sentBetween(run, fromMs, toMs).filter((x) => x.backend === VICTIM).length;
        const figures = {
          drainingSeenMs: s.msUntilState(VICTIM, 'draining', drainAt),
          patchMs: answeredAt - drainAt,
          newOnVictimBeforeAnswerPlus100: reached(drainAt, answeredAt + STATE_PROPAGATION_MS),
          newOnVictimAfter: reached(answeredAt + STATE_PROPAGATION_MS, Infinity),
          heldByBackend: heldByBackend(held),
          heldOnVictimEchoesWhileDraining: victims.map((c) => c.pingsOk),
          heldOnVictimEnds: held.summary([VICTIM]).ends,
          heldOnVictimOpenMsAfterDrain: Math.round(closeAt - drainAt),
          victimOpenToZeroMs: toZeroMs,
          drainTimeout: ECHO_TIMEOUTS.drain,
        };
        s.report(run, figures);
        expectNoClientErrors(run);
        assert.equal(figures.newOnVictimAfter, 0, `no new connection reaches ${VICTIM} from ${STATE_PROPAGATION_MS} ms after PATCH answered`);
        expectKeptWorking(`held connections on the draining ${VICTIM}`, victims);
        expectKeptWorking(`held connections on ${OTHERS.join(' and ')}`, on(held, OTHERS));
        expectWithin(`${VICTIM}'s open connections 0 in the balancer's view after the clients closed them`, toZeroMs, L4_LIMITS.drainedToZeroMs);
      },
    },
  ];
}
