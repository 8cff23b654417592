/**
 * SQL behind the queue gauges of /metrics. Scraped every few seconds on tables of millions of rows,
 * so every count is a capped count on a partial index (it reads at most `cap` index entries, plus a
 * heap visit each for rows changed since the last vacuum), and beyond the cap the caller falls back
 * to the planner's statistics. Measurements: docs/observability.md.
 */
import type { Queryable } from '../db/pool.js';

/** What readQueueStats returns: capped counts (a value equal to the cap means "at least"), plus estimates. */
export interface RawQueueStats {
  /** Of the oldest `cap` due rows (pending, next_attempt_at <= now()): those whose webhook is live. */
  due: number;
  /** Of the same rows: those whose webhook is disabled (they wait for it, not for a worker). */
  paused: number;
  /** Pending and not yet due (a retry waiting for its backoff), capped. */
  scheduled: number;
  /** Claimed by a worker, capped. */
  inFlight: number;
  /** In flight with the lease run out, webhook live (its worker presumably died); capped. */
  leasesExpired: number;
  /** Rows in dead_letter_queue, capped. */
  deadLetters: number;
  /**
   * Seconds since the oldest due row of a live webhook became due; 0 when none. When the oldest `cap`
   * due rows all belong to disabled webhooks, the age of the newest of them (an upper bound).
   */
  oldestDueSeconds: number;
  /** Planner estimate of pending rows (entries of deliveries_due_idx), for counts past the cap. */
  pendingEstimate: number;
  /** Planner estimate of in_flight rows (entries of deliveries_lease_idx). */
  inFlightEstimate: number;
  /** Planner estimate of dead_letter_queue rows. */
  deadLettersEstimate: number;
}

/**
 * Bounds the statements that follow in the current transaction, so a scrape can never hold a
 * connection for long when the database is struggling. Needs a transaction (SET LOCAL).
 */
export async function setLocalStatementTimeout(db: Queryable, ms: number): Promise<void> {
  await db.query(`SELECT set_config('statement_timeout', $1, true)`, [`${Math.round(ms)}ms`]);
}

/**
 * One statement, one round trip. Each count reads at most `cap` entries of a partial index:
 * deliveries_due_idx (status = 'pending', ordered by next_attempt_at) or deliveries_lease_idx
 * (status = 'in_flight'), so the finished rows that make up most of the table are never read.
 *
 * Due rows are read oldest first (the claim's order) with their webhook, because the claim skips
 * disabled webhooks: their backlog is `paused`, and must not age the oldest-due gauge that says
 * whether workers keep up. The oldest due row of a live webhook is then the first one in that head.
 *
 * Estimates: reltuples as of the last (auto)vacuum/analyze, scaled by the relation's size now
 * against its size then, as the planner does; -1 (never analysed) reads as 0.
 */
export async function readQueueStats(db: Queryable, cap: number): Promise<RawQueueStats> {
  const { rows } = await db.query<RawQueueStats>(
    `WITH est AS (
       SELECT c.relname,
              greatest(0, CASE WHEN c.relpages > 0
                               THEN c.reltuples / c.relpages
                                    * (pg_relation_size(c.oid) / current_setting('block_size')::int)
                               ELSE c.reltuples END)::float8 AS n
         FROM pg_class c
        WHERE c.oid IN (to_regclass('deliveries_due_idx'), to_regclass('deliveries_lease_idx'),
                        to_regclass('dead_letter_queue'))
     ), head AS (
       SELECT h.next_attempt_at, (w.enabled AND w.deleted_at IS NULL) AS live
         FROM (SELECT d.next_attempt_at, d.webhook_id FROM deliveries d
                WHERE d.status = 'pending' AND d.next_attempt_at <= now()
                ORDER BY d.next_attempt_at LIMIT $1) h
         JOIN webhooks w ON w.id = h.webhook_id
     ), head_stats AS (
       SELECT count(*) FILTER (WHERE live)::int AS due,
              count(*) FILTER (WHERE NOT live)::int AS paused,
              min(next_attempt_at) FILTER (WHERE live) AS oldest_live,
              CASE WHEN count(*) >= $1 THEN max(next_attempt_at) END AS newest_if_full
         FROM head
     )
     SELECT hs.due, hs.paused,
       (SELECT count(*) FROM (SELECT 1 FROM deliveries
                               WHERE status = 'pending' AND next_attempt_at > now() LIMIT $1) s)::int
         AS scheduled,
       (SELECT count(*) FROM (SELECT 1 FROM deliveries WHERE status = 'in_flight' LIMIT $1) s)::int
         AS "inFlight",
       (SELECT count(*) FROM (SELECT 1 FROM deliveries d JOIN webhooks w ON w.id = d.webhook_id
                               WHERE d.status = 'in_flight' AND d.lease_expires_at <= now()
                                 AND w.enabled AND w.deleted_at IS NULL LIMIT $1) s)::int
         AS "leasesExpired",
       (SELECT count(*) FROM (SELECT 1 FROM dead_letter_queue LIMIT $1) s)::int AS "deadLetters",
       coalesce(extract(epoch FROM now() - coalesce(hs.oldest_live, hs.newest_if_full)), 0)::float8
         AS "oldestDueSeconds",
       coalesce((SELECT n FROM est WHERE relname = 'deliveries_due_idx'), 0) AS "pendingEstimate",
       coalesce((SELECT n FROM est WHERE relname = 'deliveries_lease_idx'), 0) AS "inFlightEstimate",
       coalesce((SELECT n FROM est WHERE relname = 'dead_letter_queue'), 0) AS "deadLettersEstimate"
       FROM head_stats hs`,
    [cap],
  );
  return rows[0]!;
}
