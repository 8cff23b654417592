-- The four foreign keys on the ingest's rows (events.tenant_id, deliveries.tenant_id, .event_id and
-- .webhook_id) are dropped: each inserted row ran one referential check (an SPI query that plans and
-- starts an executor and locks the referenced row FOR KEY SHARE), ~15 ms of the ~60 ms postbox.ingest
-- spent on 1,000 events (docs/perf.md, "Batch ingest"). Integrity is kept another way:
--   inserts: the only writers of events and deliveries are postbox.ingest and postbox.emit_operational;
--     both lock the tenant and the webhooks they queue for FOR KEY SHARE once per statement (what the
--     checks did once per row), and a delivery is written in the statement that writes its event.
--   deletes: deleting a tenant, a webhook or an event deletes its deliveries (and a tenant its events)
--     in the statement triggers below, as ON DELETE CASCADE did. Events stay an immutable log: deleting
--     a tenant that has events still needs postbox.retention = 'on', as it did through the cascade.
ALTER TABLE "deliveries" DROP CONSTRAINT "deliveries_tenant_id_tenants_id_fk";
--> statement-breakpoint
ALTER TABLE "deliveries" DROP CONSTRAINT "deliveries_event_id_events_id_fk";
--> statement-breakpoint
ALTER TABLE "deliveries" DROP CONSTRAINT "deliveries_webhook_id_webhooks_id_fk";
--> statement-breakpoint
ALTER TABLE "events" DROP CONSTRAINT "events_tenant_id_tenants_id_fk";

--> statement-breakpoint
CREATE FUNCTION postbox.delete_children() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  -- Statement-level, with the deleted rows as a transition table: one statement per DELETE, not per row.
  -- Each statement here takes a new snapshot (READ COMMITTED), so it also sees what an ingest that held
  -- the deleted row FOR KEY SHARE committed while this DELETE waited for it.
  IF TG_TABLE_NAME = 'tenants' THEN
    DELETE FROM deliveries d USING gone g WHERE d.tenant_id = g.id;
    DELETE FROM events e USING gone g WHERE e.tenant_id = g.id;
  ELSIF TG_TABLE_NAME = 'webhooks' THEN
    DELETE FROM deliveries d USING gone g WHERE d.webhook_id = g.id;
  ELSIF TG_TABLE_NAME = 'events' THEN
    DELETE FROM deliveries d USING gone g WHERE d.event_id = g.id;
  END IF;
  RETURN NULL;
END $$;
--> statement-breakpoint
DO $$
BEGIN
  EXECUTE format('ALTER FUNCTION postbox.delete_children() SET search_path = %I, pg_catalog, pg_temp', current_schema());
END
$$;
--> statement-breakpoint
COMMENT ON FUNCTION postbox.delete_children() IS 'ON DELETE CASCADE for the rows without foreign keys: a deleted tenant''s deliveries and events, a deleted webhook''s or event''s deliveries (their dead-letter rows follow by their own foreign key).';
--> statement-breakpoint
CREATE TRIGGER tenants_delete_children AFTER DELETE ON tenants REFERENCING OLD TABLE AS gone
  FOR EACH STATEMENT EXECUTE FUNCTION postbox.delete_children();
--> statement-breakpoint
CREATE TRIGGER webhooks_delete_children AFTER DELETE ON webhooks REFERENCING OLD TABLE AS gone
  FOR EACH STATEMENT EXECUTE FUNCTION postbox.delete_children();
--> statement-breakpoint
CREATE TRIGGER events_delete_children AFTER DELETE ON events REFERENCING OLD TABLE AS gone
  FOR EACH STATEMENT EXECUTE FUNCTION postbox.delete_children();
--> statement-breakpoint
COMMENT ON TRIGGER tenants_delete_children ON tenants IS 'Deletes the tenant''s deliveries and events (no foreign keys on them; postbox.delete_children).';
--> statement-breakpoint
COMMENT ON TRIGGER webhooks_delete_children ON webhooks IS 'Deletes the webhook''s deliveries (no foreign key on them; postbox.delete_children).';
--> statement-breakpoint
COMMENT ON TRIGGER events_delete_children ON events IS 'Deletes the event''s deliveries (no foreign key on them; postbox.delete_children). Retention deletes only events without any.';
--> statement-breakpoint
-- postbox.ingest again (the previous version is in 0027), changed only to lock the tenants and webhooks
-- once per statement and to refuse an unknown tenant itself. CREATE OR REPLACE keeps the grants but drops
-- the settings, so the search_path is pinned again below.
CREATE OR REPLACE FUNCTION postbox.ingest(events_json json)
RETURNS TABLE (ord int, event_id uuid, delivery_ids uuid[], created boolean)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
  stored bigint;
  repeated bigint;
  missing record;
BEGIN
  RETURN QUERY
  WITH input_rows AS MATERIALIZED (
    SELECT r.ord, r.id, r.tenant_id, r.type, COALESCE(r.payload, 'null'::jsonb) AS payload, r.occurred_at,
           r.idempotency_key, r.traceparent, c.version, r.metadata, r.source
      FROM json_to_recordset(events_json) AS r(
        ord int, id uuid, tenant_id uuid, type text, payload jsonb, occurred_at timestamptz,
        idempotency_key text, traceparent text, version int, metadata jsonb, source text)
      -- The catalog (event_types_tenant_name_key): the version named, or the type's latest, and its schema.
      LEFT JOIN LATERAL (
        SELECT true AS catalogued, v.version, v.schema
          FROM event_types t
          LEFT JOIN event_type_versions v ON v.event_type_id = t.id AND v.version = COALESCE(r.version, t.latest_version)
         WHERE t.tenant_id = r.tenant_id AND t.name = r.type) c ON true
     WHERE postbox.check_event(r.type, COALESCE(r.payload, 'null'::jsonb), r.idempotency_key, r.occurred_at)
       AND postbox.check_envelope(r.version, r.metadata, r.source)
       AND postbox.check_payload(r.ord, r.type, r.version, COALESCE(c.catalogued, false), c.version, c.schema,
                                 COALESCE(r.payload, 'null'::jsonb))
  ),
  -- Each tenant of the input, locked FOR KEY SHARE once per statement (what the foreign keys did once per
  -- row): a tenant being deleted waits for this commit and then deletes these events too (the
  -- tenants_delete_children trigger); one deleted before is missing here, its events are not inserted
  -- and the statement fails with foreign_key_violation below.
  tenants_locked AS MATERIALIZED (
    SELECT t.id FROM tenants t WHERE t.id IN (SELECT DISTINCT r.tenant_id FROM input_rows r) FOR KEY SHARE
  ),
  -- The patterns matching each type, once per distinct type rather than once per event: the function
  -- costs ~9 µs a call, and a batch usually holds few types.
  typed AS MATERIALIZED (
    SELECT t.type, postbox.event_type_patterns(t.type) AS patterns
      FROM (SELECT DISTINCT r.type FROM input_rows r) t
  ),
  inserted AS (
    INSERT INTO events (id, tenant_id, type, payload, occurred_at, idempotency_key, traceparent, version,
                        metadata, source)
    SELECT r.id, r.tenant_id, r.type, r.payload, COALESCE(r.occurred_at, now()),
           r.idempotency_key, r.traceparent, r.version, r.metadata, r.source
      FROM input_rows r
     WHERE r.tenant_id IN (SELECT l.id FROM tenants_locked l)
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
     WHERE w.event_types && (SELECT array_agg(DISTINCT p) FROM typed, unnest(typed.patterns) AS p)
       AND w.tenant_id = ANY (SELECT DISTINCT r.tenant_id FROM input_rows r)
       AND w.deleted_at IS NULL AND w.enabled
    -- Once per webhook and statement, as the foreign key did per delivery: a webhook being deleted waits
    -- for this commit and then deletes these deliveries (webhooks_delete_children); one deleted before
    -- is skipped. Updates of other columns (limits, breaker) do not conflict with KEY SHARE.
       FOR KEY SHARE OF w
  ),
  fifo_firsts AS MATERIALIZED (
    SELECT c.id AS webhook_id, min(r.ord) AS ord
      FROM candidates c
      JOIN input_rows r ON c.tenant_id = r.tenant_id
      JOIN typed t ON t.type = r.type AND c.event_types && t.patterns
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
      JOIN typed t ON t.type = r.type
      JOIN candidates c ON c.tenant_id = r.tenant_id AND c.event_types && t.patterns
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
  -- Rows left out: a used idempotency key (answered below) or a tenant that does not exist. The latter
  -- fails the statement as the foreign key on events.tenant_id did (the API answers 404).
  SELECT r.ord, r.tenant_id INTO missing
    FROM json_to_recordset(events_json) AS r(ord int, tenant_id uuid)
   WHERE NOT EXISTS (SELECT 1 FROM tenants t WHERE t.id = r.tenant_id)
   LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'tenant % does not exist', missing.tenant_id
      USING ERRCODE = 'foreign_key_violation', COLUMN = 'tenant_id',
            DETAIL = format('(input row %s)', missing.ord), HINT = 'nothing was stored';
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
-- postbox.emit_operational again (the previous version is in 0022), changed only to lock its tenant and
-- the webhooks it queues for, as postbox.ingest does.
CREATE OR REPLACE FUNCTION postbox.emit_operational(p_tenant uuid, p_type text, p_payload jsonb, p_subject uuid)
RETURNS uuid LANGUAGE plpgsql AS $$
DECLARE
  patterns text[] := array_remove(postbox.event_type_patterns(p_type), '*');
  event_id uuid;
BEGIN
  PERFORM 1 FROM tenants t WHERE t.id = p_tenant FOR KEY SHARE;
  IF NOT FOUND OR NOT EXISTS (SELECT 1 FROM webhooks w
                  WHERE w.tenant_id = p_tenant AND w.event_types && patterns
                    AND w.deleted_at IS NULL AND w.enabled AND w.id IS DISTINCT FROM p_subject
                    AND (w.filter_path IS NULL OR p_payload @@ w.filter_path)) THEN
    RETURN NULL; -- nobody listens (or the tenant is gone): no event is stored
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
   ORDER BY w.id
     FOR KEY SHARE OF w;
  RETURN event_id;
END $$;
