/**
 * The operator console: static files (index.html, console.js, console.css) at /console, plus two
 * small JSON routes the pages need that the resource API does not have (who am I; webhooks with
 * their health). The pages call the ordinary JSON API with `Authorization: Bearer`, so the
 * static files themselves need no authentication; see docs/console.md for the security reasoning.
 */
import express, { Router, type RequestHandler, type Response } from 'express';
import type { ApiContext } from '../api/context.js';
import { listScope, principalOf, readScope } from '../api/middleware/auth.js';
import { idCursor, page } from '../api/pagination.js';
import { parseInput } from '../api/validate.js';
import { AppError } from '../errors.js';
import type { TenantQuotaUsageJson, WebhookHealthJson, WebhookStatsJson } from '../api/response-schemas.js';
import {
  CONSOLE_CSP,
  consolePublicDir,
  HealthQuery,
  StatsParams,
  StatsQuery,
  TenantUsageQuery,
} from '../api/routes/console-schemas.js';
import { listTopQuotaUsage, type TenantQuotaUsage } from '../queries/quota-usage.js';
import { listWebhookHealth, type WebhookHealthRow } from '../queries/webhook-health.js';
import { getWebhook } from '../queries/webhooks.js';
import { webhookAttemptsPerHour } from '../queries/webhook-stats.js';

function setConsoleHeaders(res: Response): void {
  res.setHeader('Content-Security-Policy', CONSOLE_CSP);
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Referrer-Policy', 'no-referrer');
  res.setHeader('X-Frame-Options', 'DENY');
  // The pages are tiny and change with each release; always revalidate rather than run a stale script.
  res.setHeader('Cache-Control', 'no-cache');
}

const ratio = (ok: number, failed: number) => (ok + failed === 0 ? null : ok / (ok + failed));
const iso = (d: Date | null) => (d ? d.toISOString() : null);

export function webhookHealthJson(row: WebhookHealthRow): WebhookHealthJson {
  return {
    id: row.id,
    tenant_id: row.tenantId,
    url: row.url,
    description: row.description,
    enabled: row.enabled,
    created_at: row.createdAt.toISOString(),
    health: {
      pending: row.pending,
      due: row.due,
      in_flight: row.inFlight,
      succeeded_attempts_1h: row.succeededAttempts1h,
      failed_attempts_1h: row.failedAttempts1h,
      succeeded_attempts_24h: row.succeededAttempts24h,
      failed_attempts_24h: row.failedAttempts24h,
      success_rate_24h: ratio(row.succeededAttempts24h, row.failedAttempts24h),
      consecutive_failures: row.consecutiveFailures,
      last_success_at: iso(row.lastSuccessAt),
      oldest_due_at: iso(row.oldestDueAt),
      breaker_state: row.breakerState,
      dead_letters: row.deadLetters,
      concurrency_limit: row.concurrencyLimit,
      max_concurrency: row.maxConcurrency,
      latency_floor_ms: row.latencyFloorMs,
    },
  };
}

export function tenantQuotaUsageJson(u: TenantQuotaUsage): TenantQuotaUsageJson {
  return {
    tenant_id: u.tenantId,
    name: u.tenantName,
    peak_percent: u.peakPct,
    quotas: {
      events_per_sec: { limit: u.maxEventsPerSec, used: u.eventsPeak1m, percent: u.eventsPct },
      concurrent_deliveries: {
        limit: u.maxConcurrentDeliveries,
        used: u.inFlightDeliveries,
        percent: u.concurrencyPct,
      },
      dlq_size: { limit: u.maxDlqSize, used: u.dlqSize, percent: u.dlqPct },
    },
  };
}

export function consoleRouter(ctx: ApiContext, guard: RequestHandler[]): Router {
  const router = Router();

  // Who the pasted key belongs to: the page shows it and hides tenant columns for a tenant key.
  router.get('/console/api/session', ...guard, (req, res) => {
    const principal = principalOf(req);
    res.setHeader('Cache-Control', 'no-store');
    res.json(
      principal.kind === 'admin'
        ? { kind: 'admin', tenant_id: null }
        : { kind: 'tenant', tenant_id: principal.tenantId },
    );
  });

  // Webhooks (not deleted) with their health, newest first; a tenant key sees its own only.
  router.get('/console/api/webhook-health', ...guard, async (req, res) => {
    const q = parseInput(HealthQuery, req.query, 'query');
    const rows = await listWebhookHealth(ctx.pool, {
      tenantId: listScope(req, q.tenant_id),
      beforeId: idCursor(q.cursor),
      limit: q.limit + 1,
    });
    const result = page(rows, q.limit, (row) => [row.id]);
    res.setHeader('Cache-Control', 'no-store');
    res.json({ data: result.data.map(webhookHealthJson), next_cursor: result.next_cursor });
  });

  // The tenants nearest their quotas (tenant_quota_usage view); a tenant key sees its own row only.
  router.get('/console/api/tenant-usage', ...guard, async (req, res) => {
    const q = parseInput(TenantUsageQuery, req.query, 'query');
    const rows = await listTopQuotaUsage(ctx.pool, { tenantId: listScope(req, q.tenant_id), limit: q.limit });
    res.setHeader('Cache-Control', 'no-store');
    res.json({ data: rows.map(tenantQuotaUsageJson) });
  });

  // One webhook's attempts per hour (succeeded / failed) for the console's chart.
  router.get('/console/api/webhooks/:id/stats', ...guard, async (req, res) => {
    const { id } = parseInput(StatsParams, req.params, 'path');
    const { hours } = parseInput(StatsQuery, req.query, 'query');
    const scope = readScope(req);
    if (!(await getWebhook(ctx.pool, id, scope))) throw AppError.notFound('webhook');
    const buckets = await webhookAttemptsPerHour(ctx.pool, id, scope ?? null, hours);
    res.setHeader('Cache-Control', 'no-store');
    const answer: WebhookStatsJson = {
      webhook_id: id,
      hours,
      buckets: buckets.map((b) => ({
        start: b.start.toISOString(),
        succeeded: b.succeeded,
        failed: b.failed,
      })),
    };
    res.json(answer);
  });

  router.use(
    '/console',
    (_req, res, next) => {
      setConsoleHeaders(res);
      next();
    },
    express.static(consolePublicDir, { index: 'index.html', redirect: true, dotfiles: 'ignore' }),
  );

  return router;
}
