-- Hand-written: postbox.dead_letter_notices (0014) returns at once when the statement inserted no
-- row. A statement-level AFTER INSERT trigger fires for every INSERT statement, also one that inserts
-- nothing, and the claim (src/queries/claim.ts) and the recorder (src/queries/record.ts) each hold an
-- INSERT INTO dead_letter_queue that is empty in nearly every run: the two upserts of the function
-- (executor start-up and end of two INSERT ... ON CONFLICT plans) ran twice per claim and per record
-- batch, ~4 % of PostgreSQL's CPU while draining a queue (perf, docs/perf.md). Nothing else changes.
CREATE OR REPLACE FUNCTION postbox.dead_letter_notices() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  -- A statement-level trigger fires for every INSERT statement, rows or none: the claim and the
  -- recorder each carry an INSERT INTO dead_letter_queue that almost never inserts anything.
  IF NOT EXISTS (SELECT FROM added) THEN
    RETURN NULL;
  END IF;
  INSERT INTO notice_digests AS n (tenant_id, type, subject, pending_count, first_at, last_at, sample, details)
  SELECT a.tenant_id, 'postbox.delivery.dead_lettered', a.webhook_id::text, count(*), min(a.dead_at), max(a.dead_at),
         to_jsonb((array_agg(jsonb_build_object('delivery_id', a.delivery_id, 'event_id', a.event_id,
                                                'event_type', a.event_type, 'last_error', a.last_error)
                             ORDER BY a.dead_at, a.delivery_id))[1:10]),
         jsonb_build_object('webhook_id', a.webhook_id, 'url', (SELECT url FROM webhooks WHERE id = a.webhook_id))
    FROM added a
   WHERE a.event_type NOT LIKE 'postbox.%'
   GROUP BY a.tenant_id, a.webhook_id
   ORDER BY a.tenant_id, a.webhook_id::text
  ON CONFLICT (tenant_id, type, subject) DO UPDATE
     SET pending_count = n.pending_count + EXCLUDED.pending_count,
         first_at = coalesce(n.first_at, EXCLUDED.first_at),
         last_at = greatest(n.last_at, EXCLUDED.last_at),
         sample = to_jsonb((ARRAY(SELECT jsonb_array_elements(n.sample || EXCLUDED.sample)))[1:10]),
         details = EXCLUDED.details;

  -- max_dlq_size: the DLQ went from within the limit to over it in this statement (counted no further
  -- than needed, by dead_letter_queue_tenant_idx).
  INSERT INTO notice_digests AS n (tenant_id, type, subject, pending_count, first_at, last_at, details)
  SELECT t.tenant_id, 'postbox.tenant.quota_exceeded', 'max_dlq_size', 1, now(), now(),
         jsonb_build_object('quota', 'max_dlq_size', 'limit', q.max_dlq_size, 'current', c.size)
    FROM (SELECT tenant_id, count(*) AS added FROM added GROUP BY tenant_id) t
    JOIN quotas q ON q.tenant_id = t.tenant_id
   CROSS JOIN LATERAL (
     SELECT count(*) AS size FROM (SELECT 1 FROM dead_letter_queue l WHERE l.tenant_id = t.tenant_id
                                    LIMIT q.max_dlq_size + t.added + 1) s) c
   WHERE c.size > q.max_dlq_size AND c.size - t.added <= q.max_dlq_size
   ORDER BY t.tenant_id
  ON CONFLICT (tenant_id, type, subject) DO UPDATE
     SET pending_count = n.pending_count + 1, first_at = coalesce(n.first_at, EXCLUDED.first_at),
         last_at = EXCLUDED.last_at, details = EXCLUDED.details;
  RETURN NULL;
END $$;
