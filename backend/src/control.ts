import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import { parseChaosPatch, type ChaosState, type Problem } from './chaos.js';
import type { BackendMetrics } from './metrics.js';
import { sendError } from '@lab/common/errors';

/** Exit code of the process after POST /chaos/crash. */
export const CRASH_EXIT_CODE = 1;

export interface ControlOptions {
  backendId: string;
  chaos: ChaosState;
  metrics: BackendMetrics;
  /** Called once the crash answer has been handed to the socket. */
  crash: () => void;
}

function invalid(res: Response, message: string, problems: Problem[]): void {
  sendError(res, 400, 'BACKEND_ERR_INVALID_CHAOS', message, { problems });
}

/**
 * createControlApp is the control port: GET/PUT/PATCH/DELETE /chaos, POST /chaos/crash and GET /metrics.
 * PUT and PATCH set the fields given and keep the others; DELETE clears every fault.
 * A body with any problem is refused whole (400, every problem listed) and nothing changes.
 */
export function createControlApp(options: ControlOptions): Express {
  const { backendId, chaos, metrics, crash } = options;
  const app = express();
  app.disable('x-powered-by');
  // Any content type is read as JSON, so that `curl -X PUT -d '{"hang":true}'` works without a header.
  app.use(express.json({ type: () => true, limit: '16kb', strict: false }));

  app.get('/chaos', (_req, res) => {
    res.json(chaos.current);
  });

  const update = (req: Request, res: Response): void => {
    const parsed = parseChaosPatch(req.body);
    if (!parsed.ok) {
      invalid(res, `invalid chaos settings (${parsed.problems.length} problem${parsed.problems.length === 1 ? '' : 's'}); nothing changed`, parsed.problems);
      return;
    }
    res.json(chaos.apply(parsed.patch, `${req.method} /chaos`));
  };
  app.put('/chaos', update);
  app.patch('/chaos', update);

  app.delete('/chaos', (_req, res) => {
    res.json(chaos.reset('DELETE /chaos'));
  });

  app.post('/chaos/crash', (_req, res) => {
    res.once('finish', crash);
    res.status(202).set('connection', 'close').json({ backend: backendId, crashing: true, exitCode: CRASH_EXIT_CODE });
  });

  app.get('/metrics', async (_req, res) => {
    res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });

  app.use((req, res) => {
    sendError(res, 404, 'BACKEND_ERR_NOT_FOUND', `no control route ${req.method} ${req.path}; see GET/PUT/PATCH/DELETE /chaos, POST /chaos/crash, GET /metrics`);
  });

  app.use((err: Error & { status?: number; type?: string }, _req: Request, res: Response, _next: NextFunction) => {
    if (err.type === 'entity.parse.failed' || err.type === 'entity.too.large') {
      invalid(res, 'the body is not a JSON object; nothing changed', [{ path: 'body', message: err.message }]);
      return;
    }
    sendError(res, err.status ?? 500, 'BACKEND_ERR_INTERNAL', err.message);
  });

  return app;
}
