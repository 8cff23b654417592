/**
 * The claim: one statement that takes due deliveries for one engine, within every concurrency limit
 * (the webhook's adaptive concurrency_limit under max_concurrency, quotas.max_concurrent_deliveries, the
 * circuit breaker), counted from the database so the limits hold across worker processes. Claim, commit, then send: no lock is held
 * across an HTTP call.
 */
import type { Queryable } from '../db/pool.js';
import type { RetryPolicy } from '../../db/schema.js';
import { deadLetterInsert } from './dead-letter.js';

/** A claimed delivery with everything the sender needs, so sending costs no further queries. */
export interface ClaimedDelivery {
  id: string;
  tenantId: string;
  eventId: string;
  webhookId: string;
  /** This attempt's number (attempts after the claim's increment), 1-based. */
  attempt: number;
  eventType: string;
  occurredAt: Date;
  receivedAt: Date;
  /** The payload as JSON text (jsonb::text): spliced into the body without a parse/stringify. */
  payloadJson: string;
  traceparent: string | null;
  /** The event's catalog version, metadata (as JSON text) and source; null when it has none. */
  eventVersion: number | null;
  metadataJson: string | null;
  source: string | null;
  url: string;
  secretCiphertext: Buffer;
  /** The pre-rotation secret, only while its overlap lasts (judged by the database clock). */
  previousSecretCiphertext: Buffer | null;
  timeoutMs: number;
  retryPolicy: RetryPolicy;
  /** When this delivery cycle began: retry_policy.max_age_seconds counts from here. */
  cycleStartedAt: Date;
  /** The webhook's mTLS client certificate (PEM) and its sealed private key, or both null. */
  clientCertPem: string | null;
  clientKeyCiphertext: Buffer | null;
  /**
   * A FIFO webhook's head with deliveries queued behind it: the next one becomes claimable when this
   * one's result is written, so the claimer claims again then instead of waiting for the poll.
   */
  fifoNext: boolean;
}

export interface ClaimOptions {
  /** lease_owner written on the claimed rows: this engine's id. */
  workerId: string;
  /** Most rows to take (the engine's free slots, at most CLAIM_BATCH_SIZE). */
  limit: number;
  /** Lease length; raised per row to the webhook's timeout + 5 s so a slow attempt cannot outlive it. */
  leaseSeconds: number;
  /** max_attempts for a stored retry_policy that lacks it. */
  defaultMaxAttempts: number;
  /** Where the skip scan over webhooks resumes: ClaimResult.scanNext of the previous claim. */
  scanFrom?: string | null;
  /** Where the scan over FIFO queues resumes: ClaimResult.fifoScanNext of the previous claim. */
  fifoScanFrom?: string | null;
}

/** A rescued delivery whose lost attempts used up its policy: dead-lettered by the claim, not sent. */
export interface DeadLettered {
  id: string;
  tenantId: string;
  eventId: string;
  webhookId: string;
  attempts: number;
}

export interface ClaimResult {
  deliveries: ClaimedDelivery[];
  deadLettered: DeadLettered[];
  /** Due rows were seen but left behind by the limits (or beyond `limit`): claim again when slots free up. */
  heldBack: boolean;
  /** Rows were picked for a tenant another claim held or had just claimed for: worth another try soon. */
  contended: number;
  /** The skip scan stopped at its cap here; pass it as the next claim's scanFrom. */
  scanNext: string | null;
  /** The scan over FIFO queues stopped at its cap here; pass it as the next claim's fifoScanFrom. */
  fifoScanNext: string | null;
}

/** The error recorded for an attempt whose worker vanished before it finished. */
export const LOST_ATTEMPT_ERROR = 'no result: the worker was lost during the attempt (its lease expired)';

/**
 * Webhooks the skip scan visits per claim at most (about 10 µs each), and FIFO queues the FIFO scan
 * visits; the next claim resumes after them.
 */
export const SKIP_SCAN_MAX = 1000;

/** Due rows read in order per claim before looking behind them: the common case needs nothing more. */
export function lookaheadFor(limit: number): number {
  return Math.max(2 * limit, 50);
}

// How many of a webhook's deliveries may be in flight: its adaptive limit (at most max_concurrency, see
// src/queries/adaptive-concurrency.ts) while closed (1 for a FIFO webhook), none while open, one probe
// once the cool-down has passed (half-open), minus those in flight (deliveries_in_flight_idx).
const WEBHOOK_FREE = `CASE WHEN w.breaker_state = 'closed'
              THEN CASE WHEN w.ordering = 'fifo' THEN 1
                        ELSE floor(least(w.concurrency_limit, w.max_concurrency))::int END
            WHEN w.breaker_open_until <= now() THEN 1 ELSE 0 END
       - (SELECT count(*) FROM deliveries f
           WHERE f.status = 'in_flight' AND f.tenant_id = w.tenant_id AND f.webhook_id = w.id)`;
// A FIFO queue's unfinished rows (fifo_seq set, pending or in flight): deliveries_fifo_head_idx.
const FIFO_UNFINISHED = `d.fifo_seq IS NOT NULL AND d.status IN ('pending', 'in_flight')`;
// Not a FIFO row, as a CASE rather than `d.fifo_seq IS NULL`: before the first ANALYZE of a queue that
// filled up (autovacuum analyses after up to a minute) the planner takes IS NULL to match 0.5 % of
// rows, and then reads every due row through a bitmap scan and sorts them instead of walking
// deliveries_due_idx to the lookahead (measured: 14 ms instead of 0.6 ms per claim with 14,000 due
// rows). A CASE has no such estimate.
const NOT_FIFO = `CASE WHEN d.fifo_seq IS NULL THEN true ELSE false END`;
/**
 * `d.status = <status>` for rows already found by primary key (= ANY(ARRAY(...))), as a CASE so that no
 * partial index can serve it: with the plain test the planner ANDs the key lookup with a bitmap scan of
 * a whole partial index on status (deliveries_pending_webhook_idx, deliveries_lease_idx: every pending
 * or in-flight row's entry, 14,000 while draining 20,000), so each claim and record cost grew with the
 * queue. Re-checked on the locked row version like any other condition.
 */
export const keyedStatusIs = (status: 'pending' | 'in_flight') =>
  `CASE WHEN d.status = '${status}' THEN true ELSE false END`;
const TENANT_FREE = `q.max_concurrent_deliveries
       - (SELECT count(*) FROM deliveries f WHERE f.status = 'in_flight' AND f.tenant_id = q.tenant_id)`;

/**
 * One statement, in five steps.
 *
 * FIFO rows (fifo_seq set) are claimed only as the head of their queue: the lowest fifo_seq among its
 * unfinished rows. The rows behind a head wait at next_attempt_at = 'infinity' (ingest puts them there),
 * so they sort last in deliveries_due_idx and a FIFO backlog costs the other steps nothing; step 2 finds
 * each queue's head with one descent of deliveries_fifo_head_idx instead, and takes it when it is due
 * or still waiting (the recorder makes the next head due when one finishes, but the claim does not rely
 * on it). A head in flight, or pending but backing off, holds its queue; one that succeeds, goes to
 * the DLQ or is cancelled lets the next row be the head. Claims of one tenant are serialised (step 4),
 * so the head this snapshot sees is not being claimed by another statement.
 *
 * 1. Rescue (unchanged by the limits): in_flight rows whose lease ran out (deliveries_lease_idx: their
 *    worker died) are owed another attempt; their lost attempt is recorded, and one whose lost attempts
 *    used up max_attempts goes to failed + DLQ here instead of being sent again (a poison delivery that
 *    kills every worker ends in the DLQ). A rescue keeps the row in flight, so it changes no count.
 *
 * 2. Head: the oldest `lookahead` due rows without a FIFO position (deliveries_due_idx), plus each FIFO
 *    queue's head if it is pending and due or waiting (a skip scan over deliveries_fifo_head_idx: one
 *    descent per queue with unfinished rows, at most SKIP_SCAN_MAX per claim, resuming at
 *    `fifoScanFrom`); each webhook's ranked by age and cut at its free slots, then each tenant's cut at
 *    its free slots. Free slots are limit minus in-flight rows, counted per webhook and tenant seen
 *    (deliveries_in_flight_idx). Usually this is every candidate.
 *
 * 3. Behind: only when the head was full and the limits left fewer than `limit` rows of it (a webhook
 *    with more due rows than slots: a slow endpoint with a backlog), a skip scan over
 *    deliveries_pending_webhook_idx visits each webhook with pending rows once (one index descent each,
 *    at most SKIP_SCAN_MAX per claim, resuming at `scanFrom`), and takes the oldest due rows of those
 *    with free slots, up to `limit` webhooks. So a saturated webhook's million due rows are never read:
 *    the rows of other webhooks behind them are reached per webhook, not through them.
 *    Head and behind rows are then interleaved round-robin (each webhook's 1st row, then 2nds, ...).
 *
 * 4. Lock the tenants: `FOR NO KEY UPDATE SKIP LOCKED` on each picked tenant's quotas row, kept only if
 *    its claim_seq still equals what this statement's snapshot saw (a READ COMMITTED lock returns the
 *    newest row version, while the subquery reads the snapshot). Every claim that takes a tenant's rows
 *    holds that lock and bumps claim_seq, so a tenant that passes has had no claim since this snapshot
 *    and none under way: the in-flight counts of step 2 and 3 are exact or higher (finished attempts
 *    the snapshot missed), never lower, and no limit can be overrun by two claims racing. Tenants held
 *    by another claim are skipped (reported as `contended`), never waited for.
 *
 * 5. Lock the picked rows `FOR UPDATE OF d SKIP LOCKED` (re-checked as still pending and due: a row
 *    parked or cancelled meanwhile drops out; a FIFO head may be waiting at 'infinity'), flip them and
 *    the rescued rows to in_flight under this worker's lease with the attempt counted (an attempt that
 *    may have reached the receiver counts), and bump the tenants' claim_seq.
 *
 * Cost: steps 2 and 5 read about 2 * limit rows, plus one index descent per FIFO queue with unfinished
 * rows; step 3 runs only behind a saturated head and costs one index descent per webhook with pending
 * rows plus `limit` rows. Disabled webhooks' rows are parked at
 * next_attempt_at = 'infinity' and never enter the head; rows of webhooks with an open breaker sit in
 * the head and are passed over like a saturated webhook's. Measurements: docs/design.md.
 */
export async function claimDue(db: Queryable, o: ClaimOptions): Promise<ClaimResult> {
  const { rows } = await db.query<ClaimedDelivery & { kind: 'claimed' | 'dead' | 'meta'; meta: ClaimMeta }>(
    claimStatement(o),
  );
  const deliveries: ClaimedDelivery[] = [];
  const deadLettered: DeadLettered[] = [];
  let meta: ClaimMeta = { head: 0, picked: 0, locked: 0, scanNext: null, fifoScanNext: null };
  for (const { kind, meta: m, ...row } of rows) {
    if (kind === 'meta') meta = m;
    else if (kind === 'dead')
      deadLettered.push({
        id: row.id,
        tenantId: row.tenantId,
        eventId: row.eventId,
        webhookId: row.webhookId,
        attempts: row.attempt,
      });
    else deliveries.push(row);
  }
  return {
    deliveries,
    deadLettered,
    heldBack: meta.head > meta.picked,
    contended: meta.picked - meta.locked,
    scanNext: meta.scanNext,
    fifoScanNext: meta.fifoScanNext,
  };
}

/** The claim statement and its parameters (exported for tests that EXPLAIN it). */
export function claimStatement(o: ClaimOptions) {
  return {
    // Prepared per connection: planning this statement costs about as much as running it. Safe with a
    // generic plan costed on an empty queue because no step's access path depends on statistics:
    // tables are reached by = ANY(ARRAY(...)) on a key, LATERAL ... OFFSET 0, or partial indexes
    // (a semi-join here once scanned the due index with the picked rows as inner loop: 0.3-1 s).
    name: 'postbox_claim_due',
    text: CLAIM_SQL,
    values: [
      o.workerId,
      o.limit,
      o.leaseSeconds,
      o.defaultMaxAttempts,
      LOST_ATTEMPT_ERROR,
      lookaheadFor(o.limit),
      o.scanFrom ?? null,
      SKIP_SCAN_MAX,
      o.fifoScanFrom ?? null,
    ],
  };
}

interface ClaimMeta {
  /** Due rows read in the head. */
  head: number;
  /** Rows picked within the limits. */
  picked: number;
  /** Picked rows whose tenant this claim locked. */
  locked: number;
  scanNext: string | null;
  fifoScanNext: string | null;
}

const CLAIM_SQL = `
WITH RECURSIVE expired AS (
   -- Candidates from deliveries_lease_idx in lease order, never a walk of every in-flight row (which
   -- a generic plan made with few rows in flight chose): migration 0032. Locked by key, re-checked.
   SELECT d.id, d.attempts, d.last_attempt_at, d.lease_expires_at,
          d.attempts >= coalesce((w.retry_policy->>'max_attempts')::int, $4) AS exhausted
     FROM deliveries d
     JOIN webhooks w ON w.id = d.webhook_id
    WHERE d.id = ANY (ARRAY(SELECT x.id FROM postbox.expired_leases($2) x))
      AND ${keyedStatusIs('in_flight')} AND d.lease_expires_at <= now()
      AND w.enabled AND w.deleted_at IS NULL
    ORDER BY d.lease_expires_at
    LIMIT $2
    FOR UPDATE OF d SKIP LOCKED
), lost AS (
   INSERT INTO delivery_attempts (delivery_id, attempt, started_at, duration_ms, error)
   SELECT id, attempts, coalesce(last_attempt_at, now()),
          greatest(0, extract(epoch FROM lease_expires_at - coalesce(last_attempt_at, now())) * 1000)::int,
          $5
     FROM expired WHERE attempts > 0
), buried AS (
   UPDATE deliveries d
      SET status = 'failed', last_error = $5, completed_at = now(), updated_at = now(),
          lease_owner = NULL, lease_expires_at = NULL
     FROM expired x
    WHERE d.id = x.id AND x.exhausted
    RETURNING d.id, d.tenant_id, d.event_id, d.webhook_id, d.attempts, d.last_error
), dlq AS (
   ${deadLetterInsert('buried')}
), head_plain AS MATERIALIZED (
   -- deliveries_due_idx walked in order to the lookahead, never a bitmap scan and sort of every due
   -- row (which a generic plan made on few or no statistics chose): migration 0031.
   SELECT h.id, h.webhook_id, h.tenant_id, h.next_attempt_at FROM postbox.due_deliveries($6) h
), fifo_queues AS (
   -- Skip scan: each step is one descent of deliveries_fifo_head_idx to the next FIFO queue, returning
   -- its head's position.
   (SELECT d.webhook_id, d.fifo_seq, 1 AS depth
      FROM deliveries d
     WHERE ${FIFO_UNFINISHED} AND ($9::uuid IS NULL OR d.webhook_id > $9::uuid)
     ORDER BY d.webhook_id, d.fifo_seq
     LIMIT 1)
   UNION ALL
   SELECT n.webhook_id, n.fifo_seq, q.depth + 1
     FROM fifo_queues q
     CROSS JOIN LATERAL (SELECT d.webhook_id, d.fifo_seq FROM deliveries d
                          WHERE ${FIFO_UNFINISHED} AND d.webhook_id > q.webhook_id
                          ORDER BY d.webhook_id, d.fifo_seq
                          LIMIT 1) n
    WHERE q.depth < $8
), fifo_heads AS MATERIALIZED (
   -- A head waiting at 'infinity' has been due since it was queued: it ranks by its age.
   SELECT d.id, d.webhook_id, d.tenant_id,
          CASE WHEN d.next_attempt_at = 'infinity' THEN d.created_at ELSE d.next_attempt_at END AS next_attempt_at
     FROM fifo_queues q
     CROSS JOIN LATERAL (SELECT * FROM deliveries d
                          WHERE d.webhook_id = q.webhook_id AND d.fifo_seq = q.fifo_seq AND ${FIFO_UNFINISHED}
                         OFFSET 0) d
    WHERE d.status = 'pending' AND (d.next_attempt_at <= now() OR d.next_attempt_at = 'infinity')
), head AS MATERIALIZED (
   SELECT * FROM head_plain UNION ALL SELECT * FROM fifo_heads
), head_hooks AS MATERIALIZED (
   -- MATERIALIZED here and below: each count runs once per webhook or tenant, not once per row.
   SELECT w.id, ${WEBHOOK_FREE} AS free
     FROM webhooks w
    WHERE w.id = ANY (ARRAY(SELECT DISTINCT webhook_id FROM head)) AND w.enabled AND w.deleted_at IS NULL
), head_fit AS MATERIALIZED (
   SELECT r.id, r.tenant_id, r.next_attempt_at, r.n
     FROM (SELECT h.*, row_number() OVER (PARTITION BY h.webhook_id ORDER BY h.next_attempt_at, h.id) AS n
             FROM head h) r
     JOIN head_hooks hh ON hh.id = r.webhook_id
    WHERE r.n <= hh.free
), head_tenants AS MATERIALIZED (
   SELECT q.tenant_id, ${TENANT_FREE} AS free
     FROM quotas q WHERE q.tenant_id = ANY (ARRAY(SELECT DISTINCT tenant_id FROM head_fit))
), head_ok AS MATERIALIZED (
   SELECT r.id, r.tenant_id, r.next_attempt_at, r.n
     FROM (SELECT f.*, row_number() OVER (PARTITION BY f.tenant_id ORDER BY f.n, f.next_attempt_at, f.id) AS tn
             FROM head_fit f) r
     JOIN head_tenants t ON t.tenant_id = r.tenant_id
    WHERE r.tn <= t.free
), behind_hooks AS (
   -- Skip scan: each step is one descent of deliveries_pending_webhook_idx to the next webhook with
   -- pending rows, returning its oldest next_attempt_at. The first step's one-time filter skips it all
   -- unless the head was full and the limits held it back.
   (SELECT d.webhook_id, d.next_attempt_at, 1 AS depth
      FROM deliveries d
     WHERE d.status = 'pending' AND ($7::uuid IS NULL OR d.webhook_id > $7::uuid)
       AND (SELECT count(*) FROM head_plain) >= $6 AND (SELECT count(*) FROM head_ok) < $2
     ORDER BY d.webhook_id, d.next_attempt_at
     LIMIT 1)
   UNION ALL
   SELECT n.webhook_id, n.next_attempt_at, b.depth + 1
     FROM behind_hooks b
     CROSS JOIN LATERAL (SELECT d.webhook_id, d.next_attempt_at FROM deliveries d
                          WHERE d.status = 'pending' AND d.webhook_id > b.webhook_id
                          ORDER BY d.webhook_id, d.next_attempt_at
                          LIMIT 1) n
    WHERE b.depth < $8
), behind_live AS MATERIALIZED (
   SELECT w.id, w.tenant_id, s.free
     FROM behind_hooks b
     -- OFFSET 0: one primary-key lookup per webhook visited, whatever the statistics say.
     CROSS JOIN LATERAL (SELECT * FROM webhooks w WHERE w.id = b.webhook_id OFFSET 0) w
     CROSS JOIN LATERAL (SELECT ${WEBHOOK_FREE} AS free) s
    WHERE b.next_attempt_at <= now() AND w.enabled AND w.deleted_at IS NULL AND s.free > 0
      AND w.id <> ALL (ARRAY(SELECT DISTINCT webhook_id FROM head))
    ORDER BY b.next_attempt_at
    LIMIT $2
), behind_fit AS MATERIALIZED (
   -- Enough rows per webhook for a round-robin batch of $2, not each webhook's full share.
   SELECT x.id, bl.tenant_id, x.next_attempt_at, x.n
     FROM behind_live bl
     CROSS JOIN LATERAL (
       SELECT d.id, d.next_attempt_at, row_number() OVER (ORDER BY d.next_attempt_at) AS n
         FROM deliveries d
        WHERE d.status = 'pending' AND d.webhook_id = bl.id AND d.next_attempt_at <= now() AND ${NOT_FIFO}
        ORDER BY d.next_attempt_at
        LIMIT least(bl.free, ceil($2::numeric / (SELECT count(*) FROM behind_live)))) x
), behind_tenants AS MATERIALIZED (
   SELECT q.tenant_id, ${TENANT_FREE} - (SELECT count(*) FROM head_ok o WHERE o.tenant_id = q.tenant_id) AS free
     FROM quotas q WHERE q.tenant_id = ANY (ARRAY(SELECT DISTINCT tenant_id FROM behind_fit))
), behind_ok AS (
   SELECT r.id, r.tenant_id, r.next_attempt_at, r.n
     FROM (SELECT f.*, row_number() OVER (PARTITION BY f.tenant_id ORDER BY f.n, f.next_attempt_at, f.id) AS tn
             FROM behind_fit f) r
     JOIN behind_tenants t ON t.tenant_id = r.tenant_id
    WHERE r.tn <= t.free
), picked AS MATERIALIZED (
   SELECT id, tenant_id, n, next_attempt_at FROM head_ok
   UNION ALL
   SELECT id, tenant_id, n, next_attempt_at FROM behind_ok
   ORDER BY n, next_attempt_at
   LIMIT $2
), tenants AS MATERIALIZED (
   SELECT q.tenant_id FROM quotas q
    WHERE q.tenant_id = ANY (ARRAY(SELECT DISTINCT tenant_id FROM picked))
      AND q.claim_seq = (SELECT s.claim_seq FROM quotas s WHERE s.tenant_id = q.tenant_id)
      FOR NO KEY UPDATE SKIP LOCKED
), due AS MATERIALIZED (
   SELECT d.id, d.tenant_id FROM deliveries d
    WHERE d.id = ANY (ARRAY(SELECT p.id FROM picked p JOIN tenants t ON t.tenant_id = p.tenant_id))
      AND ${keyedStatusIs('pending')} AND (d.next_attempt_at <= now() OR d.fifo_seq IS NOT NULL)
      FOR UPDATE OF d SKIP LOCKED
), claimed AS (
   UPDATE deliveries d
      SET status = 'in_flight',
          lease_owner = $1,
          lease_expires_at = now() + make_interval(secs => greatest($3::int, w.timeout_ms / 1000.0 + 5)),
          attempts = d.attempts + 1,
          last_attempt_at = now(),
          updated_at = now()
     FROM webhooks w
    WHERE w.id = d.webhook_id
      AND d.id = ANY (ARRAY(SELECT id FROM (SELECT id FROM expired WHERE NOT exhausted
                                            UNION ALL SELECT id FROM due) AS taken LIMIT $2))
    RETURNING d.id, d.tenant_id, d.event_id, d.webhook_id, d.attempts, d.cycle_started_at, d.fifo_seq,
              w.url, w.secret_ciphertext, w.timeout_ms, w.retry_policy, w.client_cert_pem,
              w.client_key_ciphertext,
              CASE WHEN w.previous_secret_expires_at > now() THEN w.previous_secret_ciphertext END
                AS previous_secret_ciphertext
), bumped AS (
   UPDATE quotas q SET claim_seq = q.claim_seq + 1
    WHERE q.tenant_id = ANY (ARRAY(SELECT DISTINCT tenant_id FROM due))
)
SELECT 'claimed' AS kind, c.id, c.tenant_id AS "tenantId", c.event_id AS "eventId",
       c.webhook_id AS "webhookId", c.attempts AS attempt, e.type AS "eventType",
       e.occurred_at AS "occurredAt", e.received_at AS "receivedAt", e.payload::text AS "payloadJson",
       e.traceparent, e.version AS "eventVersion", e.metadata::text AS "metadataJson", e.source,
       c.url, c.secret_ciphertext AS "secretCiphertext",
       c.previous_secret_ciphertext AS "previousSecretCiphertext",
       c.timeout_ms AS "timeoutMs", c.retry_policy AS "retryPolicy",
       -- deliveries_fifo_head_idx: one probe per claimed FIFO head (this snapshot still sees it pending).
       CASE WHEN c.fifo_seq IS NULL THEN false
            ELSE EXISTS (SELECT 1 FROM deliveries x
                          WHERE x.webhook_id = c.webhook_id AND x.fifo_seq > c.fifo_seq
                            AND x.fifo_seq IS NOT NULL AND x.status IN ('pending', 'in_flight')) END
         AS "fifoNext",
       c.cycle_started_at AS "cycleStartedAt", c.client_cert_pem AS "clientCertPem",
       c.client_key_ciphertext AS "clientKeyCiphertext", NULL::json AS meta
  FROM claimed c JOIN events e ON e.id = c.event_id
UNION ALL
SELECT 'dead', b.id, b.tenant_id, b.event_id, b.webhook_id, b.attempts, NULL, NULL, NULL, NULL,
       NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
  FROM buried b
UNION ALL
SELECT 'meta', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
       NULL, NULL, NULL, NULL, NULL, NULL, json_build_object(
         'head', (SELECT count(*) FROM head),
         'picked', (SELECT count(*) FROM picked),
         'locked', (SELECT count(*) FROM picked p JOIN tenants t ON t.tenant_id = p.tenant_id),
         'scanNext', (SELECT webhook_id FROM behind_hooks WHERE depth = $8),
         'fifoScanNext', (SELECT webhook_id FROM fifo_queues WHERE depth = $8))
  -- Committed without waiting for its WAL flush (synchronous_commit off for this transaction only):
  -- one fdatasync less per claim. The claim is visible to every other claimer at once as before
  -- (asynchronous commit delays durability, not visibility), and the recorder's own commit flushes the
  -- WAL past it. A crash of the server within the WAL writer's delay can lose a claim: its rows are
  -- pending again with the attempt uncounted and are sent again, as after a lost worker (at least once);
  -- the attempt's row is still written by the recorder.
  FROM set_config('synchronous_commit', 'off', true) AS async_commit`;
