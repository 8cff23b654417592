/**
 * LISTEN/NOTIFY wake-up for workers. Any statement that makes deliveries due now (DLQ retry, replay,
 * re-enable) calls notifyDeliveriesDue inside its transaction; PostgreSQL sends the notification on
 * COMMIT only, so a worker never wakes for rows it cannot see yet. Ingest, the hot path, sends it
 * after its commit instead, coalesced (src/ingest/wakeup.ts explains why).
 */
import type { Queryable } from '../db/pool.js';

export const DELIVERIES_CHANNEL = 'postbox_deliveries_due';

export async function notifyDeliveriesDue(db: Queryable): Promise<void> {
  await db.query(`SELECT pg_notify('${DELIVERIES_CHANNEL}', '')`);
}
