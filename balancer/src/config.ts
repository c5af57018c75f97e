import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { load as parseYaml, YAMLException } from 'js-yaml';
import { z } from 'zod';
import { algorithmNames } from './algorithms/index.js';
import { engineNames } from './engines/engine.js';
import { duration } from '@lab/common/durations';
import { yamlPositions, type Position } from './yaml-positions.js';

const port = z.number({ error: 'must be a port number' }).int('must be a whole number').min(0, 'port out of range 0-65535').max(65535, 'port out of range 0-65535');
const host = z.string().min(1, 'must not be empty');

const backendUrl = z.string().transform((value, ctx) => {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    ctx.addIssue({ code: 'custom', message: `invalid URL ${JSON.stringify(value)}: expected http://host:port` });
    return z.NEVER;
  }
  if (url.protocol !== 'http:') {
    ctx.addIssue({ code: 'custom', message: `unsupported scheme "${url.protocol}" in ${JSON.stringify(value)}: backends are http://host:port` });
    return z.NEVER;
  }
  if ((url.pathname !== '/' && url.pathname !== '') || url.search || url.hash || url.username) {
    ctx.addIssue({ code: 'custom', message: `backend URL ${JSON.stringify(value)} must be only scheme, host and port (no path, query or credentials)` });
    return z.NEVER;
  }
  return url.origin;
});

const weight = z.number().int('weight must be a whole number').min(0, 'weight must be 0 or more').max(1000, 'weight must be at most 1000');

const backendSchema = z.strictObject({
  url: backendUrl,
  /** weight: share of traffic relative to the others for weighted algorithms (default 1; 0 takes no new requests). */
  weight: weight.default(1),
  /** name: the backend's id and metric label (default host:port of the URL). */
  name: z.string().regex(/^[A-Za-z0-9._:-]+$/, 'name may contain only letters, digits and . _ : -').optional(),
});

const algorithm = z.enum(algorithmNames, {
  error: (issue) => `unknown algorithm ${JSON.stringify(issue.input)}; accepted: ${algorithmNames.join(', ')}`,
});

const hashKey = z.string().refine((key) => key === 'client-address' || /^header:[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(key), {
  message: 'hash key must be "client-address" or "header:<Header-Name>"',
});

/** More traffic processes than this would only share the same cores. */
const MAX_WORKERS = 64;

const configSchema = z.strictObject({
  listen: z.strictObject({ host: host.default('0.0.0.0'), port: port.default(8080) }).prefault({}),
  admin: z.strictObject({ host: host.default('127.0.0.1'), port: port.default(9090), token: z.string().min(1).optional() }).prefault({}),
  algorithm: algorithm.default('round-robin'),
  /** engine: how one try reaches a backend: http-proxy (http-proxy-3, default) or undici. */
  engine: z.enum(engineNames, { error: (issue) => `unknown engine ${JSON.stringify(issue.input)}; accepted: ${engineNames.join(', ')}` }).default('http-proxy'),
  /** workers: traffic processes beside the primary, which keeps the control plane; "auto": one per core (default 1). */
  workers: z
    .union([z.literal('auto'), z.number().int('must be a whole number').min(1, 'must be at least 1').max(MAX_WORKERS, `must be at most ${MAX_WORKERS}`)], {
      error: (issue) => `workers must be a number from 1 to ${MAX_WORKERS} or "auto", not ${JSON.stringify(issue.input)}`,
    })
    .default(1),
  hash: z.strictObject({
    /** key: what consistent-hash hashes: "client-address" (default) or "header:<name>". */
    key: hashKey.default('client-address'),
    /** virtualNodes: points per unit of weight on the ring (default 160, as ketama). */
    virtualNodes: z.number().int().min(1).max(1000).default(160),
  }).prefault({}),
  backends: z.array(backendSchema).default([]),
  discovery: z.strictObject({
    dns: z.strictObject({
      /** name: the DNS name whose A records are the backends (in docker compose: the service name). */
      name: z.string().min(1),
      /** port: the port of every discovered backend. */
      port: port.refine((value) => value > 0, 'port must be 1-65535'),
      /** interval: how often the name is resolved again (default 5s). */
      interval: duration.default(5000),
      /** server: "IP:port" of the DNS server to ask (default: the system's resolvers). */
      server: z.string().regex(/^(\d{1,3}(\.\d{1,3}){3}|\[[0-9a-fA-F:]+\])(:\d+)?$/, 'server must be an IP address with an optional port, e.g. "127.0.0.11:53"').optional(),
    }),
  }).optional(),
  healthCheck: z.strictObject({
    enabled: z.boolean().default(true),
    path: z.string().startsWith('/', 'path must start with "/"').default('/health'),
    interval: duration.default(2000),
    timeout: duration.default(1000),
    rise: z.number().int().min(1).default(2),
    fall: z.number().int().min(1).default(2),
  }).prefault({}),
  /** outlierDetection: passive health (absent: off). Consecutive 5xx answers and failed tries eject a backend. */
  outlierDetection: z.strictObject({
    consecutiveFailures: z.number().int().min(1).default(5),
    /** baseEjectionTime: the first ejection's length; the nth ejection in a row lasts n times as long (default 5s). */
    baseEjectionTime: duration.default(5000),
    maxEjectionTime: duration.default(60_000),
    /** maxEjectionPercent: never eject more than this share of the backends at once (default 50; at least one may be ejected). */
    maxEjectionPercent: z.number().min(0).max(100).default(50),
  }).optional(),
  /** panicThreshold: below this percentage of available backends, balance over all of them, as Envoy does (default 0: off). */
  panicThreshold: z.number().min(0).max(100).default(0),
  /** slowStart: a backend that becomes available ramps its weight from 10% to 100% over this time (default 0: off). */
  slowStart: duration.default(0),
  retries: z.strictObject({
    attempts: z.number().int().min(0).max(10).default(2),
  }).prefault({}),
  timeouts: z.strictObject({
    connect: duration.default(1000),
    perTry: duration.default(2000),
    request: duration.default(30_000),
    /** shutdown: how long SIGTERM waits for in-flight requests before closing them (default 10s). */
    shutdown: duration.default(10_000),
  }).prefault({}),
});

export type Config = Readonly<z.output<typeof configSchema>>;
export type BackendConfig = Readonly<z.output<typeof backendSchema>>;

/** workerCount: the number of traffic processes the configuration asks for ("auto": one per core). */
export function workerCount(config: Pick<Config, 'workers'>): number {
  return config.workers === 'auto' ? Math.min(MAX_WORKERS, availableParallelism()) : config.workers;
}

export function backendId(backend: { url: string; name?: string | undefined }): string {
  return backend.name ?? new URL(backend.url).host;
}

/** One thing wrong with a configuration: where (key path, and line:column when known) and what. */
export interface ConfigProblem {
  path: string;
  message: string;
  position?: Position;
}

export class ConfigError extends Error {
  constructor(
    readonly source: string,
    readonly problems: readonly ConfigProblem[],
  ) {
    super(`invalid configuration in ${source}:\n${problems.map((p) => `  - ${formatProblem(p)}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

export function formatProblem(problem: ConfigProblem): string {
  const where = problem.position ? ` (line ${problem.position.line}, column ${problem.position.column})` : '';
  return `${problem.path || '(top level)'}${where}: ${problem.message}`;
}

function pathText(path: readonly PropertyKey[]): string {
  return path.map((part, i) => (typeof part === 'number' ? `[${part}]` : `${i === 0 ? '' : '.'}${String(part)}`)).join('');
}

/** locator makes problems at a key path, with the line and column of that key when the YAML gave one. */
function locator(positions: Map<string, Position>) {
  return (path: readonly PropertyKey[], message: string): ConfigProblem => {
    const problem: ConfigProblem = { path: pathText(path), message };
    const position = positions.get(path.map(String).join('.'));
    if (position) problem.position = position;
    return problem;
  };
}

/** parseWith validates a document against a schema, or throws ConfigError listing every problem (unknown keys one by one). */
function parseWith<T extends z.ZodType>(schema: T, document: unknown, source: string, positions = new Map<string, Position>()): z.output<T> {
  const result = schema.safeParse(document);
  if (result.success) return result.data;
  const located = locator(positions);
  const problems: ConfigProblem[] = [];
  for (const issue of result.error.issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) problems.push(located([...issue.path, key], `unknown key "${key}"`));
    } else {
      problems.push(located(issue.path, issue.message));
    }
  }
  throw new ConfigError(source, problems);
}

const backendPatchSchema = z
  .strictObject({ weight: weight.optional(), drain: z.boolean('drain must be true or false').optional() })
  .refine((patch) => patch.weight !== undefined || patch.drain !== undefined, 'nothing to change: give weight and/or drain');

/** validateBackend checks the body of POST /backends: {url, weight?, name?}. */
export function validateBackend(body: unknown): BackendConfig {
  return parseWith(backendSchema, body ?? {}, 'backend');
}

/** validateBackendPatch checks the body of PATCH /backends/:id: {weight?, drain?}. */
export function validateBackendPatch(body: unknown): { weight?: number | undefined; drain?: boolean | undefined } {
  return parseWith(backendPatchSchema, body ?? {}, 'backend change');
}

/** validateAlgorithmChoice checks the body of PUT /algorithm: {name}. */
export function validateAlgorithmChoice(body: unknown): z.output<typeof algorithm> {
  return parseWith(z.strictObject({ name: algorithm }), body ?? {}, 'algorithm choice').name;
}

/** validateConfig checks a parsed document and returns the frozen config, or throws ConfigError listing every problem. */
export function validateConfig(document: unknown, source = 'config', positions = new Map<string, Position>()): Config {
  const config = parseWith(configSchema, document ?? {}, source, positions);
  const located = locator(positions);
  const problems: ConfigProblem[] = [];
  const seen = new Map<string, number>();
  config.backends.forEach((backend, index) => {
    const id = backendId(backend);
    const first = seen.get(id);
    if (first !== undefined) {
      problems.push(located(['backends', index, backend.name ? 'name' : 'url'], `duplicate backend id "${id}" (also backends[${first}])`));
    } else {
      seen.set(id, index);
    }
  });
  if (config.backends.length === 0 && !config.discovery) problems.push(located(['backends'], 'at least one backend is needed (or discovery.dns)'));
  if (config.timeouts.perTry === 0) problems.push(located(['timeouts', 'perTry'], 'must be more than 0'));
  if (config.timeouts.request === 0) problems.push(located(['timeouts', 'request'], 'must be more than 0'));
  if (config.timeouts.connect === 0) problems.push(located(['timeouts', 'connect'], 'must be more than 0'));
  if (problems.length > 0) throw new ConfigError(source, problems);
  return deepFreeze(config);
}

/** parseConfig reads YAML text (js-yaml) and validates it; syntax errors are reported with line and column. */
export function parseConfig(text: string, source = 'config'): Config {
  let document: unknown;
  try {
    document = parseYaml(text, { filename: source });
  } catch (error) {
    if (error instanceof YAMLException) {
      const problem: ConfigProblem = { path: '', message: `YAML syntax error: ${error.reason}` };
      if (error.mark) problem.position = { line: error.mark.line + 1, column: error.mark.column + 1 };
      throw new ConfigError(source, [problem]);
    }
    throw error;
  }
  if (document !== undefined && document !== null && (typeof document !== 'object' || Array.isArray(document))) {
    throw new ConfigError(source, [{ path: '', message: 'the configuration must be a YAML mapping of keys such as listen, backends, algorithm' }]);
  }
  return validateConfig(document, source, yamlPositions(text));
}

export function loadConfigFile(file: string): Config {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError(file, [{ path: '', message: `cannot read the file: ${(error as Error).message}` }]);
  }
  return parseConfig(text, file);
}

/** deepFreeze freezes a plain value and everything inside it. */
export function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}
