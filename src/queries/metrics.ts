/**
 * SQL behind the queue gauges of /metrics. Scraped every few seconds on tables of millions of rows,
 * so every count is a capped count on a partial index (it reads at most `cap` index entries, plus a
 * heap visit each for rows changed since the last vacuum), and beyond the cap the caller falls back
 * to the planner's statistics. Measurements: docs/observability.md.
 */
import type { Queryable } from '../db/pool.js';

/** What readQueueStats returns: capped counts (a value equal to the cap means "at least"), plus estimates. */
export interface RawQueueStats {
  /**
   * Of the oldest `cap` due rows (pending, next_attempt_at <= now()): those a worker could take now
   * (webhook live, and both it and its tenant below their concurrency limit, breaker not open).
   */
  due: number;
  /**
   * Of the same rows: those held back on purpose: the webhook's breaker is open, or the webhook or its
   * tenant already has as many deliveries in flight as its limit allows. They wait for the receiver.
   */
  held: number;
  /** Of the same rows: those whose webhook is disabled or deleted (they wait for it, not for a worker). */
  parked: number;
  /** Pending, parked at next_attempt_at = 'infinity' (the webhook was disabled), capped. */
  parkedInfinity: number;
  /** Pending and not yet due (a retry waiting for its backoff), capped. */
  scheduled: number;
  /** Claimed by a worker, capped. */
  inFlight: number;
  /** In flight with the lease run out, webhook live (its worker presumably died); capped. */
  leasesExpired: number;
  /** Rows in dead_letter_queue, capped. */
  deadLetters: number;
  /**
   * Seconds since the oldest claimable due row became due; 0 when none. When the head holds none, the
   * oldest due row of the claimable webhooks behind it (skip scan of at most SKIP_SCAN_MAX webhooks).
   */
  oldestDueSeconds: number;
  /** Claimable webhooks with due rows found behind a head holding none (a lower bound of `due` there). */
  dueWebhooksBehind: number;
  /** Planner estimate of pending rows (entries of deliveries_due_idx), for counts past the cap. */
  pendingEstimate: number;
  /** Planner estimate of in_flight rows (entries of deliveries_lease_idx). */
  inFlightEstimate: number;
  /** Planner estimate of dead_letter_queue rows. */
  deadLettersEstimate: number;
}

/** Webhooks the skip scan behind an all-held head visits at most (about 10 µs each). */
export const QUEUE_STATS_SKIP_SCAN_MAX = 1000;

/**
 * Bounds the statements that follow in the current transaction, so a scrape can never hold a
 * connection for long when the database is struggling. Needs a transaction (SET LOCAL).
 */
export async function setLocalStatementTimeout(db: Queryable, ms: number): Promise<void> {
  await db.query(`SELECT set_config('statement_timeout', $1, true)`, [`${Math.round(ms)}ms`]);
}

// Free slots of a webhook (w) and a tenant (q), as the claim counts them (src/queries/claim.ts), except
// that an in-flight row whose lease ran out does not hold a slot: a live worker's claim would retake it.
const WEBHOOK_FREE = `CASE WHEN w.breaker_state = 'closed' THEN floor(least(w.concurrency_limit, w.max_concurrency))::int
            WHEN w.breaker_open_until <= now() THEN 1 ELSE 0 END
       - (SELECT count(*) FROM deliveries f
           WHERE f.status = 'in_flight' AND f.tenant_id = w.tenant_id AND f.webhook_id = w.id
             AND f.lease_expires_at > now())`;
const TENANT_FREE = `q.max_concurrent_deliveries
       - (SELECT count(*) FROM deliveries f
           WHERE f.status = 'in_flight' AND f.tenant_id = q.tenant_id AND f.lease_expires_at > now())`;

/**
 * One statement, one round trip. Each count reads at most `cap` entries of a partial index:
 * deliveries_due_idx (status = 'pending', ordered by next_attempt_at) or deliveries_lease_idx
 * (status = 'in_flight'), so the finished rows that make up most of the table are never read.
 *
 * Due means "a worker could take it now", judged as the claim judges (src/queries/claim.ts): the head
 * of due rows is read in the claim's order with each distinct webhook's and tenant's free slots
 * (limit minus unexpired in-flight rows: an expired lease is work a live worker would retake, so it
 * frees its slot here). Rows of a webhook or tenant without free slots, or behind an open breaker, are
 * `held`; rows of a disabled or deleted webhook are `parked`. Only claimable rows age the oldest-due
 * reading, so a dead receiver's backlog pages nobody, while workers that stopped still do.
 *
 * When the whole head is held or parked, claimable rows may sit behind it: a skip scan over
 * deliveries_pending_webhook_idx visits each webhook with pending rows once (one index descent each,
 * at most QUEUE_STATS_SKIP_SCAN_MAX) and takes the oldest due row of the claimable ones. It runs only
 * then (a one-time filter), so the common case costs nothing more.
 *
 * Estimates: reltuples as of the last (auto)vacuum/analyze, scaled by the relation's size now
 * against its size then, as the planner does; -1 (never analysed) reads as 0.
 */
export async function readQueueStats(db: Queryable, cap: number): Promise<RawQueueStats> {
  const { rows } = await db.query<RawQueueStats>(
    `WITH RECURSIVE est AS (
       SELECT c.relname,
              greatest(0, CASE WHEN c.relpages > 0
                               THEN c.reltuples / c.relpages
                                    * (pg_relation_size(c.oid) / current_setting('block_size')::int)
                               ELSE c.reltuples END)::float8 AS n
         FROM pg_class c
        WHERE c.oid IN (to_regclass('deliveries_due_idx'), to_regclass('deliveries_lease_idx'),
                        to_regclass('dead_letter_queue'))
     ), head AS MATERIALIZED (
       SELECT d.next_attempt_at, d.webhook_id FROM deliveries d
        WHERE d.status = 'pending' AND d.next_attempt_at <= now()
        ORDER BY d.next_attempt_at LIMIT $1
     ), head_hooks AS MATERIALIZED (
       SELECT w.id, w.tenant_id, s.free, (w.enabled AND w.deleted_at IS NULL) AS live
         FROM webhooks w CROSS JOIN LATERAL (SELECT ${WEBHOOK_FREE} AS free) s
        WHERE w.id = ANY (ARRAY(SELECT DISTINCT webhook_id FROM head))
     ), head_tenants AS MATERIALIZED (
       SELECT q.tenant_id, ${TENANT_FREE} AS free
         FROM quotas q WHERE q.tenant_id = ANY (ARRAY(SELECT DISTINCT tenant_id FROM head_hooks))
     ), head_rows AS (
       SELECT h.next_attempt_at,
              CASE WHEN NOT k.live THEN 'parked'
                   WHEN k.free > 0 AND coalesce(t.free, 0) > 0 THEN 'due'
                   ELSE 'held' END AS state
         FROM head h JOIN head_hooks k ON k.id = h.webhook_id
         LEFT JOIN head_tenants t ON t.tenant_id = k.tenant_id
     ), head_stats AS (
       SELECT count(*) FILTER (WHERE state = 'due')::int AS due,
              count(*) FILTER (WHERE state = 'held')::int AS held,
              count(*) FILTER (WHERE state = 'parked')::int AS parked,
              min(next_attempt_at) FILTER (WHERE state = 'due') AS oldest_due,
              count(*) AS n
         FROM head_rows
     ), behind_hooks AS (
       -- Skip scan, as in the claim: one descent per webhook with pending rows, its oldest first.
       (SELECT d.webhook_id, d.next_attempt_at, 1 AS depth
          FROM deliveries d
         WHERE d.status = 'pending'
           AND (SELECT n >= $1 AND due = 0 FROM head_stats)
         ORDER BY d.webhook_id, d.next_attempt_at
         LIMIT 1)
       UNION ALL
       SELECT n.webhook_id, n.next_attempt_at, b.depth + 1
         FROM behind_hooks b
         CROSS JOIN LATERAL (SELECT d.webhook_id, d.next_attempt_at FROM deliveries d
                              WHERE d.status = 'pending' AND d.webhook_id > b.webhook_id
                              ORDER BY d.webhook_id, d.next_attempt_at
                              LIMIT 1) n
        WHERE b.depth < $2
     ), behind_due AS MATERIALIZED (
       SELECT b.next_attempt_at, w.tenant_id
         FROM behind_hooks b
         CROSS JOIN LATERAL (SELECT * FROM webhooks w WHERE w.id = b.webhook_id OFFSET 0) w
         CROSS JOIN LATERAL (SELECT ${WEBHOOK_FREE} AS free) s
        WHERE b.next_attempt_at <= now() AND w.enabled AND w.deleted_at IS NULL AND s.free > 0
     ), behind_ok AS (
       SELECT b.next_attempt_at FROM behind_due b
        WHERE (SELECT ${TENANT_FREE} FROM quotas q WHERE q.tenant_id = b.tenant_id) > 0
     )
     SELECT hs.due, hs.held, hs.parked,
       (SELECT count(*) FROM (SELECT 1 FROM deliveries
                               WHERE status = 'pending' AND next_attempt_at = 'infinity' LIMIT $1) s)::int
         AS "parkedInfinity",
       (SELECT count(*) FROM (SELECT 1 FROM deliveries
                               WHERE status = 'pending' AND next_attempt_at > now()
                                 AND next_attempt_at < 'infinity' LIMIT $1) s)::int
         AS scheduled,
       (SELECT count(*) FROM (SELECT 1 FROM deliveries WHERE status = 'in_flight' LIMIT $1) s)::int
         AS "inFlight",
       (SELECT count(*) FROM (SELECT 1 FROM deliveries d JOIN webhooks w ON w.id = d.webhook_id
                               WHERE d.status = 'in_flight' AND d.lease_expires_at <= now()
                                 AND w.enabled AND w.deleted_at IS NULL LIMIT $1) s)::int
         AS "leasesExpired",
       (SELECT count(*) FROM (SELECT 1 FROM dead_letter_queue LIMIT $1) s)::int AS "deadLetters",
       coalesce(extract(epoch FROM now() - coalesce(hs.oldest_due, (SELECT min(next_attempt_at) FROM behind_ok))),
                0)::float8 AS "oldestDueSeconds",
       (SELECT count(*) FROM behind_ok)::int AS "dueWebhooksBehind",
       coalesce((SELECT n FROM est WHERE relname = 'deliveries_due_idx'), 0) AS "pendingEstimate",
       coalesce((SELECT n FROM est WHERE relname = 'deliveries_lease_idx'), 0) AS "inFlightEstimate",
       coalesce((SELECT n FROM est WHERE relname = 'dead_letter_queue'), 0) AS "deadLettersEstimate"
       FROM head_stats hs`,
    [cap, QUEUE_STATS_SKIP_SCAN_MAX],
  );
  return rows[0]!;
}
