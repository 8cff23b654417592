/**
 * The dead-letter queue: deliveries whose retries ran out. List them, retry one, or retry many in
 * one statement. A retry requeues the same delivery (same id, so the same webhook-id for receivers)
 * as a new cycle and takes it out of the DLQ.
 */
import { Router, type RequestHandler } from 'express';
import * as v from 'valibot';
import type { ApiContext } from '../context.js';
import { auditActor, listScope, readScope } from '../middleware/auth.js';
import { decodeCursorAs, page, PageQuery } from '../pagination.js';
import { NoBody, NoNul, parseInput, queryParam, Uuid } from '../validate.js';
import type { DeadLetterJson } from '../response-schemas.js';
import { retryDead, retryDeadBulk } from '../../delivery/recovery.js';
import { listDeadLetters, type DeadLetterRow } from '../../queries/recovery.js';

export function deadLetterJson(row: DeadLetterRow): DeadLetterJson {
  return {
    delivery_id: row.deliveryId,
    tenant_id: row.tenantId,
    webhook_id: row.webhookId,
    event_id: row.eventId,
    event_type: row.eventType,
    last_error: row.lastError,
    attempts: row.attempts,
    dead_at: row.deadAt.toISOString(),
    fifo_order_broken: row.fifoOrderBroken,
  };
}

const EventType = v.pipe(
  v.string('must be a string'),
  v.minLength(1, 'must not be empty'),
  v.maxLength(200),
  NoNul,
);

export const ListDlqQuery = v.strictObject(
  {
    ...PageQuery,
    tenant_id: v.optional(queryParam(Uuid)),
    webhook_id: v.optional(queryParam(Uuid)),
    event_type: v.optional(queryParam(EventType)),
  },
  'is not a known query parameter',
);

export const RetryParams = v.object({ delivery_id: Uuid });
export const BulkRetryBody = v.optional(
  v.strictObject(
    { webhook_id: v.optional(Uuid), event_type: v.optional(EventType), tenant_id: v.optional(Uuid) },
    'is not a field of this request',
  ),
  {},
);

/** The cursor is [dead_at with microseconds, delivery_id]: dead_at alone is not unique. */
const CursorKey = v.tuple([v.pipe(v.string(), v.regex(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/)), Uuid]);

function cursorKey(cursor: string | undefined) {
  const key = decodeCursorAs(cursor, CursorKey);
  return key && { deadAt: key[0], deliveryId: key[1] };
}

export function dlqRouter(ctx: ApiContext, guard: RequestHandler[]): Router {
  const router = Router();

  router.get('/dlq', ...guard, async (req, res) => {
    const q = parseInput(ListDlqQuery, req.query, 'query');
    const rows = await listDeadLetters(ctx.pool, {
      tenantId: listScope(req, q.tenant_id),
      webhookId: q.webhook_id,
      eventType: q.event_type,
      before: cursorKey(q.cursor),
      limit: q.limit + 1,
    });
    const result = page(rows, q.limit, (row) => [row.deadAtKey, row.deliveryId]);
    res.json({ data: result.data.map(deadLetterJson), next_cursor: result.next_cursor });
  });

  // Registered before /dlq/:delivery_id/retry only for readability: the paths cannot collide.
  router.post('/dlq/retry', ...guard, async (req, res) => {
    const body = parseInput(BulkRetryBody, req.body, 'body');
    // Like a list: a tenant key acts on its own DLQ (naming another tenant is a 404), the admin key
    // on the tenant it names, else on every tenant.
    const requeued = await retryDeadBulk(
      ctx.pool,
      { webhookId: body.webhook_id, eventType: body.event_type },
      { by: auditActor(req), tenantId: listScope(req, body.tenant_id) },
    );
    res.status(202).json({ requeued });
  });

  router.post('/dlq/:delivery_id/retry', ...guard, async (req, res) => {
    const { delivery_id: id } = parseInput(RetryParams, req.params, 'path');
    parseInput(NoBody, req.body, 'body');
    await retryDead(ctx.pool, id, { by: auditActor(req), tenantId: readScope(req) });
    res.status(202).json({ delivery_id: id, status: 'pending' });
  });

  return router;
}
