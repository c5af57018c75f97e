/**
 * The status page's script: polls status.json every second and renders it, and switches the
 * algorithm through PUT /algorithm. Compiled by this folder's tsconfig.json (DOM, no Node) and
 * inlined into page.html by ../status-page.ts.
 */
import type { StatusBackendView, StatusDocument, StatusEvent, StatusWorker } from '../status-document.js';

const POLL_MS = 1000;
const POLL_TIMEOUT_MS = 2500;
const TOKEN_KEY = 'lb-admin-token';

function byId<T extends HTMLElement>(id: string, type: { new (): T; prototype: T }): T {
  const element = document.getElementById(id);
  if (!(element instanceof type)) throw new Error(`status page: no ${type.name} #${id}`);
  return element;
}

const ui = {
  connection: byId('connection', HTMLElement),
  banner: byId('disconnected', HTMLElement),
  bannerDetail: byId('disconnected-detail', HTMLElement),
  form: byId('algorithm-form', HTMLFormElement),
  current: byId('algorithm-current', HTMLElement),
  engine: byId('engine-current', HTMLElement),
  select: byId('algorithm-select', HTMLSelectElement),
  apply: byId('algorithm-apply', HTMLButtonElement),
  tokenField: byId('token-field', HTMLElement),
  token: byId('admin-token', HTMLInputElement),
  tokenSaved: byId('token-saved', HTMLElement),
  forgetToken: byId('forget-token', HTMLButtonElement),
  message: byId('algorithm-message', HTMLElement),
  tbody: byId('backend-rows', HTMLTableSectionElement),
  noBackends: byId('no-backends', HTMLElement),
  workerRows: byId('worker-rows', HTMLTableSectionElement),
  noWorkers: byId('no-workers', HTMLElement),
  up: byId('summary-up', HTMLElement),
  rps: byId('summary-rps', HTMLElement),
  errors: byId('summary-errors', HTMLElement),
  refused: byId('summary-refused', HTMLElement),
  events: byId('events', HTMLOListElement),
  noEvents: byId('no-events', HTMLElement),
  updated: byId('updated', HTMLElement),
  windowLabel: byId('window-label', HTMLElement),
};

const state = { algorithm: '', algorithmsKey: '', tokenRequired: false, selectTouched: false, busy: false, lastOk: 0, eventsKey: '', up: 0, total: 0 };

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

const WORKER_CELLS = ['state', 'started', 'active', 'requests', 'connections'] as const;

interface WorkerRow {
  tr: HTMLTableRowElement;
  cells: Record<(typeof WORKER_CELLS)[number], HTMLTableCellElement>;
  badge: HTMLSpanElement;
  started: HTMLTimeElement;
}

const rows = new Map<string, Row>();
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
  const title = state.total ? `${state.up}/${state.total} up · Load balancer` : 'Load balancer';
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

function render(data: StatusDocument): void {
  renderAlgorithm(data);
  renderBackends(data.backends);
  renderWorkers(data.workers, Date.parse(data.generatedAt));
  renderSummary(data);
  renderEvents(data.events);
}

function renderAlgorithm(data: StatusDocument): void {
  state.algorithm = data.algorithm;
  state.tokenRequired = data.tokenRequired;
  setText(ui.current, data.algorithm);
  setText(ui.engine, data.engine);
  const key = data.algorithms.join(',');
  if (key !== state.algorithmsKey) {
    state.algorithmsKey = key;
    ui.select.replaceChildren(...data.algorithms.map((name) => new Option(name, name)));
  }
  if (!state.selectTouched) ui.select.value = data.algorithm;
  renderTokenField();
  updateApply();
}

function renderTokenField(): void {
  const saved = Boolean(sessionStorage.getItem(TOKEN_KEY));
  ui.tokenField.hidden = !state.tokenRequired || saved;
  ui.tokenSaved.hidden = !state.tokenRequired || !saved;
}

function updateApply(): void {
  ui.apply.disabled = state.busy || !ui.select.value || ui.select.value === state.algorithm;
}

function createRow(id: string): Row {
  const tr = document.createElement('tr');
  tr.dataset.backend = id;
  const name = document.createElement('th');
  name.scope = 'row';
  name.textContent = id;
  tr.append(name);
  const cells = Object.fromEntries(
    CELLS.map((key) => {
      const td = document.createElement('td');
      td.className = key === 'url' || key === 'state' || key === 'spark' ? key : `num ${key}`;
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
  rows.set(id, row);
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

function renderBackends(backends: StatusBackendView[]): void {
  const seen = new Set<string>();
  let previous: HTMLTableRowElement | null = null;
  for (const b of backends) {
    seen.add(b.id);
    const row = rows.get(b.id) ?? createRow(b.id);
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
    drawSparkline(row.spark, b.series);
    previous = placeRow(ui.tbody, row.tr, previous);
  }
  dropUnseen(rows, seen);
  ui.noBackends.hidden = backends.length > 0;
  state.up = backends.filter((b) => b.state === 'healthy').length;
  state.total = backends.length;
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

function drawSparkline(spark: Sparkline, series: StatusBackendView['series']): void {
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
    `Requests per second over the last ${n} s: now ${rate(values[n - 1] ?? 0)}, peak ${rate(peak)}` +
    (errorPeak > 0 ? `; errors peak ${rate(errorPeak)} per second` : '; no errors');
  spark.root.setAttribute('aria-label', label);
  setText(spark.title, label);
}

function renderSummary(data: StatusDocument): void {
  let rps = 0;
  let errors = 0;
  for (const b of data.backends) {
    rps += b.rps;
    errors += b.rps * b.errorRate;
  }
  const refused = data.refused.rps;
  const all = rps + refused;
  setText(ui.up, `${state.up} of ${state.total}`);
  ui.up.classList.toggle('bad', state.total > 0 && state.up < state.total);
  setText(ui.rps, rate(all));
  setText(ui.errors, percent(all ? (errors + refused) / all : 0, all));
  ui.errors.classList.toggle('bad', all > 0 && (errors + refused) / all >= 0.01);
  setText(ui.refused, rate(refused));
  ui.refused.classList.toggle('bad', refused > 0);
  const first = data.backends[0];
  if (first) setText(ui.windowLabel, `Last ${first.series.rps.length} s`);
}

function renderEvents(events: StatusEvent[]): void {
  const newest = events[0];
  const key = `${events.length}|${newest ? newest.at + newest.message : ''}`;
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
  message.textContent = event.message;
  li.append(when, kind, message);
  return li;
}

// ---- switching the algorithm ---------------------------------------------------------------

/** An admin API refusal: {"error": {"code", "message", "problems"?}}, read defensively since it is any answer's body. */
interface ApiErrorBody {
  error?: { message?: string; problems?: (string | { path?: string; message?: string } | null)[] };
}

let messageTimer = 0;

/** showMessage reports the outcome of a switch; confirmations fade after a few seconds, errors stay until the next action. */
function showMessage(kind: '' | 'ok' | 'error', text: string): void {
  clearTimeout(messageTimer);
  ui.message.dataset.kind = kind;
  ui.message.textContent = text;
  if (kind === 'ok') messageTimer = setTimeout(() => showMessage('', ''), 6000);
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

async function switchAlgorithm(name: string): Promise<void> {
  if (!name || name === state.algorithm) return;
  const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' };
  let token = '';
  if (state.tokenRequired) {
    token = ui.token.value.trim() || sessionStorage.getItem(TOKEN_KEY) || '';
    if (!token) {
      ui.tokenField.hidden = false;
      showMessage('error', 'This balancer needs the admin token for changes: enter it first.');
      ui.token.focus();
      return;
    }
    headers.authorization = `Bearer ${token}`;
  }
  state.busy = true;
  updateApply();
  showMessage('', `Switching to ${name}…`);
  try {
    const res = await fetch('/algorithm', { method: 'PUT', headers, body: JSON.stringify({ name }) });
    const text = await res.text();
    if (res.status === 401 || res.status === 403) {
      sessionStorage.removeItem(TOKEN_KEY);
      ui.token.value = '';
      renderTokenField();
      showMessage('error', describeError(res, text));
      ui.token.focus();
      return;
    }
    if (token) {
      sessionStorage.setItem(TOKEN_KEY, token);
      ui.token.value = '';
      renderTokenField();
    }
    if (!res.ok) {
      showMessage('error', describeError(res, text));
      return;
    }
    state.selectTouched = false;
    state.algorithm = name;
    setText(ui.current, name);
    showMessage('ok', `Switched to ${name}.`);
    pollNow();
  } catch (error) {
    showMessage('error', `Could not reach the balancer: ${errorText(error, String(error))}`);
  } finally {
    state.busy = false;
    updateApply();
  }
}

ui.select.addEventListener('change', () => {
  state.selectTouched = ui.select.value !== state.algorithm;
  showMessage('', '');
  updateApply();
});

ui.forgetToken.addEventListener('click', () => {
  sessionStorage.removeItem(TOKEN_KEY);
  renderTokenField();
  ui.token.focus();
});

ui.form.addEventListener('submit', (event) => {
  event.preventDefault();
  void switchAlgorithm(ui.select.value);
});

void poll();
