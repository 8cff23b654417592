-- Hand-written: the claim's head (src/queries/claim.ts, head_plain) read through a function that plans
-- its one query with sorting disabled, so the oldest due rows are always read by walking
-- deliveries_due_idx in order and stopping at the lookahead.
--
-- The claim is prepared once per connection and kept as a generic plan. Planned while deliveries had
-- no statistics (a queue filled less than a minute ago, before autovacuum's first ANALYZE) or
-- statistics that put few rows in 'pending' (a history of finished deliveries, then a backlog), the
-- estimate of due rows is ~10, and the planner read them with a bitmap scan of deliveries_due_idx and
-- sorted them: every due row, on every claim, until the next ANALYZE replans. perf while draining
-- 20,000 fresh deliveries: ~5 % of PostgreSQL's CPU in that bitmap scan and its sort. With sorting
-- disabled, only the ordered index walk is left. STABLE: it reads with the claim's own snapshot.
CREATE FUNCTION postbox.due_deliveries(lookahead int)
RETURNS TABLE (id uuid, webhook_id uuid, tenant_id uuid, next_attempt_at timestamptz)
LANGUAGE plpgsql STABLE
SET search_path TO 'public', 'pg_catalog', 'pg_temp'
SET enable_sort TO off
AS $$
#variable_conflict use_column
BEGIN
  -- Not a FIFO row, as a CASE: see NOT_FIFO in src/queries/claim.ts.
  RETURN QUERY
  SELECT d.id, d.webhook_id, d.tenant_id, d.next_attempt_at
    FROM deliveries d
   WHERE d.status = 'pending' AND d.next_attempt_at <= now()
     AND CASE WHEN d.fifo_seq IS NULL THEN true ELSE false END
   ORDER BY d.next_attempt_at
   LIMIT lookahead;
END $$;
--> statement-breakpoint
COMMENT ON FUNCTION postbox.due_deliveries(int) IS 'The claim''s head: the oldest due deliveries without a FIFO position, at most lookahead, always by walking deliveries_due_idx in order (planned with enable_sort off, whatever the statistics).';
