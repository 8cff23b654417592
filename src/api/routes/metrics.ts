/** GET /metrics: Prometheus text, no key (contract section 2); scrape it from inside the network. */
import { Router } from 'express';
import type { ApiContext } from '../context.js';

export function metricsRouter(ctx: Pick<ApiContext, 'metrics'>): Router {
  const router = Router();
  router.get('/metrics', async (_req, res) => {
    const body = await ctx.metrics.render();
    res.setHeader('Content-Type', ctx.metrics.contentType);
    res.setHeader('Cache-Control', 'no-store');
    res.send(body);
  });
  return router;
}
