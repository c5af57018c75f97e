import express, { type Express } from 'express';
import type { Pool } from './pool.js';
import type { Metrics } from './metrics.js';

export interface BackendView {
  id: string;
  url: string;
  weight: number;
  state: string;
  activeRequests: number;
  totalRequests: number;
}

export function backendViews(pool: Pool): BackendView[] {
  return pool.all().map((backend) => ({
    id: backend.id,
    url: backend.url,
    weight: backend.weight,
    state: backend.state,
    activeRequests: backend.activeRequests,
    totalRequests: backend.totalRequests,
  }));
}

/** createAdminApp serves the admin listener: metrics, liveness and the backends' state. */
export function createAdminApp(pool: Pool, metrics: Metrics): Express {
  const app = express();
  app.disable('x-powered-by');
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/metrics', async (_req, res) => {
    res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });
  app.get('/backends', (_req, res) => {
    res.json(backendViews(pool));
  });
  return app;
}
