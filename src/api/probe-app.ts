/**
 * What a worker-only process (POSTBOX_ROLE=worker) serves on PORT: /health, /ready and /metrics, so
 * orchestrators can probe it and Prometheus can scrape it like the API. Everything else is a 404.
 */
import express from 'express';
import { AppError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { ApiContext } from './context.js';
import { errorHandler } from './middleware/errors.js';
import { healthRouter } from './routes/health.js';
import { metricsRouter } from './routes/metrics.js';

export function createProbeApp(
  ctx: Pick<ApiContext, 'pool' | 'metrics'> & { logger: Logger },
): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use(healthRouter(ctx));
  app.use(metricsRouter(ctx));
  app.use(() => {
    throw AppError.notFound('route');
  });
  app.use(errorHandler(ctx.logger));
  return app;
}
