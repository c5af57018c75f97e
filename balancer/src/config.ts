import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { availableParallelism } from 'node:os';
import { load as parseYaml, YAMLException } from 'js-yaml';
import { z } from 'zod';
import { algorithmNames } from './algorithms/index.js';
import { engineNames } from './engines/engine.js';
import { duration } from '@lab/common/durations';
import { yamlPositions, type Position } from './yaml-positions.js';

const port = z.number({ error: 'must be a port number' }).int('must be a whole number').min(0, 'port out of range 0-65535').max(65535, 'port out of range 0-65535');
const host = z.string().min(1, 'must not be empty');

/** The backend URL schemes each listener mode takes. */
const SCHEMES = { http: ['http:', 'https:'], tcp: ['tcp:', 'tls:'] } as const;
const ALL_SCHEMES: readonly string[] = [...SCHEMES.http, ...SCHEMES.tcp];

const backendUrl = z.string().transform((value, ctx) => {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    ctx.addIssue({ code: 'custom', message: `invalid URL ${JSON.stringify(value)}: expected http://host:port (or tcp://host:port, tls://host:port in a tcp listener)` });
    return z.NEVER;
  }
  if (!ALL_SCHEMES.includes(url.protocol)) {
    ctx.addIssue({ code: 'custom', message: `unsupported scheme "${url.protocol}" in ${JSON.stringify(value)}: backends are http://host:port or https://host:port (tcp://host:port or tls://host:port in a tcp listener)` });
    return z.NEVER;
  }
  if ((url.pathname !== '/' && url.pathname !== '') || url.search || url.hash || url.username) {
    ctx.addIssue({ code: 'custom', message: `backend URL ${JSON.stringify(value)} must be only scheme, host and port (no path, query or credentials)` });
    return z.NEVER;
  }
  if ((url.protocol === 'tcp:' || url.protocol === 'tls:') && url.port === '') {
    ctx.addIssue({ code: 'custom', message: `backend URL ${JSON.stringify(value)} needs a port: ${url.protocol}//host:port` });
    return z.NEVER;
  }
  // URL#origin is "null" for schemes other than http(s), ws(s) and ftp.
  return `${url.protocol}//${url.host}`;
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

const listenerModes = ['http', 'tcp'] as const;
export type ListenerMode = (typeof listenerModes)[number];
const proxyProtocols = ['off', 'v1', 'v2'] as const;

/**
 * The keys a listener may set; at the top level they describe the listener of a file without
 * `listeners:` and are the defaults of every listener that does not set them. Keys that only
 * some modes use have no default here (the listener's mode gives it: see listenerDefaults), so
 * that a file without them reads back as it always did.
 */
const listenerKeys = {
  listen: z.strictObject({ host: host.default('0.0.0.0'), port: port.default(8080) }).prefault({}),
  /** mode: http (default), or tcp: each client connection relayed to one backend (L4). */
  mode: z.enum(listenerModes, { error: (issue) => `unknown mode ${JSON.stringify(issue.input)}; accepted: ${listenerModes.join(', ')}` }).optional(),
  algorithm: algorithm.default('round-robin'),
  /** engine: how one try reaches a backend: http-proxy (http-proxy-3, default) or undici. */
  engine: z.enum(engineNames, { error: (issue) => `unknown engine ${JSON.stringify(issue.input)}; accepted: ${engineNames.join(', ')}` }).default('http-proxy'),
  hash: z.strictObject({
    /** key: what consistent-hash hashes: "client-address" (default) or "header:<name>". */
    key: hashKey.default('client-address'),
    /** virtualNodes: points per unit of weight on the ring (default 160, as ketama). */
    virtualNodes: z.number().int().min(1).max(1000).default(160),
  }).prefault({}),
  backends: z.array(backendSchema).default([]),
  healthCheck: z.strictObject({
    enabled: z.boolean().default(true),
    /** type: http (GET path; the default in http mode) or tcp (a connect; the default in tcp mode). */
    type: z.enum(['http', 'tcp'], { error: (issue) => `unknown health check type ${JSON.stringify(issue.input)}; accepted: http, tcp` }).optional(),
    /** port: check this port of the backend instead of the one in its URL (e.g. the HTTP /health beside a TCP service). */
    port: port.refine((value) => value > 0, 'port must be 1-65535').optional(),
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
    /** idle (tcp mode): a connection with no byte either way for this long is closed (default 10m; 0: never). */
    idle: duration.optional(),
    /** drain (tcp mode): how long a draining or removed backend's open connections may last (default 30s). */
    drain: duration.optional(),
    /** clientHeader (http mode): a client must send its whole request head within this, from its connection or its last response (408, then close; default 10s). */
    clientHeader: duration.optional(),
    /** clientIdle (http mode): an idle keep-alive client connection is closed after this, advertised as Keep-Alive: timeout=N (default 5s). */
    clientIdle: duration.optional(),
  }).prefault({}),
  /** limits: what one client may take. maxConnections applies to both modes, the others to http. */
  limits: z.strictObject({
    /** maxConnections: client connections at once on this listener (per worker); beyond it, 503 LB_ERR_OVERLOADED (tcp: a close) */
    maxConnections: z.number().int('must be a whole number').min(1, 'must be at least 1').default(10_000),
    /** maxHeaderBytes: the request head's size; beyond it, 431 LB_ERR_HEADERS_TOO_LARGE */
    maxHeaderBytes: z.number().int('must be a whole number').min(1024, 'must be at least 1024').max(1_048_576, 'must be at most 1048576 (1 MiB)').default(16_384),
    /** maxBodyBytes: the request body's size, by Content-Length and while it streams; beyond it, 413 LB_ERR_BODY_TOO_LARGE (0: no limit) */
    maxBodyBytes: z.number().int('must be a whole number').min(0, 'must be 0 (no limit) or more').default(0),
  }).prefault({}),
  /** tls: terminate TLS on this listener (https, or TLS over tcp): PEM files, read again on every reload. */
  tls: z.strictObject({ cert: z.string().min(1, 'a PEM file path'), key: z.string().min(1, 'a PEM file path') }).optional(),
  /** upstreamTls: how https:// (and tls://) backends are verified: the CA (PEM file; default: Node's CA store), the name, or not at all. */
  upstreamTls: z.strictObject({
    ca: z.string().min(1, 'a PEM file path').optional(),
    servername: z.string().min(1).optional(),
    verify: z.boolean('verify must be true or false').default(true),
  }).optional(),
  /** proxyProtocol (tcp mode): send HAProxy's PROXY protocol header, v1 (text) or v2 (binary), on every backend connection. */
  proxyProtocol: z.enum(proxyProtocols, { error: (issue) => `unknown proxyProtocol ${JSON.stringify(issue.input)}; accepted: ${proxyProtocols.join(', ')}` }).optional(),
};

const LISTENER_KEYS = Object.keys(listenerKeys);

const listenerName = z.string({ error: 'every listener needs a name' }).regex(/^[a-z0-9-]+$/, 'a listener name may contain only a-z, 0-9 and -').max(64, 'at most 64 characters');

const listenerSchema = z.strictObject({
  name: listenerName,
  ...listenerKeys,
  /** discoveryPort: this listener also takes the backends that discovery.dns finds, on this port (the first listener takes them on discovery.dns.port) */
  discoveryPort: port.refine((value) => value > 0, 'port must be 1-65535').optional(),
});

const configSchema = z.strictObject({
  ...listenerKeys,
  admin: z.strictObject({ host: host.default('127.0.0.1'), port: port.default(9090), token: z.string().min(1).optional() }).prefault({}),
  /** workers: traffic processes beside the primary, which keeps the control plane; "auto": one per core (default 1). */
  workers: z
    .union([z.literal('auto'), z.number().int('must be a whole number').min(1, 'must be at least 1').max(MAX_WORKERS, `must be at most ${MAX_WORKERS}`)], {
      error: (issue) => `workers must be a number from 1 to ${MAX_WORKERS} or "auto", not ${JSON.stringify(issue.input)}`,
    })
    .default(1),
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
  /** listeners: several ports, each with its own mode, algorithm and backends (absent: one listener, "default", from the keys above). */
  listeners: z.array(z.unknown(), { error: 'listeners must be a list of listeners' }).min(1, 'at least one listener is needed (or leave listeners out)').optional(),
});

type ParsedConfig = z.output<typeof configSchema>;
type ParsedListener = z.output<typeof listenerSchema>;

/** One listener as the balancer runs it: every key resolved, the mode's defaults applied. */
export type ListenerConfig = Readonly<
  Omit<ParsedListener, 'mode' | 'healthCheck' | 'timeouts' | 'proxyProtocol'> & {
    mode: ListenerMode;
    healthCheck: Readonly<ParsedListener['healthCheck'] & { type: 'http' | 'tcp' }>;
    timeouts: Readonly<ParsedListener['timeouts'] & { idle: number; drain: number; clientHeader: number; clientIdle: number }>;
    proxyProtocol: (typeof proxyProtocols)[number];
    /** DNS discovery feeds the first listener (discovery is a top-level key) */
    discovery: ParsedConfig['discovery'];
  }
>;

export const DEFAULT_CLIENT_HEADER_MS = 10_000;
export const DEFAULT_CLIENT_IDLE_MS = 5_000;
/** Node's http.Server requestTimeout (5 min by default), which a head timeout may not exceed. */
export const MAX_CLIENT_HEADER_MS = 300_000;

/** The name of the one listener of a file without `listeners:`. */
export const DEFAULT_LISTENER = 'default';

export type Config = Readonly<
  Omit<ParsedConfig, 'listeners'> & {
    listeners: readonly ListenerConfig[];
    /** the file has a `listeners:` key (else its one listener, "default", is the top-level keys) */
    listenersKey: boolean;
  }
>;
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

/**
 * A configuration is small: a document with more values than this, counted as they would be
 * walked (YAML aliases expanded), or nested deeper, is refused before anything walks it, so that
 * an alias bomb ("billion laughs") or a deeply nested body costs a bounded walk and no more.
 */
const MAX_DOCUMENT_VALUES = 100_000;
const MAX_DOCUMENT_DEPTH = 64;

/** documentTooLarge: why the document is refused unwalked, or undefined; an iterative walk that stops at the limits. */
function documentTooLarge(document: unknown): string | undefined {
  const stack: [unknown, number][] = [[document, 0]];
  let values = 0;
  while (stack.length > 0) {
    const [value, depth] = stack.pop()!;
    if (++values > MAX_DOCUMENT_VALUES) return `the configuration has more than ${MAX_DOCUMENT_VALUES} values (YAML aliases count each time they are used)`;
    if (typeof value !== 'object' || value === null) continue;
    if (depth >= MAX_DOCUMENT_DEPTH) return `the configuration is nested more than ${MAX_DOCUMENT_DEPTH} levels deep`;
    for (const child of Array.isArray(value) ? value : Object.values(value)) stack.push([child, depth + 1]);
  }
  return undefined;
}

/** validateConfig checks a parsed document and returns the frozen config, or throws ConfigError listing every problem. */
export function validateConfig(document: unknown, source = 'config', positions = new Map<string, Position>()): Config {
  const tooLarge = documentTooLarge(document);
  if (tooLarge) throw new ConfigError(source, [{ path: '', message: tooLarge }]);
  const parsed = parseWith(configSchema, document ?? {}, source, positions);
  const located = locator(positions);
  const problems: ConfigProblem[] = [];
  let listeners: ListenerConfig[];
  if (parsed.listeners === undefined) {
    listeners = [resolveListener({ ...parsed, name: DEFAULT_LISTENER }, parsed.discovery)];
    checkListener(listeners[0]!, [], located, problems);
  } else {
    const indexed: [number, ListenerConfig][] = [];
    const defaults = Object.fromEntries(Object.entries(document as Record<string, unknown>).filter(([key]) => LISTENER_KEYS.includes(key)));
    parsed.listeners.forEach((raw, index) => {
      const at: PropertyKey[] = ['listeners', index];
      if (!raw || typeof raw !== 'object' || Array.isArray(raw)) {
        problems.push(located(at, 'a listener must be a mapping of keys such as name, mode, listen, backends'));
        return;
      }
      if (!('listen' in raw)) problems.push(located(at, 'every listener needs its own listen.port'));
      let listener: ParsedListener;
      try {
        listener = parseWith(listenerSchema, withDefaults(defaults, raw as Record<string, unknown>), source);
      } catch (error) {
        if (!(error instanceof ConfigError)) throw error;
        for (const problem of error.problems) problems.push(located([...at, ...problem.path.split(/\.|(?=\[)/).filter(Boolean).map(keyOf)], problem.message));
        return;
      }
      const resolved = resolveListener(listener, discoveryFor(parsed.discovery, index, listener.discoveryPort));
      checkListener(resolved, at, located, problems);
      indexed.push([index, resolved]);
    });
    checkListenerSet(indexed, located, problems);
    listeners = indexed.map(([, listener]) => listener);
  }
  if (problems.length > 0) throw new ConfigError(source, problems);
  const { listeners: _raw, ...rest } = parsed;
  return deepFreeze({ ...rest, listeners, listenersKey: parsed.listeners !== undefined });
}

/** keyOf turns a path text part back into a key: "[2]" into 2. */
function keyOf(part: string): PropertyKey {
  const index = /^\[(\d+)\]$/.exec(part);
  return index ? Number(index[1]) : part;
}

/** withDefaults merges the top-level keys into a listener: its own values win, and mappings (timeouts, healthCheck, ...) merge key by key. */
function withDefaults(defaults: Record<string, unknown>, listener: Record<string, unknown>): Record<string, unknown> {
  const merged: Record<string, unknown> = { ...defaults, ...listener };
  for (const [key, value] of Object.entries(defaults)) {
    const own = listener[key];
    if (isMapping(value) && isMapping(own)) merged[key] = { ...value, ...own };
  }
  return merged;
}

function isMapping(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** discoveryFor: what DNS discovery feeds a listener: the first one on discovery.dns.port, any other that sets discoveryPort on that. */
function discoveryFor(discovery: ParsedConfig['discovery'], index: number, discoveryPort: number | undefined): ParsedConfig['discovery'] {
  if (!discovery) return undefined;
  if (discoveryPort !== undefined) return { dns: { ...discovery.dns, port: discoveryPort } };
  return index === 0 ? discovery : undefined;
}

/** resolveListener applies the defaults that depend on the mode. */
function resolveListener(listener: Omit<ParsedListener, 'discoveryPort'> & { discoveryPort?: number | undefined }, discovery: ParsedConfig['discovery']): ListenerConfig {
  const mode = listener.mode ?? 'http';
  return {
    name: listener.name,
    mode,
    listen: listener.listen,
    algorithm: listener.algorithm,
    engine: listener.engine,
    hash: listener.hash,
    backends: listener.backends,
    healthCheck: { ...listener.healthCheck, type: listener.healthCheck.type ?? mode },
    outlierDetection: listener.outlierDetection,
    panicThreshold: listener.panicThreshold,
    slowStart: listener.slowStart,
    retries: listener.retries,
    timeouts: {
      ...listener.timeouts,
      idle: listener.timeouts.idle ?? 600_000,
      drain: listener.timeouts.drain ?? 30_000,
      clientHeader: listener.timeouts.clientHeader ?? DEFAULT_CLIENT_HEADER_MS,
      clientIdle: listener.timeouts.clientIdle ?? DEFAULT_CLIENT_IDLE_MS,
    },
    limits: listener.limits,
    proxyProtocol: listener.proxyProtocol ?? 'off',
    tls: listener.tls,
    upstreamTls: listener.upstreamTls,
    ...(listener.discoveryPort !== undefined ? { discoveryPort: listener.discoveryPort } : {}),
    discovery,
  };
}

type Locate = ReturnType<typeof locator>;

/** checkListener: what one listener's schema cannot say: duplicate backends, schemes that fit the mode, timeouts above 0. */
function checkListener(listener: ListenerConfig, at: readonly PropertyKey[], located: Locate, problems: ConfigProblem[]): void {
  const seen = new Map<string, number>();
  const where = (index: number): string => `${at.length > 0 ? `listeners[${String(at[1])}].` : ''}backends[${index}]`;
  listener.backends.forEach((backend, index) => {
    const id = backendId(backend);
    const first = seen.get(id);
    if (first !== undefined) problems.push(located([...at, 'backends', index, backend.name ? 'name' : 'url'], `duplicate backend id "${id}" (also ${where(first)})`));
    else seen.set(id, index);
    const schemes: readonly string[] = SCHEMES[listener.mode];
    const scheme = new URL(backend.url).protocol;
    if (!schemes.includes(scheme)) {
      problems.push(located([...at, 'backends', index, 'url'], `a ${listener.mode} listener's backends are ${schemes.map((s) => `${s}//host:port`).join(' or ')}, not ${backend.url}`));
    }
  });
  if (listener.backends.length === 0 && !listener.discovery) problems.push(located([...at, 'backends'], 'at least one backend is needed (or discovery.dns)'));
  for (const key of ['perTry', 'request', 'connect', 'clientHeader', 'clientIdle'] as const) {
    if (listener.timeouts[key] === 0) problems.push(located([...at, 'timeouts', key], 'must be more than 0'));
  }
  if (listener.timeouts.clientIdle > 0 && listener.timeouts.clientIdle < 1000) problems.push(located([...at, 'timeouts', 'clientIdle'], 'must be at least 1s: it is advertised in whole seconds (Keep-Alive: timeout=N)'));
  // Node's server refuses a head timeout above its whole-request timeout (5 min).
  if (listener.timeouts.clientHeader > MAX_CLIENT_HEADER_MS) problems.push(located([...at, 'timeouts', 'clientHeader'], `must be at most ${MAX_CLIENT_HEADER_MS / 60_000}m`));
  if (listener.mode === 'tcp' && listener.hash.key !== 'client-address') {
    problems.push(located([...at, 'hash', 'key'], 'a tcp listener can only hash the client address (there are no headers at L4)'));
  }
  if (listener.tls) checkTlsFiles(listener.tls, at, located, problems);
  if (listener.upstreamTls?.ca !== undefined) {
    const problem = unreadable(listener.upstreamTls.ca);
    if (problem) problems.push(located([...at, 'upstreamTls', 'ca'], problem));
  }
  if (listener.mode === 'http' && listener.proxyProtocol !== 'off') {
    problems.push(located([...at, 'proxyProtocol'], 'the PROXY protocol is sent by tcp listeners only; http listeners send X-Forwarded-For'));
  }
}

function unreadable(file: string): string | undefined {
  try {
    readFileSync(file);
    return undefined;
  } catch (error) {
    return `cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`;
  }
}

/** checkTlsFiles: both files readable, and a certificate and key that OpenSSL takes as a pair. */
function checkTlsFiles(tls: { cert: string; key: string }, at: readonly PropertyKey[], located: Locate, problems: ConfigProblem[]): void {
  const missing = (['cert', 'key'] as const).map((key) => [key, unreadable(tls[key])] as const).filter(([, problem]) => problem !== undefined);
  for (const [key, problem] of missing) problems.push(located([...at, 'tls', key], problem!));
  if (missing.length > 0) return;
  try {
    createSecureContext({ cert: readFileSync(tls.cert), key: readFileSync(tls.key) });
  } catch (error) {
    problems.push(located([...at, 'tls'], `${tls.cert} and ${tls.key} are not a certificate and its key: ${(error as Error).message}`));
  }
}

/** checkListenerSet: names and ports unique over the listeners (each with its index in the file). */
function checkListenerSet(listeners: readonly (readonly [number, ListenerConfig])[], located: Locate, problems: ConfigProblem[]): void {
  const names = new Map<string, number>();
  const ports = new Map<number, number>();
  for (const [index, listener] of listeners) {
    const firstName = names.get(listener.name);
    if (firstName !== undefined) problems.push(located(['listeners', index, 'name'], `duplicate listener name "${listener.name}" (also listeners[${firstName}])`));
    else names.set(listener.name, index);
    const port = listener.listen.port;
    const firstPort = ports.get(port);
    if (port !== 0 && firstPort !== undefined) problems.push(located(['listeners', index, 'listen', 'port'], `port ${port} is already listeners[${firstPort}]'s`));
    else if (port !== 0) ports.set(port, index);
  }
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

/** The environment variable that sets admin.token, over the file's: a secret need not live in a file kept in git. */
const ADMIN_TOKEN_VARIABLE = 'BALANCER_ADMIN_TOKEN';

/** loadConfigFile reads and validates a file; a non-empty BALANCER_ADMIN_TOKEN in env is the admin token. */
export function loadConfigFile(file: string, env: NodeJS.ProcessEnv = process.env): Config {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError(file, [{ path: '', message: `cannot read the file: ${(error as Error).message}` }]);
  }
  const config = parseConfig(text, file);
  const token = env[ADMIN_TOKEN_VARIABLE];
  if (!token) return config;
  return Object.freeze({ ...config, admin: Object.freeze({ ...config.admin, token }) });
}

/** deepFreeze freezes a plain value and everything inside it. */
export function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}
