/**
 * The status page's script: polls status.json every second and renders one section per listener
 * (its algorithm with a switch, summary and backends) and, once for the whole balancer, the workers
 * and the events. A listener's algorithm is switched through PUT /listeners/<name>/algorithm.
 * Compiled by this folder's tsconfig.json (DOM, no Node) and inlined into page.html by ../status-page.ts.
 */
import type { StatusBackendView, StatusDocument, StatusEvent, StatusListener, StatusListenerMode, StatusWorker } from '../status-document.js';

const POLL_MS = 1000;
const POLL_TIMEOUT_MS = 2500;
const TOKEN_KEY = 'lb-admin-token';
/** The one listener of a file without `listeners:`: its section has no heading, as the page had before there were several. */
const DEFAULT_LISTENER = 'default';

function byId<T extends HTMLElement>(id: string, type: { new (): T; prototype: T }): T {
  const element = document.getElementById(id);
  if (!(element instanceof type)) throw new Error(`status page: no ${type.name} #${id}`);
  return element;
}

/** The parts of the page that are there once, whatever the number of listeners. */
const ui = {
  connection: byId('connection', HTMLElement),
  banner: byId('disconnected', HTMLElement),
  bannerDetail: byId('disconnected-detail', HTMLElement),
  headerControls: byId('header-controls', HTMLElement),
  tokenField: byId('token-field', HTMLElement),
  token: byId('admin-token', HTMLInputElement),
  tokenSaved: byId('token-saved', HTMLElement),
  forgetToken: byId('forget-token', HTMLButtonElement),
  listeners: byId('listeners', HTMLElement),
  template: byId('listener-template', HTMLTemplateElement),
  workerRows: byId('worker-rows', HTMLTableSectionElement),
  noWorkers: byId('no-workers', HTMLElement),
  events: byId('events', HTMLOListElement),
  noEvents: byId('no-events', HTMLElement),
  updated: byId('updated', HTMLElement),
};

const state = { tokenRequired: false, lastOk: 0, eventsKey: '', layout: '', several: false };

/** What the numbers of a listener's mode are called: a tcp listener counts connections, not requests. */
interface Wording {
  active: string;
  activeTitle: string;
  rps: string;
  rpsTitle: string;
  p50: string;
  p99: string;
  latencyTitle: string;
  summaryRps: string;
  caption: string;
  sparkline: string;
}

const WORDING: Record<StatusListenerMode, Wording> = {
  http: {
    active: 'Active',
    activeTitle: 'requests in flight',
    rps: 'Req/s',
    rpsTitle: 'requests per second over the last 10 s',
    p50: 'p50',
    p99: 'p99',
    latencyTitle: 'latency over the last 10 s',
    summaryRps: 'Requests/s (last 10 s)',
    caption: 'Backends: state, weight, requests in flight, and traffic over the last 10 seconds',
    sparkline: 'Requests per second',
  },
  tcp: {
    active: 'Open',
    activeTitle: 'client connections open now',
    rps: 'Conn/s',
    rpsTitle: 'connections that ended, per second over the last 10 s',
    p50: 'p50 time',
    p99: 'p99 time',
    latencyTitle: 'how long connections lasted, over the last 10 s',
    summaryRps: 'Connections/s (last 10 s)',
    caption: 'Backends: state, weight, open connections, and connections over the last 10 seconds',
    sparkline: 'Connections per second',
  },
};

const CELLS = ['url', 'state', 'weight', 'active', 'rps', 'errors', 'p50', 'p99', 'spark'] as const;

interface Sparkline {
  root: SVGSVGElement;
  title: SVGTitleElement;
  area: SVGPathElement;
  line: SVGPathElement;
  errors: SVGPathElement;
}

interface Row {
  tr: HTMLTableRowElement;
  cells: Record<(typeof CELLS)[number], HTMLTableCellElement>;
  badge: HTMLSpanElement;
  spark: Sparkline;
}

/** One listener's section and what the page remembers about it between polls. */
interface ListenerSection {
  name: string;
  mode: StatusListenerMode;
  root: HTMLElement;
  head: HTMLElement;
  modeBadge: HTMLElement;
  address: HTMLElement;
  heading: HTMLElement;
  backendsHeading: HTMLElement;
  form: HTMLFormElement;
  current: HTMLElement;
  engineField: HTMLElement;
  engine: HTMLElement;
  select: HTMLSelectElement;
  label: HTMLLabelElement;
  apply: HTMLButtonElement;
  message: HTMLElement;
  tbody: HTMLTableSectionElement;
  noBackends: HTMLElement;
  windowLabel: HTMLElement;
  summary: { up: HTMLElement; rps: HTMLElement; errors: HTMLElement; refused: HTMLElement; open: HTMLElement; opened: HTMLElement };
  rows: Map<string, Row>;
  algorithm: string;
  algorithmsKey: string;
  selectTouched: boolean;
  busy: boolean;
  messageTimer: number;
  up: number;
  total: number;
}

const WORKER_CELLS = ['state', 'started', 'active', 'requests', 'connections'] as const;

interface WorkerRow {
  tr: HTMLTableRowElement;
  cells: Record<(typeof WORKER_CELLS)[number], HTMLTableCellElement>;
  badge: HTMLSpanElement;
  started: HTMLTimeElement;
}

const sections = new Map<string, ListenerSection>();
const workerRows = new Map<number, WorkerRow>();
let timer = 0;
let polling = false;

function time(value: string | number): string {
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? '' : date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
}

function rate(value: number): string {
  if (!value) return '0';
  if (value < 10) return value.toFixed(1);
  return Math.round(value).toLocaleString('en-US');
}

function percent(ratio: number, rps: number): string {
  if (!rps) return '–';
  const p = ratio * 100;
  if (p === 0) return '0%';
  if (p < 1) return `${p.toFixed(2)}%`;
  if (p < 10) return `${p.toFixed(1)}%`;
  return `${Math.round(p)}%`;
}

function count(value: number): string {
  return value.toLocaleString('en-US');
}

/** ago: how long before now, in the largest unit that fits: "12 s ago", "5 min ago", "3 h ago", "2 d ago". */
function ago(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 172800) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

function millis(ms: number): string {
  if (!ms) return '–';
  if (ms < 1) return `${ms.toFixed(2)} ms`;
  if (ms < 10) return `${ms.toFixed(1)} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return `${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`;
}

function setText(node: Node, text: string): void {
  if (node.textContent !== text) node.textContent = text;
}

function errorText(error: unknown, fallback: string): string {
  return error instanceof Error && error.message ? error.message : fallback;
}

// ---- connection ----------------------------------------------------------------------------

function showLive(): void {
  state.lastOk = Date.now();
  document.body.dataset.connection = 'live';
  setText(ui.connection, 'live');
  ui.banner.hidden = true;
  setText(ui.updated, `updated ${time(state.lastOk)}`);
  updateTitle();
}

function showDisconnected(error: unknown): void {
  const now = Date.now();
  document.body.dataset.connection = 'disconnected';
  setText(ui.connection, 'disconnected');
  const since = state.lastOk ? `since ${time(state.lastOk)} (${Math.round((now - state.lastOk) / 1000)} s ago)` : 'yet';
  setText(ui.bannerDetail, `No answer from the balancer ${since}: ${errorText(error, 'request failed')}. Retrying every second; the figures below are stale.`);
  ui.banner.hidden = false;
  updateTitle();
}

function updateTitle(): void {
  const live = document.body.dataset.connection === 'live';
  let up = 0;
  let total = 0;
  for (const section of sections.values()) {
    up += section.up;
    total += section.total;
  }
  const title = total ? `${up}/${total} up · Load balancer` : 'Load balancer';
  document.title = live ? title : 'Disconnected · Load balancer';
}

function schedule(ms: number): void {
  clearTimeout(timer);
  timer = setTimeout(() => void poll(), ms);
}

function pollNow(): void {
  if (!polling) schedule(0);
}

async function poll(): Promise<void> {
  polling = true;
  const started = Date.now();
  try {
    const res = await fetch('status.json', { cache: 'no-store', headers: { accept: 'application/json' }, signal: AbortSignal.timeout(POLL_TIMEOUT_MS) });
    if (!res.ok) throw new Error(`status.json answered HTTP ${res.status}`);
    render((await res.json()) as StatusDocument);
    showLive();
  } catch (error) {
    const timedOut = error instanceof DOMException && error.name === 'TimeoutError';
    showDisconnected(timedOut ? new Error(`no answer within ${POLL_TIMEOUT_MS / 1000} s`) : error);
  } finally {
    polling = false;
    schedule(Math.max(0, POLL_MS - (Date.now() - started)));
  }
}

// ---- rendering -----------------------------------------------------------------------------

/** listenersOf: the document's listeners; a balancer from before there were several sends only the top-level fields. */
function listenersOf(data: StatusDocument): StatusListener[] {
  if (Array.isArray(data.listeners) && data.listeners.length > 0) return data.listeners;
  return [{ name: DEFAULT_LISTENER, mode: 'http', tls: false, address: '', algorithm: data.algorithm, engine: data.engine, backends: data.backends, refused: data.refused }];
}

function render(data: StatusDocument): void {
  state.tokenRequired = data.tokenRequired;
  renderTokenField();
  const listeners = listenersOf(data);
  renderListeners(listeners, data.algorithms);
  renderWorkers(data.workers, Date.parse(data.generatedAt));
  renderEvents(data.events);
}

function renderListeners(listeners: StatusListener[], algorithms: readonly string[]): void {
  const seen = new Set<string>();
  let previous: HTMLElement | null = null;
  for (const listener of listeners) {
    seen.add(listener.name);
    let section = sections.get(listener.name);
    if (!section || section.mode !== listener.mode) {
      if (section) dropSection(section);
      section = createSection(listener);
    }
    renderHead(section, listener);
    renderAlgorithm(section, listener, algorithms);
    renderBackends(section, listener.backends);
    renderSummary(section, listener);
    const expectedNext: ChildNode | null = previous ? previous.nextSibling : ui.listeners.firstChild;
    if (expectedNext !== section.root) ui.listeners.insertBefore(section.root, expectedNext);
    previous = section.root;
  }
  for (const [name, section] of sections) {
    if (seen.has(name)) continue;
    dropSection(section);
  }
  layout(listeners);
}

/** dropSection removes a listener's section and its form, wherever it is; the token field, which may sit in that form, stays. */
function dropSection(section: ListenerSection): void {
  ui.headerControls.append(ui.tokenField, ui.tokenSaved);
  section.root.remove();
  section.form.remove();
  sections.delete(section.name);
}

/**
 * layout: with one listener its algorithm form sits in the page header and a "default" listener
 * has no heading, as the page was before there were several; with several, each section has a
 * heading with its name, mode, address and its own form.
 */
function layout(listeners: StatusListener[]): void {
  const several = listeners.length > 1;
  const key = listeners.map((l) => `${l.name}:${l.mode}`).join(',');
  if (key === state.layout) return;
  state.layout = key;
  state.several = several;
  state.eventsKey = ''; // the events show their listener only with several
  document.body.dataset.layout = several ? 'several' : 'single';
  listeners.forEach((listener, index) => {
    const section = sections.get(listener.name)!;
    assignIds(section, index === 0);
    if (several) {
      section.head.append(section.form);
      // One token for every listener: it sits in the page header.
      ui.headerControls.append(ui.tokenField, ui.tokenSaved);
    } else {
      ui.headerControls.prepend(section.form);
      // Inside the form, before its button, as it always was: Enter in the token field switches.
      section.form.insertBefore(ui.tokenField, section.apply);
      section.form.insertBefore(ui.tokenSaved, section.apply);
    }
    const anonymous = !several && section.name === DEFAULT_LISTENER;
    section.head.hidden = anonymous;
    section.root.setAttribute('aria-labelledby', anonymous ? section.backendsHeading.id : section.heading.id);
  });
}

/**
 * assignIds: the first listener's elements get the ids the page always had (the unprefixed admin
 * calls address that listener too); the others' end in --<name>. Again whenever the listeners
 * change, since a reload may add or remove any of them.
 */
function assignIds(section: ListenerSection, first: boolean): void {
  // The form may sit in the page header, outside the section.
  for (const element of [section.form, ...section.form.querySelectorAll<HTMLElement>('[data-part]'), ...section.root.querySelectorAll<HTMLElement>('[data-part]')]) {
    const name = element.dataset.part!;
    element.id = first ? name : `${name}--${section.name}`;
  }
  section.label.htmlFor = section.select.id;
}

/** part finds an element of a section by its data-part, of the type expected. */
function part<T extends Element>(root: ParentNode, name: string, type: { new (): T; prototype: T }): T {
  const element = root.querySelector(`[data-part="${name}"]`);
  if (!(element instanceof type)) throw new Error(`status page: the listener template has no ${type.name} [data-part="${name}"]`);
  return element;
}

/** createSection clones the listener template; layout() gives its elements their ids and puts its form in place. */
function createSection(listener: StatusListener): ListenerSection {
  const fragment = ui.template.content.cloneNode(true) as DocumentFragment;
  const root = fragment.querySelector('section.listener');
  if (!(root instanceof HTMLElement)) throw new Error('status page: the listener template has no section.listener');
  root.dataset.listener = listener.name;
  root.dataset.mode = listener.mode;
  const select = part(root, 'algorithm-select', HTMLSelectElement);
  setText(part(root, 'listener-name', HTMLElement), listener.name);
  const form = part(root, 'algorithm-form', HTMLFormElement);
  form.setAttribute('aria-label', `Load-balancing algorithm of listener ${listener.name}`);

  const words = WORDING[listener.mode];
  const label = (name: string, text: string, title?: string): void => {
    const element = part(root, name, HTMLElement);
    setText(element, text);
    if (title) element.title = title;
  };
  label('head-active', words.active, words.activeTitle);
  label('head-rps', words.rps, words.rpsTitle);
  label('head-p50', words.p50, words.latencyTitle);
  label('head-p99', words.p99, words.latencyTitle);
  label('summary-rps-label', words.summaryRps);
  label('backends-caption', words.caption);

  const section: ListenerSection = {
    name: listener.name,
    mode: listener.mode,
    root,
    head: part(root, 'listener-head', HTMLElement),
    modeBadge: part(root, 'listener-mode', HTMLElement),
    address: part(root, 'listener-address', HTMLElement),
    heading: part(root, 'listener-heading', HTMLElement),
    backendsHeading: part(root, 'backends-heading', HTMLElement),
    form,
    current: part(root, 'algorithm-current', HTMLElement),
    engineField: part(root, 'engine-field', HTMLElement),
    engine: part(root, 'engine-current', HTMLElement),
    select,
    label: part(root, 'algorithm-label', HTMLLabelElement),
    apply: part(root, 'algorithm-apply', HTMLButtonElement),
    message: part(root, 'algorithm-message', HTMLElement),
    tbody: part(root, 'backend-rows', HTMLTableSectionElement),
    noBackends: part(root, 'no-backends', HTMLElement),
    windowLabel: part(root, 'window-label', HTMLElement),
    summary: {
      up: part(root, 'summary-up', HTMLElement),
      rps: part(root, 'summary-rps', HTMLElement),
      errors: part(root, 'summary-errors', HTMLElement),
      refused: part(root, 'summary-refused', HTMLElement),
      open: part(root, 'summary-open', HTMLElement),
      opened: part(root, 'summary-opened', HTMLElement),
    },
    rows: new Map(),
    algorithm: '',
    algorithmsKey: '',
    selectTouched: false,
    busy: false,
    messageTimer: 0,
    up: 0,
    total: 0,
  };
  // The engine forwards HTTP requests; a tcp listener relays bytes and has none to show.
  section.engineField.hidden = listener.mode === 'tcp';
  select.addEventListener('change', () => {
    section.selectTouched = select.value !== section.algorithm;
    showMessage(section, '', '');
    updateApply(section);
  });
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void switchAlgorithm(section, select.value);
  });
  sections.set(listener.name, section);
  return section;
}

/** renderHead: the mode (https and tcp + tls where it terminates TLS) and the address of the section's heading. */
function renderHead(section: ListenerSection, listener: StatusListener): void {
  setText(section.modeBadge, listener.mode === 'http' ? (listener.tls ? 'https' : 'http') : listener.tls ? 'tcp + tls' : 'tcp');
  section.modeBadge.title = `${listener.mode} listener${listener.tls ? ', terminating TLS' : ''}`;
  setText(section.address, listener.address);
}

function renderAlgorithm(section: ListenerSection, listener: StatusListener, algorithms: readonly string[]): void {
  section.algorithm = listener.algorithm;
  setText(section.current, listener.algorithm);
  setText(section.engine, listener.engine);
  const key = algorithms.join(',');
  if (key !== section.algorithmsKey) {
    section.algorithmsKey = key;
    section.select.replaceChildren(...algorithms.map((name) => new Option(name, name)));
  }
  if (!section.selectTouched) section.select.value = listener.algorithm;
  updateApply(section);
}

function renderTokenField(): void {
  const saved = Boolean(sessionStorage.getItem(TOKEN_KEY));
  ui.tokenField.hidden = !state.tokenRequired || saved;
  ui.tokenSaved.hidden = !state.tokenRequired || !saved;
}

function updateApply(section: ListenerSection): void {
  section.apply.disabled = section.busy || !section.select.value || section.select.value === section.algorithm;
}

function createRow(section: ListenerSection, id: string): Row {
  const tr = document.createElement('tr');
  tr.dataset.backend = id;
  const name = document.createElement('th');
  name.scope = 'row';
  name.textContent = id;
  tr.append(name);
  const cells = Object.fromEntries(
    CELLS.map((key) => {
      const td = document.createElement('td');
      td.className = key === 'url' || key === 'state' || key === 'spark' ? key : key === 'errors' ? 'num errors http-only' : `num ${key}`;
      tr.append(td);
      return [key, td];
    }),
  ) as Row['cells'];
  const badge = document.createElement('span');
  badge.className = 'badge';
  cells.state.append(badge);
  const spark = createSparkline();
  cells.spark.append(spark.root);
  const row = { tr, cells, badge, spark };
  section.rows.set(id, row);
  return row;
}

/** placeRow puts a row right after the previous one, moving it only when it is elsewhere (a moved row would lose hover and selection). */
function placeRow(body: HTMLElement, tr: HTMLTableRowElement, previous: HTMLTableRowElement | null): HTMLTableRowElement {
  const expectedNext: ChildNode | null = previous ? previous.nextSibling : body.firstChild;
  if (expectedNext !== tr) body.insertBefore(tr, expectedNext);
  return tr;
}

/** dropUnseen removes the rows whose key was not in this poll. */
function dropUnseen<K>(table: Map<K, { tr: HTMLTableRowElement }>, seen: ReadonlySet<K>): void {
  for (const [key, row] of table) {
    if (seen.has(key)) continue;
    row.tr.remove();
    table.delete(key);
  }
}

function renderBackends(section: ListenerSection, backends: StatusBackendView[]): void {
  const seen = new Set<string>();
  let previous: HTMLTableRowElement | null = null;
  for (const b of backends) {
    seen.add(b.id);
    const row = section.rows.get(b.id) ?? createRow(section, b.id);
    const { cells } = row;
    if (row.tr.dataset.state !== b.state) row.tr.dataset.state = b.state;
    setText(cells.url, b.url);
    setText(row.badge, b.state);
    row.badge.dataset.state = b.state;
    setText(cells.weight, String(b.weight));
    setText(cells.active, String(b.activeRequests));
    setText(cells.rps, rate(b.rps));
    setText(cells.errors, percent(b.errorRate, b.rps));
    cells.errors.classList.toggle('bad', b.rps > 0 && b.errorRate >= 0.01);
    cells.errors.classList.toggle('warn', b.rps > 0 && b.errorRate > 0 && b.errorRate < 0.01);
    setText(cells.p50, millis(b.p50Ms));
    setText(cells.p99, millis(b.p99Ms));
    drawSparkline(row.spark, b.series, WORDING[section.mode].sparkline);
    previous = placeRow(section.tbody, row.tr, previous);
  }
  dropUnseen(section.rows, seen);
  section.noBackends.hidden = backends.length > 0;
  section.up = backends.filter((b) => b.state === 'healthy').length;
  section.total = backends.length;
}

function createWorkerRow(pid: number): WorkerRow {
  const tr = document.createElement('tr');
  tr.dataset.pid = String(pid);
  const name = document.createElement('th');
  name.scope = 'row';
  name.className = 'pid';
  name.textContent = String(pid);
  tr.append(name);
  const cells = Object.fromEntries(
    WORKER_CELLS.map((key) => {
      const td = document.createElement('td');
      td.className = key === 'state' || key === 'started' ? key : `num ${key}`;
      tr.append(td);
      return [key, td];
    }),
  ) as WorkerRow['cells'];
  const badge = document.createElement('span');
  badge.className = 'badge';
  cells.state.append(badge);
  const started = document.createElement('time');
  cells.started.append(started);
  const row = { tr, cells, badge, started };
  workerRows.set(pid, row);
  return row;
}

/** renderWorkers: one row per traffic worker, oldest first; "started" is measured on the balancer's clock (generatedAt), not the browser's. */
function renderWorkers(workers: StatusWorker[], now: number): void {
  const seen = new Set<number>();
  let previous: HTMLTableRowElement | null = null;
  for (const w of workers) {
    seen.add(w.pid);
    const row = workerRows.get(w.pid) ?? createWorkerRow(w.pid);
    const { cells } = row;
    if (row.tr.dataset.state !== w.state) row.tr.dataset.state = w.state;
    setText(row.badge, w.state);
    row.badge.dataset.state = w.state;
    if (row.started.dateTime !== w.startedAt) {
      row.started.dateTime = w.startedAt;
      row.started.title = new Date(w.startedAt).toLocaleString();
    }
    setText(row.started, ago(now - Date.parse(w.startedAt)));
    setText(cells.active, count(w.activeRequests));
    setText(cells.requests, count(w.totalRequests));
    setText(cells.connections, `${count(w.connections)} / ${count(w.acceptedConnections)}`);
    previous = placeRow(ui.workerRows, row.tr, previous);
  }
  dropUnseen(workerRows, seen);
  ui.noWorkers.hidden = workers.length > 0;
}

const SVG_NS = 'http://www.w3.org/2000/svg';
const SPARK_W = 132;
const SPARK_H = 28;

function svg<K extends keyof SVGElementTagNameMap>(name: K, attributes: Record<string, string | number> = {}): SVGElementTagNameMap[K] {
  const element = document.createElementNS(SVG_NS, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, String(value));
  return element;
}

function createSparkline(): Sparkline {
  const root = svg('svg', { class: 'spark', width: SPARK_W, height: SPARK_H, viewBox: `0 0 ${SPARK_W} ${SPARK_H}`, role: 'img' });
  const title = svg('title');
  const base = svg('line', { class: 'base', x1: 0, x2: SPARK_W, y1: SPARK_H - 0.5, y2: SPARK_H - 0.5 });
  const area = svg('path', { class: 'area' });
  const line = svg('path', { class: 'line' });
  const errors = svg('path', { class: 'errors' });
  root.append(title, base, area, line, errors);
  return { root, title, area, line, errors };
}

function drawSparkline(spark: Sparkline, series: StatusBackendView['series'], what: string): void {
  const values = series.rps;
  const n = values.length;
  const max = Math.max(1, ...values);
  const errorCounts = values.map((v, i) => v * (series.errorRate[i] ?? 0));
  const errorPeak = Math.max(0, ...errorCounts);
  const step = n > 1 ? SPARK_W / (n - 1) : SPARK_W;
  const y = (v: number): string => (SPARK_H - 1 - (v / max) * (SPARK_H - 3)).toFixed(1);
  const line = values.map((v, i) => `${i ? 'L' : 'M'}${(i * step).toFixed(1)},${y(v)}`).join('');
  spark.line.setAttribute('d', line);
  spark.area.setAttribute('d', n ? `${line}L${((n - 1) * step).toFixed(1)},${SPARK_H}L0,${SPARK_H}Z` : '');
  const bars = errorCounts.map((e, i) => (e > 0 ? `M${(i * step).toFixed(1)},${SPARK_H}V${Math.min(Number(y(e)), SPARK_H - 2).toFixed(1)}` : ''));
  spark.errors.setAttribute('d', bars.join(''));
  const peak = values.some((v) => v > 0) ? max : 0;
  const label =
    `${what} over the last ${n} s: now ${rate(values[n - 1] ?? 0)}, peak ${rate(peak)}` +
    (errorPeak > 0 ? `; errors peak ${rate(errorPeak)} per second` : '; no errors');
  spark.root.setAttribute('aria-label', label);
  setText(spark.title, label);
}

function renderSummary(section: ListenerSection, listener: StatusListener): void {
  const { summary } = section;
  let rps = 0;
  let errors = 0;
  let open = 0;
  let opened = 0;
  for (const b of listener.backends) {
    rps += b.rps;
    errors += b.rps * b.errorRate;
    open += b.activeRequests;
    opened += b.totalRequests;
  }
  const refused = listener.refused.rps;
  const all = rps + refused;
  setText(summary.up, `${section.up} of ${section.total}`);
  summary.up.classList.toggle('bad', section.total > 0 && section.up < section.total);
  setText(summary.rps, rate(all));
  setText(summary.errors, percent(all ? (errors + refused) / all : 0, all));
  summary.errors.classList.toggle('bad', all > 0 && (errors + refused) / all >= 0.01);
  setText(summary.refused, rate(refused));
  summary.refused.classList.toggle('bad', refused > 0);
  setText(summary.open, count(open));
  setText(summary.opened, count(opened));
  const first = listener.backends[0];
  if (first) setText(section.windowLabel, `Last ${first.series.rps.length} s`);
}

function renderEvents(events: StatusEvent[]): void {
  const newest = events[0];
  const key = `${events.length}|${newest ? newest.at + newest.message + (newest.listener ?? '') : ''}`;
  if (key === state.eventsKey) return;
  state.eventsKey = key;
  ui.events.replaceChildren(...events.map(eventItem));
  ui.noEvents.hidden = events.length > 0;
}

function eventItem(event: StatusEvent): HTMLLIElement {
  const li = document.createElement('li');
  li.dataset.kind = event.kind;
  const when = document.createElement('time');
  when.dateTime = event.at;
  when.textContent = time(event.at);
  const kind = document.createElement('span');
  kind.className = 'kind';
  kind.dataset.kind = event.kind;
  kind.textContent = event.kind;
  const message = document.createElement('span');
  message.className = 'event-message';
  // With several listeners each event names its own; the balancer's own events (workers, refused reloads) name none.
  if (state.several && event.listener !== undefined) {
    li.dataset.listener = event.listener;
    const tag = document.createElement('span');
    tag.className = 'listener-tag';
    tag.textContent = event.listener;
    message.append(tag, ' ');
  }
  message.append(event.message);
  li.append(when, kind, message);
  return li;
}

// ---- switching the algorithm ---------------------------------------------------------------

/** An admin API refusal: {"error": {"code", "message", "problems"?}}, read defensively since it is any answer's body. */
interface ApiErrorBody {
  error?: { message?: string; problems?: (string | { path?: string; message?: string } | null)[] };
}

/** showMessage reports the outcome of a switch beside the listener's form; confirmations fade after a few seconds, errors stay until the next action. */
function showMessage(section: ListenerSection, kind: '' | 'ok' | 'error', text: string): void {
  clearTimeout(section.messageTimer);
  section.message.dataset.kind = kind;
  section.message.textContent = text;
  if (kind === 'ok') section.messageTimer = setTimeout(() => showMessage(section, '', ''), 6000);
}

function describeError(res: Response, text: string): string {
  try {
    const error = (JSON.parse(text) as ApiErrorBody | null)?.error;
    if (error?.message) {
      const problems = (error.problems ?? []).map((p) => {
        if (typeof p === 'string') return p;
        if (p?.message) return (p.path ? `${p.path}: ` : '') + p.message;
        return JSON.stringify(p);
      });
      const joined = problems.join('; ');
      return error.message + (problems.length && joined !== error.message ? ` (${joined})` : '');
    }
  } catch {
    // not JSON: fall through
  }
  return `HTTP ${res.status}${text ? `: ${text.slice(0, 200)}` : ''}`;
}

/** listenerPath: where a write call about one listener goes: /listeners/<name>/<path>. */
function listenerPath(section: ListenerSection, path: string): string {
  return `/listeners/${encodeURIComponent(section.name)}/${path}`;
}

async function switchAlgorithm(section: ListenerSection, name: string): Promise<void> {
  if (!name || name === section.algorithm) return;
  const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' };
  let token = '';
  if (state.tokenRequired) {
    token = ui.token.value.trim() || sessionStorage.getItem(TOKEN_KEY) || '';
    if (!token) {
      ui.tokenField.hidden = false;
      showMessage(section, 'error', 'This balancer needs the admin token for changes: enter it first.');
      ui.token.focus();
      return;
    }
    headers.authorization = `Bearer ${token}`;
  }
  section.busy = true;
  updateApply(section);
  showMessage(section, '', `Switching to ${name}…`);
  try {
    const res = await fetch(listenerPath(section, 'algorithm'), { method: 'PUT', headers, body: JSON.stringify({ name }) });
    const text = await res.text();
    if (res.status === 401 || res.status === 403) {
      sessionStorage.removeItem(TOKEN_KEY);
      ui.token.value = '';
      renderTokenField();
      showMessage(section, 'error', describeError(res, text));
      ui.token.focus();
      return;
    }
    if (token) {
      sessionStorage.setItem(TOKEN_KEY, token);
      ui.token.value = '';
      renderTokenField();
    }
    if (!res.ok) {
      showMessage(section, 'error', describeError(res, text));
      return;
    }
    section.selectTouched = false;
    section.algorithm = name;
    setText(section.current, name);
    showMessage(section, 'ok', `Switched to ${name}.`);
    pollNow();
  } catch (error) {
    showMessage(section, 'error', `Could not reach the balancer: ${errorText(error, String(error))}`);
  } finally {
    section.busy = false;
    updateApply(section);
  }
}

ui.forgetToken.addEventListener('click', () => {
  sessionStorage.removeItem(TOKEN_KEY);
  renderTokenField();
  ui.token.focus();
});

void poll();
