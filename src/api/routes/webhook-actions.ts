/**
 * Actions on one webhook beyond its CRUD (webhooks.ts): send it a test event now, and recover an
 * outage by queueing its failed deliveries again.
 */
import { Router, type RequestHandler } from 'express';
import * as v from 'valibot';
import type { ApiContext } from '../context.js';
import { actorOf, principalOf, readScope } from '../middleware/auth.js';
import { IdParams, parseInput } from '../validate.js';
import { EventBody } from './event-schemas.js';
import { AppError } from '../../errors.js';
import { insertAudit } from '../../queries/audit.js';
import { getTestSendTarget } from '../../queries/webhook-test-send.js';
import { sendTestEvent, TEST_EVENT_PAYLOAD, TEST_EVENT_TYPE } from '../../delivery/test-send.js';
import { serializePayload } from '../../ingest/ingest.js';

export const TestSendBody = v.nullish(
  v.strictObject({
    type: v.optional(EventBody.entries.type, TEST_EVENT_TYPE),
    payload: v.optional(v.unknown(), TEST_EVENT_PAYLOAD),
  }),
  {},
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
      actor: actorOf(principalOf(req)),
      action: 'webhook.test',
      objectType: 'webhook',
      objectId: target.id,
      tenantId: target.tenantId,
      changes: { type: input.type, status_code: result.status_code, error: result.error },
    });
    res.json(result);
  });

  return router;
}
