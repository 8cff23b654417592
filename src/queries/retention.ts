/**
 * SQL for retention: deleting what is older than the retention period, one bounded batch per call.
 *
 * deliveries and events are walked by primary key. Their ids are UUIDv7, whose first 48 bits are the
 * creation time in milliseconds, so everything created before the cutoff sits in `id < idBound` and a
 * batch is a short index range scan from a keyset cursor: rows that stay (live deliveries, events that
 * still have deliveries) are looked at once per run instead of on every batch. The timestamp columns
 * are still checked, so the id range only narrows the search and never decides a deletion by itself.
 */
import type { Queryable } from '../db/pool.js';

/** The smallest id a key cursor can hold: a cursor starts here. */
export const FIRST_ID = '00000000-0000-0000-0000-000000000000';

/** `now() - days` by the database's clock, which wrote every timestamp compared against it. */
export async function retentionCutoff(db: Queryable, olderThanDays: number): Promise<Date> {
  const { rows } = await db.query<{ cutoff: Date }>(
    `SELECT now() - make_interval(days => $1::int) AS cutoff`,
    [olderThanDays],
  );
  return rows[0]!.cutoff;
}

/** Deletes up to `limit` attempts started before the cutoff, oldest first; returns how many. */
export async function deleteAttemptsBefore(db: Queryable, cutoff: Date, limit: number): Promise<number> {
  // The sub-select walks delivery_attempts_started_at_idx, so each batch touches only what it deletes.
  const { rowCount } = await db.query(
    `DELETE FROM delivery_attempts WHERE id IN (
       SELECT id FROM delivery_attempts WHERE started_at < $1 ORDER BY started_at LIMIT $2)`,
    [cutoff, limit],
  );
  return rowCount ?? 0;
}

export interface KeysetBatch {
  /** Rows looked at; fewer than the limit means the range is exhausted. */
  scanned: number;
  deleted: number;
  /** Where the next batch starts (exclusive). */
  lastId: string | null;
}

interface BatchRow {
  scanned: string;
  deleted: string;
  last_id: string | null;
}

const toBatch = (row: BatchRow): KeysetBatch => ({
  scanned: Number(row.scanned),
  deleted: Number(row.deleted),
  lastId: row.last_id,
});

/**
 * Looks at the next `limit` deliveries after `afterId` created before the cutoff and deletes the
 * finished ones completed before it: succeeded and cancelled, and failed ones whose DLQ row is also
 * older. Their attempts and DLQ rows go with them (ON DELETE CASCADE).
 */
export async function deleteFinishedDeliveriesBatch(
  db: Queryable,
  cutoff: Date,
  idBound: string,
  afterId: string,
  limit: number,
): Promise<KeysetBatch> {
  // The status test is re-evaluated on the locked row if a replay or DLQ retry changed it meanwhile
  // (READ COMMITTED re-check), so a delivery that just became pending again is never deleted.
  const { rows } = await db.query<BatchRow>(
    `WITH candidates AS (
       SELECT id FROM deliveries WHERE id > $3 AND id < $2 ORDER BY id LIMIT $4),
     deleted AS (
       DELETE FROM deliveries d USING candidates c
        WHERE d.id = c.id
          AND d.completed_at < $1
          AND (d.status IN ('succeeded', 'cancelled')
               OR (d.status = 'failed' AND NOT EXISTS (
                     SELECT 1 FROM dead_letter_queue q WHERE q.delivery_id = d.id AND q.dead_at >= $1)))
       RETURNING d.id)
     SELECT (SELECT count(*) FROM candidates) AS scanned,
            (SELECT count(*) FROM deleted) AS deleted,
            (SELECT id FROM candidates ORDER BY id DESC LIMIT 1) AS last_id`,
    [cutoff, idBound, afterId, limit],
  );
  return toBatch(rows[0]!);
}

/**
 * Lets this transaction delete from events: the immutability trigger (migration 0001) allows DELETE
 * only while postbox.retention is 'on'. `true` = transaction-local, so it ends with the transaction
 * and never leaks to the next user of the pooled connection.
 */
export async function allowEventDeletion(db: Queryable): Promise<void> {
  await db.query(`SELECT set_config('postbox.retention', 'on', true)`);
}

/**
 * Looks at the next `limit` events after `afterId` created before the cutoff and deletes those
 * received before it that have no deliveries left. Needs allowEventDeletion in the same transaction.
 */
export async function deleteOrphanEventsBatch(
  db: Queryable,
  cutoff: Date,
  idBound: string,
  afterId: string,
  limit: number,
): Promise<KeysetBatch> {
  // No new delivery is ever added to an existing event (deliveries are written in the event's ingest
  // transaction), so "no deliveries now" stays true and NOT EXISTS cannot race with a writer.
  const { rows } = await db.query<BatchRow>(
    `WITH candidates AS (
       SELECT id FROM events WHERE id > $3 AND id < $2 ORDER BY id LIMIT $4),
     deleted AS (
       DELETE FROM events e USING candidates c
        WHERE e.id = c.id
          AND e.received_at < $1
          AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id)
       RETURNING e.id)
     SELECT (SELECT count(*) FROM candidates) AS scanned,
            (SELECT count(*) FROM deleted) AS deleted,
            (SELECT id FROM candidates ORDER BY id DESC LIMIT 1) AS last_id`,
    [cutoff, idBound, afterId, limit],
  );
  return toBatch(rows[0]!);
}
