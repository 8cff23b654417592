/**
 * POST /webhooks/:id/recover: queue a webhook's failed deliveries of a time window again, in one
 * statement, idempotent while a recovery of the same window is still on its way. The requeue is the
 * DLQ retry's (src/queries/recovery.ts): a new cycle of the same delivery row, its DLQ row removed.
 */
import type { Queryable } from '../db/pool.js';
import { REQUEUE_DUE } from './recovery.js';

export interface RecoveryWindow {
  webhookId: string;
  tenantId: string;
  since: Date;
  /** Exclusive; undefined: up to now. */
  until: Date | undefined;
}

export interface RecoveryOutcome {
  recoveryId: string;
  requeued: number;
  /** True when an unfinished recovery of the same window answered instead (nothing was queued). */
  alreadyRunning: boolean;
}

/**
 * Serialises recoveries of one webhook (a transaction-scoped advisory lock keyed by the webhook id),
 * so two identical calls at once cannot both queue: the second sees the first's row.
 */
export async function lockWebhookRecoveries(db: Queryable, webhookId: string): Promise<void> {
  await db.query(`SELECT pg_advisory_xact_lock(hashtextextended('webhook_recover:' || $1::text, 0))`, [
    webhookId,
  ]);
}

/** An unfinished recovery of exactly this window: some of its deliveries are pending or in flight. */
export async function findRunningRecovery(
  db: Queryable,
  w: RecoveryWindow,
): Promise<{ id: string; requeued: number } | undefined> {
  const { rows } = await db.query<{ id: string; requeued: number }>(
    `SELECT r.id, cardinality(r.delivery_ids) AS requeued
       FROM webhook_recoveries r
      WHERE r.webhook_id = $1 AND r.since = $2 AND r.until IS NOT DISTINCT FROM $3
        AND EXISTS (SELECT 1 FROM deliveries d
                     WHERE d.id = ANY (r.delivery_ids) AND d.status IN ('pending', 'in_flight'))
      ORDER BY r.id DESC
      LIMIT 1`,
    [w.webhookId, w.since, w.until ?? null],
  );
  return rows[0];
}

/**
 * Queues again the webhook's `failed` deliveries created (with their event) in the window, records
 * the recovery with their ids, and drops the webhook's finished recoveries (the audit log keeps them).
 * Deliveries are locked in id order and must still be failed after the lock, as in the bulk DLQ retry.
 */
export async function recoverWebhook(db: Queryable, recoveryId: string, w: RecoveryWindow): Promise<number> {
  await db.query(
    `DELETE FROM webhook_recoveries r
      WHERE r.webhook_id = $1
        AND NOT EXISTS (SELECT 1 FROM deliveries d
                         WHERE d.id = ANY (r.delivery_ids) AND d.status IN ('pending', 'in_flight'))`,
    [w.webhookId],
  );
  const { rows } = await db.query<{ requeued: number }>(
    `WITH picked AS (
       SELECT d.id
         FROM deliveries d
        WHERE d.webhook_id = $2 AND d.status = 'failed'
          AND d.created_at >= $3 AND ($4::timestamptz IS NULL OR d.created_at < $4)
        ORDER BY d.id
          FOR UPDATE OF d),
     requeued AS (
       UPDATE deliveries d
          SET status = 'pending', attempts = 0, next_attempt_at = ${REQUEUE_DUE}, lease_owner = NULL,
              lease_expires_at = NULL, completed_at = NULL, cycle_started_at = now(), updated_at = now()
         FROM picked p
        WHERE d.id = p.id
        RETURNING d.id),
     undead AS (
       DELETE FROM dead_letter_queue q USING requeued r WHERE q.delivery_id = r.id),
     recorded AS (
       INSERT INTO webhook_recoveries (id, tenant_id, webhook_id, since, until, delivery_ids)
       SELECT $1, $5, $2, $3, $4, coalesce(array_agg(id), '{}') FROM requeued)
     SELECT count(*)::int AS requeued FROM requeued`,
    [recoveryId, w.webhookId, w.since, w.until ?? null, w.tenantId],
  );
  return rows[0]!.requeued;
}
