-- Hand-written: COMMENTs for the adaptive concurrency columns, and webhook_health redefined with the
-- limit in force at the end (CREATE OR REPLACE VIEW keeps the existing columns, their order and COMMENTs).
COMMENT ON COLUMN webhooks.max_concurrency IS 'Ceiling of deliveries to this webhook in flight at once (set by the user, default 200). The limit in force is concurrency_limit, which adapts below it.';
COMMENT ON COLUMN webhooks.concurrency_limit IS 'Adaptive in-flight limit (AIMD), between 1 and max_concurrency: the recorder raises it while answers succeed and latency stays near latency_floor_ms, and cuts it on timeouts, connection errors, 5xx, 429 and rising latency. The claim takes floor(least(concurrency_limit, max_concurrency)) minus those in flight; shared by every worker process.';
COMMENT ON COLUMN webhooks.latency_floor_ms IS 'Recent minimum of the per-batch median duration of 2xx attempts, in ms: the baseline that "latency is rising" is judged against. Drifts up towards the current mean over about a minute, so a receiver that stays slower becomes the new baseline. NULL: no 2xx yet.';
COMMENT ON COLUMN webhooks.latency_recent_ms IS 'Moving average of the per-batch median duration of 2xx attempts, in ms: well above latency_floor_ms (3 x floor + 100 ms) counts as congestion and cuts concurrency_limit. NULL: no 2xx yet.';
COMMENT ON COLUMN webhooks.concurrency_updated_at IS 'When the recorder last wrote concurrency_limit or latency_floor_ms (the drift of the floor is timed from it).';
COMMENT ON COLUMN webhooks.concurrency_decreased_at IS 'When concurrency_limit was last cut: it is cut at most once per mean attempt duration (0.25 s to 1 s), so one overload episode costs one cut, not one per batch.';
COMMENT ON CONSTRAINT webhooks_concurrency_limit_check ON webhooks IS 'The adaptive limit never falls below one delivery at a time.';
--> statement-breakpoint
CREATE OR REPLACE VIEW webhook_health AS
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
       -- Half-open is not stored: an open breaker whose cool-down has passed lets one probe through.
       CASE WHEN w.breaker_state = 'open' AND w.breaker_open_until <= now() THEN 'half_open'
            ELSE w.breaker_state END AS breaker_state,
       floor(least(w.concurrency_limit, w.max_concurrency))::int AS concurrency_limit,
       w.max_concurrency,
       round(w.latency_floor_ms::numeric, 1) AS latency_floor_ms
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
COMMENT ON COLUMN webhook_health.concurrency_limit IS 'Deliveries that may be in flight at once now: the adaptive limit (webhooks.concurrency_limit), at most max_concurrency. While the breaker is open none are claimed; half-open, one.';
COMMENT ON COLUMN webhook_health.max_concurrency IS 'The ceiling of concurrency_limit, set by the user.';
COMMENT ON COLUMN webhook_health.latency_floor_ms IS 'Recent minimum of the per-batch median duration of 2xx attempts (ms): latency well above it cuts concurrency_limit.';
