/**
 * Recording attempts: one statement per batch writes every attempt, each delivery's next state, and
 * what the batch says about each receiver (consecutive failures, the circuit breaker, automatic
 * disabling), so a busy worker makes a few writes a second instead of one per delivery.
 */
import type { HealthPolicy } from '../config.js';
import type { Queryable } from '../db/pool.js';
import { ADAPT_AGGREGATES, ADAPT_LATERAL, ADAPT_OVERLOAD } from './adaptive-concurrency.js';
import { keyedStatusIs, LOST_ATTEMPT_ERROR } from './claim.js';
import { deadLetterInsert } from './dead-letter.js';

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
  /** Cut short by this worker's shutdown: says nothing about the receiver, so the breaker ignores it. */
  interrupted?: boolean;
  /** The delivery's last_error when it is not the attempt's error (why a 'dead' outcome gave up early). */
  deliveryError?: string;
}

/** A webhook whose breaker changed state or that was disabled by this batch. */
export interface WebhookHealthChange {
  webhookId: string;
  tenantId: string;
  /** opened: closed → open; reopened: a probe (or a failure after a success) failed; closed: a 2xx closed it. */
  breaker: 'opened' | 'reopened' | 'closed' | null;
  breakerOpenUntil: string | null;
  consecutiveFailures: number;
  /** gone: a 410 answer; failing: failing for autoDisableAfterMs. */
  disabled: 'gone' | 'failing' | null;
}

/** A tenant whose DLQ this batch took from within max_dlq_size to over it (once per crossing). */
export interface DlqOverLimit {
  tenantId: string;
  /** DLQ size after the batch (counted up to the limit + 1, plus what the batch added). */
  size: number;
  limit: number;
}

/**
 * A delivery a rescue dead-lettered on its last attempt (its worker was slow, not dead) whose late 2xx
 * arrived: now succeeded and out of the DLQ.
 */
export interface RevivedDelivery {
  id: string;
  tenantId: string;
  webhookId: string;
  eventId: string;
  attempts: number;
}

export interface RecordSummary {
  /** Deliveries whose state changed (the rest were no longer ours: rescued, cancelled, deleted). */
  updated: number;
  /** Deliveries that went to the dead letter queue. */
  dead: number;
  /** Deliveries taken out of the DLQ by a late 2xx (not counted in `updated`). */
  revived: RevivedDelivery[];
  webhookChanges: WebhookHealthChange[];
  dlqOverLimit: DlqOverLimit[];
}

/**
 * Records a batch in one statement (one transaction, one round trip), all from unnest()ed arrays:
 *
 * - every attempt row, even when the delivery is no longer ours (the request was sent; history says so);
 * - per delivery: succeeded / back to pending with its own next_attempt_at / failed plus its DLQ row,
 *   only while the row is in_flight under this worker's lease for this very attempt. A retry of a
 *   disabled webhook is parked (next_attempt_at = 'infinity'), one of an open breaker waits for the
 *   end of the cool-down: deferred, so the breaker costs no attempts; a FIFO head that finished makes
 *   the next row of its queue due now (it waited at 'infinity');
 * - per webhook, from its results in attempt order: consecutive_failures (reset by a 2xx), failing_since,
 *   last_success_at (refreshed at most every 10 s, so healthy traffic rarely writes the row), and the
 *   breaker: closed → open at failureThreshold; open past its cool-down → any result is the probe's:
 *   a 2xx closes it, a failure reopens it with a doubled cool-down. A 410 answer, or failing for
 *   autoDisableAfterMs, disables the webhook with a reason and an audit row (actor system), parking
 *   its pending deliveries. Interrupted attempts (our shutdown) are left out of all of this;
 * - per tenant whose DLQ grew: whether it just crossed max_dlq_size (nothing is dropped);
 * - a late result of an attempt a rescue recorded as lost replaces the placeholder; a late 2xx for a
 *   delivery that rescue dead-lettered on that attempt makes it succeeded and removes its DLQ row.
 *
 * Webhook rows are locked in id order before any delivery row is touched (the `calc` guard in `done`),
 * the order DELETE /webhooks and PATCH use too, so concurrent recorders and API calls cannot deadlock.
 * A webhook whose state this batch does not change is not locked or written at all.
 * Data-modifying CTEs always run to completion, read or not.
 */
export async function recordResults(
  db: Queryable,
  workerId: string,
  results: readonly AttemptResult[],
  policy: HealthPolicy,
): Promise<RecordSummary> {
  if (results.length === 0) return { updated: 0, dead: 0, revived: [], webhookChanges: [], dlqOverLimit: [] };
  const col = <K extends keyof AttemptResult>(k: K) => results.map((r) => r[k]);
  // Prepared per connection; every table is reached by primary key or a partial index whatever the
  // statistics say (= ANY(ARRAY(...)), correlated subqueries), so a generic plan costed on an empty
  // queue stays fast when the queue is not.
  const { rows } = await db.query<RecordSummary>({
    name: 'postbox_record_results',
    text: RECORD_SQL,
    values: [
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
      results.map((r) => r.interrupted === true),
      policy.failureThreshold,
      policy.cooldownMs,
      policy.cooldownMaxMs,
      policy.autoDisableAfterMs,
      results.map((r) => r.deliveryError ?? null),
    ],
  });
  return rows[0]!;
}

/** The batch's k.n-th value of a result field: the parameter array it is passed in, subscripted. */
const RESULT_PARAMS = {
  id: '$2::uuid[]',
  attempt: '$3::int[]',
  status_code: '$6::int[]',
  error: '$7::text[]',
  outcome: '$9::text[]',
  delay_ms: '$10::bigint[]',
  delivery_error: '$17::text[]',
} as const;
const at = (field: keyof typeof RESULT_PARAMS) => `(${RESULT_PARAMS[field]})[k.n]`;

const RECORD_SQL = `
WITH r AS (
   SELECT * FROM unnest($2::uuid[], $3::int[], $4::timestamptz[], $5::int[], $6::int[], $7::text[],
                        $8::text[], $9::text[], $10::bigint[], $12::bool[], $17::text[])
     AS r(id, attempt, started_at, duration_ms, status_code, error, excerpt, outcome, delay_ms, interrupted,
          delivery_error)
), rd AS MATERIALIZED (
   -- The join skips deliveries deleted meanwhile (a dangling FK would fail the whole batch). id = ANY
   -- lets the planner look rows up by primary key.
   SELECT r.*, d.webhook_id, r.started_at + r.duration_ms * interval '1 millisecond' AS ended_at
     FROM r JOIN deliveries d ON d.id = ANY($2::uuid[]) AND d.id = r.id
), attempts AS (
   INSERT INTO delivery_attempts
          (delivery_id, attempt, started_at, duration_ms, status_code, error, response_excerpt)
   SELECT id, attempt, started_at, duration_ms, status_code, error, excerpt FROM rd
), health AS MATERIALIZED (
   -- Per webhook: its last 2xx in this batch, and the failures after it (all of them when none).
   SELECT x.webhook_id, x.last_ok,
          count(*) FILTER (WHERE NOT x.ok AND x.ended_at > coalesce(x.last_ok, '-infinity')) AS failures,
          min(x.started_at) FILTER (WHERE NOT x.ok AND x.ended_at > coalesce(x.last_ok, '-infinity'))
            AS first_failure,
          bool_or(x.status_code = 410) AS gone,
          ${ADAPT_AGGREGATES}
     FROM (SELECT webhook_id, started_at, ended_at, status_code, outcome = 'succeeded' AS ok,
                  duration_ms, ${ADAPT_OVERLOAD},
                  max(ended_at) FILTER (WHERE outcome = 'succeeded') OVER (PARTITION BY webhook_id) AS last_ok
             FROM rd WHERE NOT interrupted) x
    GROUP BY x.webhook_id, x.last_ok
), hooks AS MATERIALIZED (
   -- Only webhooks whose state changes, locked in id order. A READ COMMITTED lock returns the newest
   -- row version (another recorder's counts included), and the WHERE is re-checked against it.
   -- The adaptive concurrency limit (adaptive-concurrency.ts) is computed from the locked row too.
   SELECT w.id, w.tenant_id, w.enabled, w.consecutive_failures, w.breaker_state, w.breaker_open_until,
          w.breaker_opens, w.failing_since, w.last_success_at, a.new_limit, a.new_floor_ms, a.new_recent_ms, a.cut,
          a.adapted
     FROM webhooks w JOIN health h ON h.webhook_id = w.id
    CROSS JOIN LATERAL ${ADAPT_LATERAL} a
    WHERE w.id = ANY (ARRAY(SELECT webhook_id FROM health)) AND w.deleted_at IS NULL
      AND (a.adapted OR h.failures > 0 OR h.gone OR w.consecutive_failures > 0 OR w.breaker_state <> 'closed'
           OR w.failing_since IS NOT NULL
           OR (h.last_ok IS NOT NULL
               AND (w.last_success_at IS NULL OR w.last_success_at < h.last_ok - interval '10 seconds')))
    ORDER BY w.id
      FOR NO KEY UPDATE OF w
), step AS MATERIALIZED (
   SELECT k.*, h.gone, n.cf, n.failing_since AS new_failing_since, n.last_success_at AS new_last_success_at,
          CASE WHEN h.last_ok IS NOT NULL AND n.cf < $13 THEN 'close'
               WHEN h.last_ok IS NOT NULL THEN 'open_fresh'  -- a 2xx, then enough failures again
               WHEN k.breaker_state = 'closed' AND n.cf >= $13 THEN 'open'
               WHEN k.breaker_state = 'open' AND k.breaker_open_until <= now() THEN 'reopen' -- probe failed
               ELSE 'keep' END AS ev
     FROM hooks k JOIN health h ON h.webhook_id = k.id
    CROSS JOIN LATERAL (
      SELECT CASE WHEN h.last_ok IS NULL THEN k.consecutive_failures + h.failures ELSE h.failures END AS cf,
             CASE WHEN h.failures = 0 THEN NULL
                  WHEN h.last_ok IS NULL THEN coalesce(k.failing_since, h.first_failure)
                  ELSE h.first_failure END AS failing_since,
             greatest(k.last_success_at, h.last_ok) AS last_success_at) n
), calc AS MATERIALIZED (
   SELECT s.id, s.tenant_id, s.cf, s.new_failing_since AS failing_since, s.new_limit, s.new_floor_ms,
          s.new_recent_ms, s.cut, s.adapted,
          s.new_last_success_at AS last_success_at,
          CASE s.ev WHEN 'close' THEN 'closed' WHEN 'keep' THEN s.breaker_state ELSE 'open' END AS state,
          o.opens,
          CASE s.ev WHEN 'close' THEN NULL WHEN 'keep' THEN s.breaker_open_until
               ELSE now() + least($15::bigint, $14::bigint * power(2, least(o.opens - 1, 30)))
                            * interval '1 millisecond' END AS open_until,
          CASE WHEN s.ev = 'close' AND s.breaker_state = 'open' THEN 'closed'
               WHEN s.ev IN ('open', 'open_fresh') AND s.breaker_state = 'closed' THEN 'opened'
               WHEN s.ev IN ('reopen', 'open_fresh') AND s.breaker_state = 'open' THEN 'reopened' END
            AS transition,
          d.disable,
          CASE d.disable
            WHEN 'gone' THEN 'disabled automatically: the receiver answered 410 Gone'
            WHEN 'failing' THEN 'disabled automatically: every attempt failed since '
                 || to_char(s.new_failing_since AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') END AS reason
     FROM step s
    CROSS JOIN LATERAL (
      SELECT CASE s.ev WHEN 'close' THEN 0 WHEN 'keep' THEN s.breaker_opens WHEN 'open_fresh' THEN 1
                  ELSE s.breaker_opens + 1 END AS opens) o
    CROSS JOIN LATERAL (
      SELECT CASE WHEN NOT s.enabled THEN NULL
                  WHEN s.gone THEN 'gone'
                  WHEN s.cf > 0 AND s.new_failing_since <= now() - $16::bigint * interval '1 millisecond'
                    THEN 'failing' END AS disable) d
), hooks_written AS (
   UPDATE webhooks w
      SET consecutive_failures = c.cf, failing_since = c.failing_since, last_success_at = c.last_success_at,
          breaker_state = c.state, breaker_open_until = c.open_until, breaker_opens = c.opens,
          concurrency_limit = c.new_limit, latency_floor_ms = c.new_floor_ms, latency_recent_ms = c.new_recent_ms,
          concurrency_updated_at = CASE WHEN c.adapted THEN now() ELSE w.concurrency_updated_at END,
          concurrency_decreased_at = CASE WHEN c.cut THEN now() ELSE w.concurrency_decreased_at END,
          enabled = w.enabled AND c.disable IS NULL,
          disabled_reason = coalesce(c.reason, w.disabled_reason),
          updated_at = CASE WHEN c.disable IS NULL THEN w.updated_at ELSE now() END
     FROM calc c
    WHERE w.id = c.id
), audited AS (
   INSERT INTO audit_log (actor, action, object_type, object_id, tenant_id, changes)
   SELECT 'system', CASE c.disable WHEN 'gone' THEN 'webhook.disable_gone' ELSE 'webhook.auto_disable' END,
          'webhook', c.id::text, c.tenant_id,
          jsonb_build_object('enabled', false, 'disabled_reason', c.reason,
                             'failing_since', c.failing_since, 'consecutive_failures', c.cf)
     FROM calc c WHERE c.disable IS NOT NULL
), parked AS (
   -- Kept, not attempted: they wait, out of the claim's way, until the webhook is enabled again.
   -- The one-time filter skips it unless this batch disabled a webhook (almost never): without it, the
   -- generic plan on the statistics of a long history and a modest queue walked every pending row of
   -- deliveries_due_idx on every batch (bench:backlog: ~300 ms a batch at 1,000,000 pending and
   -- 5,000,000 finished deliveries). A disable may still cost one such walk.
   UPDATE deliveries d SET next_attempt_at = 'infinity', updated_at = now()
    WHERE (SELECT count(*) FROM calc WHERE disable IS NOT NULL) > 0
      AND d.webhook_id = ANY (ARRAY(SELECT id FROM calc WHERE disable IS NOT NULL))
      AND d.status = 'pending' AND d.next_attempt_at < 'infinity'
), done AS (
   UPDATE deliveries d
      SET status = CASE ${at('outcome')} WHEN 'succeeded' THEN 'succeeded'
                                  WHEN 'retry' THEN 'pending' ELSE 'failed' END::delivery_status,
          next_attempt_at = CASE
            WHEN ${at('outcome')} <> 'retry' THEN d.next_attempt_at
            -- A primary-key lookup per retry (a subquery, so no plan can scan webhooks instead).
            ELSE (SELECT CASE WHEN NOT w.enabled OR c.disable IS NOT NULL THEN 'infinity'
                              ELSE greatest(now() + ${at('delay_ms')} * interval '1 millisecond',
                                            CASE WHEN c.id IS NOT NULL THEN c.open_until
                                                 WHEN w.breaker_state = 'open' THEN w.breaker_open_until END)
                         END
                    FROM webhooks w LEFT JOIN calc c ON c.id = w.id
                   WHERE w.id = d.webhook_id) END,
          completed_at = CASE WHEN ${at('outcome')} = 'retry' THEN NULL ELSE now() END,
          last_status_code = ${at('status_code')},
          last_error = coalesce(${at('delivery_error')}, ${at('error')}, d.last_error),
          lease_owner = NULL,
          lease_expires_at = NULL,
          updated_at = now()
     -- The results by position in the parameter arrays, not joined from r: a CTE (like any FROM item
     -- that is not a table) is carried through an UPDATE as a whole-row value for EvalPlanQual, and
     -- the nested loop the plan takes formed it once per delivery and result (2,500 rows for a batch
     -- of 50: ~4 % of PostgreSQL's CPU while draining). A position is one int.
     FROM generate_subscripts($2::uuid[], 1) AS k(n)
    WHERE d.id = ANY($2::uuid[]) AND d.id = ${at('id')}
      AND ${keyedStatusIs('in_flight')} AND d.lease_owner = $1 AND d.attempts = ${at('attempt')}
      -- Evaluated once, first: every webhook lock is taken before a delivery row is.
      AND (SELECT count(*) FROM calc) >= 0
    RETURNING d.id, d.tenant_id, d.webhook_id, d.event_id, d.status, d.attempts, d.last_error, d.fifo_seq
), lost AS MATERIALIZED (
   -- A late result of an attempt a rescuer recorded as lost (its worker was slow, not dead) replaces
   -- that placeholder. Only results that changed nothing can be late. LATERAL: one index probe per
   -- result, and the window on started_at (the placeholder starts at the claim of that attempt, just
   -- before r's own start: a lease apart at most, give or take clock skew) prunes the probe to a day or
   -- two of partitions at run time. As a plain join the planner, costing every partition, would pick
   -- a scan of them all.
   SELECT p.id, p.started_at, r.id AS delivery_id, r.attempt, r.outcome, r.status_code
     FROM r CROSS JOIN LATERAL (
       SELECT a.id, a.started_at FROM delivery_attempts a
        WHERE a.delivery_id = r.id AND a.attempt = r.attempt AND a.error = $11
          AND a.started_at > r.started_at - interval '1 day' AND a.started_at < r.started_at + interval '1 day'
        LIMIT 1) p
    WHERE NOT EXISTS (SELECT 1 FROM done WHERE done.id = r.id)
), revived AS (
   -- A late 2xx for a delivery the rescuer dead-lettered on this very attempt (failed by the claim with
   -- the lost-attempt error, attempts still at this attempt, its placeholder found): the receiver got
   -- it, so the delivery succeeded and leaves the DLQ. A late failure changes nothing (it was dead
   -- either way). Disjoint from \`done\` (in_flight there, failed here) and so from \`dead\`, which reads
   -- \`done\`: every CTE sees the same snapshot, so no row may be modified by two of them.
   UPDATE deliveries d
      SET status = 'succeeded', completed_at = now(), last_status_code = l.status_code, last_error = NULL,
          updated_at = now()
     FROM lost l
    WHERE d.id = ANY (ARRAY(SELECT delivery_id FROM lost WHERE outcome = 'succeeded'))
      AND d.id = l.delivery_id AND l.outcome = 'succeeded'
      AND d.status = 'failed' AND d.attempts = l.attempt AND d.last_error = $11
      AND (SELECT count(*) FROM calc) >= 0 -- webhook locks first, as in \`done\`
    RETURNING d.id, d.tenant_id, d.webhook_id, d.event_id, d.attempts
), undead AS (
   DELETE FROM dead_letter_queue q WHERE q.delivery_id = ANY (ARRAY(SELECT id FROM revived))
), promoted AS (
   -- A FIFO head that finished (succeeded or into the DLQ) makes the next row of its queue due now
   -- (deliveries_fifo_head_idx), so the metrics count it as due and age it. The claim would take it
   -- waiting at 'infinity' too (src/queries/claim.ts): this is for the operator's view, not for order.
   UPDATE deliveries n SET next_attempt_at = now(), updated_at = now()
     FROM (SELECT (SELECT x.id FROM deliveries x
                    WHERE x.webhook_id = f.webhook_id AND x.fifo_seq > f.fifo_seq
                      AND x.fifo_seq IS NOT NULL AND x.status IN ('pending', 'in_flight')
                    ORDER BY x.fifo_seq LIMIT 1) AS id
             FROM done f WHERE f.fifo_seq IS NOT NULL AND f.status <> 'pending') nx
    WHERE n.id = nx.id AND n.status = 'pending' AND n.next_attempt_at = 'infinity'
      AND EXISTS (SELECT 1 FROM webhooks w WHERE w.id = n.webhook_id AND w.enabled)
      AND n.webhook_id <> ALL (ARRAY(SELECT id FROM calc WHERE disable IS NOT NULL))
), superseded AS (
   -- id alone is unique (one sequence); started_at = ANY narrows each partition's probe to the
   -- placeholders' times. The one-time filter skips every partition when nothing was lost (the usual
   -- case): the DELETE then reads nothing at all.
   DELETE FROM delivery_attempts a
    WHERE (SELECT count(*) FROM lost) > 0
      AND a.started_at = ANY (ARRAY(SELECT started_at FROM lost))
      AND a.id = ANY (ARRAY(SELECT id FROM lost))
), dead AS (
   ${deadLetterInsert(`(SELECT * FROM done WHERE status = 'failed')`)}
), dlq_over AS (
   -- The size before this batch, counted no further than the limit + 1 (dead_letter_queue_tenant_idx):
   -- a crossing is before <= limit < before + added. The snapshot misses a concurrent batch's rows, so
   -- two batches crossing at once may both report it.
   SELECT n.tenant_id, q.max_dlq_size AS lim, b.before + n.added AS size
     FROM (SELECT tenant_id, count(*) AS added FROM dead WHERE inserted GROUP BY tenant_id) n
     JOIN quotas q ON q.tenant_id = n.tenant_id
    CROSS JOIN LATERAL (
      SELECT count(*) AS before
        FROM (SELECT 1 FROM dead_letter_queue l WHERE l.tenant_id = n.tenant_id LIMIT q.max_dlq_size + 1) s) b
    WHERE b.before <= q.max_dlq_size AND b.before + n.added > q.max_dlq_size
)
SELECT (SELECT count(*) FROM done)::int AS updated,
       (SELECT count(*) FROM dead)::int AS dead,
       (SELECT coalesce(json_agg(json_build_object(
                 'id', v.id, 'tenantId', v.tenant_id, 'webhookId', v.webhook_id, 'eventId', v.event_id,
                 'attempts', v.attempts)), '[]')
          FROM revived v) AS revived,
       (SELECT coalesce(json_agg(json_build_object(
                 'webhookId', c.id, 'tenantId', c.tenant_id, 'breaker', c.transition,
                 'breakerOpenUntil', c.open_until, 'consecutiveFailures', c.cf, 'disabled', c.disable)), '[]')
          FROM calc c WHERE c.transition IS NOT NULL OR c.disable IS NOT NULL) AS "webhookChanges",
       (SELECT coalesce(json_agg(json_build_object('tenantId', o.tenant_id, 'size', o.size, 'limit', o.lim)), '[]')
          FROM dlq_over o) AS "dlqOverLimit"`;
