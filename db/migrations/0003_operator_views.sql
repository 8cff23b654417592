-- Hand-written: views for operators at psql (runbooks/ use them). Read-only, lock nothing.
--
-- Index-friendly by construction: open deliveries are read through the partial indexes
-- (deliveries_due_idx: status = 'pending'; deliveries_lease_idx: status = 'in_flight'), one UNION ALL
-- arm per index so each arm's predicate matches its index exactly; attempts through
-- delivery_attempts_started_at_idx (last 24 h only). Subqueries are grouped by webhook_id and
-- tenant_id, so `WHERE webhook_id = ...` or `WHERE tenant_id = ...` on webhook_health is pushed down
-- into them (no CTEs: a CTE used twice would be materialised and stop the push-down).
--
-- webhook_health.breaker_state reads 'closed' until a circuit breaker exists: redefine it with
-- CREATE OR REPLACE VIEW keeping these columns in this order (new columns go at the end).
CREATE VIEW webhook_health AS
SELECT w.id AS webhook_id,
       w.tenant_id,
       w.url,
       w.enabled,
       coalesce(q.pending, 0) AS pending,
       coalesce(q.due, 0) AS due,
       coalesce(q.in_flight, 0) AS in_flight,
       coalesce(a.succeeded_1h, 0) AS succeeded_1h,
       coalesce(a.failed_1h, 0) AS failed_1h,
       coalesce(a.succeeded_24h, 0) AS succeeded_24h,
       coalesce(a.failed_24h, 0) AS failed_24h,
       coalesce(a.consecutive_failures, 0) AS consecutive_failures,
       -- COALESCE evaluates the fallback only for webhooks without a success in the last 24 h. Then the
       -- newest-created succeeded delivery (deliveries_webhook_id_idx, newest first, stops at the
       -- first hit) finished at about the last success: everything created since failed or waits.
       -- NULLS LAST matches that index's order; plain DESC would walk deliveries_pkey instead.
       coalesce(a.last_success_at,
                (SELECT s.completed_at FROM deliveries s
                  WHERE s.webhook_id = w.id AND s.status = 'succeeded'
                  ORDER BY s.id DESC NULLS LAST LIMIT 1)) AS last_success_at,
       q.oldest_due_at,
       coalesce(dl.dead_letters, 0) AS dead_letters,
       'closed'::text AS breaker_state
  FROM webhooks w
  LEFT JOIN (
    SELECT o.webhook_id, o.tenant_id,
           count(*) FILTER (WHERE o.status = 'pending') AS pending,
           count(*) FILTER (WHERE o.status = 'pending' AND o.next_attempt_at <= now()) AS due,
           count(*) FILTER (WHERE o.status = 'in_flight') AS in_flight,
           min(o.next_attempt_at) FILTER (WHERE o.status = 'pending' AND o.next_attempt_at <= now())
             AS oldest_due_at
      FROM (SELECT d.webhook_id, d.tenant_id, d.status, d.next_attempt_at
              FROM deliveries d WHERE d.status = 'pending'
            UNION ALL
            SELECT d.webhook_id, d.tenant_id, d.status, d.next_attempt_at
              FROM deliveries d WHERE d.status = 'in_flight') o
     GROUP BY o.webhook_id, o.tenant_id
  ) q ON q.webhook_id = w.id AND q.tenant_id = w.tenant_id
  LEFT JOIN (
    SELECT r.webhook_id, r.tenant_id,
           count(*) FILTER (WHERE r.ok AND r.started_at > now() - interval '1 hour') AS succeeded_1h,
           count(*) FILTER (WHERE NOT r.ok AND r.started_at > now() - interval '1 hour') AS failed_1h,
           count(*) FILTER (WHERE r.ok) AS succeeded_24h,
           count(*) FILTER (WHERE NOT r.ok) AS failed_24h,
           count(*) FILTER (WHERE NOT r.ok AND r.started_at > coalesce(r.last_ok_started_at, '-infinity'))
             AS consecutive_failures,
           max(r.started_at + r.duration_ms * interval '1 millisecond') FILTER (WHERE r.ok) AS last_success_at
      FROM (SELECT d.webhook_id, d.tenant_id, at.started_at, at.duration_ms,
                   coalesce(at.status_code BETWEEN 200 AND 299, false) AS ok,
                   max(at.started_at) FILTER (WHERE at.status_code BETWEEN 200 AND 299)
                     OVER (PARTITION BY d.webhook_id, d.tenant_id) AS last_ok_started_at
              FROM delivery_attempts at
              JOIN deliveries d ON d.id = at.delivery_id
             WHERE at.started_at > now() - interval '1 day') r
     GROUP BY r.webhook_id, r.tenant_id
  ) a ON a.webhook_id = w.id AND a.tenant_id = w.tenant_id
  LEFT JOIN (
    SELECT l.webhook_id, l.tenant_id, count(*) AS dead_letters
      FROM dead_letter_queue l
     GROUP BY l.webhook_id, l.tenant_id
  ) dl ON dl.webhook_id = w.id AND dl.tenant_id = w.tenant_id
 WHERE w.deleted_at IS NULL;
--> statement-breakpoint
COMMENT ON VIEW webhook_health IS 'Per webhook (deleted ones left out): its queue, its attempts in the last hour and day, failures since its last success, and its DLQ. Filter by webhook_id or tenant_id: the filter reaches the indexes.';
COMMENT ON COLUMN webhook_health.webhook_id IS 'The webhook.';
COMMENT ON COLUMN webhook_health.tenant_id IS 'Its tenant.';
COMMENT ON COLUMN webhook_health.url IS 'Where it delivers.';
COMMENT ON COLUMN webhook_health.enabled IS 'false: it matches no new events and its queued deliveries wait.';
COMMENT ON COLUMN webhook_health.pending IS 'Deliveries waiting: due now or scheduled for a retry.';
COMMENT ON COLUMN webhook_health.due IS 'Pending deliveries whose next attempt time has come (waiting for a worker).';
COMMENT ON COLUMN webhook_health.in_flight IS 'Deliveries claimed by a worker right now.';
COMMENT ON COLUMN webhook_health.succeeded_1h IS 'Attempts answered 2xx in the last hour.';
COMMENT ON COLUMN webhook_health.failed_1h IS 'Attempts that failed (non-2xx, timeout, connection error) in the last hour.';
COMMENT ON COLUMN webhook_health.succeeded_24h IS 'Attempts answered 2xx in the last 24 hours.';
COMMENT ON COLUMN webhook_health.failed_24h IS 'Attempts that failed in the last 24 hours.';
COMMENT ON COLUMN webhook_health.consecutive_failures IS 'Failed attempts since the last 2xx, counted within the last 24 hours (a webhook failing for longer shows its last 24 hours).';
COMMENT ON COLUMN webhook_health.last_success_at IS 'When a receiver last answered 2xx (end of that attempt); older than 24 hours: the completion of the newest succeeded delivery. NULL: never.';
COMMENT ON COLUMN webhook_health.oldest_due_at IS 'next_attempt_at of the longest-waiting due delivery; NULL when nothing is due.';
COMMENT ON COLUMN webhook_health.dead_letters IS 'Its deliveries in the dead letter queue.';
COMMENT ON COLUMN webhook_health.breaker_state IS 'Circuit breaker state: closed (deliveries flow). Always closed until a breaker exists.';
--> statement-breakpoint
CREATE VIEW queue_overview AS
SELECT p.pending,
       p.due,
       p.pending - p.due AS scheduled,
       f.in_flight,
       f.leases_expired,
       (SELECT count(*) FROM dead_letter_queue) AS dead_letters,
       o.oldest_due_at,
       now() - o.oldest_due_at AS oldest_due_age,
       st.succeeded_estimate,
       st.cancelled_estimate,
       st.total_estimate
  -- Each aggregate reads only what its partial index holds, so it can be an index-only scan:
  -- deliveries_due_idx for pending/due/oldest, deliveries_lease_idx for in flight.
  FROM (SELECT count(*) AS pending, count(*) FILTER (WHERE d.next_attempt_at <= now()) AS due
          FROM deliveries d WHERE d.status = 'pending') p
 CROSS JOIN (SELECT min(d.next_attempt_at) AS oldest_due_at
               FROM deliveries d WHERE d.status = 'pending' AND d.next_attempt_at <= now()) o
 CROSS JOIN (SELECT count(*) AS in_flight, count(*) FILTER (WHERE d.lease_expires_at <= now()) AS leases_expired
               FROM deliveries d WHERE d.status = 'in_flight') f
 CROSS JOIN (
   -- Finished rows are most of the table and have no index of their own: counting them exactly is a
   -- full scan, so these come from the planner's statistics (as fresh as the last autovacuum/analyze).
   SELECT coalesce(round(sum(mcv.freq * t.n) FILTER (WHERE mcv.val = 'succeeded')), 0)::bigint AS succeeded_estimate,
          coalesce(round(sum(mcv.freq * t.n) FILTER (WHERE mcv.val = 'cancelled')), 0)::bigint AS cancelled_estimate,
          (SELECT round(greatest(c.reltuples, 0))::bigint FROM pg_class c
            WHERE c.oid = to_regclass('deliveries')) AS total_estimate
     FROM (SELECT greatest(c.reltuples, 0) AS n FROM pg_class c WHERE c.oid = to_regclass('deliveries')) t
     LEFT JOIN LATERAL (
       SELECT u.val, u.freq
         FROM pg_stats s,
              unnest(s.most_common_vals::text::text[], s.most_common_freqs) AS u(val, freq)
        WHERE s.schemaname = current_schema() AND s.tablename = 'deliveries' AND s.attname = 'status'
     ) mcv ON true
 ) st;
--> statement-breakpoint
COMMENT ON VIEW queue_overview IS 'The delivery queue in one row: exact counts of open deliveries (through the partial indexes) and of the DLQ, the oldest due delivery, and estimated counts of finished ones.';
COMMENT ON COLUMN queue_overview.pending IS 'Deliveries waiting (due + scheduled), exact.';
COMMENT ON COLUMN queue_overview.due IS 'Pending deliveries whose next attempt time has come, waiting for a worker; exact.';
COMMENT ON COLUMN queue_overview.scheduled IS 'Pending deliveries waiting for a retry backoff to pass; exact.';
COMMENT ON COLUMN queue_overview.in_flight IS 'Deliveries claimed by a worker, exact.';
COMMENT ON COLUMN queue_overview.leases_expired IS 'In-flight deliveries whose lease ran out (their worker presumably died; the next claim retakes them).';
COMMENT ON COLUMN queue_overview.dead_letters IS 'Rows in dead_letter_queue (deliveries with status failed), exact.';
COMMENT ON COLUMN queue_overview.oldest_due_at IS 'next_attempt_at of the longest-waiting due delivery; NULL when nothing is due.';
COMMENT ON COLUMN queue_overview.oldest_due_age IS 'How long that delivery has been due: the claim backlog in time.';
COMMENT ON COLUMN queue_overview.succeeded_estimate IS 'Succeeded deliveries still within retention, estimated from planner statistics.';
COMMENT ON COLUMN queue_overview.cancelled_estimate IS 'Cancelled deliveries still within retention, estimated from planner statistics.';
COMMENT ON COLUMN queue_overview.total_estimate IS 'All deliveries rows, estimated from planner statistics (pg_class.reltuples).';
