/**
 * chaos-cli: the backend's fault-injection API from inside its container, where there is no curl.
 *   docker compose exec --index 2 backend node backend/dist/chaos-cli.js set '{"latencyMs": 300}'
 * Commands: show | set JSON | clear | crash. It talks to 127.0.0.1:CONTROL_PORT (default 3100).
 */
const usage = `usage: node backend/dist/chaos-cli.js show | set '{"latencyMs": 300}' | clear | crash`;

const requests: Record<string, (arg?: string) => { method: string; path: string; body?: string } | string> = {
  show: () => ({ method: 'GET', path: '/chaos' }),
  set: (body) => (body ? { method: 'PUT', path: '/chaos', body } : `set needs a JSON body\n${usage}`),
  clear: () => ({ method: 'DELETE', path: '/chaos' }),
  crash: () => ({ method: 'POST', path: '/chaos/crash' }),
};

async function main(): Promise<number> {
  const [command, arg] = process.argv.slice(2);
  const build = command === undefined ? undefined : requests[command];
  if (!build) {
    console.error(command === undefined ? usage : `unknown command "${command}"\n${usage}`);
    return 2;
  }
  const request = build(arg);
  if (typeof request === 'string') {
    console.error(request);
    return 2;
  }
  const url = `http://127.0.0.1:${process.env.CONTROL_PORT || 3100}${request.path}`;
  try {
    const response = await fetch(url, { method: request.method, headers: { 'content-type': 'application/json' }, body: request.body ?? null });
    console.log((await response.text()).trim());
    return response.ok ? 0 : 1;
  } catch (error) {
    console.error(`cannot reach ${url}: ${(error as Error).message}`);
    return 1;
  }
}

process.exitCode = await main();
