/**
 * Recovery use-cases: replay a delivery, retry one dead-lettered delivery, retry many. Each is one
 * transaction: the requeue (src/queries/recovery.ts), its audit row(s), and the wake-up NOTIFY, so
 * workers see the work as soon as it commits. The routes parse the request, call these and answer.
 */
import type pg from 'pg';
import { withTransaction } from '../db/pool.js';
import { AppError } from '../errors.js';
import { insertAudit, insertAudits, type AuditActor } from '../queries/audit.js';
import { notifyDeliveriesDue } from '../queries/notify.js';
import {
  replayDelivery,
  retryDeadLetter,
  retryDeadLetters,
  type DeadLetterFilter,
} from '../queries/recovery.js';

export interface RecoveryCall {
  /** Who asks, for the audit log (auditActor of the request). */
  by: AuditActor;
  /** The caller's tenant; undefined for the admin key (every tenant). */
  tenantId: string | undefined;
}

const payloadExpired = () =>
  AppError.conflict(
    'the event payload was removed by retention (RETENTION_PAYLOAD_DAYS); it cannot be sent again',
  );

/** A new delivery cycle of the same delivery id; 404 unknown, 409 in flight, webhook deleted or payload gone. */
export async function replay(pool: pg.Pool, id: string, call: RecoveryCall): Promise<void> {
  await withTransaction(pool, async (tx) => {
    const outcome = await replayDelivery(tx, id, call.tenantId);
    if (outcome.kind === 'not_found') throw AppError.notFound('delivery');
    if (outcome.kind === 'in_flight')
      throw AppError.conflict('the delivery is being attempted right now; replay it once it finishes');
    if (outcome.kind === 'webhook_deleted')
      throw AppError.conflict('the webhook of this delivery is deleted; there is nowhere to send it');
    if (outcome.kind === 'payload_expired') throw payloadExpired();
    await insertAudit(tx, {
      ...call.by,
      action: 'delivery.replay',
      objectType: 'delivery',
      objectId: id,
      tenantId: outcome.tenantId,
      changes: {
        status: { from: outcome.previousStatus, to: 'pending' },
        attempts: { from: outcome.previousAttempts, to: 0 },
      },
    });
    await notifyDeliveriesDue(tx);
  });
}

/** Takes one delivery out of the DLQ and queues it again; 404 when it is not in the DLQ. */
export async function retryDead(pool: pg.Pool, id: string, call: RecoveryCall): Promise<void> {
  await withTransaction(pool, async (tx) => {
    const outcome = await retryDeadLetter(tx, id, call.tenantId);
    if (outcome.kind === 'not_found') throw AppError.notFound('dead-lettered delivery');
    // In the DLQ means status failed, so never in flight, and its payload is kept while it is there;
    // a deleted webhook is the one refusal.
    if (outcome.kind === 'payload_expired') throw payloadExpired();
    if (outcome.kind !== 'requeued')
      throw AppError.conflict('the webhook of this delivery is deleted; there is nowhere to send it');
    await insertAudit(tx, {
      ...call.by,
      action: 'dlq.retry',
      objectType: 'delivery',
      objectId: id,
      tenantId: outcome.tenantId,
      changes: {
        status: { from: outcome.previousStatus, to: 'pending' },
        attempts: outcome.previousAttempts,
      },
    });
    await notifyDeliveriesDue(tx);
  });
}

/** Every matching DLQ entry queued again (call.tenantId undefined: every tenant). Returns how many. */
export async function retryDeadBulk(
  pool: pg.Pool,
  filter: Omit<DeadLetterFilter, 'tenantId'>,
  call: RecoveryCall,
): Promise<number> {
  const filters = { webhook_id: filter.webhookId ?? null, event_type: filter.eventType ?? null };
  return withTransaction(pool, async (tx) => {
    const perTenant = await retryDeadLetters(tx, { ...filter, tenantId: call.tenantId });
    // One audit row per tenant touched (an admin retry may span tenants), each with its count.
    await insertAudits(
      tx,
      perTenant.map((t) => ({
        ...call.by,
        action: 'dlq.retry_bulk',
        objectType: 'tenant',
        objectId: t.tenantId,
        tenantId: t.tenantId,
        changes: { requeued: t.requeued, filters },
      })),
    );
    if (perTenant.length > 0) await notifyDeliveriesDue(tx);
    return perTenant.reduce((sum, t) => sum + t.requeued, 0);
  });
}
