-- Hand-written: the SQL interface of Postbox, in a schema of its own (docs/producers.md).
--
-- postbox.ingest is THE ingest statement: POST /events and /events/batch call it (src/queries/events.ts),
-- and postbox.emit calls it inside a producer's own transaction. Validation, matching and idempotency
-- therefore have one implementation; postbox.consume_event_quota is the quota's one implementation,
-- called by the API's rate limiter and by emit.
--
-- Tables stay where the earlier migrations put them. The functions that name tables are pinned to that
-- schema (the DO block at the end) with pg_temp last, so a caller's search_path or temporary tables cannot
-- redirect the SECURITY DEFINER function emit.
CREATE SCHEMA postbox;
--> statement-breakpoint
COMMENT ON SCHEMA postbox IS 'Postbox''s SQL interface: postbox.emit(...) lets a producer sharing the database queue an event inside its own transaction; the other functions are what POST /events runs. See docs/producers.md.';
--> statement-breakpoint
-- The layout of src/ids.ts: 48-bit Unix ms, then random bits with version 7 (bits 52 and 53 set).
CREATE FUNCTION postbox.uuidv7() RETURNS uuid LANGUAGE sql VOLATILE PARALLEL SAFE AS $$
  SELECT encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid()) PLACING
    substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3) FROM 1 FOR 6),
    52, 1), 53, 1), 'hex')::uuid
$$;
--> statement-breakpoint
COMMENT ON FUNCTION postbox.uuidv7() IS 'A UUIDv7 (time-ordered id), as src/ids.ts makes them.';
--> statement-breakpoint
-- Every webhook pattern that matches a type: a.b.c -> {*, a.b.c, a.*, a.b.*}. The same rule as
-- patternsForType in src/ingest/event-types.ts; test/ingest/sql-rules.test.ts holds the two equal.
CREATE FUNCTION postbox.event_type_patterns(event_type text) RETURNS text[]
  LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT ARRAY['*', event_type] || ARRAY(
    SELECT array_to_string(parts[1:k], '.') || '.*'
      FROM string_to_array(event_type, '.') AS parts, generate_series(1, cardinality(parts) - 1) AS k
     WHERE k > 1 OR parts[1] <> ''
     ORDER BY k)
$$;
--> statement-breakpoint
COMMENT ON FUNCTION postbox.event_type_patterns(text) IS 'The webhook event_types patterns that match a type (*, the type, and every prefix.*); ingest matches with event_types && these.';
--> statement-breakpoint
-- Raises SQLSTATE PB400 with COLUMN = the field's path and the API's message for it. The API checks
-- the same rules with valibot first (for its error format); test/ingest/sql-rules.test.ts holds the
-- two equal on a table of inputs.
CREATE FUNCTION postbox.check_event(
  event_type text, payload jsonb, idempotency_key text, occurred_at timestamptz
) RETURNS boolean LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
  field text;
  problem text;
BEGIN
  IF event_type IS NULL THEN
    field := 'type'; problem := 'must be a string';
  ELSIF event_type = '' THEN
    field := 'type'; problem := 'must not be empty';
  ELSIF length(event_type) > 200 THEN
    field := 'type'; problem := 'must be at most 200 characters';
  ELSIF event_type !~ '^[A-Za-z0-9_.:-]+$' THEN
    field := 'type'; problem := 'may contain only letters, digits and _ . : - (no *)';
  ELSIF payload IS NULL THEN
    field := 'payload'; problem := 'must be given (JSON null is ''null''::jsonb)';
  ELSIF idempotency_key = '' THEN
    field := 'idempotency_key'; problem := 'must not be empty';
  ELSIF length(idempotency_key) > 255 THEN
    field := 'idempotency_key'; problem := 'must be at most 255 characters';
  ELSIF idempotency_key ~ '[\x01-\x1f\x7f]' THEN
    field := 'idempotency_key'; problem := 'must not contain control characters';
  ELSIF occurred_at < '1970-01-01T00:00:00Z' OR occurred_at >= '10000-01-01T00:00:00Z' THEN
    field := 'timestamp'; problem := 'must be between 1970 and 9999';
  ELSE
    RETURN true;
  END IF;
  RAISE EXCEPTION '%: %', field, problem
    USING ERRCODE = 'PB400', COLUMN = field, HINT = 'the event is not valid; nothing was stored';
END
$$;
--> statement-breakpoint
COMMENT ON FUNCTION postbox.check_event(text, jsonb, text, timestamptz) IS 'Validates one event as POST /events does; raises SQLSTATE PB400 naming the field (COLUMN) when it is not valid.';
--> statement-breakpoint
-- The quota's check-and-add (src/queries/quotas.ts explains the statement). Called by the API's
-- rate limiter as its own statement before ingest, and by emit inside the producer's transaction.
CREATE FUNCTION postbox.consume_event_quota(tenant uuid, n int)
RETURNS TABLE ("limit" int, "windowStart" bigint, "now" double precision, granted int, "current" int)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  RETURN QUERY
  WITH q AS (
    SELECT max_events_per_sec AS lim, floor(extract(epoch FROM clock_timestamp()))::bigint AS win,
           extract(epoch FROM clock_timestamp())::double precision AS at
      FROM quotas WHERE tenant_id = tenant),
  added AS (
    INSERT INTO rate_windows AS w (tenant_id, window_start, count)
    SELECT tenant, q.win, n FROM q WHERE n <= q.lim
    ON CONFLICT (tenant_id, window_start) DO UPDATE SET count = w.count + EXCLUDED.count
      WHERE w.count + EXCLUDED.count <= (SELECT lim FROM q)
    RETURNING w.count)
  SELECT q.lim, q.win, q.at,
         (SELECT count FROM added),
         -- Read only when refused; this snapshot does not see the row the upsert just wrote.
         (SELECT r.count FROM rate_windows r WHERE r.tenant_id = tenant AND r.window_start = q.win)
    FROM q;
END
$$;
--> statement-breakpoint
COMMENT ON FUNCTION postbox.consume_event_quota(uuid, int) IS 'Adds n events to the tenant''s current one-second window if max_events_per_sec allows; no row when the tenant has no quotas.';
--> statement-breakpoint
-- The ingest statement. `events_json`: a JSON array of {ord, id, tenant_id, type, payload, occurred_at,
-- idempotency_key, traceparent}. Answers one row per input row: the stored event (created) or, for an
-- idempotency key already used (by another transaction or an earlier row of `events_json`), the first event
-- with its deliveries (not created).
--
-- Statement 1 inserts the events and one pending delivery per matching webhook. `candidates` finds the
-- webhooks that can match any event with one GIN probe: its predicate repeats the partial index's
-- (`deleted_at IS NULL AND enabled`) so webhooks_event_types_idx serves it, and it is MATERIALIZED so the
-- planner cannot fold it into a join that scans webhooks once per event. ON CONFLICT DO NOTHING makes
-- idempotency the database's job: a concurrent duplicate waits on the unique index, then inserts nothing.
-- Statement 2 answers those repeats; it runs with a new snapshot, so it sees the other's commit.
-- A JSON null payload arrives from json_to_recordset as SQL NULL; COALESCE puts the JSON null back.
CREATE FUNCTION postbox.ingest(events_json json)
RETURNS TABLE (ord int, event_id uuid, delivery_ids uuid[], created boolean)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
  stored bigint;
  repeated bigint;
BEGIN
  RETURN QUERY
  WITH input_rows AS MATERIALIZED (
    SELECT r.*, postbox.event_type_patterns(r.type) AS patterns
      FROM json_to_recordset(events_json) AS r(
        ord int, id uuid, tenant_id uuid, type text, payload jsonb, occurred_at timestamptz,
        idempotency_key text, traceparent text)
     WHERE postbox.check_event(r.type, COALESCE(r.payload, 'null'::jsonb), r.idempotency_key,
                               r.occurred_at)
  ),
  inserted AS (
    INSERT INTO events (id, tenant_id, type, payload, occurred_at, idempotency_key, traceparent)
    SELECT r.id, r.tenant_id, r.type, COALESCE(r.payload, 'null'::jsonb), COALESCE(r.occurred_at, now()),
           r.idempotency_key, r.traceparent
      FROM input_rows r
     ORDER BY r.ord
    ON CONFLICT (tenant_id, idempotency_key) DO NOTHING
    RETURNING id
  ),
  candidates AS MATERIALIZED (
    SELECT w.id, w.tenant_id, w.event_types
      FROM webhooks w
     WHERE w.event_types && (SELECT array_agg(DISTINCT p) FROM input_rows, unnest(input_rows.patterns) AS p)
       AND w.tenant_id = ANY (SELECT DISTINCT r.tenant_id FROM input_rows r)
       AND w.deleted_at IS NULL AND w.enabled
  ),
  queued AS (
    INSERT INTO deliveries (id, tenant_id, event_id, webhook_id, next_attempt_at)
    SELECT postbox.uuidv7(), r.tenant_id, r.id, c.id, now()
      FROM inserted e
      JOIN input_rows r ON r.id = e.id
      JOIN candidates c ON c.tenant_id = r.tenant_id AND c.event_types && r.patterns
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
COMMENT ON FUNCTION postbox.ingest(json) IS 'The ingest statement: validates, stores events and queues a pending delivery per matching webhook; idempotent per (tenant, idempotency_key). Used by POST /events and postbox.emit. Sends no NOTIFY (the caller wakes workers).';
--> statement-breakpoint
-- The producer's entry point (docs/producers.md). SECURITY DEFINER: a role with EXECUTE on this function
-- alone can queue events without any table privilege. Same order as POST /events: validate, take the
-- quota, store. pg_notify is sent on the caller's commit, never for a rolled-back transaction.
CREATE FUNCTION postbox.emit(
  tenant_id uuid,
  type text,
  payload jsonb,
  idempotency_key text DEFAULT NULL,
  occurred_at timestamptz DEFAULT NULL
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
  SELECT * INTO answer FROM postbox.ingest(json_build_array(json_build_object(
    'ord', 0, 'id', postbox.uuidv7(), 'tenant_id', tenant_id, 'type', type, 'payload', payload,
    'occurred_at', occurred_at, 'idempotency_key', idempotency_key)));
  IF answer.created AND cardinality(answer.delivery_ids) > 0 THEN
    PERFORM pg_notify('postbox_deliveries_due', '');
  END IF;
  RETURN answer.event_id;
END
$$;
--> statement-breakpoint
COMMENT ON FUNCTION postbox.emit(uuid, text, jsonb, text, timestamptz) IS 'Queues an event inside the caller''s transaction (the producer-side outbox): same validation, matching, idempotency and quota as POST /events; returns the event id (the first one for a repeated idempotency_key). Errors: PB400 invalid (COLUMN names the field), PB413 payload over 1 MiB, PB404 unknown tenant, PB429 over quota (HINT says when to retry).';
--> statement-breakpoint
-- Functions are executable by PUBLIC by default; here only the owner and roles granted EXECUTE on
-- postbox.emit (docs/producers.md) may call anything.
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA postbox FROM PUBLIC;
--> statement-breakpoint
ALTER DEFAULT PRIVILEGES IN SCHEMA postbox REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
--> statement-breakpoint
DO $$
DECLARE
  fn regprocedure;
BEGIN
  -- Only the functions that name tables; the others are pure and call pg_catalog alone.
  FOREACH fn IN ARRAY ARRAY['postbox.emit(uuid, text, jsonb, text, timestamptz)',
                           'postbox.ingest(json)', 'postbox.consume_event_quota(uuid, int)']::regprocedure[] LOOP
    EXECUTE format('ALTER FUNCTION %s SET search_path = %I, pg_catalog, pg_temp', fn, current_schema());
  END LOOP;
END
$$;
