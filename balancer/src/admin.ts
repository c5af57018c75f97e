import { timingSafeEqual } from 'node:crypto';
import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import { parseConfig, validateConfig } from './config.js';
import { AdminError } from './errors.js';
import type { ControlPlane } from './control-plane.js';
import { algorithmNames } from './algorithms/index.js';
import { createStatusRouter } from './status-page.js';
import type { Supervisor } from './cluster/supervisor.js';

const YAML_TYPES = ['application/yaml', 'application/x-yaml', 'text/yaml', 'text/x-yaml', 'text/plain'];

function tokenMatches(header: string | undefined, token: string): boolean {
  const match = /^Bearer (.+)$/.exec(header ?? '');
  if (!match) return false;
  const given = Buffer.from(match[1]!);
  const expected = Buffer.from(token);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/**
 * createAdminApp serves the admin listener: the backends, configuration and workers API, metrics
 * (summed over the workers) and liveness. Write calls need `Authorization: Bearer <admin.token>` when a token is configured;
 * a refused call changes nothing.
 */
export function createAdminApp(balancer: ControlPlane, configFile: string | undefined, workers: Supervisor): Express {
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

  app.get('/backends', (_req, res) => {
    res.json(balancer.backendViews());
  });
  app.get('/backends/:id', (req, res) => {
    res.json(balancer.backendView(balancer.findBackend(req.params.id)));
  });
  app.post('/backends', (req, res) => {
    const backend = balancer.addBackend(req.body);
    res.status(201).location(`/backends/${encodeURIComponent(backend.id)}`).json(balancer.backendView(backend));
  });
  app.patch('/backends/:id', (req, res) => {
    res.json(balancer.backendView(balancer.patchBackend(req.params.id, req.body)));
  });
  app.delete('/backends/:id', (req, res) => {
    balancer.removeBackend(req.params.id);
    res.status(204).end();
  });

  app.put('/algorithm', (req, res) => {
    res.json({ algorithm: balancer.setAlgorithm(req.body) });
  });

  app.get('/config', (_req, res) => {
    res.json(balancer.effectiveConfig());
  });
  app.put('/config', (req, res) => {
    const origin = 'PUT /config';
    const changes = balancer.reloadFrom(origin, () => {
      const next = typeof req.body === 'string' ? parseConfig(req.body, origin) : validateConfig(req.body, origin);
      // GET /config never shows the token: a body without one keeps the token in force.
      const token = balancer.config.admin.token;
      return next.admin.token !== undefined || token === undefined ? next : Object.freeze({ ...next, admin: Object.freeze({ ...next.admin, token }) });
    });
    res.json({ status: 'applied', changes, config: balancer.effectiveConfig() });
  });
  app.post('/config/reload', (_req, res) => {
    if (!configFile) throw new AdminError('ADMIN_ERR_INVALID', 'the balancer was not started from a file');
    const changes = balancer.reloadFile(configFile, 'POST /config/reload');
    res.json({ status: 'applied', changes });
  });

  app.use(
    createStatusRouter({
      backends: () => balancer.backendViews(),
      algorithm: () => balancer.config.algorithm,
      engine: () => balancer.config.engine,
      workers: () => workers.views(),
      algorithms: algorithmNames,
      stats: balancer.stats,
      get tokenRequired() {
        return balancer.config.admin.token !== undefined;
      },
    }),
  );

  app.use((_req: Request, _res: Response, next: NextFunction) => next(new AdminError('ADMIN_ERR_NOT_FOUND', 'no such admin endpoint')));
  app.use((error: unknown, _req: Request, res: Response, _next: NextFunction) => {
    let adminError: AdminError;
    if (error instanceof AdminError) adminError = error;
    else if (error && typeof error === 'object' && 'type' in error && (error as { type: string }).type === 'entity.parse.failed') {
      adminError = new AdminError('ADMIN_ERR_BAD_REQUEST', `the body is not valid JSON: ${(error as unknown as Error).message}`);
    } else if (error && typeof error === 'object' && 'status' in error && (error as { status: number }).status < 500) {
      adminError = new AdminError('ADMIN_ERR_BAD_REQUEST', (error as unknown as Error).message);
    } else {
      throw error;
    }
    if (adminError.status === 401) res.setHeader('www-authenticate', 'Bearer');
    res.status(adminError.status).json(adminError.toJSON());
  });
  return app;
}
