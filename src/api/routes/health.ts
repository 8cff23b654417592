/** Liveness and readiness: /health answers while the process runs; /ready only when the database
 * answers and its migrations are current. */
import { Router } from 'express';
import type { ApiContext } from '../context.js';
import { latestMigrationMillis } from '../../db/migrate.js';
import { appliedMigrationMillis } from '../../queries/health.js';

export function healthRouter(ctx: Pick<ApiContext, 'pool'>): Router {
  const router = Router();
  const expected = latestMigrationMillis();

  router.get('/health', (_req, res) => {
    res.json({ status: 'ok' });
  });

  router.get('/ready', async (_req, res) => {
    try {
      const applied = await appliedMigrationMillis(ctx.pool);
      if (applied !== null && applied >= expected) {
        res.json({ status: 'ready' });
        return;
      }
      res.status(503).json({ status: 'migrations_pending' });
    } catch {
      res.status(503).json({ status: 'database_unavailable' });
    }
  });

  return router;
}
