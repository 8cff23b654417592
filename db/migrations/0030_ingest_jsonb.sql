-- The ingest statement takes its input as jsonb: postbox.ingest_jsonb (a new name, so that a call of
-- postbox.ingest with an untyped literal stays unambiguous); postbox.ingest(json), which postbox.emit
-- calls, becomes a wrapper. With json, every payload was lexed twice: once checking the parameter
-- (json_in), once more in json_to_recordset, which then copied its text and parsed it again into jsonb.
-- jsonb_to_recordset hands each payload over as the jsonb it already is. Also, the per-row validation
-- calls (three plpgsql functions per event) run only for rows a plain expression does not pass.
-- Backend CPU of postbox.ingest on 1,000 x 1 KiB events: docs/perf.md, "Batch ingest".
CREATE FUNCTION postbox.ingest_jsonb(events jsonb)
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
      FROM jsonb_to_recordset(events) AS r(
        ord int, id uuid, tenant_id uuid, type text, payload jsonb, occurred_at timestamptz,
        idempotency_key text, traceparent text, version int, metadata jsonb, source text)
      -- The catalog (event_types_tenant_name_key): the version named, or the type's latest, and its schema.
      LEFT JOIN LATERAL (
        SELECT true AS catalogued, v.version, v.schema
          FROM event_types t
          LEFT JOIN event_type_versions v ON v.event_type_id = t.id AND v.version = COALESCE(r.version, t.latest_version)
         WHERE t.tenant_id = r.tenant_id AND t.name = r.type) c ON true
     -- Each check is a plpgsql call (~1 µs); the plain expression before it passes a valid row without
     -- the call (OR stops at the first true), and the call then names the field of an invalid one.
     WHERE ((length(r.type) <= 200 AND r.type ~ '^[A-Za-z0-9_.:-]+$' AND NOT starts_with(r.type, 'postbox.')
             AND (r.idempotency_key IS NULL
                  OR (length(r.idempotency_key) BETWEEN 1 AND 255 AND r.idempotency_key !~ '[\x01-\x1f\x7f]'))
             AND (r.occurred_at IS NULL
                  OR (r.occurred_at >= '1970-01-01T00:00:00Z' AND r.occurred_at < '10000-01-01T00:00:00Z')))
            OR postbox.check_event(r.type, COALESCE(r.payload, 'null'::jsonb), r.idempotency_key, r.occurred_at))
       AND ((r.version IS NULL AND r.metadata IS NULL AND r.source IS NULL)
            OR postbox.check_envelope(r.version, r.metadata, r.source))
       AND ((r.version IS NULL AND c.catalogued IS NULL)
            OR postbox.check_payload(r.ord, r.type, r.version, COALESCE(c.catalogued, false), c.version, c.schema,
                                     COALESCE(r.payload, 'null'::jsonb)))
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

  IF stored = jsonb_array_length(events) THEN
    RETURN;
  END IF;
  -- Rows left out: a used idempotency key (answered below) or a tenant that does not exist. The latter
  -- fails the statement as the foreign key on events.tenant_id did (the API answers 404).
  SELECT r.ord, r.tenant_id INTO missing
    FROM jsonb_to_recordset(events) AS r(ord int, tenant_id uuid)
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
    FROM jsonb_to_recordset(events) AS r(ord int, id uuid, tenant_id uuid, idempotency_key text)
    JOIN events e ON e.tenant_id = r.tenant_id AND e.idempotency_key = r.idempotency_key
   WHERE e.id <> r.id;
  GET DIAGNOSTICS repeated = ROW_COUNT;

  -- A key's event vanished between the two statements (retention): the caller tries again.
  IF stored + repeated < jsonb_array_length(events) THEN
    RAISE EXCEPTION 'an idempotency key''s event was deleted while ingesting; retry'
      USING ERRCODE = 'serialization_failure';
  END IF;
END
$$;
--> statement-breakpoint
DO $$
BEGIN
  EXECUTE format('ALTER FUNCTION postbox.ingest_jsonb(jsonb) SET search_path = %I, pg_catalog, pg_temp', current_schema());
END
$$;
--> statement-breakpoint
REVOKE ALL ON FUNCTION postbox.ingest_jsonb(jsonb) FROM PUBLIC;
--> statement-breakpoint
COMMENT ON FUNCTION postbox.ingest_jsonb(jsonb) IS 'The ingest statement: validates, stores events and queues a pending delivery per matching webhook; idempotent per (tenant, idempotency_key). Used by POST /events and (through postbox.ingest(json)) postbox.emit. Sends no NOTIFY (the caller wakes workers).';
--> statement-breakpoint
CREATE OR REPLACE FUNCTION postbox.ingest(events_json json)
RETURNS TABLE (ord int, event_id uuid, delivery_ids uuid[], created boolean)
LANGUAGE sql VOLATILE AS $$
  SELECT * FROM postbox.ingest_jsonb(events_json::jsonb)
$$;
--> statement-breakpoint
DO $$
BEGIN
  EXECUTE format('ALTER FUNCTION postbox.ingest(json) SET search_path = %I, pg_catalog, pg_temp', current_schema());
END
$$;
--> statement-breakpoint
COMMENT ON FUNCTION postbox.ingest(json) IS 'postbox.ingest_jsonb(jsonb) for a json input (postbox.emit).';
