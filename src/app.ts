/** The Express application: middleware order, routers, and the one error handler. */
import express, { type RequestHandler } from 'express';
import type { ApiContext } from './api/context.js';
import { authenticate, keyResolver } from './api/middleware/auth.js';
import { jsonObjectBody } from './api/middleware/body.js';
import { errorHandler } from './api/middleware/errors.js';
import { requestLog } from './api/middleware/request-log.js';
import { AppError } from './errors.js';
import { healthRouter } from './api/routes/health.js';
import { metricsRouter } from './api/routes/metrics.js';
import { tenantsRouter } from './api/routes/tenants.js';
import { apiKeysRouter } from './api/routes/api-keys.js';
import { webhooksRouter } from './api/routes/webhooks.js';
import { webhookActionsRouter } from './api/routes/webhook-actions.js';
import { eventsRouter } from './api/routes/events.js';
import { eventTypesRouter } from './api/routes/event-types.js';
import { deliveriesRouter } from './api/routes/deliveries.js';
import { dlqRouter } from './api/routes/dlq.js';
import { quotasRouter } from './api/routes/quotas.js';
import { auditRouter } from './api/routes/audit.js';
import { consoleRouter } from './console/router.js';
import { openApiRouter } from './api/routes/openapi.js';

export function createApp(ctx: ApiContext): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  // Client addresses from X-Forwarded-For only when the peer is a proxy we trust (TRUST_PROXY).
  app.set('trust proxy', ctx.config.TRUST_PROXY);

  app.use(requestLog(ctx.logger, ctx.metrics));

  // Each authenticated route runs `guard` first: the key is checked before the body is parsed, and
  // unknown routes still answer 404 rather than 401.
  const keys = keyResolver(ctx);
  const guard: RequestHandler[] = [authenticate(keys), ...jsonObjectBody(ctx.config.BODY_LIMIT_BYTES)];
  // Events first: ingest is the hot path, and Express tries every route of every router mounted
  // before the one that matches. No two routers share a path, so the order changes nothing else.
  app.use(eventsRouter(ctx, guard));
  app.use(healthRouter(ctx));
  app.use(metricsRouter(ctx));
  app.use(openApiRouter());
  app.use(tenantsRouter(ctx, guard));
  app.use(apiKeysRouter(ctx, guard, keys));
  app.use(webhooksRouter(ctx, guard));
  app.use(webhookActionsRouter(ctx, guard));
  app.use(eventTypesRouter(ctx, guard));
  app.use(deliveriesRouter(ctx, guard));
  app.use(dlqRouter(ctx, guard));
  app.use(quotasRouter(ctx, guard));
  app.use(auditRouter(ctx, guard));
  app.use(consoleRouter(ctx, guard));

  app.use(() => {
    throw AppError.notFound('route');
  });
  app.use(errorHandler(ctx.logger));
  return app;
}
