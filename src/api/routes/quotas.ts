/**
 * Quotas: a tenant's limits and what it is using now. A tenant key reads its own (another tenant's
 * answers 404); changing limits needs the admin key and writes an audit row.
 */
import { Router, type RequestHandler } from 'express';
import * as v from 'valibot';
import type { ApiContext } from '../context.js';
import { auditActor, listScope, requireAdmin } from '../middleware/auth.js';
import { parseInput, Uuid } from '../validate.js';
import { QuotasInput } from './tenants.js';
import { AppError } from '../../errors.js';
import type { QuotaJson } from '../response-schemas.js';
import { withTransaction } from '../../db/pool.js';
import { insertAudit } from '../../queries/audit.js';
import { getQuotaUsage, updateQuotaLimits, type QuotaLimits, type QuotaUsage } from '../../queries/quotas.js';

export const TenantParams = v.object({ tenant_id: Uuid });

export const PatchQuotas = v.pipe(
  QuotasInput,
  v.check((q) => Object.values(q).some((x) => x !== undefined), 'name at least one limit to change'),
);

function limitsJson(l: QuotaLimits) {
  return {
    max_events_per_sec: l.maxEventsPerSec,
    max_concurrent_deliveries: l.maxConcurrentDeliveries,
    max_dlq_size: l.maxDlqSize,
  };
}

export function quotaJson(u: QuotaUsage): QuotaJson {
  return {
    tenant_id: u.tenantId,
    limits: limitsJson(u),
    current_usage: {
      events_this_second: u.eventsThisSecond,
      in_flight_deliveries: u.inFlightDeliveries,
      dlq_size: u.dlqSize,
      // Flagged, not enforced: nothing is dropped when the DLQ grows past its size.
      over_dlq_limit: u.dlqSize > u.maxDlqSize,
    },
  };
}

export function quotasRouter(ctx: ApiContext, guard: RequestHandler[]): Router {
  const router = Router();

  router.get('/quotas/:tenant_id', ...guard, async (req, res) => {
    const { tenant_id } = parseInput(TenantParams, req.params, 'path');
    const usage = await getQuotaUsage(ctx.pool, listScope(req, tenant_id)!);
    if (!usage) throw AppError.notFound('tenant');
    res.json(quotaJson(usage));
  });

  router.patch('/quotas/:tenant_id', ...guard, async (req, res) => {
    requireAdmin(req);
    const { tenant_id } = parseInput(TenantParams, req.params, 'path');
    const input = parseInput(PatchQuotas, req.body, 'quotas');
    await withTransaction(ctx.pool, async (tx) => {
      const changed = await updateQuotaLimits(tx, tenant_id, {
        maxEventsPerSec: input.max_events_per_sec,
        maxConcurrentDeliveries: input.max_concurrent_deliveries,
        maxDlqSize: input.max_dlq_size,
      });
      if (!changed) throw AppError.notFound('tenant');
      await insertAudit(tx, {
        ...auditActor(req),
        action: 'quota.update',
        objectType: 'quota',
        objectId: tenant_id,
        tenantId: tenant_id,
        changes: { before: limitsJson(changed.before), after: limitsJson(changed.after) },
      });
    });
    const usage = await getQuotaUsage(ctx.pool, tenant_id);
    if (!usage) throw AppError.notFound('tenant');
    res.json(quotaJson(usage));
  });

  return router;
}
