/**
 * The delivery engine's SQL: claim due work, record outcomes in batches, release claims on shutdown.
 *
 * Claim, commit, then send: no transaction or row lock is held across an HTTP call. A claim marks rows
 * in_flight under a lease; every later write is guarded by "still in flight, under my lease, for this
 * attempt", so a delivery whose lease ran out and was taken by another worker is never clobbered.
 */
import type { Queryable } from '../db/pool.js';
import type { RetryPolicy } from '../../db/schema.js';

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
  url: string;
  secretCiphertext: Buffer;
  /** The pre-rotation secret, only while its overlap lasts (judged by the database clock). */
  previousSecretCiphertext: Buffer | null;
  timeoutMs: number;
  retryPolicy: RetryPolicy;
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
}

/** The error recorded for an attempt whose worker vanished before it finished. */
export const LOST_ATTEMPT_ERROR = 'no result: the worker was lost during the attempt (its lease expired)';

/**
 * One statement: pick due pending rows (deliveries_due_idx, oldest first) plus in_flight rows whose
 * lease ran out (deliveries_lease_idx: their worker died, so they are owed another attempt:
 * at-least-once), only for live webhooks, `FOR UPDATE OF d SKIP LOCKED` so concurrent claimers
 * never wait on or share a row, and flip them to in_flight in the same statement.
 *
 * Expired leases go first, then due rows, `LIMIT $2` over both: the two cannot be one SELECT because
 * FOR UPDATE does not combine with UNION. SELECT CTEs are read lazily, so the due scan locks only the
 * rows the outer LIMIT pulls. Plain `LIMIT $2` everywhere (not "limit minus expired") also keeps the
 * planner's row estimate right, so events and webhooks are joined by primary key, not scanned.
 * When a row another claimer just took is reached, READ COMMITTED re-checks it against the WHERE
 * (status is no longer pending) and drops it.
 *
 * The attempt counter is incremented here, not when the attempt is recorded: an attempt that
 * crashed its worker may have reached the receiver, so it counts. A rescue therefore records the
 * lost attempt (its number stays taken), and a delivery whose lost attempts used up max_attempts
 * goes to failed + DLQ right here instead of being sent again: a poison delivery that kills every
 * worker that tries it ends in the DLQ instead of looping.
 *
 * Seam (per-webhook fairness): webhooks.max_concurrency is not enforced here; counting in-flight
 * rows per webhook needs an index this schema lacks, and filtering after the lock would starve
 * other webhooks behind a saturated one. See src/delivery/claimer.ts.
 */
export async function claimDue(db: Queryable, o: ClaimOptions): Promise<ClaimResult> {
  const { rows } = await db.query<ClaimedDelivery & { dead: boolean }>(
    `WITH expired AS (
       SELECT d.id, d.attempts, d.last_attempt_at, d.lease_expires_at,
              d.attempts >= coalesce((w.retry_policy->>'max_attempts')::int, $4) AS exhausted
         FROM deliveries d
         JOIN webhooks w ON w.id = d.webhook_id
        WHERE d.status = 'in_flight' AND d.lease_expires_at <= now()
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
        RETURNING d.id, d.tenant_id, d.event_id, d.webhook_id, d.attempts
     ), dlq AS (
       INSERT INTO dead_letter_queue
              (delivery_id, tenant_id, webhook_id, event_id, event_type, last_error, attempts)
       SELECT b.id, b.tenant_id, b.webhook_id, b.event_id, e.type, $5, b.attempts
         FROM buried b JOIN events e ON e.id = b.event_id
       ON CONFLICT (delivery_id) DO UPDATE
          SET last_error = EXCLUDED.last_error, attempts = EXCLUDED.attempts, dead_at = EXCLUDED.dead_at
     ), due AS (
       SELECT d.id FROM deliveries d
         JOIN webhooks w ON w.id = d.webhook_id
        WHERE d.status = 'pending' AND d.next_attempt_at <= now()
          AND w.enabled AND w.deleted_at IS NULL
        ORDER BY d.next_attempt_at
        LIMIT $2
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
          AND d.id IN (SELECT id FROM (SELECT id FROM expired WHERE NOT exhausted
                                       UNION ALL SELECT id FROM due) AS picked LIMIT $2)
        RETURNING d.id, d.tenant_id, d.event_id, d.webhook_id, d.attempts,
                  w.url, w.secret_ciphertext, w.timeout_ms, w.retry_policy,
                  CASE WHEN w.previous_secret_expires_at > now() THEN w.previous_secret_ciphertext END
                    AS previous_secret_ciphertext
     )
     SELECT false AS dead, c.id, c.tenant_id AS "tenantId", c.event_id AS "eventId",
            c.webhook_id AS "webhookId", c.attempts AS attempt, e.type AS "eventType",
            e.occurred_at AS "occurredAt", e.received_at AS "receivedAt", e.payload::text AS "payloadJson",
            e.traceparent, c.url, c.secret_ciphertext AS "secretCiphertext",
            c.previous_secret_ciphertext AS "previousSecretCiphertext",
            c.timeout_ms AS "timeoutMs", c.retry_policy AS "retryPolicy"
       FROM claimed c JOIN events e ON e.id = c.event_id
     UNION ALL
     SELECT true, b.id, b.tenant_id, b.event_id, b.webhook_id, b.attempts, NULL, NULL, NULL, NULL,
            NULL, NULL, NULL, NULL, NULL, NULL
       FROM buried b`,
    [o.workerId, o.limit, o.leaseSeconds, o.defaultMaxAttempts, LOST_ATTEMPT_ERROR],
  );
  const deliveries: ClaimedDelivery[] = [];
  const deadLettered: DeadLettered[] = [];
  for (const { dead, ...row } of rows) {
    if (dead)
      deadLettered.push({
        id: row.id,
        tenantId: row.tenantId,
        eventId: row.eventId,
        webhookId: row.webhookId,
        attempts: row.attempt,
      });
    else deliveries.push(row);
  }
  return { deliveries, deadLettered };
}

/** What the next state of an attempted delivery is. */
export type Outcome = 'succeeded' | 'retry' | 'dead';

/** One finished attempt, as the recorder writes it. */
export interface AttemptResult {
  deliveryId: string;
  attempt: number;
  startedAt: Date;
  durationMs: number;
  statusCode: number | null;
  error: string | null;
  responseExcerpt: string | null;
  outcome: Outcome;
  /** For 'retry': milliseconds from now (database clock) to the next attempt. */
  retryDelayMs: number | null;
}

export interface RecordSummary {
  /** Deliveries whose state changed (the rest were no longer ours: rescued, cancelled, deleted). */
  updated: number;
  /** Deliveries that went to the dead letter queue. */
  dead: number;
}

/**
 * Records a batch of attempts in one statement (one transaction, one round trip): every attempt row,
 * then per delivery succeeded / back to pending with its own next_attempt_at / failed plus its
 * dead_letter_queue row, all from unnest()ed arrays.
 *
 * Attempt rows are written even when the delivery is no longer ours: the request was sent, and the
 * history should say so. State changes apply only while the row is in_flight under this worker's
 * lease for this very attempt. Data-modifying CTEs always run to completion, read or not.
 */
export async function recordResults(
  db: Queryable,
  workerId: string,
  results: readonly AttemptResult[],
): Promise<RecordSummary> {
  if (results.length === 0) return { updated: 0, dead: 0 };
  const col = <K extends keyof AttemptResult>(k: K) => results.map((r) => r[k]);
  const { rows } = await db.query<{ updated: number; dead: number }>(
    `WITH r AS (
       SELECT * FROM unnest($2::uuid[], $3::int[], $4::timestamptz[], $5::int[], $6::int[], $7::text[],
                            $8::text[], $9::text[], $10::bigint[])
         AS r(id, attempt, started_at, duration_ms, status_code, error, excerpt, outcome, delay_ms)
     ), attempts AS (
       -- The join skips deliveries deleted meanwhile (a dangling FK would fail the whole batch).
       INSERT INTO delivery_attempts
              (delivery_id, attempt, started_at, duration_ms, status_code, error, response_excerpt)
       SELECT r.id, r.attempt, r.started_at, r.duration_ms, r.status_code, r.error, r.excerpt
         FROM r JOIN deliveries d ON d.id = r.id
     ), done AS (
       UPDATE deliveries d
          SET status = CASE r.outcome WHEN 'succeeded' THEN 'succeeded'
                                      WHEN 'retry' THEN 'pending' ELSE 'failed' END::delivery_status,
              next_attempt_at = CASE WHEN r.outcome = 'retry'
                                     THEN now() + r.delay_ms * interval '1 millisecond'
                                     ELSE d.next_attempt_at END,
              completed_at = CASE WHEN r.outcome = 'retry' THEN NULL ELSE now() END,
              last_status_code = r.status_code,
              last_error = coalesce(r.error, d.last_error),
              lease_owner = NULL,
              lease_expires_at = NULL,
              updated_at = now()
         FROM r
        -- id = ANY repeats the join so the planner looks rows up by primary key instead of walking
        -- every in-flight row of every worker through deliveries_lease_idx.
        WHERE d.id = ANY($2::uuid[]) AND d.id = r.id
          AND d.status = 'in_flight' AND d.lease_owner = $1 AND d.attempts = r.attempt
        RETURNING d.id, d.tenant_id, d.webhook_id, d.event_id, d.status, d.attempts, d.last_error
     ), superseded AS (
       -- A late result of an attempt a rescuer recorded as lost (its worker was slow, not dead)
       -- replaces that placeholder. Only results that changed nothing can be late.
       DELETE FROM delivery_attempts a
        USING r
        WHERE a.delivery_id = r.id AND a.attempt = r.attempt AND a.error = $11
          AND NOT EXISTS (SELECT 1 FROM done WHERE done.id = r.id)
     ), dead AS (
       -- A delivery retried out of the DLQ and dead again replaces its old entry.
       INSERT INTO dead_letter_queue
              (delivery_id, tenant_id, webhook_id, event_id, event_type, last_error, attempts)
       SELECT done.id, done.tenant_id, done.webhook_id, done.event_id, e.type, done.last_error, done.attempts
         FROM done JOIN events e ON e.id = done.event_id
        WHERE done.status = 'failed'
       ON CONFLICT (delivery_id) DO UPDATE
          SET last_error = EXCLUDED.last_error, attempts = EXCLUDED.attempts, dead_at = EXCLUDED.dead_at
       RETURNING delivery_id
     )
     SELECT (SELECT count(*) FROM done)::int AS updated, (SELECT count(*) FROM dead)::int AS dead`,
    [
      workerId,
      col('deliveryId'),
      col('attempt'),
      col('startedAt'),
      col('durationMs'),
      col('statusCode'),
      col('error'),
      col('responseExcerpt'),
      col('outcome'),
      col('retryDelayMs'),
      LOST_ATTEMPT_ERROR,
    ],
  );
  return rows[0]!;
}

/**
 * Gives claimed deliveries whose request never went out back (shutdown): pending, due now, the
 * claim's attempt increment undone, lease cleared. Without `ids`, everything this worker still holds
 * (call it after the recorder has written every finished or interrupted attempt). Returns how many
 * were released.
 */
export async function releaseClaims(
  db: Queryable,
  workerId: string,
  ids?: readonly string[],
): Promise<number> {
  const { rowCount } = await db.query(
    `UPDATE deliveries
        SET status = 'pending', attempts = greatest(attempts - 1, 0), next_attempt_at = now(),
            lease_owner = NULL, lease_expires_at = NULL, updated_at = now()
      WHERE status = 'in_flight' AND lease_owner = $1 AND ($2::uuid[] IS NULL OR id = ANY($2::uuid[]))`,
    [workerId, ids ?? null],
  );
  return rowCount ?? 0;
}
