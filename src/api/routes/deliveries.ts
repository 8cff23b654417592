/**
 * Deliveries: list and inspect them, and replay one (a new delivery cycle of the same delivery id, so
 * receivers deduplicate on webhook-id as usual).
 *
 * Shape: list items carry `attempts` as the number of attempts in the current cycle (the column), as
 * the contract's delivery fields imply. GET /deliveries/:id "also lists its attempts": there
 * `attempts` is the array of attempts (every cycle, oldest first) and the number moves to
 * `attempt_count`. `attempt_count` is on list items too, so clients can read the count one way.
 */
import { Router, type RequestHandler } from 'express';
import * as v from 'valibot';
import type { ApiContext } from '../context.js';
import { auditActor, listScope, readScope } from '../middleware/auth.js';
import { idCursor, page, PageQuery } from '../pagination.js';
import { IdParams, IsoDate, NoBody, parseInput, queryParam, Uuid } from '../validate.js';
import { AppError } from '../../errors.js';
import type { AttemptJson, DeliveryJson } from '../response-schemas.js';
import {
  DELIVERY_STATUSES,
  getDelivery,
  listAttempts,
  listDeliveries,
  type AttemptRow,
  type DeliveryRow,
} from '../../queries/deliveries-read.js';
import { replay } from '../../delivery/recovery.js';

const iso = (d: Date | null) => (d ? d.toISOString() : null);

export function deliveryJson(row: DeliveryRow): DeliveryJson {
  return {
    id: row.id,
    tenant_id: row.tenantId,
    event_id: row.eventId,
    webhook_id: row.webhookId,
    event_type: row.eventType,
    status: row.status,
    attempts: row.attempts,
    attempt_count: row.attempts,
    next_attempt_at: iso(row.nextAttemptAt),
    last_attempt_at: iso(row.lastAttemptAt),
    last_status_code: row.lastStatusCode,
    last_error: row.lastError,
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
    completed_at: iso(row.completedAt),
  };
}

export function attemptJson(row: AttemptRow): AttemptJson {
  return {
    attempt: row.attempt,
    started_at: row.startedAt.toISOString(),
    duration_ms: row.durationMs,
    status_code: row.statusCode,
    error: row.error,
    response_excerpt: row.responseExcerpt,
  };
}

export const ListDeliveriesQuery = v.strictObject(
  {
    ...PageQuery,
    tenant_id: v.optional(queryParam(Uuid)),
    webhook_id: v.optional(queryParam(Uuid)),
    event_id: v.optional(queryParam(Uuid)),
    status: v.optional(
      queryParam(v.picklist(DELIVERY_STATUSES, `must be one of ${DELIVERY_STATUSES.join(', ')}`)),
    ),
    from: v.optional(queryParam(IsoDate)),
    to: v.optional(queryParam(IsoDate)),
  },
  'is not a known query parameter',
);

export function deliveriesRouter(ctx: ApiContext, guard: RequestHandler[]): Router {
  const router = Router();

  router.get('/deliveries', ...guard, async (req, res) => {
    const q = parseInput(ListDeliveriesQuery, req.query, 'query');
    if (q.from && q.to && q.from > q.to)
      throw AppError.validation('query is not valid', [{ path: 'to', message: 'must not be before from' }]);
    const rows = await listDeliveries(ctx.pool, {
      tenantId: listScope(req, q.tenant_id),
      webhookId: q.webhook_id,
      eventId: q.event_id,
      status: q.status,
      from: q.from,
      to: q.to,
      beforeId: idCursor(q.cursor),
      limit: q.limit + 1,
    });
    const result = page(rows, q.limit, (row) => [row.id]);
    res.json({ data: result.data.map(deliveryJson), next_cursor: result.next_cursor });
  });

  // Here `attempts` is the list and `attempt_count` the number (see the file comment).
  router.get('/deliveries/:id', ...guard, async (req, res) => {
    const { id } = parseInput(IdParams, req.params, 'path');
    const [row, attempts] = await Promise.all([
      getDelivery(ctx.pool, id, readScope(req)),
      listAttempts(ctx.pool, id),
    ]);
    if (!row) throw AppError.notFound('delivery');
    res.json({ ...deliveryJson(row), attempts: attempts.map(attemptJson) });
  });

  router.post('/deliveries/:id/replay', ...guard, async (req, res) => {
    const { id } = parseInput(IdParams, req.params, 'path');
    parseInput(NoBody, req.body, 'body');
    await replay(ctx.pool, id, { by: auditActor(req), tenantId: readScope(req) });
    res.status(202).json({ delivery_id: id, status: 'pending' });
  });

  return router;
}
