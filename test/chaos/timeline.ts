/**
 * What a chaos scenario saw, second by second: requests, errors, share per backend, p99, the faults the
 * test made and the state changes the balancer reported. Written as JSON and as a small SVG chart under
 * test-results/chaos/, so that a failure can be read and the README can show a real run.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { isFailure, percentileOf, type LoadRun } from '../helpers/load.js';
import { sentBetween } from './measure.js';
import { getJson, sleep } from '../helpers/http.js';
import { repoRoot } from '../helpers/processes.js';

const timelineDir = path.join(repoRoot, 'test-results', 'chaos');

/** A backend's state as GET /backends showed it, at the first poll that saw the change (ms since the load began). */
export interface StateChange {
  atMs: number;
  backend: string;
  from: string;
  to: string;
}

/** Something the test did: a fault injected or lifted, at the moment it began (ms since the load began). */
export interface Marker {
  atMs: number;
  label: string;
}

export interface Second {
  second: number;
  requests: number;
  errors: number;
  byBackend: Record<string, number>;
  share: Record<string, number>;
  p99Ms: number;
}

export interface Timeline {
  suite: string;
  scenario: string;
  title: string;
  /** what the bars count: requests (the default, HTTP scenarios) or connections (L4 scenarios) */
  unit?: 'requests' | 'connections';
  backends: string[];
  figures: Record<string, unknown>;
  seconds: Second[];
  markers: Marker[];
  stateChanges: StateChange[];
}

/**
 * watchStates polls GET /backends (or another listing of the same shape, such as /listeners/echo/backends)
 * every intervalMs until stopped; polls that fail (balancer restarting) are skipped.
 */
export function watchStates(adminUrl: string, started: number, intervalMs = 100, path = '/backends') {
  const changes: StateChange[] = [];
  const initial = new Map<string, string>();
  const last = new Map<string, string>();
  let running = true;
  const loop = (async () => {
    while (running) {
      try {
        const views = await getJson<{ id: string; state: string }[]>(`${adminUrl}${path}`);
        const atMs = performance.now() - started;
        for (const { id, state } of views) {
          const from = last.get(id);
          if (from === undefined) initial.set(id, state);
          else if (from !== state) changes.push({ atMs, backend: id, from, to: state });
          last.set(id, state);
        }
      } catch {
        // the balancer is not answering right now; the next poll tries again
      }
      await sleep(intervalMs);
    }
  })();
  return {
    changes,
    /** When the backend was first seen entering that state at or after fromMs, or undefined. */
    firstChange(backend: string, state: string, fromMs: number): number | undefined {
      return changes.find((c) => c.backend === backend && c.atMs >= fromMs && c.to === state)?.atMs;
    },
    /** The backend's state as last polled at atMs. */
    stateAt(backend: string, atMs: number): string | undefined {
      return changes.filter((c) => c.backend === backend && c.atMs <= atMs).at(-1)?.to ?? initial.get(backend);
    },
    async stop(): Promise<void> {
      running = false;
      await loop;
    },
  };
}

export type StateWatch = ReturnType<typeof watchStates>;

/** perSecond bins the samples by the second they were sent in. */
export function perSecond(run: LoadRun, backends: readonly string[]): Second[] {
  const last = run.samples.reduce((max, s) => Math.max(max, s.at), 0);
  return Array.from({ length: Math.floor(last / 1000) + 1 }, (_, second) => {
    const samples = sentBetween(run, second * 1000, (second + 1) * 1000);
    const byBackend = Object.fromEntries(backends.map((id) => [id, samples.filter((s) => s.backend === id).length]));
    const share = Object.fromEntries(backends.map((id) => [id, samples.length ? round(byBackend[id]! / samples.length, 3) : 0]));
    return { second, requests: samples.length, errors: samples.filter(isFailure).length, byBackend, share, p99Ms: round(percentileOf(samples.map((s) => s.ms), 99), 1) };
  });
}

const round = (value: number, digits: number): number => Number(value.toFixed(digits));

/** writeTimeline writes test-results/chaos/<suite>-<scenario>.json and .svg; returns the JSON path. */
export function writeTimeline(timeline: Timeline): string {
  mkdirSync(timelineDir, { recursive: true });
  const base = path.join(timelineDir, `${timeline.suite}-${timeline.scenario}`);
  writeFileSync(`${base}.json`, `${JSON.stringify(timeline, null, 2)}\n`);
  writeFileSync(`${base}.svg`, timelineSvg(timeline));
  return `${base}.json`;
}

const COLORS = ['#4e79a7', '#59a14f', '#f28e2b', '#b07aa1', '#76b7b2'];
const ERROR_COLOR = '#e15759';

const escapeXml = (text: string): string => text.replace(/[<>&"]/g, (c) => `&#${c.charCodeAt(0)};`);

/** timelineSvg: stacked requests (or connections) per second per backend, errors in red on top, dashed lines for faults, thin lines for state changes. */
export function timelineSvg(timeline: Timeline): string {
  const width = 960;
  const height = 360;
  const left = 50;
  const top = 60;
  const bottom = 30;
  const plotWidth = width - left - 20;
  const plotHeight = height - top - bottom;
  const seconds = Math.max(1, timeline.seconds.length);
  const peak = Math.max(1, ...timeline.seconds.map((s) => s.requests));
  const yMax = Math.ceil((peak * 1.1) / 50) * 50;
  const x = (ms: number): number => left + (ms / 1000 / seconds) * plotWidth;
  const y = (count: number): number => top + plotHeight - (count / yMax) * plotHeight;
  const color = (backend: string): string => COLORS[timeline.backends.indexOf(backend) % COLORS.length] ?? '#999';
  const barWidth = Math.max(1, plotWidth / seconds - 2);
  const parts: string[] = [];

  for (const s of timeline.seconds) {
    let stacked = 0;
    const layers: [string, number][] = [...timeline.backends.map((b): [string, number] => [color(b), s.byBackend[b] ?? 0]), [ERROR_COLOR, s.errors]];
    for (const [fill, count] of layers) {
      if (count === 0) continue;
      parts.push(`<rect x="${x(s.second * 1000) + 1}" y="${y(stacked + count)}" width="${barWidth}" height="${y(stacked) - y(stacked + count)}" fill="${fill}"/>`);
      stacked += count;
    }
  }
  // Labels are staggered in rows so that neighbours do not overwrite each other.
  timeline.markers.forEach((m, i) => {
    parts.push(`<line x1="${x(m.atMs)}" x2="${x(m.atMs)}" y1="${top}" y2="${top + plotHeight}" stroke="#000" stroke-dasharray="5 3"/>`);
    parts.push(`<text x="${x(m.atMs) + 3}" y="${top + 12 + (i % 2) * 12}" font-size="11">${escapeXml(m.label)}</text>`);
  });
  timeline.stateChanges.forEach((c, i) => {
    parts.push(`<line x1="${x(c.atMs)}" x2="${x(c.atMs)}" y1="${top}" y2="${top + plotHeight}" stroke="${color(c.backend)}" stroke-width="2" opacity="0.8"/>`);
    parts.push(`<text x="${x(c.atMs) + 3}" y="${top + 40 + (i % 4) * 12}" font-size="10" fill="${color(c.backend)}">${escapeXml(`${c.backend} → ${c.to}`)}</text>`);
  });
  for (const count of [0, yMax / 2, yMax]) parts.push(`<text x="${left - 6}" y="${y(count) + 4}" font-size="11" text-anchor="end">${count}</text>`);
  for (let s = 0; s <= seconds; s += 5) parts.push(`<text x="${x(s * 1000)}" y="${height - 10}" font-size="11" text-anchor="middle">${s} s</text>`);

  const legend: [string, string][] = [...timeline.backends.map((b): [string, string] => [color(b), b]), [ERROR_COLOR, timeline.unit === 'connections' ? 'failed' : 'errors']];
  legend.forEach(([fill, label], i) => {
    parts.push(`<rect x="${left + i * 120}" y="28" width="12" height="12" fill="${fill}"/><text x="${left + i * 120 + 16}" y="38" font-size="12">${escapeXml(label)}</text>`);
  });
  const keyX = left + legend.length * 120;
  parts.push(`<line x1="${keyX}" x2="${keyX + 20}" y1="34" y2="34" stroke="#000" stroke-dasharray="5 3"/><text x="${keyX + 24}" y="38" font-size="12">fault</text>`);
  parts.push(`<line x1="${keyX + 80}" x2="${keyX + 100}" y1="34" y2="34" stroke="#888" stroke-width="2"/><text x="${keyX + 104}" y="38" font-size="12">state change</text>`);

  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif">`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    `<text x="${left}" y="18" font-size="14" font-weight="bold">${escapeXml(`${timeline.title.split(':')[0]} (${timeline.suite}): ${timeline.unit ?? 'requests'}/s by backend`)}</text>`,
    `<line x1="${left}" x2="${left}" y1="${top}" y2="${top + plotHeight}" stroke="#333"/>`,
    `<line x1="${left}" x2="${left + plotWidth}" y1="${top + plotHeight}" y2="${top + plotHeight}" stroke="#333"/>`,
    ...parts,
    '</svg>',
    '',
  ].join('\n');
}
