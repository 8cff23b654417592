/**
 * SQL for operational notices (postbox.* events). Most are written by triggers in the transaction of
 * their cause (migration 0014); these are the statements the runtime runs itself.
 */
import type { Queryable } from '../db/pool.js';

/** Turns up to `max` due digests into events; answers how many. */
export async function flushNoticeDigests(db: Queryable, max: number, windowMs: number): Promise<number> {
  const { rows } = await db.query<{ sent: number }>({
    name: 'postbox_flush_notices',
    text: `SELECT postbox.flush_notices($1, $2) AS sent`,
    values: [max, windowMs],
  });
  return rows[0]!.sent;
}

/** A 429 for max_events_per_sec: one more occurrence in the tenant's quota_exceeded digest. */
export async function noteEventRateExceeded(db: Queryable, tenantId: string): Promise<void> {
  await db.query({
    name: 'postbox_note_event_rate_exceeded',
    text: `INSERT INTO notice_digests AS n (tenant_id, type, subject, pending_count, first_at, last_at, details)
           SELECT q.tenant_id, 'postbox.tenant.quota_exceeded', 'max_events_per_sec', 1, now(), now(),
                  jsonb_build_object('quota', 'max_events_per_sec', 'limit', q.max_events_per_sec)
             FROM quotas q WHERE q.tenant_id = $1
           ON CONFLICT (tenant_id, type, subject) DO UPDATE
              SET pending_count = n.pending_count + 1, first_at = coalesce(n.first_at, EXCLUDED.first_at),
                  last_at = EXCLUDED.last_at, details = EXCLUDED.details`,
    values: [tenantId],
  });
}
