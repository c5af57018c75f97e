import { parseArgs } from 'node:util';
import { parseDuration } from '@lab/common/durations';
import { hostPort } from '@lab/common/host-port';

/** Methods autocannon's response parser handles (HEAD is left out: the parser would wait for a body that never comes). */
export const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;

/** TCP mode's defaults: connections open at once, payload bytes, and seconds to wait for each step. */
export const TCP_DEFAULTS = { connections: 100, payloadBytes: 64, timeoutSeconds: 5 } as const;
/** Largest --payload accepted (1 MiB). */
export const MAX_PAYLOAD_BYTES = 1024 * 1024;

export const USAGE = `Usage:
  node loadgen/dist/main.js --url URL [--duration S] [--connections N] [--rate RPS] [--method M] [--timeout S] [--json FILE]
  node loadgen/dist/main.js --url tcp://HOST:PORT [--duration S] [--rate CPS] [--payload BYTES] [--hold S] [--connections N] [--timeout S] [--json FILE]
      one run, a progress line on stderr, a summary on stdout, and with --json the report as JSON
  node loadgen/dist/main.js --continuous [--url URL] [--rate RPS] [--connections N] [--metrics-port P]
  TARGET_URL=URL node loadgen/dist/main.js
      keeps load running and serves /metrics and /rate (env TARGET_URL, RATE, CONNECTIONS, METHOD,
      TIMEOUT, PAYLOAD_BYTES, HOLD, METRICS_PORT, METRICS_HOST; flags win over env)

  --url URL          target: http:// or https:// (requests), or tcp://host:port (TCP echo connections:
                     each reads the greeting line naming the backend, sends the payload, expects it back, closes)
  --duration S       seconds to send for (default 10; also 500ms, 30s, 2m)
  --connections N    http: concurrent connections, one request in flight on each (default 10);
                     tcp: connections open at once at most (default ${TCP_DEFAULTS.connections})
  --rate RPS         http: requests per second, tcp: new connections per second, spaced evenly (default: as
                     fast as the connections allow; continuous mode: 50, and 0 pauses)
  --method M         http: ${METHODS.join(', ')} (default GET)
  --payload BYTES    tcp: bytes sent on each connection and expected back (default ${TCP_DEFAULTS.payloadBytes}, at most ${MAX_PAYLOAD_BYTES})
  --hold S           tcp: keep each connection open S seconds after its first echo, sending the payload
                     again every second (default 0: close after the first echo)
  --timeout S        http: seconds without an answer before a request counts as a timeout error (default 10);
                     tcp: seconds for each step (connect, greeting, every echo) (default ${TCP_DEFAULTS.timeoutSeconds}); at least 1
  --json FILE        write the report as JSON to FILE
  --metrics-port P   continuous mode: port of /metrics and /rate (default 9464; 0 lets the OS pick)
  --help             this text`;

/** A tcp:// target: where to connect and what each connection does. */
export interface TcpTarget {
  host: string;
  port: number;
  payloadBytes: number;
  /** Seconds each connection stays open after its first echo, echoing the payload every second (0: close at once). */
  holdSeconds: number;
}

interface Target {
  url: string;
  connections: number;
  /** Requests (tcp: new connections) per second; Infinity for no limit. */
  rate: number;
  method: string;
  timeoutSeconds: number;
  /** Set for a tcp:// URL, which sends TCP echo connections instead of HTTP requests. */
  tcp: TcpTarget | undefined;
}

export type Command =
  | ({ mode: 'run'; durationSeconds: number; json: string | undefined } & Target)
  | ({ mode: 'continuous'; metricsPort: number; metricsHost: string } & Target)
  | { mode: 'help' };

/** Every problem with the arguments, each naming the argument or variable. */
export class UsageError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('\n'));
  }
}

const quote = (value: string): string => JSON.stringify(value);

/** seconds reads --duration and --timeout: a bare number is seconds, else a duration such as "500ms" or "2m". */
function seconds(text: string): number | undefined {
  if (/^(\d+(\.\d+)?|\.\d+)$/.test(text.trim())) return Number(text);
  const ms = parseDuration(text);
  return ms === undefined ? undefined : ms / 1000;
}

/** parseCommand reads the command line and, for continuous mode, the environment; it throws UsageError. */
export function parseCommand(argv: string[], env: NodeJS.ProcessEnv): Command {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        url: { type: 'string' },
        duration: { type: 'string' },
        connections: { type: 'string' },
        rate: { type: 'string' },
        method: { type: 'string' },
        timeout: { type: 'string' },
        json: { type: 'string' },
        payload: { type: 'string' },
        hold: { type: 'string' },
        continuous: { type: 'boolean' },
        'metrics-port': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (error) {
    throw new UsageError([(error as Error).message.replace(/\. To specify a positional argument.*$/, '')]);
  }
  if (values.help) return { mode: 'help' };

  const continuous = values.continuous === true || (values.url === undefined && env.TARGET_URL !== undefined && env.TARGET_URL !== '');
  const problems: string[] = [];
  /** A flag's value, else (continuous mode) the environment variable's, with the name to quote in problems. */
  const pick = (flag: string, variable: string): [string, string] | undefined => {
    const fromFlag = values[flag];
    if (typeof fromFlag === 'string') return [`--${flag}`, fromFlag];
    const fromEnv = continuous ? env[variable] : undefined;
    return fromEnv !== undefined && fromEnv !== '' ? [variable, fromEnv] : undefined;
  };
  const number = (flag: string, variable: string, fallback: number, check: (n: number) => boolean, what: string): number => {
    const given = pick(flag, variable);
    if (given === undefined) return fallback;
    const value = flag === 'duration' || flag === 'timeout' || flag === 'hold' ? seconds(given[1]) : given[1].trim() === '' ? NaN : Number(given[1]);
    if (value === undefined || !Number.isFinite(value) || !check(value)) {
      problems.push(`${given[0]} must be ${what}; got ${quote(given[1])}`);
      return fallback;
    }
    return value;
  };

  let url = '';
  let tcpAddress: { host: string; port: number } | undefined;
  const givenUrl = pick('url', 'TARGET_URL');
  if (givenUrl === undefined) {
    problems.push(continuous ? '--url or TARGET_URL is required' : '--url is required');
  } else {
    let parsed: URL | undefined;
    try {
      parsed = new URL(givenUrl[1]);
    } catch {
      parsed = undefined;
    }
    if (parsed?.protocol === 'tcp:') {
      const address = tcpUrlProblem(parsed);
      if (typeof address === 'string') problems.push(`${givenUrl[0]} ${address}; got ${quote(givenUrl[1])}`);
      else [url, tcpAddress] = [`tcp://${hostPort(address.host, address.port)}`, address];
    } else if (parsed === undefined || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') || parsed.hostname === '') {
      problems.push(`${givenUrl[0]} must be an http:// or https:// URL; got ${quote(givenUrl[1])} (or tcp://host:port for TCP connections)`);
    } else {
      url = parsed.href;
    }
  }
  const tcpMode = tcpAddress !== undefined || /^tcp:/i.test(givenUrl?.[1].trim() ?? '');
  const unit = tcpMode ? 'new connections' : 'requests';

  const connections = number('connections', 'CONNECTIONS', tcpMode ? TCP_DEFAULTS.connections : 10, (n) => Number.isInteger(n) && n >= 1 && n <= 10_000, 'a whole number from 1 to 10000');
  const rate = continuous
    ? number('rate', 'RATE', 50, (n) => n >= 0 && n <= 1_000_000, `a number of ${unit} per second from 0 (paused) to 1000000`)
    : number('rate', 'RATE', Infinity, (n) => n > 0 && n <= 1_000_000, `a number of ${unit} per second above 0, at most 1000000`);
  const timeoutSeconds = number('timeout', 'TIMEOUT', tcpMode ? TCP_DEFAULTS.timeoutSeconds : 10, (n) => n >= 1 && n <= 3600, 'a duration from 1 to 3600 seconds (e.g. 5 or 5s)');

  let method = 'GET';
  if (tcpMode) {
    if (values.method !== undefined) problems.push('--method is for http:// and https:// targets, not tcp://');
  } else {
    const givenMethod = pick('method', 'METHOD');
    if (givenMethod !== undefined) {
      method = givenMethod[1].toUpperCase();
      if (!(METHODS as readonly string[]).includes(method)) {
        problems.push(`${givenMethod[0]} must be one of ${METHODS.join(', ')}; got ${quote(givenMethod[1])}`);
      }
    }
    for (const flag of ['payload', 'hold']) {
      if (values[flag] !== undefined) problems.push(`--${flag} is for tcp:// targets`);
    }
  }
  let tcp: TcpTarget | undefined;
  if (tcpMode) {
    const payloadBytes = number('payload', 'PAYLOAD_BYTES', TCP_DEFAULTS.payloadBytes, (n) => Number.isInteger(n) && n >= 1 && n <= MAX_PAYLOAD_BYTES, `a whole number of bytes from 1 to ${MAX_PAYLOAD_BYTES}`);
    const holdSeconds = number('hold', 'HOLD', 0, (n) => n >= 0 && n <= 86_400, 'a duration from 0 to 86400 seconds (e.g. 30 or 30s)');
    if (tcpAddress !== undefined) tcp = { ...tcpAddress, payloadBytes, holdSeconds };
  }

  if (continuous) {
    for (const flag of ['duration', 'json']) {
      if (values[flag] !== undefined) problems.push(`--${flag} is for one-off runs, not continuous mode`);
    }
    const metricsPort = number('metrics-port', 'METRICS_PORT', 9464, (n) => Number.isInteger(n) && n >= 0 && n <= 65535, 'a port from 0 to 65535');
    if (problems.length > 0) throw new UsageError(problems);
    return { mode: 'continuous', url, connections, rate, method, timeoutSeconds, tcp, metricsPort, metricsHost: env.METRICS_HOST || '0.0.0.0' };
  }

  const durationSeconds = number('duration', '', 10, (n) => n > 0 && n <= 86_400, 'a duration above 0, at most 86400 seconds (e.g. 10, 10s, 500ms, 2m)');
  if (values['metrics-port'] !== undefined) problems.push('--metrics-port is for continuous mode (add --continuous)');
  const json = values.json;
  if (json === '') problems.push('--json needs a file name');
  if (problems.length > 0) throw new UsageError(problems);
  return { mode: 'run', url, connections, rate, method, timeoutSeconds, tcp, durationSeconds, json: typeof json === 'string' ? json : undefined };
}

/** tcpUrlProblem reads the host and port of a tcp:// URL, or says what is wrong with it. */
function tcpUrlProblem(url: URL): { host: string; port: number } | string {
  if (url.hostname === '' || url.port === '' || url.port === '0') return 'must be tcp://host:port, with a host and a port from 1 to 65535';
  if (url.username !== '' || url.password !== '' || (url.pathname !== '' && url.pathname !== '/') || url.search !== '' || url.hash !== '') {
    return 'must be tcp://host:port, with nothing after the port';
  }
  return { host: url.hostname.replace(/^\[|\]$/g, ''), port: Number(url.port) };
}
