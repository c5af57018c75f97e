import { timingSafeEqual } from 'node:crypto';
import express, { type Express, type NextFunction, type Request, type Response, type Router } from 'express';
import { parseConfig, validateConfig } from './config.js';
import { AdminError } from './errors.js';
import type { Balancer } from './balancer.js';
import type { ControlPlane } from './control-plane.js';
import { hostPort } from '@lab/common/host-port';
import { algorithmNames } from './algorithms/index.js';
import { createStatusRouter } from './status-page.js';
import type { Supervisor } from './cluster/supervisor.js';

const YAML_TYPES = ['application/yaml', 'application/x-yaml', 'text/yaml', 'text/x-yaml', 'text/plain'];

function tokenMatches(header: string | undefined, token: string): boolean {
  // The scheme is case-insensitive (RFC 9110, 11.1); the HTTP parser has already trimmed the value.
  const match = /^Bearer (.+)$/i.exec(header ?? '');
  if (!match) return false;
  const given = Buffer.from(match[1]!);
  const expected = Buffer.from(token);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** A listener as GET /listeners shows it. */
export interface ListenerView {
  name: string;
  mode: string;
  /** it terminates TLS */
  tls: boolean;
  /** host:port it listens on (the port it got, when the configuration says 0) */
  address: string;
  algorithm: string;
  backends: number;
  healthy: number;
}

function listenerView(plane: ControlPlane): ListenerView {
  const members = plane.pool.all();
  return {
    name: plane.name,
    mode: plane.config.mode,
    tls: plane.config.tls !== undefined,
    address: hostPort(plane.config.listen.host, plane.boundPort),
    algorithm: plane.config.algorithm,
    backends: members.length,
    healthy: members.filter((backend) => backend.state === 'healthy').length,
  };
}

/** listenerRouter: the backend and algorithm calls of one listener, found by planeOf for each request. */
function listenerRouter(planeOf: (req: Request) => ControlPlane): Router {
  const router = express.Router({ mergeParams: true });
  router.get('/backends', (req, res) => {
    const plane = planeOf(req);
    res.json(plane.backendViews());
  });
  router.get('/backends/:id', (req, res) => {
    const plane = planeOf(req);
    res.json(plane.backendView(plane.findBackend(req.params.id as string)));
  });
  router.post('/backends', (req, res) => {
    const plane = planeOf(req);
    const backend = plane.addBackend(req.body);
    res.status(201).location(`${req.baseUrl}/backends/${encodeURIComponent(backend.id)}`).json(plane.backendView(backend));
  });
  router.patch('/backends/:id', (req, res) => {
    const plane = planeOf(req);
    res.json(plane.backendView(plane.patchBackend(req.params.id as string, req.body)));
  });
  router.delete('/backends/:id', (req, res) => {
    planeOf(req).removeBackend(req.params.id as string);
    res.status(204).end();
  });
  router.put('/algorithm', (req, res) => {
    res.json({ algorithm: planeOf(req).setAlgorithm(req.body) });
  });
  return router;
}

/**
 * createAdminApp serves the admin listener: the listeners, backends, configuration and workers API,
 * metrics (summed over the workers) and liveness. The unprefixed backend and algorithm calls address
 * the first listener; /listeners/:name/... any of them. Write calls need `Authorization: Bearer
 * <admin.token>` when a token is configured; a refused call changes nothing.
 */
export function createAdminApp(balancer: Balancer, configFile: string | undefined, workers: Supervisor): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);

  app.use((req: Request, _res: Response, next: NextFunction) => {
    const token = balancer.config.admin.token;
    if (req.method === 'GET' || req.method === 'HEAD' || !token || tokenMatches(req.headers.authorization, token)) next();
    else next(new AdminError('ADMIN_ERR_UNAUTHORIZED'));
  });
  app.use(express.json({ limit: '1mb', strict: false }));
  app.use(express.text({ type: YAML_TYPES, limit: '1mb' }));
  // A PUT /config whose body cannot even be parsed is a failed reload too.
  app.use('/config', (error: unknown, req: Request, _res: Response, next: NextFunction) => {
    if (req.method === 'PUT') balancer.recordReloadFailure('PUT /config', [{ path: '', message: `the body is not valid JSON: ${(error as Error).message}` }]);
    next(error);
  });

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/metrics', async (_req, res) => {
    res.type(workers.contentType).send(await workers.metricsText());
  });

  app.get('/workers', (_req, res) => {
    res.json(workers.views());
  });
  app.post('/workers/restart', async (_req, res) => {
    res.json(await workers.upgrade('POST /workers/restart'));
  });

  app.get('/listeners', (_req, res) => {
    res.json(balancer.listeners().map(listenerView));
  });
  app.get('/listeners/:listener', (req, res) => {
    res.json(listenerView(balancer.listener(req.params.listener)));
  });
  app.use('/listeners/:listener', listenerRouter((req) => balancer.listener(req.params.listener as string)));
  app.use(listenerRouter(() => balancer.first));

  app.get('/config', (_req, res) => {
    res.json(balancer.effectiveConfig());
  });
  app.put('/config', async (req, res) => {
    const origin = 'PUT /config';
    const changes = await balancer.reloadFrom(origin, () => {
      const next = typeof req.body === 'string' ? parseConfig(req.body, origin) : validateConfig(req.body, origin);
      // GET /config never shows the token: a body without one keeps the token in force.
      const token = balancer.config.admin.token;
      return next.admin.token !== undefined || token === undefined ? next : Object.freeze({ ...next, admin: Object.freeze({ ...next.admin, token }) });
    });
    res.json({ status: 'applied', changes, config: balancer.effectiveConfig() });
  });
  app.post('/config/reload', async (_req, res) => {
    if (!configFile) throw new AdminError('ADMIN_ERR_INVALID', 'the balancer was not started from a file');
    const changes = await balancer.reloadFile(configFile, 'POST /config/reload');
    res.json({ status: 'applied', changes });
  });

  app.use(
    createStatusRouter({
      listeners: () =>
        balancer.listeners().map((plane) => ({
          name: plane.name,
          mode: plane.config.mode,
          tls: plane.config.tls !== undefined,
          address: hostPort(plane.config.listen.host, plane.boundPort),
          algorithm: plane.config.algorithm,
          engine: plane.config.engine,
          backends: plane.backendViews(),
          stats: plane.stats,
        })),
      workers: () => workers.views(),
      algorithms: algorithmNames,
      get tokenRequired() {
        return balancer.config.admin.token !== undefined;
      },
    }),
  );

  app.use((_req: Request, _res: Response, next: NextFunction) => next(new AdminError('ADMIN_ERR_NOT_FOUND', 'no such admin endpoint')));
  app.use((error: unknown, _req: Request, res: Response, _next: NextFunction) => {
    let adminError: AdminError;
    if (error instanceof AdminError) adminError = error;
    else if (error && typeof error === 'object' && 'status' in error && (error as { status: number }).status < 500) {
      // A body express could not read: not JSON (entity.parse.failed), too large, a bad charset.
      const parse = 'type' in error && (error as { type: string }).type === 'entity.parse.failed';
      const message = `${parse ? 'the body is not valid JSON: ' : ''}${(error as unknown as Error).message}`;
      adminError = new AdminError('ADMIN_ERR_BAD_REQUEST', message, [{ path: '', message }]);
    } else {
      throw error;
    }
    if (adminError.status === 401) res.setHeader('www-authenticate', 'Bearer');
    res.status(adminError.status).json(adminError.toJSON());
  });
  return app;
}
