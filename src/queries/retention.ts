/**
 * SQL for retention: deleting (or, for payloads, emptying) what is older than its retention period, one
 * bounded batch per call. Attempts are not here: they go a whole day at a time (partitions.ts).
 *
 * deliveries and events are walked by primary key. Their ids are UUIDv7, whose first 48 bits are the
 * creation time in milliseconds, so everything created before the cutoff sits in `id < idBound` and a
 * batch is a short index range scan from a keyset cursor: rows that stay (live deliveries, events that
 * still have deliveries) are looked at once per run instead of on every batch. The timestamp columns
 * are still checked, so the id range only narrows the search and never decides a deletion by itself.
 */
import type { RetentionPolicy } from '../config.js';
import type { Queryable } from '../db/pool.js';

/** The smallest id a key cursor can hold: a cursor starts here. */
export const FIRST_ID = '00000000-0000-0000-0000-000000000000';

/** One run's cutoffs: what is older than its cutoff goes (see RetentionPolicy for what each covers). */
export interface RetentionCutoffs {
  records: Date;
  payloads: Date;
  attempts: Date;
  deadLetters: Date;
  audit: Date;
}

/** `now() - days` by the database's clock, which wrote every timestamp compared against it. */
export async function retentionCutoff(db: Queryable, olderThanDays: number): Promise<Date> {
  const { rows } = await db.query<{ cutoff: Date }>(
    `SELECT now() - make_interval(days => $1::int) AS cutoff`,
    [olderThanDays],
  );
  return rows[0]!.cutoff;
}

/** Every cutoff of one run, from the same now(). */
export async function retentionCutoffs(db: Queryable, policy: RetentionPolicy): Promise<RetentionCutoffs> {
  const { rows } = await db.query<RetentionCutoffs>(
    `SELECT now() - make_interval(days => $1::int) AS records,
            now() - make_interval(days => $2::int) AS payloads,
            now() - make_interval(days => $3::int) AS attempts,
            now() - make_interval(days => $4::int) AS "deadLetters",
            now() - make_interval(days => $5::int) AS audit`,
    [policy.recordDays, policy.payloadDays, policy.attemptDays, policy.dlqDays, policy.auditDays],
  );
  return rows[0]!;
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

export interface DeliveriesBatch extends KeysetBatch {
  /** Of the deleted: failed ones, which left the dead letter queue with them. */
  deadLetters: number;
}

/**
 * Looks at the next `limit` deliveries after `afterId` created before `idBound` and deletes the
 * finished ones: succeeded and cancelled ones completed before the records cutoff, and failed ones
 * (dead-lettered) completed before the DLQ cutoff whose DLQ row is also older than it. Their DLQ rows
 * go with them (ON DELETE CASCADE); their attempts go with their day (no foreign key). `idBound` is the
 * UUIDv7 floor of the later of the two cutoffs.
 */
export async function deleteFinishedDeliveriesBatch(
  db: Queryable,
  cutoffs: Pick<RetentionCutoffs, 'records' | 'deadLetters'>,
  idBound: string,
  afterId: string,
  limit: number,
): Promise<DeliveriesBatch> {
  // The status test is re-evaluated on the locked row if a replay or DLQ retry changed it meanwhile
  // (READ COMMITTED re-check), so a delivery that just became pending again is never deleted.
  const { rows } = await db.query<BatchRow & { dead: string }>(
    `WITH candidates AS (
       SELECT id FROM deliveries WHERE id > $3 AND id < $2 ORDER BY id LIMIT $4),
     deleted AS (
       DELETE FROM deliveries d USING candidates c
        WHERE d.id = c.id
          AND ((d.status IN ('succeeded', 'cancelled') AND d.completed_at < $1)
               OR (d.status = 'failed' AND d.completed_at < $5 AND NOT EXISTS (
                     SELECT 1 FROM dead_letter_queue q WHERE q.delivery_id = d.id AND q.dead_at >= $5)))
       RETURNING d.id, d.status)
     SELECT (SELECT count(*) FROM candidates) AS scanned,
            (SELECT count(*) FROM deleted) AS deleted,
            (SELECT count(*) FROM deleted WHERE status = 'failed') AS dead,
            (SELECT id FROM candidates ORDER BY id DESC LIMIT 1) AS last_id`,
    [cutoffs.records, idBound, afterId, limit, cutoffs.deadLetters],
  );
  return { ...toBatch(rows[0]!), deadLetters: Number(rows[0]!.dead) };
}

/**
 * Lets this transaction change events as retention does: the immutability trigger (migrations 0001 and
 * 0020) allows DELETE, and an UPDATE that only removes the payload, while postbox.retention is 'on'.
 * `true` = transaction-local, so it ends with the transaction and never leaks to the next user of the
 * pooled connection.
 */
export async function allowRetentionWrites(db: Queryable): Promise<void> {
  await db.query(`SELECT set_config('postbox.retention', 'on', true)`);
}

/**
 * Looks at the next `limit` events after `afterId` created before the cutoff and deletes those
 * received before it that have no deliveries left. Needs allowRetentionWrites in the same transaction.
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

export interface PayloadCandidates {
  /** Rows looked at; fewer than the limit means the range is exhausted. */
  scanned: number;
  lastId: string | null;
  /** Of those, the ones received before the cutoff that this transaction now holds locked. */
  locked: string[];
}

/**
 * Step 1 of emptying payloads: the next `limit` events after `afterId`, below `idBound`, that still
 * hold a payload (events_payload_kept_idx, so emptied ones cost nothing), and a lock on those received
 * before the cutoff. SKIP LOCKED passes over an event a replay holds (lockEventPayload).
 */
export async function lockPayloadCandidates(
  db: Queryable,
  cutoff: Date,
  idBound: string,
  afterId: string,
  limit: number,
): Promise<PayloadCandidates> {
  const { rows } = await db.query<{ scanned: string; last_id: string | null; locked: string[] }>(
    `WITH candidates AS MATERIALIZED (
       SELECT id FROM events WHERE id > $3 AND id < $2 AND payload IS NOT NULL ORDER BY id LIMIT $4),
     locked AS (
       SELECT e.id FROM events e
        WHERE e.id IN (SELECT id FROM candidates) AND e.received_at < $1
          FOR UPDATE OF e SKIP LOCKED)
     SELECT (SELECT count(*) FROM candidates) AS scanned,
            (SELECT id FROM candidates ORDER BY id DESC LIMIT 1) AS last_id,
            ARRAY(SELECT id FROM locked) AS locked`,
    [cutoff, idBound, afterId, limit],
  );
  const row = rows[0]!;
  return { scanned: Number(row.scanned), lastId: row.last_id, locked: row.locked };
}

/**
 * Step 2, a new statement in the same transaction (so a new snapshot, taken after the locks): empties
 * the payloads of the locked events that no delivery may still send: none pending, in flight or failed
 * (in the DLQ, where a retry sends it again). Needs allowRetentionWrites. Returns how many.
 */
export async function emptyPayloads(db: Queryable, eventIds: readonly string[]): Promise<number> {
  if (eventIds.length === 0) return 0;
  // No delivery is ever added to an existing event; a replay locks the event first (lockEventPayload),
  // so one that made a delivery pending again has committed before our lock and is visible here.
  const { rowCount } = await db.query(
    `UPDATE events e SET payload = NULL
      WHERE e.id = ANY($1::uuid[])
        AND NOT EXISTS (SELECT 1 FROM deliveries d
                         WHERE d.event_id = e.id AND d.status IN ('pending', 'in_flight', 'failed'))`,
    [eventIds],
  );
  return rowCount ?? 0;
}

/** Deletes up to `limit` audit rows written before the cutoff (audit_log_at_idx); returns how many. */
export async function deleteAuditBefore(db: Queryable, cutoff: Date, limit: number): Promise<number> {
  const { rowCount } = await db.query(
    `DELETE FROM audit_log WHERE id IN (
       SELECT id FROM audit_log WHERE at < $1 ORDER BY at LIMIT $2)`,
    [cutoff, limit],
  );
  return rowCount ?? 0;
}
