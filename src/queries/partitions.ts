/**
 * SQL for the daily partitions of delivery_attempts (migration 0019): creating days ahead, finding and
 * dropping days past retention, and watching the default partition. The DDL itself lives in the
 * database (postbox.create_attempt_partition, postbox.drop_attempt_partition), where the migration and
 * operators at psql use it too.
 */
import type { Queryable } from '../db/pool.js';

/**
 * Bounds how long the next statements of this transaction wait for a lock (SET LOCAL): partition DDL
 * needs a strong lock briefly, and waiting long for it would make every reader and writer queue behind.
 */
export async function setLocalLockTimeout(db: Queryable, ms: number): Promise<void> {
  await db.query(`SELECT set_config('lock_timeout', $1, true)`, [`${Math.round(ms)}ms`]);
}

/**
 * Creates the partition of the UTC day `offsetDays` after today (by the database clock) unless it
 * exists; true when it was created. Rows of that day in the default partition are moved into it.
 */
export async function createAttemptPartition(db: Queryable, offsetDays: number): Promise<boolean> {
  const { rows } = await db.query<{ created: boolean }>(
    `SELECT postbox.create_attempt_partition((now() AT TIME ZONE 'UTC')::date + $1::int) AS created`,
    [offsetDays],
  );
  return rows[0]!.created;
}

export interface AttemptPartition {
  /** The partition's name, as regclass text (schema-qualified when not on the search path). */
  name: string;
  rangeFrom: Date;
  rangeTo: Date;
}

/** The daily partitions whose every row started before `cutoff` (range_to <= cutoff), oldest first. */
export async function attemptPartitionsEndingBy(db: Queryable, cutoff: Date): Promise<AttemptPartition[]> {
  const { rows } = await db.query<AttemptPartition>(
    `SELECT partition::text AS name, range_from AS "rangeFrom", range_to AS "rangeTo"
       FROM delivery_attempt_partitions
      WHERE NOT is_default AND range_to <= $1
      ORDER BY range_to`,
    [cutoff],
  );
  return rows;
}

/** The advisory lock partition DDL takes turns under; postbox.create_attempt_partition takes it too. */
export const PARTITION_DDL_LOCK = 7_310_003;

/**
 * Drops one daily partition (never the default one) unless it is gone already; true when it dropped it.
 * Takes an exclusive lock on delivery_attempts. Needs a transaction: two workers starting together list
 * the same expired days, and the advisory lock makes the second find them gone instead of failing.
 */
export async function dropAttemptPartition(db: Queryable, name: string): Promise<boolean> {
  await db.query('SELECT pg_advisory_xact_lock($1)', [PARTITION_DDL_LOCK]);
  const { rows } = await db.query<{ present: boolean }>('SELECT to_regclass($1) IS NOT NULL AS present', [
    name,
  ]);
  if (!rows[0]!.present) return false;
  await db.query(`SELECT postbox.drop_attempt_partition($1::regclass)`, [name]);
  return true;
}

/**
 * Deletes up to `limit` rows of the default partition started before the cutoff; returns how many. The
 * default partition should be empty; this keeps what lands there from outliving retention.
 */
export async function deleteDefaultAttemptsBefore(
  db: Queryable,
  cutoff: Date,
  limit: number,
): Promise<number> {
  // The sub-select walks the default partition's started_at index, so a batch touches only what it deletes.
  const { rowCount } = await db.query(
    `DELETE FROM delivery_attempts_default WHERE (id, started_at) IN (
       SELECT id, started_at FROM delivery_attempts_default WHERE started_at < $1 ORDER BY started_at LIMIT $2)`,
    [cutoff, limit],
  );
  return rowCount ?? 0;
}

export interface AttemptPartitionStats {
  /** Rows in the default partition, counted up to the cap (the cap means "at least"). */
  defaultRows: number;
  /**
   * Seconds from now to the end of the unbroken run of daily partitions that covers now; 0 when no
   * partition covers now (new attempts then land in the default partition).
   */
  coveredAheadSeconds: number;
}

/** What the partition gauges show: cheap on any table size (a capped count, the catalog). */
export async function readAttemptPartitionStats(db: Queryable, cap: number): Promise<AttemptPartitionStats> {
  const { rows } = await db.query<AttemptPartitionStats>(
    `WITH RECURSIVE days AS MATERIALIZED (
       SELECT range_from, range_to FROM delivery_attempt_partitions WHERE NOT is_default),
     run AS (
       SELECT range_to FROM days WHERE range_from <= now() AND range_to > now()
       UNION ALL
       SELECT d.range_to FROM run JOIN days d ON d.range_from = run.range_to)
     SELECT (SELECT count(*) FROM (SELECT 1 FROM delivery_attempts_default LIMIT $1) x)::int AS "defaultRows",
            coalesce(extract(epoch FROM (SELECT max(range_to) FROM run) - now()), 0)::float8
              AS "coveredAheadSeconds"`,
    [cap],
  );
  return rows[0]!;
}
