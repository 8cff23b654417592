/**
 * Recovery: the dead-letter queue listing, and putting deliveries back in the queue (replay, DLQ
 * retry, bulk DLQ retry). A requeue is a new delivery cycle of the SAME delivery row, so receivers
 * see the same webhook-id and can deduplicate: status pending, attempts 0, due now, lease cleared,
 * its DLQ row removed. Callers run these in a transaction with the audit row and notifyDeliveriesDue.
 */
import type { Queryable } from '../db/pool.js';
import type { DeliveryStatus } from './deliveries-read.js';

/**
 * next_attempt_at of a delivery queued again: due now, or for a FIFO delivery (fifo_seq set) waiting to
 * be its queue's head, as ingest queues it (src/queries/claim.ts).
 */
export const REQUEUE_DUE = `CASE WHEN fifo_seq IS NULL THEN now() ELSE 'infinity'::timestamptz END`;

// last_attempt_at / last_status_code / last_error stay: they still describe the most recent attempt.
// A new cycle: max_attempts and the deadline (retry_policy.max_age_seconds) start over. A FIFO delivery
// goes back to its old position in the queue and waits there to be the head.
const REQUEUE_SET = `status = 'pending', attempts = 0, next_attempt_at = ${REQUEUE_DUE}, lease_owner = NULL,
  lease_expires_at = NULL, completed_at = NULL, cycle_started_at = now(), updated_at = now()`;

export type RequeueOutcome =
  | { kind: 'requeued'; tenantId: string; previousStatus: DeliveryStatus; previousAttempts: number }
  | { kind: 'not_found' }
  | { kind: 'in_flight' }
  | { kind: 'webhook_deleted' }
  | { kind: 'payload_expired' };

/**
 * Locks the delivery's event (FOR SHARE, until the transaction ends) and tells whether it still has its
 * payload; undefined when the delivery is not found. Payload retention locks the events it empties
 * (FOR UPDATE SKIP LOCKED) and re-checks for live deliveries after that lock: with this lock first, a
 * requeue either sees the payload gone or commits before retention looks, so no pending delivery is
 * ever left with an emptied payload.
 */
async function lockEventPayload(
  db: Queryable,
  deliveryId: string,
  tenantId: string | undefined,
): Promise<boolean | undefined> {
  const { rows } = await db.query<{ kept: boolean }>(
    `SELECT e.payload IS NOT NULL AS kept
       FROM deliveries d JOIN events e ON e.id = d.event_id
      WHERE d.id = $1 AND ($2::uuid IS NULL OR d.tenant_id = $2)
        FOR SHARE OF e`,
    [deliveryId, tenantId ?? null],
  );
  return rows[0]?.kept;
}

interface RequeueRow {
  tenantId: string;
  status: DeliveryStatus;
  attempts: number;
  webhookDeleted: boolean;
  requeued: boolean;
}

/**
 * One statement: lock the delivery (so a worker's SKIP LOCKED claim passes it by, and we read its
 * current status rather than a stale one), requeue it unless it is in flight or its webhook is
 * deleted, and drop its DLQ row. `deadOnly` limits it to deliveries that are in the DLQ; the status
 * test is what a concurrent retry makes fail (the lock re-checks the row, not the EXISTS).
 * Lock order is the event row (shared), the delivery row, then its DLQ row, so retries cannot deadlock.
 * Needs a transaction (the event lock must last until the requeue commits).
 */
async function requeueOne(
  db: Queryable,
  id: string,
  tenantId: string | undefined,
  deadOnly: boolean,
): Promise<RequeueOutcome> {
  const kept = await lockEventPayload(db, id, tenantId);
  if (kept === undefined) return { kind: 'not_found' };
  if (!kept) return { kind: 'payload_expired' };
  const { rows } = await db.query<RequeueRow>(
    `WITH target AS (
       SELECT d.id, d.tenant_id, d.status, d.attempts, w.deleted_at IS NOT NULL AS webhook_deleted
         FROM deliveries d JOIN webhooks w ON w.id = d.webhook_id
        WHERE d.id = $1 AND ($2::uuid IS NULL OR d.tenant_id = $2)
          ${deadOnly ? `AND d.status = 'failed' AND EXISTS (SELECT 1 FROM dead_letter_queue q WHERE q.delivery_id = d.id)` : ''}
          FOR UPDATE OF d),
     requeued AS (
       UPDATE deliveries d SET ${REQUEUE_SET}
         FROM target t
        WHERE d.id = t.id AND t.status <> 'in_flight' AND NOT t.webhook_deleted
        RETURNING d.id),
     undead AS (
       DELETE FROM dead_letter_queue q USING requeued r WHERE q.delivery_id = r.id)
     SELECT t.tenant_id AS "tenantId", t.status, t.attempts, t.webhook_deleted AS "webhookDeleted",
            r.id IS NOT NULL AS requeued
       FROM target t LEFT JOIN requeued r ON r.id = t.id`,
    [id, tenantId ?? null],
  );
  const row = rows[0];
  if (!row) return { kind: 'not_found' };
  if (row.requeued)
    return {
      kind: 'requeued',
      tenantId: row.tenantId,
      previousStatus: row.status,
      previousAttempts: row.attempts,
    };
  return row.status === 'in_flight' ? { kind: 'in_flight' } : { kind: 'webhook_deleted' };
}

/** POST /deliveries/:id/replay: any delivery of the tenant, whatever its status. */
export function replayDelivery(db: Queryable, id: string, tenantId: string | undefined) {
  return requeueOne(db, id, tenantId, false);
}

/** POST /dlq/:delivery_id/retry: only a delivery that is in the DLQ (else not_found). */
export function retryDeadLetter(db: Queryable, id: string, tenantId: string | undefined) {
  return requeueOne(db, id, tenantId, true);
}

export interface DeadLetterFilter {
  /** undefined: every tenant (the admin key). */
  tenantId?: string;
  webhookId?: string;
  eventType?: string;
}

/**
 * POST /dlq/retry: every matching DLQ row in one statement, however many. Rows of deleted webhooks
 * stay (there is nowhere to send them). The deliveries are locked in id order (no deadlock between
 * two bulk retries) and must still be `failed` after the lock, so a concurrent retry of the same
 * rows counts each delivery once. Answers how many were requeued per tenant, for the audit log.
 */
export async function retryDeadLetters(
  db: Queryable,
  f: DeadLetterFilter,
): Promise<{ tenantId: string; requeued: number }[]> {
  const { rows } = await db.query<{ tenantId: string; requeued: number }>(
    `WITH picked AS (
       SELECT d.id
         FROM dead_letter_queue q
         JOIN deliveries d ON d.id = q.delivery_id
         JOIN webhooks w ON w.id = q.webhook_id
        WHERE ($1::uuid IS NULL OR q.tenant_id = $1)
          AND ($2::uuid IS NULL OR q.webhook_id = $2)
          AND ($3::text IS NULL OR q.event_type = $3)
          AND w.deleted_at IS NULL
          AND d.status = 'failed'
        ORDER BY d.id
          FOR UPDATE OF d),
     requeued AS (
       UPDATE deliveries d SET ${REQUEUE_SET}
         FROM picked p
        WHERE d.id = p.id
        RETURNING d.id, d.tenant_id),
     undead AS (
       DELETE FROM dead_letter_queue q USING requeued r WHERE q.delivery_id = r.id)
     SELECT tenant_id AS "tenantId", count(*)::int AS requeued FROM requeued GROUP BY tenant_id`,
    [f.tenantId ?? null, f.webhookId ?? null, f.eventType ?? null],
  );
  return rows;
}

export interface DeadLetterRow {
  deliveryId: string;
  tenantId: string;
  webhookId: string;
  eventId: string;
  eventType: string;
  lastError: string | null;
  attempts: number;
  deadAt: Date;
  /** It held a FIFO webhook's queue position: the deliveries behind it were released past it. */
  fifoOrderBroken: boolean;
  /** dead_at as text with microseconds: a JS Date keeps only milliseconds, too coarse for a cursor. */
  deadAtKey: string;
}

export interface DeadLetterListFilter extends DeadLetterFilter {
  /** Keyset cursor: rows strictly after (dead_at, delivery_id) in DESC order. */
  before?: { deadAt: string; deliveryId: string };
  /** Rows to return; callers pass page size + 1. */
  limit: number;
}

/** Newest first by (dead_at, delivery_id); the tenant index (tenant_id, dead_at DESC, delivery_id DESC) serves it. */
export async function listDeadLetters(db: Queryable, f: DeadLetterListFilter): Promise<DeadLetterRow[]> {
  const { rows } = await db.query<DeadLetterRow>(
    `SELECT delivery_id AS "deliveryId", tenant_id AS "tenantId", webhook_id AS "webhookId",
            event_id AS "eventId", event_type AS "eventType", last_error AS "lastError", attempts,
            dead_at AS "deadAt",
            EXISTS (SELECT 1 FROM deliveries d WHERE d.id = delivery_id AND d.fifo_seq IS NOT NULL)
              AS "fifoOrderBroken",
            to_char(dead_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS "deadAtKey"
       FROM dead_letter_queue
      WHERE ($1::uuid IS NULL OR tenant_id = $1)
        AND ($2::uuid IS NULL OR webhook_id = $2)
        AND ($3::text IS NULL OR event_type = $3)
        AND ($4::timestamptz IS NULL OR (dead_at, delivery_id) < ($4, $5::uuid))
      ORDER BY dead_at DESC, delivery_id DESC
      LIMIT $6`,
    [
      f.tenantId ?? null,
      f.webhookId ?? null,
      f.eventType ?? null,
      f.before?.deadAt ?? null,
      f.before?.deliveryId ?? null,
      f.limit,
    ],
  );
  return rows;
}
