-- Hand-written: the claim's rescue step (src/queries/claim.ts, expired) finds its candidates through a
-- function that plans its one query with sorting off, so they are always found by walking
-- deliveries_lease_idx in lease order from the oldest and stopping at the first lease not yet expired.
--
-- deliveries_in_flight_idx and deliveries_lease_idx have the same predicate (status = 'in_flight'). The
-- claim's generic plan, made when few rows were in flight, read the rescue through
-- deliveries_in_flight_idx: every in-flight row and its heap tuple, on every claim, to find that none had
-- expired (EXPLAIN on a lab queue and on a fresh one alike), a cost growing with the deliveries in
-- flight over all workers. The claim locks the candidates by primary key and re-checks them.
CREATE FUNCTION postbox.expired_leases(lim int)
RETURNS TABLE (id uuid)
LANGUAGE plpgsql STABLE
SET search_path TO 'public', 'pg_catalog', 'pg_temp'
SET enable_sort TO off
AS $$
#variable_conflict use_column
BEGIN
  RETURN QUERY
  SELECT d.id
    FROM deliveries d
    JOIN webhooks w ON w.id = d.webhook_id
   WHERE d.status = 'in_flight' AND d.lease_expires_at <= now()
     AND w.enabled AND w.deleted_at IS NULL
   ORDER BY d.lease_expires_at
   LIMIT lim;
END $$;
--> statement-breakpoint
COMMENT ON FUNCTION postbox.expired_leases(int) IS 'The claim''s rescue candidates: in-flight deliveries of enabled webhooks whose lease expired, oldest first, at most lim, always by walking deliveries_lease_idx in order (planned with enable_sort off, whatever the statistics).';
