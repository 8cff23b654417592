/** Tenants (admin only): create with a first API key shown once, read back without it. */
import { Router, type RequestHandler } from 'express';
import * as v from 'valibot';
import type { ApiContext } from '../context.js';
import { auditActor, requireAdmin } from '../middleware/auth.js';
import { IdParams, NoNul, parseInput } from '../validate.js';
import { AppError } from '../../errors.js';
import type { TenantJson } from '../response-schemas.js';
import { withTransaction } from '../../db/pool.js';
import { apiKeyPrefix, generateApiKey, hashApiKey } from '../../security/api-keys.js';
import { insertTenant, getTenant, type TenantRow } from '../../queries/tenants.js';
import { insertAudit } from '../../queries/audit.js';
import { insertApiKey } from '../../queries/api-keys.js';
import { newId } from '../../ids.js';

const positive = (max: number) =>
  v.pipe(v.number('must be a number'), v.integer('must be a whole number'), v.minValue(1), v.maxValue(max));

export const QuotasInput = v.strictObject({
  max_events_per_sec: v.optional(positive(1_000_000)),
  max_concurrent_deliveries: v.optional(positive(100_000)),
  max_dlq_size: v.optional(positive(100_000_000)),
});

export const CreateTenant = v.strictObject({
  name: v.pipe(
    v.string('must be a string'),
    v.trim(),
    v.minLength(1, 'must not be empty'),
    v.maxLength(200),
    NoNul,
  ),
  quotas: v.optional(QuotasInput),
});

export function tenantJson(row: TenantRow): TenantJson {
  return {
    id: row.id,
    name: row.name,
    quotas: {
      max_events_per_sec: row.maxEventsPerSec,
      max_concurrent_deliveries: row.maxConcurrentDeliveries,
      max_dlq_size: row.maxDlqSize,
    },
    created_at: row.createdAt.toISOString(),
  };
}

export function tenantsRouter(ctx: ApiContext, guard: RequestHandler[]): Router {
  const router = Router();

  router.post('/tenants', ...guard, async (req, res) => {
    requireAdmin(req);
    const input = parseInput(CreateTenant, req.body, 'tenant');
    const apiKey = generateApiKey();
    const row = await withTransaction(ctx.pool, async (tx) => {
      const tenant = await insertTenant(tx, {
        id: newId(),
        name: input.name,
        maxEventsPerSec: input.quotas?.max_events_per_sec ?? ctx.config.DEFAULT_MAX_EVENTS_PER_SEC,
        maxConcurrentDeliveries:
          input.quotas?.max_concurrent_deliveries ?? ctx.config.DEFAULT_MAX_CONCURRENT_DELIVERIES,
        maxDlqSize: input.quotas?.max_dlq_size ?? ctx.config.DEFAULT_MAX_DLQ_SIZE,
      });
      await insertApiKey(tx, {
        id: newId(),
        tenantId: tenant.id,
        name: 'default',
        hash: hashApiKey(apiKey),
        prefix: apiKeyPrefix(apiKey),
      });
      await insertAudit(tx, {
        ...auditActor(req),
        action: 'tenant.create',
        objectType: 'tenant',
        objectId: tenant.id,
        tenantId: tenant.id,
        changes: { name: tenant.name, quotas: tenantJson(tenant).quotas },
      });
      return tenant;
    });
    res.status(201).json({ ...tenantJson(row), api_key: apiKey });
  });

  router.get('/tenants/:id', ...guard, async (req, res) => {
    requireAdmin(req);
    const { id } = parseInput(IdParams, req.params, 'path');
    const row = await getTenant(ctx.pool, id);
    if (!row) throw AppError.notFound('tenant');
    res.json(tenantJson(row));
  });

  return router;
}
