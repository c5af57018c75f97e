import { startService, type Service } from './processes.js';

/** A running `node backend/dist/main.js` on 127.0.0.1 with OS-chosen ports. */
export interface RunningBackend {
  readonly service: Service;
  readonly id: string;
  /** Traffic port base URL, e.g. http://127.0.0.1:41234 */
  readonly url: string;
  /** Control port base URL. */
  readonly controlUrl: string;
  /** PUT /chaos on the control port; resolves with the state it answers, throws on a non-2xx. */
  chaos(patch: Record<string, unknown>): Promise<Record<string, unknown>>;
  /** Sum of backend_requests_total over every code, from the control port's /metrics. */
  requestsCounted(): Promise<number>;
}

/** startBackend spawns a backend and waits for its ready line; stop it with `backend.service.stop()`. */
export async function startBackend(id: string, env: Record<string, string> = {}): Promise<RunningBackend> {
  const { service, ready } = await startService(`backend ${id}`, 'backend/dist/main.js', {
    env: { PORT: '0', CONTROL_PORT: '0', TCP_PORT: '0', HOST: '127.0.0.1', BACKEND_ID: id, ...env },
    ready: 'backend',
  });
  const { id: readyId, traffic: url, control: controlUrl } = ready!;
  return {
    service,
    id: readyId,
    url,
    controlUrl,
    chaos: (patch) => putChaos(controlUrl, patch),
    async requestsCounted() {
      return sumCounter(await (await fetch(`${controlUrl}/metrics`)).text(), 'backend_requests_total');
    },
  };
}

/** putChaos: PUT /chaos on a backend's control port; resolves with the state it answers, throws on a non-2xx. */
export async function putChaos(controlUrl: string, patch: Record<string, unknown>): Promise<Record<string, unknown>> {
  const res = await fetch(`${controlUrl}/chaos`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(patch) });
  const body = (await res.json()) as Record<string, unknown>;
  if (!res.ok) throw new Error(`PUT ${controlUrl}/chaos ${JSON.stringify(patch)} answered ${res.status}: ${JSON.stringify(body)}`);
  return body;
}

/** Sum of every series of a counter in a Prometheus text exposition (optionally only series whose labels contain `filter`). */
export function sumCounter(exposition: string, name: string, filter = ''): number {
  let sum = 0;
  for (const line of exposition.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const labels = line.slice(name.length, line.lastIndexOf(' '));
    if (!labels.includes(filter)) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

/** Sends `count` requests with at most `concurrency` in flight; resolves with every status, in order of sending. */
export async function fetchMany(url: string, count: number, concurrency = 8): Promise<number[]> {
  const statuses: number[] = new Array<number>(count);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const i = next++;
      const res = await fetch(url);
      await res.arrayBuffer();
      statuses[i] = res.status;
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return statuses;
}
