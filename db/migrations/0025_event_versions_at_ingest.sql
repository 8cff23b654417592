-- Hand-written: events carry a catalog version, metadata and source, and a catalogued type's schema is
-- enforced at ingest (docs/event-types.md). postbox.ingest is where POST /events, /events/batch and
-- postbox.emit meet, so the one validator (postbox.schema_violation, 0023) serves all three.
--
-- postbox.check_envelope: the shape of version, metadata and source, as the API's valibot schemas state
-- them (test/ingest/sql-rules.test.ts holds the two equal). postbox.check_payload: the catalog's verdict
-- on one event. Both raise PB400 with COLUMN = the path; check_payload's DETAIL ends with the event's
-- position in the input, "(input row N)", which the API turns into events.N.<path> for a batch.
CREATE FUNCTION postbox.check_envelope(version int, metadata jsonb, source text) RETURNS boolean
  LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
#variable_conflict use_variable
DECLARE
  field text;
  problem text;
  k text;
  val jsonb;
BEGIN
  IF version < 1 THEN
    field := 'version'; problem := 'must be at least 1';
  ELSIF metadata IS NOT NULL AND jsonb_typeof(metadata) <> 'object' THEN
    field := 'metadata'; problem := 'must be an object of strings';
  ELSIF source = '' THEN
    field := 'source'; problem := 'must not be empty';
  ELSIF length(source) > 100 THEN
    field := 'source'; problem := 'must be at most 100 characters';
  ELSIF source ~ '[\x01-\x1f\x7f]' THEN
    field := 'source'; problem := 'must not contain control characters';
  END IF;
  IF field IS NULL AND metadata IS NOT NULL THEN
    FOR k, val IN SELECT key, value FROM jsonb_each(metadata) LOOP
      IF length(k) NOT BETWEEN 1 AND 40 OR k ~ '[\x01-\x1f\x7f]' THEN
        field := 'metadata.' || k; problem := 'is not a valid key: 1-40 characters, no control characters';
      ELSIF jsonb_typeof(val) <> 'string' THEN
        field := 'metadata.' || k; problem := 'must be a string';
      ELSIF length(val #>> '{}') > 500 THEN
        field := 'metadata.' || k; problem := 'must be at most 500 characters';
      END IF;
      EXIT WHEN field IS NOT NULL;
    END LOOP;
    IF field IS NULL AND (SELECT count(*) FROM jsonb_object_keys(metadata)) > 50 THEN
      field := 'metadata'; problem := 'must have at most 50 keys';
    END IF;
  END IF;
  IF field IS NULL THEN
    RETURN true;
  END IF;
  RAISE EXCEPTION '%: %', field, problem
    USING ERRCODE = 'PB400', COLUMN = field, HINT = 'the event is not valid; nothing was stored';
END
$$;
--> statement-breakpoint
COMMENT ON FUNCTION postbox.check_envelope(int, jsonb, text) IS 'Validates an event''s version (>= 1), metadata (at most 50 string values of at most 500 characters, keys 1-40 characters) and source (1-100 characters) as POST /events does; raises PB400 naming the field (COLUMN).';
--> statement-breakpoint
-- Whether an event fits the catalog: a version it names must exist (and needs its type catalogued), and
-- its payload must satisfy that version's schema, or the latest's when it names none.
CREATE FUNCTION postbox.check_payload(
  ord int, event_type text, given_version int, catalogued boolean, version int, schema jsonb, payload jsonb
) RETURNS boolean LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
#variable_conflict use_variable
DECLARE
  violation text[];
BEGIN
  IF given_version IS NOT NULL AND NOT catalogued THEN
    RAISE EXCEPTION 'version: % is not in the event-type catalog (send no version)', event_type
      USING ERRCODE = 'PB400', COLUMN = 'version', DETAIL = format('(input row %s)', ord),
            HINT = 'the event is not valid; nothing was stored';
  ELSIF given_version IS NOT NULL AND version IS NULL THEN
    RAISE EXCEPTION 'version: % has no version %', event_type, given_version
      USING ERRCODE = 'PB400', COLUMN = 'version', DETAIL = format('(input row %s)', ord),
            HINT = 'the event is not valid; nothing was stored';
  END IF;
  violation := postbox.schema_violation(schema, payload, 'payload');
  IF violation IS NOT NULL THEN
    RAISE EXCEPTION '%: %', violation[1], violation[2]
      USING ERRCODE = 'PB400', COLUMN = violation[1],
            DETAIL = format('The payload does not match the schema of %s version %s (input row %s)', event_type, version, ord),
            HINT = 'the event is not valid; nothing was stored';
  END IF;
  RETURN true;
END
$$;
--> statement-breakpoint
COMMENT ON FUNCTION postbox.check_payload(int, text, int, boolean, int, jsonb, jsonb) IS 'The catalog''s check of one event at ingest: a named version must exist, and the payload must satisfy the version''s schema (postbox.schema_violation); raises PB400 with COLUMN = the JSON path and DETAIL ending in "(input row N)".';
--> statement-breakpoint
-- postbox.ingest: as in 0022, plus version, metadata and source (input fields of the same names; the
-- stored version is the one resolved from the catalog) and the two checks above.
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
           r.idempotency_key, r.traceparent, c.version, r.metadata, r.source,
           postbox.event_type_patterns(r.type) AS patterns
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
  inserted AS (
    INSERT INTO events (id, tenant_id, type, payload, occurred_at, idempotency_key, traceparent, version,
                        metadata, source)
    SELECT r.id, r.tenant_id, r.type, r.payload, COALESCE(r.occurred_at, now()),
           r.idempotency_key, r.traceparent, r.version, r.metadata, r.source
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
-- postbox.emit gains version, metadata and source (defaulted, after the four of CONTRACT §6 and
-- occurred_at). A new argument list is a new function, so the old one is dropped; the roles that could
-- execute it (npm run db:producer-role) are granted the new one.
CREATE TEMP TABLE emit_grantees AS
  SELECT a.grantee::regrole::text AS role
    FROM pg_proc p CROSS JOIN LATERAL aclexplode(p.proacl) a
   WHERE p.oid = 'postbox.emit(uuid, text, jsonb, text, timestamptz)'::regprocedure
     AND a.privilege_type = 'EXECUTE' AND a.grantee <> p.proowner AND a.grantee <> 0;
--> statement-breakpoint
DROP FUNCTION postbox.emit(uuid, text, jsonb, text, timestamptz);
--> statement-breakpoint
CREATE FUNCTION postbox.emit(
  tenant_id uuid,
  type text,
  payload jsonb,
  idempotency_key text DEFAULT NULL,
  occurred_at timestamptz DEFAULT NULL,
  version int DEFAULT NULL,
  metadata jsonb DEFAULT NULL,
  source text DEFAULT NULL
) RETURNS uuid LANGUAGE plpgsql VOLATILE SECURITY DEFINER AS $$
#variable_conflict use_variable
DECLARE
  quota record;
  answer record;
BEGIN
  IF tenant_id IS NULL THEN
    RAISE EXCEPTION 'tenant_id: must be given' USING ERRCODE = 'PB400', COLUMN = 'tenant_id';
  END IF;
  PERFORM postbox.check_event(type, payload, idempotency_key, occurred_at);
  PERFORM postbox.check_envelope(version, metadata, source);
  -- The API refuses bodies over BODY_LIMIT_BYTES (default 1 MiB) with 413; emit has no body, so the
  -- default applies to the payload's JSON text.
  IF octet_length(payload::text) > 1048576 THEN
    RAISE EXCEPTION 'payload: must be at most 1048576 bytes as JSON text' USING ERRCODE = 'PB413', COLUMN = 'payload';
  END IF;
  SELECT * INTO quota FROM postbox.consume_event_quota(tenant_id, 1);
  IF NOT FOUND THEN
    RAISE EXCEPTION 'tenant not found' USING ERRCODE = 'PB404', COLUMN = 'tenant_id';
  END IF;
  IF quota.granted IS NULL THEN
    RAISE EXCEPTION 'over max_events_per_sec (%); retry after the current second', quota."limit"
      USING ERRCODE = 'PB429',
            HINT = format('retry after %s seconds', greatest(1, ceil(quota."windowStart" + 1 - quota."now")));
  END IF;
  -- The catalog's checks (version, schema) run in ingest, as for POST /events.
  SELECT * INTO answer FROM postbox.ingest(json_build_array(json_build_object(
    'ord', 0, 'id', postbox.uuidv7(), 'tenant_id', tenant_id, 'type', type, 'payload', payload,
    'occurred_at', occurred_at, 'idempotency_key', idempotency_key, 'version', version,
    'metadata', metadata, 'source', source)));
  IF answer.created AND cardinality(answer.delivery_ids) > 0 THEN
    PERFORM pg_notify('postbox_deliveries_due', '');
  END IF;
  RETURN answer.event_id;
END
$$;
--> statement-breakpoint
COMMENT ON FUNCTION postbox.emit(uuid, text, jsonb, text, timestamptz, int, jsonb, text) IS 'Queues an event inside the caller''s transaction (the producer-side outbox): same validation, catalog checks (version, JSON Schema), matching, idempotency and quota as POST /events; returns the event id (the first one for a repeated idempotency_key). Errors: PB400 invalid (COLUMN names the field or the payload''s JSON path), PB413 payload over 1 MiB, PB404 unknown tenant, PB429 over quota (HINT says when to retry).';
--> statement-breakpoint
REVOKE ALL ON FUNCTION postbox.emit(uuid, text, jsonb, text, timestamptz, int, jsonb, text),
  postbox.check_envelope(int, jsonb, text), postbox.check_payload(int, text, int, boolean, int, jsonb, jsonb)
  FROM PUBLIC;
--> statement-breakpoint
DO $$
DECLARE
  r text;
BEGIN
  EXECUTE format('ALTER FUNCTION postbox.emit(uuid, text, jsonb, text, timestamptz, int, jsonb, text) SET search_path = %I, pg_catalog, pg_temp', current_schema());
  FOR r IN SELECT role FROM emit_grantees LOOP
    EXECUTE format('GRANT EXECUTE ON FUNCTION postbox.emit(uuid, text, jsonb, text, timestamptz, int, jsonb, text) TO %s', r);
  END LOOP;
END
$$;
--> statement-breakpoint
DROP TABLE emit_grantees;
