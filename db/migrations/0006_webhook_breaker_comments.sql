-- Hand-written: COMMENTs for the circuit breaker columns, the claim's lock point and its indexes, and
-- webhook_health redefined so breaker_state reads the real breaker (same columns, same order; the
-- other column COMMENTs stay, CREATE OR REPLACE keeps them).
COMMENT ON COLUMN webhooks.consecutive_failures IS 'Failed attempts since the last 2xx (timeouts, connection errors, non-2xx; attempts cut short by a worker shutdown do not count). Reaching BREAKER_FAILURE_THRESHOLD opens the breaker.';
COMMENT ON COLUMN webhooks.breaker_state IS 'Circuit breaker: closed (deliveries flow, up to max_concurrency at once) or open (its pending deliveries are not claimed until breaker_open_until; after it, one probe at a time: half-open). A probe''s 2xx closes it, a failure reopens it with a longer cool-down.';
COMMENT ON COLUMN webhooks.breaker_open_until IS 'While open: end of the cool-down. Past it the breaker is half-open (one probe delivery at a time). NULL when closed.';
COMMENT ON COLUMN webhooks.breaker_opens IS 'Times the breaker opened since it was last closed: each reopen doubles the cool-down (BREAKER_COOLDOWN_MS), up to BREAKER_COOLDOWN_MAX_MS.';
COMMENT ON COLUMN webhooks.failing_since IS 'Start of the current run of failed attempts (NULL while the last attempt succeeded). Failing for WEBHOOK_AUTO_DISABLE_AFTER_MS disables the webhook.';
COMMENT ON COLUMN webhooks.last_success_at IS 'End of a recent attempt answered 2xx (refreshed at most every 10 seconds, and at once after failures). NULL: none recorded.';
COMMENT ON CONSTRAINT webhooks_breaker_state_check ON webhooks IS 'breaker_state is closed or open; half-open is open with breaker_open_until passed.';
COMMENT ON COLUMN quotas.claim_seq IS 'Bumped by every claim that takes deliveries of this tenant; the claim locks this row (SKIP LOCKED) and skips the tenant when the counter moved since its snapshot, so in-flight counts read from that snapshot are never stale and max_concurrent_deliveries / webhooks.max_concurrency hold across worker processes.';
COMMENT ON INDEX deliveries_pending_webhook_idx IS 'Pending deliveries per webhook, oldest first: the claim takes a webhook''s oldest due rows, and skip-scans for webhooks with due rows behind a head that concurrency limits hold back; parking on disable.';
COMMENT ON INDEX deliveries_in_flight_idx IS 'In-flight deliveries per tenant and webhook: the claim counts them against max_concurrent_deliveries and max_concurrency.';
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
            ELSE w.breaker_state END AS breaker_state
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
 WHERE w.deleted_at IS NULL;;
--> statement-breakpoint
COMMENT ON COLUMN webhook_health.breaker_state IS 'Circuit breaker: closed (deliveries flow), open (deliveries wait for the cool-down, see webhooks.breaker_open_until) or half_open (cool-down over: one probe delivery at a time; a 2xx closes it, a failure reopens it).';
