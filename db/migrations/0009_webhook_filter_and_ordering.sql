ALTER TABLE "deliveries" ADD COLUMN "fifo_seq" bigint;--> statement-breakpoint
ALTER TABLE "webhooks" ADD COLUMN "filter" jsonb;--> statement-breakpoint
ALTER TABLE "webhooks" ADD COLUMN "filter_path" jsonpath;--> statement-breakpoint
ALTER TABLE "webhooks" ADD COLUMN "ordering" text DEFAULT 'none' NOT NULL;--> statement-breakpoint
CREATE INDEX "deliveries_fifo_head_idx" ON "deliveries" USING btree ("webhook_id","fifo_seq") WHERE fifo_seq IS NOT NULL AND status IN ('pending', 'in_flight');--> statement-breakpoint
ALTER TABLE "webhooks" ADD CONSTRAINT "webhooks_ordering_check" CHECK ("webhooks"."ordering" IN ('none', 'fifo'));--> statement-breakpoint
ALTER TABLE "webhooks" ADD CONSTRAINT "webhooks_filter_compiled" CHECK (("webhooks"."filter" IS NULL) = ("webhooks"."filter_path" IS NULL));--> statement-breakpoint
-- Hand-written: COMMENTs for the new columns, the FIFO sequence, and postbox.ingest again with payload
-- filters and FIFO positions (the previous version is in 0008; CREATE OR REPLACE keeps its grants but
-- drops its settings, so its search_path is pinned again below).
--
-- What changed in postbox.ingest: a webhook with a filter gets a delivery only if `payload @@
-- filter_path` (src/ingest/payload-filter.ts compiles the filter; a JSON null payload is matched as
-- JSON null), and a delivery to a FIFO webhook takes the next deliveries_fifo_seq, in input order.
CREATE SEQUENCE deliveries_fifo_seq AS bigint;
--> statement-breakpoint
COMMENT ON SEQUENCE deliveries_fifo_seq IS 'Queue positions of deliveries to FIFO webhooks (deliveries.fifo_seq): one sequence, so positions follow the order events were queued.';
--> statement-breakpoint
COMMENT ON COLUMN webhooks.filter IS 'Payload filter as the tenant wrote it (docs/filters.md), or NULL: only events whose payload matches are delivered here.';
--> statement-breakpoint
COMMENT ON COLUMN webhooks.filter_path IS 'The filter compiled to an SQL/JSON path predicate; ingest matches with payload @@ filter_path. NULL exactly when filter is.';
--> statement-breakpoint
COMMENT ON COLUMN webhooks.ordering IS 'none: deliveries go out in parallel; fifo: one at a time, in event order (deliveries.fifo_seq), a dead-lettered head releases the next.';
--> statement-breakpoint
COMMENT ON COLUMN deliveries.fifo_seq IS 'Position in its FIFO webhook''s queue (from deliveries_fifo_seq); NULL for webhooks with ordering none.';
--> statement-breakpoint
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
    SELECT w.id, w.tenant_id, w.event_types, w.filter_path, w.ordering
      FROM webhooks w
     WHERE w.event_types && (SELECT array_agg(DISTINCT p) FROM input_rows, unnest(input_rows.patterns) AS p)
       AND w.tenant_id = ANY (SELECT DISTINCT r.tenant_id FROM input_rows r)
       AND w.deleted_at IS NULL AND w.enabled
  ),
  queued AS (
    INSERT INTO deliveries (id, tenant_id, event_id, webhook_id, next_attempt_at, fifo_seq)
    SELECT postbox.uuidv7(), r.tenant_id, r.id, c.id, now(),
           CASE WHEN c.ordering = 'fifo' THEN nextval('deliveries_fifo_seq') END
      FROM inserted e
      JOIN input_rows r ON r.id = e.id
      JOIN candidates c ON c.tenant_id = r.tenant_id AND c.event_types && r.patterns
       AND (c.filter_path IS NULL OR r.payload @@ c.filter_path)
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
