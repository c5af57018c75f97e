/**
 * The live status page: one self-contained HTML document (inline CSS and script, no external
 * resources) that polls status.json every second. Kept in a module so that it compiles into dist
 * with everything else. The style and script are exported on their own so that the router can
 * allow exactly them in its Content-Security-Policy by hash.
 *
 * Written as String.raw templates without interpolation: backslashes stay as typed, and the
 * script uses no template literals of its own.
 */

export const STATUS_PAGE_STYLE = String.raw`
:root {
  color-scheme: light dark;
  --bg: #f5f6f8; --panel: #ffffff; --text: #1d2330; --muted: #5f6b7a; --line: #e3e6eb; --head: #f0f2f5;
  --accent: #2f6fdf; --accent-soft: rgba(47, 111, 223, 0.14);
  --ok: #18794e; --ok-bg: #e6f5ec; --bad: #b42318; --bad-bg: #fdeceb; --bad-row: #fbe3e1;
  --warn: #a15c07; --warn-bg: #fff3dc; --ejected: #6b3fc9; --ejected-bg: #f1ebfd;
  --spark-err: #d92d20;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #12151b; --panel: #1a1f27; --text: #e6e9ef; --muted: #98a2b3; --line: #2b323d; --head: #20262f;
    --accent: #6c9cf0; --accent-soft: rgba(108, 156, 240, 0.18);
    --ok: #4cc38a; --ok-bg: #15301f; --bad: #ff7b72; --bad-bg: #3b1d1b; --bad-row: #3a1c1a;
    --warn: #f0b44c; --warn-bg: #3a2c12; --ejected: #b69cf7; --ejected-bg: #2b2140;
    --spark-err: #ff7b72;
  }
}
* { box-sizing: border-box; }
html { background: var(--bg); }
body {
  margin: 0; color: var(--text); background: var(--bg);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
}
.visually-hidden {
  position: absolute; width: 1px; height: 1px; padding: 0; margin: -1px; overflow: hidden;
  clip: rect(0 0 0 0); white-space: nowrap; border: 0;
}
.wrap { max-width: 1320px; margin: 0 auto; padding-left: 24px; padding-right: 24px; }
header.top { background: var(--panel); border-bottom: 1px solid var(--line); }
header.top .wrap { display: flex; flex-wrap: wrap; align-items: center; justify-content: space-between; gap: 12px 24px; padding-top: 14px; padding-bottom: 14px; }
.brand { display: flex; align-items: center; gap: 14px; }
h1 { font-size: 18px; font-weight: 650; margin: 0; letter-spacing: -0.01em; }
h2 { font-size: 13px; font-weight: 650; text-transform: uppercase; letter-spacing: 0.06em; color: var(--muted); margin: 28px 0 10px; }
.conn { display: inline-flex; align-items: center; gap: 6px; font-size: 12px; color: var(--muted); padding: 2px 10px; border-radius: 999px; background: var(--head); }
.conn::before { content: ""; width: 8px; height: 8px; border-radius: 50%; background: var(--muted); }
body[data-connection="live"] .conn::before { background: var(--ok); box-shadow: 0 0 0 3px var(--ok-bg); }
body[data-connection="disconnected"] .conn { color: var(--bad); background: var(--bad-bg); font-weight: 600; }
body[data-connection="disconnected"] .conn::before { background: var(--bad); }
form.algo { display: flex; flex-wrap: wrap; align-items: center; gap: 8px 10px; margin: 0; }
form.algo .current { color: var(--muted); margin-right: 6px; }
form.algo .current strong { color: var(--text); font-weight: 650; }
form.algo label { color: var(--muted); }
select, input, button { font: inherit; color: inherit; }
select, input { background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: 5px 8px; min-height: 32px; }
input { width: 12em; }
button { border: 1px solid var(--accent); background: var(--accent); color: #fff; border-radius: 6px; padding: 5px 14px; min-height: 32px; font-weight: 600; cursor: pointer; }
button.link { background: none; border: none; color: var(--accent); padding: 0 4px; font-weight: 500; min-height: 0; }
button:disabled { opacity: 0.45; cursor: default; }
:focus-visible { outline: 2px solid var(--accent); outline-offset: 2px; }
.message { flex-basis: 100%; max-width: 46em; margin: 0 0 0 auto; font-size: 13px; text-align: right; }
.message:empty { display: none; }
.message[data-kind="ok"] { color: var(--ok); }
.message[data-kind="error"] { color: var(--bad); }
.banner { margin: 16px 0 0; padding: 10px 14px; border-radius: 8px; background: var(--bad-bg); color: var(--bad); border: 1px solid var(--bad); }
.banner strong { font-weight: 700; }
.summary { display: grid; grid-template-columns: repeat(auto-fit, minmax(170px, 1fr)); gap: 12px; margin-top: 20px; }
.card { background: var(--panel); border: 1px solid var(--line); border-radius: 10px; padding: 12px 16px; }
.card .label { font-size: 12px; color: var(--muted); }
.card .value { font-size: 22px; font-weight: 650; font-variant-numeric: tabular-nums; margin-top: 2px; }
.card .value.bad { color: var(--bad); }
.panel { background: var(--panel); border: 1px solid var(--line); border-radius: 10px; overflow-x: auto; }
table { width: 100%; border-collapse: collapse; }
th, td { padding: 9px 12px; text-align: left; border-bottom: 1px solid var(--line); white-space: nowrap; vertical-align: middle; }
tbody th, td.url { white-space: normal; overflow-wrap: anywhere; min-width: 6em; max-width: 18em; }
thead th { background: var(--head); font-size: 12px; font-weight: 600; color: var(--muted); }
tbody tr:last-child > * { border-bottom: none; }
tbody th { font-weight: 650; }
.num { text-align: right; font-variant-numeric: tabular-nums; }
td.url { color: var(--muted); font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px; }
td.bad { color: var(--bad); font-weight: 600; }
td.warn { color: var(--warn); font-weight: 600; }
tbody tr { transition: background-color 0.3s; }
tbody tr[data-state="unhealthy"] { background: var(--bad-row); }
tbody tr[data-state="unhealthy"] > th { box-shadow: inset 3px 0 0 var(--bad); color: var(--bad); }
.badge { display: inline-block; padding: 1px 9px; border-radius: 999px; font-size: 12px; font-weight: 600; }
.badge[data-state="healthy"] { color: var(--ok); background: var(--ok-bg); }
.badge[data-state="unhealthy"] { color: #fff; background: var(--bad); }
.badge[data-state="draining"] { color: var(--warn); background: var(--warn-bg); }
.badge[data-state="ejected"] { color: var(--ejected); background: var(--ejected-bg); }
svg.spark { display: block; overflow: visible; }
svg.spark .area { fill: var(--accent-soft); stroke: none; }
svg.spark .line { fill: none; stroke: var(--accent); stroke-width: 1.4; stroke-linejoin: round; }
svg.spark .errors { fill: none; stroke: var(--spark-err); stroke-width: 2; }
svg.spark .base { stroke: var(--line); stroke-width: 1; }
.empty { color: var(--muted); padding: 14px 16px; margin: 0; }
body[data-connection="disconnected"] main .panel, body[data-connection="disconnected"] .summary { opacity: 0.55; filter: grayscale(0.6); }
ol.events { list-style: none; margin: 0; padding: 4px 0; }
ol.events li { display: grid; grid-template-columns: 5.5em 6.5em 1fr; gap: 12px; align-items: baseline; padding: 6px 16px; border-bottom: 1px solid var(--line); }
ol.events li:last-child { border-bottom: none; }
ol.events time { color: var(--muted); font-variant-numeric: tabular-nums; font-size: 12.5px; }
.kind { font-size: 11px; font-weight: 650; text-transform: uppercase; letter-spacing: 0.05em; color: var(--muted); }
.kind[data-kind="state"] { color: var(--accent); }
.kind[data-kind="ejection"] { color: var(--ejected); }
.kind[data-kind="algorithm"] { color: var(--ok); }
.kind[data-kind="reload"] { color: var(--warn); }
footer { color: var(--muted); font-size: 12px; padding-top: 20px; padding-bottom: 28px; }
footer a { color: inherit; }
`;

export const STATUS_PAGE_SCRIPT = String.raw`
(function () {
  'use strict';
  var POLL_MS = 1000;
  var POLL_TIMEOUT_MS = 2500;
  var TOKEN_KEY = 'lb-admin-token';
  var STATES = { healthy: 'healthy', unhealthy: 'unhealthy', draining: 'draining', ejected: 'ejected' };

  function $(id) { return document.getElementById(id); }
  var ui = {
    connection: $('connection'), banner: $('disconnected'), bannerDetail: $('disconnected-detail'),
    form: $('algorithm-form'), current: $('algorithm-current'), select: $('algorithm-select'), apply: $('algorithm-apply'),
    tokenField: $('token-field'), token: $('admin-token'), tokenSaved: $('token-saved'), forgetToken: $('forget-token'),
    message: $('algorithm-message'), tbody: $('backend-rows'), noBackends: $('no-backends'),
    up: $('summary-up'), rps: $('summary-rps'), errors: $('summary-errors'), refused: $('summary-refused'), refusedCard: $('summary-refused-card'),
    events: $('events'), noEvents: $('no-events'), updated: $('updated'), windowLabel: $('window-label')
  };

  var state = { algorithm: '', algorithmsKey: '', tokenRequired: false, selectTouched: false, busy: false, lastOk: 0, eventsKey: '', up: 0, total: 0 };
  var rows = new Map();
  var timer = 0;
  var polling = false;

  function time(iso) {
    var date = new Date(iso);
    return isNaN(date.getTime()) ? '' : date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
  }
  function rate(value) {
    if (!value) return '0';
    if (value < 10) return value.toFixed(1);
    return Math.round(value).toLocaleString('en-US');
  }
  function percent(ratio, rps) {
    if (!rps) return '–';
    var p = ratio * 100;
    if (p === 0) return '0%';
    if (p < 1) return p.toFixed(2) + '%';
    if (p < 10) return p.toFixed(1) + '%';
    return Math.round(p) + '%';
  }
  function millis(ms) {
    if (!ms) return '–';
    if (ms < 1) return ms.toFixed(2) + ' ms';
    if (ms < 10) return ms.toFixed(1) + ' ms';
    if (ms < 1000) return Math.round(ms) + ' ms';
    return (ms / 1000).toFixed(ms < 10000 ? 2 : 1) + ' s';
  }
  function setText(node, text) { if (node.textContent !== text) node.textContent = text; }

  // ---- connection ------------------------------------------------------------------------

  function setConnected(ok, error) {
    var now = Date.now();
    if (ok) {
      state.lastOk = now;
      document.body.setAttribute('data-connection', 'live');
      setText(ui.connection, 'live');
      ui.banner.hidden = true;
      setText(ui.updated, 'updated ' + time(new Date(now).toISOString()));
    } else {
      document.body.setAttribute('data-connection', 'disconnected');
      setText(ui.connection, 'disconnected');
      var since = state.lastOk ? 'since ' + time(new Date(state.lastOk).toISOString()) + ' (' + Math.round((now - state.lastOk) / 1000) + ' s ago)' : 'yet';
      setText(ui.bannerDetail, 'No answer from the balancer ' + since + ': ' + (error && error.message ? error.message : 'request failed') + '. Retrying every second; the figures below are stale.');
      ui.banner.hidden = false;
    }
    updateTitle();
  }

  function updateTitle() {
    var live = document.body.getAttribute('data-connection') === 'live';
    var title = state.total ? state.up + '/' + state.total + ' up · Load balancer' : 'Load balancer';
    document.title = live ? title : 'Disconnected · Load balancer';
  }

  function schedule(ms) {
    clearTimeout(timer);
    timer = setTimeout(poll, ms);
  }

  function pollNow() { if (!polling) schedule(0); }

  function poll() {
    polling = true;
    var started = Date.now();
    var controller = new AbortController();
    var abort = setTimeout(function () { controller.abort(); }, POLL_TIMEOUT_MS);
    fetch('status.json', { cache: 'no-store', headers: { accept: 'application/json' }, signal: controller.signal })
      .then(function (res) {
        if (!res.ok) throw new Error('status.json answered HTTP ' + res.status);
        return res.json();
      })
      .then(function (data) {
        render(data);
        setConnected(true);
      })
      .catch(function (error) {
        if (error && error.name === 'AbortError') error = new Error('no answer within ' + POLL_TIMEOUT_MS / 1000 + ' s');
        setConnected(false, error);
      })
      .then(function () {
        clearTimeout(abort);
        polling = false;
        schedule(Math.max(0, POLL_MS - (Date.now() - started)));
      });
  }

  // ---- rendering -------------------------------------------------------------------------

  function render(data) {
    renderAlgorithm(data);
    renderBackends(data.backends || []);
    renderSummary(data);
    renderEvents(data.events || []);
  }

  function renderAlgorithm(data) {
    state.algorithm = data.algorithm;
    state.tokenRequired = !!data.tokenRequired;
    setText(ui.current, data.algorithm);
    var names = data.algorithms || [];
    var key = names.join(',');
    if (key !== state.algorithmsKey) {
      state.algorithmsKey = key;
      ui.select.replaceChildren();
      names.forEach(function (name) {
        var option = document.createElement('option');
        option.value = name;
        option.textContent = name;
        ui.select.appendChild(option);
      });
    }
    if (!state.selectTouched) ui.select.value = data.algorithm;
    renderTokenField();
    updateApply();
  }

  function renderTokenField() {
    var saved = !!sessionStorage.getItem(TOKEN_KEY);
    ui.tokenField.hidden = !state.tokenRequired || saved;
    ui.tokenSaved.hidden = !state.tokenRequired || !saved;
  }

  function updateApply() {
    ui.apply.disabled = state.busy || !ui.select.value || ui.select.value === state.algorithm;
  }

  function createRow(id) {
    var tr = document.createElement('tr');
    tr.setAttribute('data-backend', id);
    var cells = {};
    var name = document.createElement('th');
    name.scope = 'row';
    name.textContent = id;
    tr.appendChild(name);
    ['url', 'state', 'weight', 'active', 'rps', 'errors', 'p50', 'p99', 'spark'].forEach(function (key) {
      var td = document.createElement('td');
      td.className = key === 'url' || key === 'state' || key === 'spark' ? key : 'num ' + key;
      tr.appendChild(td);
      cells[key] = td;
    });
    var badge = document.createElement('span');
    badge.className = 'badge';
    cells.state.appendChild(badge);
    cells.badge = badge;
    cells.svg = createSparkline();
    cells.spark.appendChild(cells.svg.root);
    var row = { tr: tr, cells: cells };
    rows.set(id, row);
    return row;
  }

  function renderBackends(backends) {
    var seen = new Set();
    var previous = null;
    backends.forEach(function (b) {
      seen.add(b.id);
      var row = rows.get(b.id) || createRow(b.id);
      var c = row.cells;
      var known = STATES[b.state] ? b.state : 'unknown';
      if (row.tr.getAttribute('data-state') !== known) row.tr.setAttribute('data-state', known);
      setText(c.url, b.url);
      setText(c.badge, b.state);
      c.badge.setAttribute('data-state', known);
      setText(c.weight, String(b.weight));
      setText(c.active, String(b.activeRequests));
      setText(c.rps, rate(b.rps));
      setText(c.errors, percent(b.errorRate, b.rps));
      c.errors.classList.toggle('bad', b.rps > 0 && b.errorRate >= 0.01);
      c.errors.classList.toggle('warn', b.rps > 0 && b.errorRate > 0 && b.errorRate < 0.01);
      setText(c.p50, millis(b.p50Ms));
      setText(c.p99, millis(b.p99Ms));
      drawSparkline(c.svg, b.series || { rps: [], errorRate: [] });
      var expectedNext = previous ? previous.nextSibling : ui.tbody.firstChild;
      if (expectedNext !== row.tr) ui.tbody.insertBefore(row.tr, expectedNext);
      previous = row.tr;
    });
    rows.forEach(function (row, id) {
      if (seen.has(id)) return;
      row.tr.remove();
      rows.delete(id);
    });
    ui.noBackends.hidden = backends.length > 0;
    state.up = backends.filter(function (b) { return b.state === 'healthy'; }).length;
    state.total = backends.length;
  }

  var SVG = 'http://www.w3.org/2000/svg';
  var SPARK_W = 132;
  var SPARK_H = 28;

  function createSparkline() {
    var root = document.createElementNS(SVG, 'svg');
    root.setAttribute('class', 'spark');
    root.setAttribute('width', String(SPARK_W));
    root.setAttribute('height', String(SPARK_H));
    root.setAttribute('viewBox', '0 0 ' + SPARK_W + ' ' + SPARK_H);
    root.setAttribute('role', 'img');
    var title = document.createElementNS(SVG, 'title');
    var base = document.createElementNS(SVG, 'line');
    base.setAttribute('class', 'base');
    base.setAttribute('x1', '0'); base.setAttribute('x2', String(SPARK_W));
    base.setAttribute('y1', String(SPARK_H - 0.5)); base.setAttribute('y2', String(SPARK_H - 0.5));
    var area = document.createElementNS(SVG, 'path');
    area.setAttribute('class', 'area');
    var line = document.createElementNS(SVG, 'path');
    line.setAttribute('class', 'line');
    var errors = document.createElementNS(SVG, 'path');
    errors.setAttribute('class', 'errors');
    root.append(title, base, area, line, errors);
    return { root: root, title: title, area: area, line: line, errors: errors };
  }

  function drawSparkline(svg, series) {
    var values = series.rps || [];
    var n = values.length;
    var max = 1;
    var errorPeak = 0;
    var errorCounts = values.map(function (v, i) {
      var e = v * ((series.errorRate && series.errorRate[i]) || 0);
      if (e > errorPeak) errorPeak = e;
      return e;
    });
    values.forEach(function (v) { if (v > max) max = v; });
    var step = n > 1 ? SPARK_W / (n - 1) : SPARK_W;
    function y(v) { return (SPARK_H - 1 - (v / max) * (SPARK_H - 3)).toFixed(1); }
    var line = '';
    values.forEach(function (v, i) { line += (i ? 'L' : 'M') + (i * step).toFixed(1) + ',' + y(v); });
    svg.line.setAttribute('d', line);
    svg.area.setAttribute('d', n ? line + 'L' + ((n - 1) * step).toFixed(1) + ',' + SPARK_H + 'L0,' + SPARK_H + 'Z' : '');
    var bars = '';
    errorCounts.forEach(function (e, i) {
      if (e > 0) bars += 'M' + (i * step).toFixed(1) + ',' + SPARK_H + 'V' + Math.min(Number(y(e)), SPARK_H - 2).toFixed(1);
    });
    svg.errors.setAttribute('d', bars);
    var label = 'Requests per second over the last ' + n + ' s: now ' + rate(values[n - 1] || 0) + ', peak ' + rate(max === 1 && !values.some(function (v) { return v > 0; }) ? 0 : max) +
      (errorPeak > 0 ? '; errors peak ' + rate(errorPeak) + ' per second' : '; no errors');
    svg.root.setAttribute('aria-label', label);
    setText(svg.title, label);
  }

  function renderSummary(data) {
    var backends = data.backends || [];
    var rps = 0;
    var errors = 0;
    backends.forEach(function (b) { rps += b.rps || 0; errors += (b.rps || 0) * (b.errorRate || 0); });
    var refused = data.refused && data.refused.rps ? data.refused.rps : 0;
    var all = rps + refused;
    setText(ui.up, state.up + ' of ' + state.total);
    ui.up.classList.toggle('bad', state.total > 0 && state.up < state.total);
    setText(ui.rps, rate(all));
    setText(ui.errors, percent(all ? (errors + refused) / all : 0, all));
    ui.errors.classList.toggle('bad', all > 0 && (errors + refused) / all >= 0.01);
    setText(ui.refused, rate(refused));
    ui.refused.classList.toggle('bad', refused > 0);
    var first = backends[0];
    if (first && first.series && first.series.rps) setText(ui.windowLabel, 'Last ' + first.series.rps.length + ' s');
  }

  function renderEvents(events) {
    var key = events.length + '|' + (events[0] ? events[0].at + events[0].message : '');
    if (key === state.eventsKey) return;
    state.eventsKey = key;
    var items = events.map(function (event) {
      var li = document.createElement('li');
      li.setAttribute('data-kind', event.kind);
      var when = document.createElement('time');
      when.dateTime = event.at;
      when.textContent = time(event.at);
      var kind = document.createElement('span');
      kind.className = 'kind';
      kind.setAttribute('data-kind', event.kind);
      kind.textContent = event.kind;
      var message = document.createElement('span');
      message.className = 'event-message';
      message.textContent = event.message;
      li.append(when, kind, message);
      return li;
    });
    ui.events.replaceChildren.apply(ui.events, items);
    ui.noEvents.hidden = events.length > 0;
  }

  // ---- switching the algorithm -----------------------------------------------------------

  var messageTimer = 0;
  /** showMessage reports the outcome of a switch; confirmations fade after a few seconds, errors stay until the next action. */
  function showMessage(kind, text) {
    clearTimeout(messageTimer);
    ui.message.setAttribute('data-kind', kind);
    ui.message.textContent = text;
    if (kind === 'ok') messageTimer = setTimeout(function () { showMessage('', ''); }, 6000);
  }

  function describeError(res, text) {
    try {
      var body = JSON.parse(text);
      var error = body && body.error;
      if (error && error.message) {
        var problems = (error.problems || []).map(function (p) {
          if (typeof p === 'string') return p;
          if (p && p.message) return (p.path ? p.path + ': ' : '') + p.message;
          return JSON.stringify(p);
        });
        return error.message + (problems.length && problems.join('; ') !== error.message ? ' (' + problems.join('; ') + ')' : '');
      }
    } catch (ignored) { /* not JSON: fall through */ }
    return 'HTTP ' + res.status + (text ? ': ' + text.slice(0, 200) : '');
  }

  ui.select.addEventListener('change', function () {
    state.selectTouched = ui.select.value !== state.algorithm;
    showMessage('', '');
    updateApply();
  });

  ui.forgetToken.addEventListener('click', function () {
    sessionStorage.removeItem(TOKEN_KEY);
    renderTokenField();
    ui.token.focus();
  });

  ui.form.addEventListener('submit', function (event) {
    event.preventDefault();
    var name = ui.select.value;
    if (!name || name === state.algorithm) return;
    var headers = { 'content-type': 'application/json', accept: 'application/json' };
    var token = '';
    if (state.tokenRequired) {
      token = ui.token.value.trim() || sessionStorage.getItem(TOKEN_KEY) || '';
      if (!token) {
        ui.tokenField.hidden = false;
        showMessage('error', 'This balancer needs the admin token for changes: enter it first.');
        ui.token.focus();
        return;
      }
      headers.authorization = 'Bearer ' + token;
    }
    state.busy = true;
    updateApply();
    showMessage('', 'Switching to ' + name + '…');
    fetch('/algorithm', { method: 'PUT', headers: headers, body: JSON.stringify({ name: name }) })
      .then(function (res) {
        return res.text().then(function (text) {
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
          showMessage('ok', 'Switched to ' + name + '.');
          pollNow();
        });
      })
      .catch(function (error) {
        showMessage('error', 'Could not reach the balancer: ' + (error && error.message ? error.message : String(error)));
      })
      .then(function () {
        state.busy = false;
        updateApply();
      });
  });

  poll();
})();
`;

export const STATUS_PAGE_HTML = String.raw`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Load balancer</title>
<link rel="icon" href="data:,">
<style>${STATUS_PAGE_STYLE}</style>
</head>
<body data-connection="connecting">
<header class="top">
  <div class="wrap">
    <div class="brand">
      <h1>Load balancer</h1>
      <span id="connection" class="conn" role="status" aria-live="polite">connecting</span>
    </div>
    <form id="algorithm-form" class="algo" aria-label="Load-balancing algorithm">
      <span class="current">Algorithm <strong id="algorithm-current">…</strong></span>
      <label for="algorithm-select">Switch to</label>
      <select id="algorithm-select" name="algorithm"></select>
      <span id="token-field" hidden>
        <label for="admin-token">Admin token</label>
        <input id="admin-token" name="token" type="password" autocomplete="off" spellcheck="false">
      </span>
      <span id="token-saved" hidden>token saved <button type="button" id="forget-token" class="link">forget</button></span>
      <button type="submit" id="algorithm-apply" disabled>Switch</button>
      <p id="algorithm-message" class="message" role="status" aria-live="polite"></p>
    </form>
  </div>
</header>
<main class="wrap">
  <div id="disconnected" class="banner" role="alert" hidden><strong>Disconnected.</strong> <span id="disconnected-detail"></span></div>
  <section class="summary" aria-label="Summary over the last 10 seconds">
    <div class="card"><div class="label">Backends healthy</div><div class="value" id="summary-up">–</div></div>
    <div class="card"><div class="label">Requests/s (last 10 s)</div><div class="value" id="summary-rps">–</div></div>
    <div class="card"><div class="label">Error rate (last 10 s)</div><div class="value" id="summary-errors">–</div></div>
    <div class="card" id="summary-refused-card"><div class="label">Refused, no backend (/s)</div><div class="value" id="summary-refused">–</div></div>
  </section>
  <section aria-labelledby="backends-heading">
    <h2 id="backends-heading">Backends</h2>
    <div class="panel">
      <table id="backends">
        <caption class="visually-hidden">Backends: state, weight, requests in flight, and traffic over the last 10 seconds</caption>
        <thead>
          <tr>
            <th scope="col">Backend</th>
            <th scope="col">URL</th>
            <th scope="col">State</th>
            <th scope="col" class="num">Weight</th>
            <th scope="col" class="num">Active</th>
            <th scope="col" class="num">Req/s</th>
            <th scope="col" class="num">Errors</th>
            <th scope="col" class="num">p50</th>
            <th scope="col" class="num">p99</th>
            <th scope="col" id="window-label">Last 60 s</th>
          </tr>
        </thead>
        <tbody id="backend-rows"></tbody>
      </table>
      <p id="no-backends" class="empty" hidden>No backends configured.</p>
    </div>
  </section>
  <section aria-labelledby="events-heading">
    <h2 id="events-heading">Recent events</h2>
    <div class="panel">
      <ol id="events" class="events" aria-label="Recent events, newest first"></ol>
      <p id="no-events" class="empty">Nothing has happened yet.</p>
    </div>
  </section>
</main>
<footer class="wrap">Polls <a href="status.json">status.json</a> every second · <span id="updated">waiting for the first answer</span></footer>
<script>${STATUS_PAGE_SCRIPT}</script>
</body>
</html>
`;
