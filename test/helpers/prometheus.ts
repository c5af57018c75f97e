import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from './processes.js';
import { sleep } from './http.js';

/** One series of an instant query's answer. */
export interface PromSample {
  metric: Record<string, string>;
  value: [number, string];
}

export interface RunningPrometheus {
  /** e.g. http://127.0.0.1:41234 */
  readonly url: string;
  /** Everything the process wrote so far, for failure reports. */
  output(): string;
  /** GET /api/v1/query at the current time; throws with Prometheus' error when the query is refused. */
  query(expr: string): Promise<PromSample[]>;
  /** GET /api/v1/label/<label>/values restricted to series matching `match`. */
  labelValues(label: string, match: string): Promise<string[]>;
  /** SIGKILL, wait for the exit, remove the configuration and the TSDB folder. */
  stop(): Promise<void>;
}

async function api<T>(url: string): Promise<T> {
  const res = await fetch(url);
  const body = (await res.json()) as { status: string; data: T; error?: string; errorType?: string };
  if (body.status !== 'success') throw new Error(`${url}: ${body.errorType ?? res.status}: ${body.error ?? 'no error given'}`);
  return body.data;
}

/**
 * startPrometheus runs the `prometheus` binary on a free 127.0.0.1 port with a temporary TSDB and the configuration
 * that `configFor` gives for its own "host:port" (written as JSON, which is YAML), and resolves once /-/ready answers.
 */
export async function startPrometheus(binary: string, configFor: (address: string) => object): Promise<RunningPrometheus> {
  const dir = mkdtempSync(path.join(tmpdir(), 'prometheus-test-'));
  const configFile = path.join(dir, 'prometheus.yml');
  const port = await freePort();
  writeFileSync(configFile, JSON.stringify(configFor(`127.0.0.1:${port}`), null, 2));
  const child = spawn(
    binary,
    [`--config.file=${configFile}`, `--storage.tsdb.path=${path.join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let text = '';
  child.stdout.on('data', (chunk: Buffer) => (text += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (text += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let gone = false;
  void exited.then(() => (gone = true));

  const url = `http://127.0.0.1:${port}`;
  const stop = async (): Promise<void> => {
    if (!gone) {
      child.kill('SIGKILL');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (gone) {
      await stop();
      throw new Error(`prometheus exited before it was ready; output:\n${text}`);
    }
    const ready = await fetch(`${url}/-/ready`).then((res) => res.ok, () => false);
    if (ready) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`prometheus not ready on ${url} within 15 s; output:\n${text}`);
    }
    await sleep(100);
  }

  return {
    url,
    output: () => text,
    query: async (expr) => (await api<{ resultType: string; result: PromSample[] }>(`${url}/api/v1/query?query=${encodeURIComponent(expr)}`)).result,
    labelValues: (label, match) => api<string[]>(`${url}/api/v1/label/${encodeURIComponent(label)}/values?match[]=${encodeURIComponent(match)}`),
    stop,
  };
}
