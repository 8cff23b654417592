/**
 * Actions on one webhook beyond its CRUD (webhooks.ts): send it a test event now, and recover an
 * outage by queueing its failed deliveries again.
 */
import { Router, type RequestHandler } from 'express';
import * as v from 'valibot';
import type { ApiContext } from '../context.js';
import { auditActor, readScope } from '../middleware/auth.js';
import { IdParams, IsoDate, parseInput } from '../validate.js';
// Any valid type, postbox.* included: the default sample is postbox.test (producers may not send postbox.*).
import { EventType } from './event-schemas.js';
import { AppError } from '../../errors.js';
import { insertAudit } from '../../queries/audit.js';
import { getTestSendTarget } from '../../queries/webhook-test-send.js';
import { sendTestEvent, TEST_EVENT_PAYLOAD, TEST_EVENT_TYPE } from '../../delivery/test-send.js';
import { serializePayload } from '../../ingest/ingest.js';
import { withTransaction } from '../../db/pool.js';
import { newId } from '../../ids.js';
import { notifyDeliveriesDue } from '../../queries/notify.js';
import { getWebhook } from '../../queries/webhooks.js';
import {
  findRunningRecovery,
  lockWebhookRecoveries,
  recoverWebhook,
  type RecoveryWindow,
} from '../../queries/webhook-recovery.js';

export const TestSendBody = v.nullish(
  v.strictObject({
    type: v.optional(EventType, TEST_EVENT_TYPE),
    payload: v.optional(v.unknown(), TEST_EVENT_PAYLOAD),
  }),
  {},
);

export const RecoverBody = v.pipe(
  v.strictObject({
    since: v.pipe(IsoDate, v.description('deliveries of events received from then (inclusive)')),
    until: v.optional(v.pipe(IsoDate, v.description('up to then (exclusive); default: now'))),
  }),
  v.check((b) => b.until === undefined || b.until > b.since, 'until must be after since'),
);

export function webhookActionsRouter(ctx: ApiContext, guard: RequestHandler[]): Router {
  const router = Router();

  router.post('/webhooks/:id/test', ...guard, async (req, res) => {
    const { id } = parseInput(IdParams, req.params, 'path');
    const input = parseInput(TestSendBody, req.body, 'test event');
    const payloadJson = serializePayload(input.payload, 'payload');
    const target = await getTestSendTarget(ctx.pool, id, readScope(req));
    if (!target) throw AppError.notFound('webhook');
    const result = await sendTestEvent(
      target,
      { type: input.type, payloadJson },
      { secretBox: ctx.secretBox, allowCidrs: ctx.config.SSRF_ALLOW_CIDRS },
    );
    // After the send: the audit row says what happened, not only that it was asked for.
    await insertAudit(ctx.pool, {
      ...auditActor(req),
      action: 'webhook.test',
      objectType: 'webhook',
      objectId: target.id,
      tenantId: target.tenantId,
      changes: { type: input.type, status_code: result.status_code, error: result.error },
    });
    res.json(result);
  });

  router.post('/webhooks/:id/recover', ...guard, async (req, res) => {
    const { id } = parseInput(IdParams, req.params, 'path');
    const input = parseInput(RecoverBody, req.body, 'recovery');
    const outcome = await withTransaction(ctx.pool, async (tx) => {
      const webhook = await getWebhook(tx, id, readScope(req));
      if (!webhook) throw AppError.notFound('webhook');
      const window: RecoveryWindow = {
        webhookId: id,
        tenantId: webhook.tenantId,
        since: input.since,
        until: input.until,
      };
      await lockWebhookRecoveries(tx, id);
      const running = await findRunningRecovery(tx, window);
      if (running) return { recovery_id: running.id, requeued: running.requeued, already_running: true };
      const recoveryId = newId();
      const requeued = await recoverWebhook(tx, recoveryId, window);
      await insertAudit(tx, {
        ...auditActor(req),
        action: 'webhook.recover',
        objectType: 'webhook',
        objectId: id,
        tenantId: webhook.tenantId,
        changes: {
          since: input.since.toISOString(),
          until: input.until?.toISOString() ?? null,
          requeued,
          recovery_id: recoveryId,
        },
      });
      if (requeued > 0) await notifyDeliveriesDue(tx);
      return { recovery_id: recoveryId, requeued, already_running: false };
    });
    res.status(202).json(outcome);
  });

  return router;
}
