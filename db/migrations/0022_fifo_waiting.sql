-- Hand-written: deliveries of FIFO webhooks wait at next_attempt_at = 'infinity' behind the head of
-- their queue, and the claim finds each queue's head through deliveries_fifo_head_idx. The head is due
-- with a real time where Postbox knows it is the head (queued into an idle queue; made due by the
-- recorder when the one before it finished), which is what the queue metrics read; the claim does not
-- depend on it (a head still waiting at 'infinity', e.g. after a race with a concurrent ingest, is taken).
--
-- Why: before this, every FIFO delivery was due at once and the claim read the due index in order,
-- testing each row for being its queue's head; a FIFO backlog of N rows cost every claim (of every
-- tenant) N row visits: with 3,000 queued, 18,000 buffers and 40 ms per claim (test/delivery/claim.test.ts
-- measures about 100 buffers now). Now those rows sort last in deliveries_due_idx, as a disabled
-- webhook's do, and a queue costs the claim one index descent.
--
-- postbox.ingest and postbox.emit_operational: the same statements as in 0009 and 0014 but for the
-- FIFO row's next_attempt_at. CREATE OR REPLACE keeps grants but drops settings, so ingest's
-- search_path is pinned again below (emit_operational had none: it runs as its caller, a trigger).
CREATE OR REPLACE FUNCTION postbox.ingest(events_json json)
RETURNS TABLE (ord int, event_id uuid, delivery_ids uuid[], created boolean)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
  stored bigint;
  repeated bigint;
BEGIN
  RETURN QUERY
  WITH input_rows AS MATERIALIZED (
    SELECT r.ord, r.id, r.tenant_id, r.type, COALESCE(r.payload, 'null'::jsonb) AS payload, r.occurred_at,
           r.idempotency_key, r.traceparent, postbox.event_type_patterns(r.type) AS patterns
      FROM json_to_recordset(events_json) AS r(
        ord int, id uuid, tenant_id uuid, type text, payload jsonb, occurred_at timestamptz,
        idempotency_key text, traceparent text)
     WHERE postbox.check_event(r.type, COALESCE(r.payload, 'null'::jsonb), r.idempotency_key,
                               r.occurred_at)
  ),
  inserted AS (
    INSERT INTO events (id, tenant_id, type, payload, occurred_at, idempotency_key, traceparent)
    SELECT r.id, r.tenant_id, r.type, r.payload, COALESCE(r.occurred_at, now()),
           r.idempotency_key, r.traceparent
      FROM input_rows r
     ORDER BY r.ord
    ON CONFLICT (tenant_id, idempotency_key) DO NOTHING
    RETURNING id
  ),
  candidates AS MATERIALIZED (
    SELECT w.id, w.tenant_id, w.event_types, w.filter_path, w.ordering,
           -- A FIFO queue with nothing unfinished (deliveries_fifo_head_idx): this input's first row
           -- for it is its head, due now.
           CASE WHEN w.ordering = 'fifo'
                THEN NOT EXISTS (SELECT 1 FROM deliveries x WHERE x.webhook_id = w.id AND x.fifo_seq IS NOT NULL
                                                             AND x.status IN ('pending', 'in_flight'))
                ELSE false END AS fifo_idle
      FROM webhooks w
     WHERE w.event_types && (SELECT array_agg(DISTINCT p) FROM input_rows, unnest(input_rows.patterns) AS p)
       AND w.tenant_id = ANY (SELECT DISTINCT r.tenant_id FROM input_rows r)
       AND w.deleted_at IS NULL AND w.enabled
  ),
  fifo_firsts AS MATERIALIZED (
    SELECT c.id AS webhook_id, min(r.ord) AS ord
      FROM candidates c
      JOIN input_rows r ON c.tenant_id = r.tenant_id AND c.event_types && r.patterns
       AND (c.filter_path IS NULL OR r.payload @@ c.filter_path)
     WHERE c.fifo_idle
     GROUP BY c.id
  ),
  queued AS (
    INSERT INTO deliveries (id, tenant_id, event_id, webhook_id, next_attempt_at, fifo_seq)
    -- A FIFO delivery behind its queue's head waits at 'infinity' (src/queries/claim.ts).
    SELECT postbox.uuidv7(), r.tenant_id, r.id, c.id,
           CASE WHEN c.ordering <> 'fifo' OR f.ord IS NOT NULL THEN now() ELSE 'infinity'::timestamptz END,
           CASE WHEN c.ordering = 'fifo' THEN nextval('deliveries_fifo_seq') END
      FROM inserted e
      JOIN input_rows r ON r.id = e.id
      JOIN candidates c ON c.tenant_id = r.tenant_id AND c.event_types && r.patterns
       AND (c.filter_path IS NULL OR r.payload @@ c.filter_path)
      LEFT JOIN fifo_firsts f ON f.webhook_id = c.id AND f.ord = r.ord
     -- Sorted before nextval runs: a FIFO webhook's queue follows the order of events in the input.
     ORDER BY r.ord
    RETURNING id, event_id
  )
  SELECT r.ord, r.id,
         COALESCE(array_agg(q.id ORDER BY q.id) FILTER (WHERE q.id IS NOT NULL), '{}'), true
    FROM inserted e
    JOIN input_rows r ON r.id = e.id
    LEFT JOIN queued q ON q.event_id = e.id
   GROUP BY r.ord, r.id;
  GET DIAGNOSTICS stored = ROW_COUNT;

  IF stored = json_array_length(events_json) THEN
    RETURN;
  END IF;
  RETURN QUERY
  SELECT r.ord, e.id,
         ARRAY(SELECT d.id FROM deliveries d WHERE d.event_id = e.id ORDER BY d.id), false
    FROM json_to_recordset(events_json) AS r(ord int, id uuid, tenant_id uuid, idempotency_key text)
    JOIN events e ON e.tenant_id = r.tenant_id AND e.idempotency_key = r.idempotency_key
   WHERE e.id <> r.id;
  GET DIAGNOSTICS repeated = ROW_COUNT;

  -- A key's event vanished between the two statements (retention): the caller tries again.
  IF stored + repeated < json_array_length(events_json) THEN
    RAISE EXCEPTION 'an idempotency key''s event was deleted while ingesting; retry'
      USING ERRCODE = 'serialization_failure';
  END IF;
END
$$;
--> statement-breakpoint
DO $$
BEGIN
  EXECUTE format('ALTER FUNCTION postbox.ingest(json) SET search_path = %I, pg_catalog, pg_temp', current_schema());
END
$$;
--> statement-breakpoint
CREATE OR REPLACE FUNCTION postbox.emit_operational(p_tenant uuid, p_type text, p_payload jsonb, p_subject uuid)
RETURNS uuid LANGUAGE plpgsql AS $$
DECLARE
  patterns text[] := array_remove(postbox.event_type_patterns(p_type), '*');
  event_id uuid;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM webhooks w
                  WHERE w.tenant_id = p_tenant AND w.event_types && patterns
                    AND w.deleted_at IS NULL AND w.enabled AND w.id IS DISTINCT FROM p_subject
                    AND (w.filter_path IS NULL OR p_payload @@ w.filter_path)) THEN
    RETURN NULL; -- nobody listens: no event is stored
  END IF;
  event_id := postbox.uuidv7();
  INSERT INTO events (id, tenant_id, type, payload, occurred_at) VALUES (event_id, p_tenant, p_type, p_payload, now());
  -- As postbox.ingest does: a webhook's payload filter applies, and a fifo webhook's order is kept
  -- (its delivery waits at 'infinity' behind the head of its queue).
  INSERT INTO deliveries (id, tenant_id, event_id, webhook_id, next_attempt_at, fifo_seq)
  SELECT postbox.uuidv7(), p_tenant, event_id, w.id,
         CASE WHEN w.ordering = 'fifo'
                   AND EXISTS (SELECT 1 FROM deliveries x WHERE x.webhook_id = w.id AND x.fifo_seq IS NOT NULL
                                                         AND x.status IN ('pending', 'in_flight'))
              THEN 'infinity'::timestamptz ELSE now() END,
         CASE WHEN w.ordering = 'fifo' THEN nextval('deliveries_fifo_seq') END
    FROM webhooks w
   WHERE w.tenant_id = p_tenant AND w.event_types && patterns
     AND w.deleted_at IS NULL AND w.enabled AND w.id IS DISTINCT FROM p_subject
     AND (w.filter_path IS NULL OR p_payload @@ w.filter_path)
   ORDER BY w.id;
  RETURN event_id;
END $$;
--> statement-breakpoint
-- FIFO rows already queued and due behind their head: waiting from now on.
UPDATE deliveries d SET next_attempt_at = 'infinity'
 WHERE d.fifo_seq IS NOT NULL AND d.status = 'pending' AND d.next_attempt_at <= now()
   AND EXISTS (SELECT 1 FROM deliveries h WHERE h.webhook_id = d.webhook_id AND h.fifo_seq < d.fifo_seq
                                            AND h.status IN ('pending', 'in_flight'));
--> statement-breakpoint
COMMENT ON COLUMN deliveries.next_attempt_at IS 'When a pending delivery becomes due. ''infinity'': parked (its webhook is disabled) or, with fifo_seq set, waiting to be its FIFO queue''s head (due as soon as it is).';
--> statement-breakpoint
COMMENT ON COLUMN deliveries.fifo_seq IS 'Position in its FIFO webhook''s queue (from deliveries_fifo_seq); NULL for webhooks with ordering none. Only the lowest unfinished position (the head) is claimed.';
