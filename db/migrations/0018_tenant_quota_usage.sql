-- Hand-written: per-tenant quota usage for operators (psql, the console's Quotas page). Metrics carry
-- no tenant id (one series per tenant would grow without bound), so "which tenants are near their
-- quotas" is answered here, and /metrics only counts them (src/queries/quota-usage.ts).
-- Each aggregate is grouped by tenant_id and joined on it, so WHERE tenant_id = ... is pushed into
-- every subquery (as in webhook_health); no CTE, which would be materialised and stop that.
CREATE VIEW tenant_quota_usage AS
SELECT u.*,
       greatest(u.events_pct, u.concurrency_pct, u.dlq_pct) AS peak_pct
  FROM (
    SELECT t.id AS tenant_id,
           t.name AS tenant_name,
           q.max_events_per_sec,
           coalesce(r.this_second, 0) AS events_this_second,
           coalesce(r.peak_1m, 0) AS events_peak_1m,
           round(100.0 * coalesce(r.peak_1m, 0) / greatest(q.max_events_per_sec, 1), 1) AS events_pct,
           q.max_concurrent_deliveries,
           coalesce(f.in_flight, 0) AS in_flight_deliveries,
           round(100.0 * coalesce(f.in_flight, 0) / greatest(q.max_concurrent_deliveries, 1), 1)
             AS concurrency_pct,
           q.max_dlq_size,
           coalesce(l.dead_letters, 0) AS dlq_size,
           round(100.0 * coalesce(l.dead_letters, 0) / greatest(q.max_dlq_size, 1), 1) AS dlq_pct
      FROM tenants t
      JOIN quotas q ON q.tenant_id = t.id
      -- rate_windows keeps about the last minute of one-second windows (older ones are deleted).
      LEFT JOIN (
        SELECT w.tenant_id,
               max(w.count) FILTER (WHERE w.window_start = floor(extract(epoch FROM now()))::bigint)
                 AS this_second,
               max(w.count) AS peak_1m
          FROM rate_windows w
         WHERE w.window_start >= floor(extract(epoch FROM now()))::bigint - 60
         GROUP BY w.tenant_id
      ) r ON r.tenant_id = t.id
      -- In flight counts as the claim counts it against max_concurrent_deliveries (every in_flight row,
      -- expired lease or not): deliveries_in_flight_idx, a few rows per worker slot.
      LEFT JOIN (
        SELECT d.tenant_id, count(*) AS in_flight
          FROM deliveries d
         WHERE d.status = 'in_flight'
         GROUP BY d.tenant_id
      ) f ON f.tenant_id = t.id
      LEFT JOIN (
        SELECT x.tenant_id, count(*) AS dead_letters
          FROM dead_letter_queue x
         GROUP BY x.tenant_id
      ) l ON l.tenant_id = t.id
  ) u;
--> statement-breakpoint
COMMENT ON VIEW tenant_quota_usage IS 'Per tenant: each quota''s limit, what is used now, and the use as a percentage of the limit. Exact counts; reads the in-flight deliveries, the last minute of rate windows and the DLQ (all tenants: one pass over the DLQ''s tenant index; WHERE tenant_id = ... reads only that tenant''s). Top tenants: ORDER BY peak_pct DESC. /metrics counts the tenants at 80 % and 100 % instead (postbox_tenants_near_quota, postbox_tenants_at_quota): see docs/observability.md.';
--> statement-breakpoint
COMMENT ON COLUMN tenant_quota_usage.tenant_id IS 'The tenant.';
--> statement-breakpoint
COMMENT ON COLUMN tenant_quota_usage.tenant_name IS 'The tenant''s name (tenants.name).';
--> statement-breakpoint
COMMENT ON COLUMN tenant_quota_usage.max_events_per_sec IS 'Quota: events the tenant may send per second (quotas.max_events_per_sec); more are refused with 429.';
--> statement-breakpoint
COMMENT ON COLUMN tenant_quota_usage.events_this_second IS 'Events counted in the current one-second window (the transaction''s clock): what GET /quotas/:tenant_id shows.';
--> statement-breakpoint
COMMENT ON COLUMN tenant_quota_usage.events_peak_1m IS 'The busiest second of the last minute: events counted in it. A one-second window is too short to look at; the busiest recent second says whether the tenant reaches its limit.';
--> statement-breakpoint
COMMENT ON COLUMN tenant_quota_usage.events_pct IS 'events_peak_1m as a percentage of max_events_per_sec. 100: the tenant hit its limit in the last minute (requests beyond it got 429).';
--> statement-breakpoint
COMMENT ON COLUMN tenant_quota_usage.max_concurrent_deliveries IS 'Quota: the tenant''s deliveries in flight at once (quotas.max_concurrent_deliveries); the claim holds further due deliveries back.';
--> statement-breakpoint
COMMENT ON COLUMN tenant_quota_usage.in_flight_deliveries IS 'The tenant''s deliveries in flight now (status in_flight), counted as the claim counts them.';
--> statement-breakpoint
COMMENT ON COLUMN tenant_quota_usage.concurrency_pct IS 'in_flight_deliveries as a percentage of max_concurrent_deliveries. 100: the tenant''s due deliveries wait for a slot (held, not due, in postbox_queue_depth).';
--> statement-breakpoint
COMMENT ON COLUMN tenant_quota_usage.max_dlq_size IS 'Quota: dead-lettered deliveries the tenant may have (quotas.max_dlq_size). Flagged, not enforced: nothing is dropped past it.';
--> statement-breakpoint
COMMENT ON COLUMN tenant_quota_usage.dlq_size IS 'Rows of the tenant in dead_letter_queue, exact.';
--> statement-breakpoint
COMMENT ON COLUMN tenant_quota_usage.dlq_pct IS 'dlq_size as a percentage of max_dlq_size; above 100 the tenant is over its DLQ quota (a postbox.tenant.quota_exceeded notice was sent).';
--> statement-breakpoint
COMMENT ON COLUMN tenant_quota_usage.peak_pct IS 'The highest of events_pct, concurrency_pct and dlq_pct: how close the tenant is to its nearest limit. Sort by it for the top tenants.';
