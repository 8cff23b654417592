CREATE SCHEMA postbox;

COMMENT ON SCHEMA postbox IS 'Postbox''s SQL interface: postbox.emit(...) lets a producer sharing the database queue an event inside its own transaction; the other functions are what POST /events runs. See docs/producers.md.';

CREATE TYPE public.delivery_status AS ENUM (
    'pending',
    'in_flight',
    'succeeded',
    'failed',
    'cancelled'
);

COMMENT ON TYPE public.delivery_status IS 'pending: waiting for next_attempt_at; in_flight: claimed under a lease; succeeded: a 2xx was received; failed: retries exhausted, see dead_letter_queue; cancelled: webhook deleted before delivery';

CREATE FUNCTION postbox.attempt_partition_name(day date) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
  SELECT 'delivery_attempts_p' || to_char(day, 'YYYYMMDD')
$$;

COMMENT ON FUNCTION postbox.attempt_partition_name(day date) IS 'Name of the daily partition of delivery_attempts holding the attempts started on that UTC day.';

CREATE FUNCTION postbox.check_envelope(version integer, metadata jsonb, source text) RETURNS boolean
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    AS $$
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

COMMENT ON FUNCTION postbox.check_envelope(version integer, metadata jsonb, source text) IS 'Validates an event''s version (>= 1), metadata (at most 50 string values of at most 500 characters, keys 1-40 characters) and source (1-100 characters) as POST /events does; raises PB400 naming the field (COLUMN).';

CREATE FUNCTION postbox.check_event(event_type text, payload jsonb, idempotency_key text, occurred_at timestamp with time zone) RETURNS boolean
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    AS $_$
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
  ELSIF starts_with(event_type, 'postbox.') THEN
    field := 'type'; problem := 'postbox.* event types are reserved for Postbox itself';
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
$_$;

COMMENT ON FUNCTION postbox.check_event(event_type text, payload jsonb, idempotency_key text, occurred_at timestamp with time zone) IS 'Validates one event as POST /events does (postbox.* types are reserved); raises SQLSTATE PB400 naming the field (COLUMN) when it is not valid.';

CREATE FUNCTION postbox.check_payload(ord integer, event_type text, given_version integer, catalogued boolean, version integer, schema jsonb, payload jsonb) RETURNS boolean
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    AS $$
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

COMMENT ON FUNCTION postbox.check_payload(ord integer, event_type text, given_version integer, catalogued boolean, version integer, schema jsonb, payload jsonb) IS 'The catalog''s check of one event at ingest: a named version must exist, and the payload must satisfy the version''s schema (postbox.schema_violation); raises PB400 with COLUMN = the JSON path and DETAIL ending in "(input row N)".';

CREATE FUNCTION postbox.consume_event_quota(tenant uuid, n integer) RETURNS TABLE("limit" integer, "windowStart" bigint, now double precision, granted integer, current integer)
    LANGUAGE plpgsql
    SET search_path TO 'public', 'pg_catalog', 'pg_temp'
    AS $$
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

COMMENT ON FUNCTION postbox.consume_event_quota(tenant uuid, n integer) IS 'Adds n events to the tenant''s current one-second window if max_events_per_sec allows; no row when the tenant has no quotas.';

CREATE FUNCTION postbox.create_attempt_partition(day date) RETURNS boolean
    LANGUAGE plpgsql
    SET search_path TO 'public', 'pg_catalog', 'pg_temp'
    AS $_$
DECLARE
  parent regclass := 'delivery_attempts'::regclass;
  schema_name text := (SELECT relnamespace::regnamespace::text FROM pg_class WHERE oid = parent);
  part text := postbox.attempt_partition_name(day);
  lo timestamptz := day::timestamp AT TIME ZONE 'UTC';
  hi timestamptz := (day + 1)::timestamp AT TIME ZONE 'UTC';
BEGIN
  -- Creators take turns (start-up of several processes, the hourly job): the second then finds it made.
  PERFORM pg_advisory_xact_lock(7310003);
  IF to_regclass(format('%I.%I', schema_name, part)) IS NOT NULL THEN
    RETURN false;
  END IF;
  EXECUTE format('CREATE TABLE %I.%I (LIKE %s INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE)',
                 schema_name, part, parent);
  EXECUTE format('WITH moved AS (DELETE FROM %I.delivery_attempts_default WHERE started_at >= $1 AND started_at < $2 RETURNING *)
                  INSERT INTO %I.%I SELECT * FROM moved', schema_name, schema_name, part)
    USING lo, hi;
  EXECUTE format('ALTER TABLE %s ATTACH PARTITION %I.%I FOR VALUES FROM (%L) TO (%L)',
                 parent, schema_name, part, lo, hi);
  EXECUTE format('COMMENT ON TABLE %I.%I IS %L', schema_name, part,
                 format('Attempts started on %s (UTC): a daily partition of delivery_attempts, dropped whole by retention.', day));
  RETURN true;
END
$_$;

COMMENT ON FUNCTION postbox.create_attempt_partition(day date) IS 'Creates the daily partition of delivery_attempts for a UTC day unless it exists, moving that day''s rows out of the default partition; true when it created one. The maintenance job calls it for today and the days ahead.';

CREATE FUNCTION postbox.dead_letter_notices() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
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

COMMENT ON FUNCTION postbox.dead_letter_notices() IS 'Trigger: deliveries entering the DLQ add to their webhook''s postbox.delivery.dead_lettered digest, and a DLQ crossing max_dlq_size to the tenant''s postbox.tenant.quota_exceeded digest, in the same transaction.';

CREATE FUNCTION postbox.delete_children() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'public', 'pg_catalog', 'pg_temp'
    AS $$
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

COMMENT ON FUNCTION postbox.delete_children() IS 'ON DELETE CASCADE for the rows without foreign keys: a deleted tenant''s deliveries and events, a deleted webhook''s or event''s deliveries (their dead-letter rows follow by their own foreign key).';

CREATE FUNCTION postbox.drop_attempt_partition(part regclass) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'public', 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM delivery_attempt_partitions p WHERE p.partition = part AND NOT p.is_default) THEN
    RAISE EXCEPTION '% is not a daily partition of delivery_attempts', part
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  EXECUTE format('DROP TABLE %s', part);
END
$$;

COMMENT ON FUNCTION postbox.drop_attempt_partition(part regclass) IS 'Drops one daily partition of delivery_attempts (never the default one): how retention deletes a day of attempts.';

CREATE FUNCTION postbox.due_deliveries(lookahead integer) RETURNS TABLE(id uuid, webhook_id uuid, tenant_id uuid, next_attempt_at timestamp with time zone)
    LANGUAGE plpgsql STABLE
    SET search_path TO 'public', 'pg_catalog', 'pg_temp'
    SET enable_sort TO 'off'
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

COMMENT ON FUNCTION postbox.due_deliveries(lookahead integer) IS 'The claim''s head: the oldest due deliveries without a FIFO position, at most lookahead, always by walking deliveries_due_idx in order (planned with enable_sort off, whatever the statistics).';

CREATE FUNCTION postbox.emit(tenant_id uuid, type text, payload jsonb, idempotency_key text DEFAULT NULL::text, occurred_at timestamp with time zone DEFAULT NULL::timestamp with time zone, version integer DEFAULT NULL::integer, metadata jsonb DEFAULT NULL::jsonb, source text DEFAULT NULL::text) RETURNS uuid
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_catalog', 'pg_temp'
    AS $$
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

COMMENT ON FUNCTION postbox.emit(tenant_id uuid, type text, payload jsonb, idempotency_key text, occurred_at timestamp with time zone, version integer, metadata jsonb, source text) IS 'Queues an event inside the caller''s transaction (the producer-side outbox): same validation, catalog checks (version, JSON Schema), matching, idempotency and quota as POST /events; returns the event id (the first one for a repeated idempotency_key). Errors: PB400 invalid (COLUMN names the field or the payload''s JSON path), PB413 payload over 1 MiB, PB404 unknown tenant, PB429 over quota (HINT says when to retry).';

CREATE FUNCTION postbox.emit_operational(p_tenant uuid, p_type text, p_payload jsonb, p_subject uuid) RETURNS uuid
    LANGUAGE plpgsql
    AS $$
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

COMMENT ON FUNCTION postbox.emit_operational(p_tenant uuid, p_type text, p_payload jsonb, p_subject uuid) IS 'Stores a postbox.* event and one pending delivery per enabled webhook of the tenant subscribed to it by name (not by *) whose payload filter matches, except the webhook it is about. Returns the event id, or NULL when no webhook listens (nothing stored). Runs in the caller''s transaction.';

CREATE FUNCTION postbox.event_type_patterns(event_type text) RETURNS text[]
    LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
    AS $$
DECLARE
  parts text[] := string_to_array(event_type, '.');
  patterns text[] := ARRAY['*', event_type];
BEGIN
  -- Each proper prefix of the dotted name as 'prefix.*', shortest first; a leading empty part ('.x')
  -- gives no '.*' of its own.
  FOR k IN 1 .. cardinality(parts) - 1 LOOP
    IF k > 1 OR parts[1] <> '' THEN
      patterns := patterns || (array_to_string(parts[1:k], '.') || '.*');
    END IF;
  END LOOP;
  RETURN patterns;
END
$$;

COMMENT ON FUNCTION postbox.event_type_patterns(event_type text) IS 'The webhook event_types patterns that match a type (*, the type, and every prefix.*); ingest matches with event_types && these.';

CREATE FUNCTION postbox.expired_leases(lim integer) RETURNS TABLE(id uuid)
    LANGUAGE plpgsql STABLE
    SET search_path TO 'public', 'pg_catalog', 'pg_temp'
    SET enable_sort TO 'off'
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

COMMENT ON FUNCTION postbox.expired_leases(lim integer) IS 'The claim''s rescue candidates: in-flight deliveries of enabled webhooks whose lease expired, oldest first, at most lim, always by walking deliveries_lease_idx in order (planned with enable_sort off, whatever the statistics).';

CREATE FUNCTION postbox.flush_notices(p_max integer, p_window_ms bigint) RETURNS integer
    LANGUAGE plpgsql
    AS $$
DECLARE
  d record;
  sent int := 0;
BEGIN
  FOR d IN SELECT * FROM notice_digests
            WHERE pending_count > 0 AND not_before <= now()
            ORDER BY not_before LIMIT p_max FOR UPDATE SKIP LOCKED LOOP
    PERFORM postbox.emit_operational(d.tenant_id, d.type,
      d.details || jsonb_build_object('count', d.pending_count, 'first_at', d.first_at, 'last_at', d.last_at)
        || CASE WHEN d.type = 'postbox.delivery.dead_lettered' THEN jsonb_build_object('sample', d.sample)
                ELSE '{}'::jsonb END,
      CASE WHEN d.type = 'postbox.delivery.dead_lettered' THEN d.subject::uuid END);
    UPDATE notice_digests
       SET pending_count = 0, first_at = NULL, last_at = NULL, sample = '[]',
           not_before = now() + p_window_ms * interval '1 millisecond', flushed_at = now()
     WHERE tenant_id = d.tenant_id AND type = d.type AND subject = d.subject;
    sent := sent + 1;
  END LOOP;
  RETURN sent;
END $$;

COMMENT ON FUNCTION postbox.flush_notices(p_max integer, p_window_ms bigint) IS 'Sends up to p_max due digests as events (postbox.emit_operational) and resets them; the next notice of a subject waits p_window_ms. Returns how many digests were flushed.';

CREATE FUNCTION postbox.ingest(events_json json) RETURNS TABLE(ord integer, event_id uuid, delivery_ids uuid[], created boolean)
    LANGUAGE sql
    SET search_path TO 'public', 'pg_catalog', 'pg_temp'
    AS $$
  SELECT * FROM postbox.ingest_jsonb(events_json::jsonb)
$$;

COMMENT ON FUNCTION postbox.ingest(events_json json) IS 'postbox.ingest_jsonb(jsonb) for a json input (postbox.emit).';

CREATE FUNCTION postbox.ingest_jsonb(events jsonb) RETURNS TABLE(ord integer, event_id uuid, delivery_ids uuid[], created boolean)
    LANGUAGE plpgsql
    SET search_path TO 'public', 'pg_catalog', 'pg_temp'
    AS $_$
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
$_$;

COMMENT ON FUNCTION postbox.ingest_jsonb(events jsonb) IS 'The ingest statement: validates, stores events and queues a pending delivery per matching webhook; idempotent per (tenant, idempotency_key). Used by POST /events and (through postbox.ingest(json)) postbox.emit. Sends no NOTIFY (the caller wakes workers).';

CREATE FUNCTION postbox.is_regex(pattern text) RETURNS boolean
    LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
    AS $$
BEGIN
  PERFORM '' ~ pattern;
  RETURN true;
EXCEPTION WHEN invalid_regular_expression THEN
  RETURN false;
END
$$;

COMMENT ON FUNCTION postbox.is_regex(pattern text) IS 'Whether a text compiles as a PostgreSQL regular expression (the dialect of JSON Schema "pattern" here).';

CREATE FUNCTION postbox.schema_type_words(types jsonb) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$
  SELECT string_agg(CASE t WHEN 'object' THEN 'an object' WHEN 'array' THEN 'an array'
                           WHEN 'integer' THEN 'an integer' WHEN 'null' THEN 'null' ELSE 'a ' || t END,
                    ' or ' ORDER BY n)
    FROM jsonb_array_elements_text(types) WITH ORDINALITY AS x(t, n)
$$;

COMMENT ON FUNCTION postbox.schema_type_words(types jsonb) IS 'The words for a JSON Schema type list in an error message (a string, an integer or null).';

CREATE FUNCTION postbox.schema_values_words(vals jsonb) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$
  SELECT string_agg(v::text, ', ' ORDER BY n) || CASE WHEN jsonb_array_length(vals) > 10 THEN ', ...' ELSE '' END
    FROM jsonb_array_elements(vals) WITH ORDINALITY AS x(v, n) WHERE n <= 10
$$;

COMMENT ON FUNCTION postbox.schema_values_words(vals jsonb) IS 'The first ten values of a JSON Schema enum, as JSON, for an error message.';

CREATE FUNCTION postbox.schema_violation(schema jsonb, value jsonb, path text) RETURNS text[]
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    AS $$
#variable_conflict use_variable
DECLARE
  kind text := jsonb_typeof(value);
  types jsonb;
  num numeric;
  str text;
  k text;
  sub jsonb;
  i bigint;
  found text[];
BEGIN
  IF schema IS NULL OR schema = 'true'::jsonb THEN
    RETURN NULL;
  ELSIF schema = 'false'::jsonb THEN
    RETURN ARRAY[path, 'is not allowed'];
  END IF;

  IF schema ? 'type' THEN
    types := CASE WHEN jsonb_typeof(schema->'type') = 'array' THEN schema->'type'
                  ELSE jsonb_build_array(schema->'type') END;
    -- 1.0 is an integer too (JSON Schema counts the value, not how it is written).
    IF NOT (types ? kind
            OR (kind = 'number' AND types ? 'integer' AND (value #>> '{}')::numeric % 1 = 0)) THEN
      RETURN ARRAY[path, 'must be ' || postbox.schema_type_words(types)];
    END IF;
  END IF;
  IF schema ? 'enum' AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements(schema->'enum') e WHERE e = value) THEN
    RETURN ARRAY[path, 'must be one of ' || postbox.schema_values_words(schema->'enum')];
  END IF;
  IF schema ? 'const' AND schema->'const' <> value THEN
    RETURN ARRAY[path, 'must be ' || (schema->'const')::text];
  END IF;

  IF kind = 'number' THEN
    num := (value #>> '{}')::numeric;
    IF (schema->>'minimum')::numeric > num THEN
      RETURN ARRAY[path, 'must be at least ' || (schema->'minimum')::text];
    ELSIF (schema->>'maximum')::numeric < num THEN
      RETURN ARRAY[path, 'must be at most ' || (schema->'maximum')::text];
    ELSIF (schema->>'exclusiveMinimum')::numeric >= num THEN
      RETURN ARRAY[path, 'must be greater than ' || (schema->'exclusiveMinimum')::text];
    ELSIF (schema->>'exclusiveMaximum')::numeric <= num THEN
      RETURN ARRAY[path, 'must be less than ' || (schema->'exclusiveMaximum')::text];
    END IF;
  ELSIF kind = 'string' THEN
    str := value #>> '{}';
    IF (schema->>'minLength')::int > length(str) THEN
      RETURN ARRAY[path, format('must be at least %s character%s', schema->>'minLength',
                                CASE WHEN schema->>'minLength' = '1' THEN '' ELSE 's' END)];
    ELSIF (schema->>'maxLength')::int < length(str) THEN
      RETURN ARRAY[path, format('must be at most %s character%s', schema->>'maxLength',
                                CASE WHEN schema->>'maxLength' = '1' THEN '' ELSE 's' END)];
    ELSIF schema ? 'pattern' AND str !~ (schema->>'pattern') THEN
      RETURN ARRAY[path, 'must match the pattern ' || (schema->>'pattern')];
    END IF;
  ELSIF kind = 'array' THEN
    IF (schema->>'minItems')::int > jsonb_array_length(value) THEN
      RETURN ARRAY[path, format('must have at least %s item%s', schema->>'minItems',
                                CASE WHEN schema->>'minItems' = '1' THEN '' ELSE 's' END)];
    ELSIF (schema->>'maxItems')::int < jsonb_array_length(value) THEN
      RETURN ARRAY[path, format('must have at most %s item%s', schema->>'maxItems',
                                CASE WHEN schema->>'maxItems' = '1' THEN '' ELSE 's' END)];
    END IF;
    IF schema ? 'items' THEN
      FOR sub, i IN SELECT e, n - 1 FROM jsonb_array_elements(value) WITH ORDINALITY AS x(e, n) LOOP
        found := postbox.schema_violation(schema->'items', sub, path || '.' || i);
        IF found IS NOT NULL THEN RETURN found; END IF;
      END LOOP;
    END IF;
  ELSIF kind = 'object' THEN
    IF schema ? 'required' THEN
      FOR k IN SELECT jsonb_array_elements_text(schema->'required') LOOP
        IF NOT value ? k THEN RETURN ARRAY[path || '.' || k, 'is required']; END IF;
      END LOOP;
    END IF;
    FOR k, sub IN SELECT key, v FROM jsonb_each(value) AS x(key, v) LOOP
      IF schema->'properties' ? k THEN
        found := postbox.schema_violation(schema->'properties'->k, sub, path || '.' || k);
      ELSIF schema ? 'additionalProperties' THEN
        found := postbox.schema_violation(schema->'additionalProperties', sub, path || '.' || k);
      ELSE
        found := NULL;
      END IF;
      IF found IS NOT NULL THEN RETURN found; END IF;
    END LOOP;
  END IF;
  RETURN NULL;
END
$$;

COMMENT ON FUNCTION postbox.schema_violation(schema jsonb, value jsonb, path text) IS 'Validates a JSON value against a JSON Schema of the subset in docs/event-types.md: NULL when valid, else ARRAY[path, problem] of the first violation (path starts with the given one).';

CREATE FUNCTION postbox.uuidv7() RETURNS uuid
    LANGUAGE sql PARALLEL SAFE
    AS $$
  SELECT encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid()) PLACING
    substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3) FROM 1 FOR 6),
    52, 1), 53, 1), 'hex')::uuid
$$;

COMMENT ON FUNCTION postbox.uuidv7() IS 'A UUIDv7 (time-ordered id), as src/ids.ts makes them.';

CREATE FUNCTION postbox.webhook_notices() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
  IF OLD.enabled AND NOT NEW.enabled THEN
    PERFORM postbox.emit_operational(NEW.tenant_id, 'postbox.endpoint.disabled', jsonb_build_object(
      'webhook_id', NEW.id, 'url', NEW.url, 'reason', NEW.disabled_reason, 'disabled_at', now(),
      'failing_since', NEW.failing_since, 'consecutive_failures', NEW.consecutive_failures), NEW.id);
  END IF;
  IF OLD.breaker_state = 'closed' AND NEW.breaker_state = 'open' THEN
    PERFORM postbox.emit_operational(NEW.tenant_id, 'postbox.endpoint.breaker_opened', jsonb_build_object(
      'webhook_id', NEW.id, 'url', NEW.url, 'consecutive_failures', NEW.consecutive_failures,
      'failing_since', NEW.failing_since, 'open_until', NEW.breaker_open_until), NEW.id);
  ELSIF OLD.breaker_state = 'open' AND NEW.breaker_state = 'closed' THEN
    PERFORM postbox.emit_operational(NEW.tenant_id, 'postbox.endpoint.recovered', jsonb_build_object(
      'webhook_id', NEW.id, 'url', NEW.url, 'failing_since', OLD.failing_since, 'recovered_at', now()), NEW.id);
  END IF;
  RETURN NULL;
END $$;

COMMENT ON FUNCTION postbox.webhook_notices() IS 'Trigger: a webhook disabled (by the recorder or the API), its breaker opened, or its breaker closed again writes postbox.endpoint.disabled / breaker_opened / recovered in the same transaction.';

CREATE FUNCTION public.postbox_event_type_versions_append_only() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
  RAISE EXCEPTION 'event_type_versions is append-only: add a version instead of changing one';
END
$$;

COMMENT ON FUNCTION public.postbox_event_type_versions_append_only() IS 'Trigger: refuses UPDATE of event_type_versions (versions are append-only).';

CREATE FUNCTION public.postbox_events_immutable() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
  IF current_setting('postbox.retention', true) = 'on' THEN
    IF TG_OP = 'DELETE' THEN
      RETURN OLD;
    END IF;
    IF TG_OP = 'UPDATE' AND NEW.payload IS NULL AND to_jsonb(NEW) - 'payload' = to_jsonb(OLD) - 'payload' THEN
      RETURN NEW;
    END IF;
  END IF;
  RAISE EXCEPTION 'events is an immutable log: % is not allowed (only retention may delete a row or remove its payload)', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TABLE public.api_keys (
    id uuid NOT NULL,
    tenant_id uuid,
    name text,
    key_hash bytea NOT NULL,
    prefix text NOT NULL,
    origin text DEFAULT 'api'::text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    last_used_at timestamp with time zone,
    expires_at timestamp with time zone,
    revoked_at timestamp with time zone,
    CONSTRAINT api_keys_origin_check CHECK ((origin = ANY (ARRAY['api'::text, 'bootstrap'::text])))
);

COMMENT ON TABLE public.api_keys IS 'API keys: several per tenant, and the operator''s (tenant_id NULL). Only the SHA-256 hash is stored; the key is shown once, when created or rotated.';

COMMENT ON COLUMN public.api_keys.id IS 'UUIDv7, time-ordered: lists are newest first by id.';

COMMENT ON COLUMN public.api_keys.tenant_id IS 'The tenant the key acts for; NULL: an admin key (every tenant).';

COMMENT ON COLUMN public.api_keys.name IS 'A label chosen by whoever created the key (e.g. ci-producer); never secret.';

COMMENT ON COLUMN public.api_keys.key_hash IS 'SHA-256 of the whole key: keys carry 256 random bits, so a plain hash cannot be brute-forced. Authentication looks keys up by it.';

COMMENT ON COLUMN public.api_keys.prefix IS 'The first characters of the key (pbk_ or pbadmin_ plus 6): shown in lists and used as the audit actor, not enough to authenticate.';

COMMENT ON COLUMN public.api_keys.origin IS 'api: created through the API. bootstrap: the admin key of ADMIN_API_KEY or DATA_DIR/admin-api-key, registered at start-up; a newer bootstrap key revokes older ones.';

COMMENT ON COLUMN public.api_keys.created_at IS 'When the key was created.';

COMMENT ON COLUMN public.api_keys.last_used_at IS 'Last authenticated request with the key, refreshed at most once a minute per process (not on every request).';

COMMENT ON COLUMN public.api_keys.expires_at IS 'Set by a rotation: the old key keeps working until then. NULL: no expiry.';

COMMENT ON COLUMN public.api_keys.revoked_at IS 'When the key was revoked; a revoked key answers 401. NULL: not revoked.';

COMMENT ON CONSTRAINT api_keys_origin_check ON public.api_keys IS 'origin is api or bootstrap.';

CREATE TABLE public.audit_log (
    id bigint NOT NULL,
    at timestamp with time zone DEFAULT now() NOT NULL,
    actor text NOT NULL,
    action text NOT NULL,
    object_type text NOT NULL,
    object_id text NOT NULL,
    tenant_id uuid,
    changes jsonb,
    key_prefix text,
    client_ip inet
);

COMMENT ON TABLE public.audit_log IS 'Who changed what: one row per create, update, delete, rotation, disable, DLQ retry and replay, written in the same transaction as the change. Never holds secrets.';

COMMENT ON COLUMN public.audit_log.id IS 'Surrogate key, increasing.';

COMMENT ON COLUMN public.audit_log.at IS 'When the change was made.';

COMMENT ON COLUMN public.audit_log.actor IS 'Who made it: admin, tenant:<id> or system.';

COMMENT ON COLUMN public.audit_log.action IS 'What was done, e.g. webhook.create, webhook.rotate_secret, dlq.retry.';

COMMENT ON COLUMN public.audit_log.object_type IS 'Kind of object changed: tenant, webhook, delivery, quota.';

COMMENT ON COLUMN public.audit_log.object_id IS 'Id of the object changed.';

COMMENT ON COLUMN public.audit_log.tenant_id IS 'Tenant the object belongs to.';

COMMENT ON COLUMN public.audit_log.changes IS 'Changed fields (never secret values).';

COMMENT ON COLUMN public.audit_log.key_prefix IS 'Prefix of the API key that made the change (the configured admin key''s too, where actor is just admin); null for changes by the system.';

COMMENT ON COLUMN public.audit_log.client_ip IS 'The caller''s address as the API saw it (behind the proxy the app trusts: the address that proxy reports in X-Forwarded-For); null for changes by the system.';

ALTER TABLE public.audit_log ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.audit_log_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE public.dead_letter_queue (
    delivery_id uuid NOT NULL,
    tenant_id uuid NOT NULL,
    webhook_id uuid NOT NULL,
    event_id uuid NOT NULL,
    event_type text NOT NULL,
    last_error text,
    attempts integer NOT NULL,
    dead_at timestamp with time zone DEFAULT now() NOT NULL
);

COMMENT ON TABLE public.dead_letter_queue IS 'Deliveries whose retries are exhausted (status failed). Leaves on DLQ retry or replay.';

COMMENT ON COLUMN public.dead_letter_queue.delivery_id IS 'The dead delivery.';

COMMENT ON COLUMN public.dead_letter_queue.tenant_id IS 'Its tenant.';

COMMENT ON COLUMN public.dead_letter_queue.webhook_id IS 'Its webhook.';

COMMENT ON COLUMN public.dead_letter_queue.event_id IS 'Its event.';

COMMENT ON COLUMN public.dead_letter_queue.event_type IS 'The event type, for bulk retry by type.';

COMMENT ON COLUMN public.dead_letter_queue.last_error IS 'Error of the final attempt.';

COMMENT ON COLUMN public.dead_letter_queue.attempts IS 'Attempts made before giving up.';

COMMENT ON COLUMN public.dead_letter_queue.dead_at IS 'When the delivery was given up.';

CREATE TABLE public.deliveries (
    id uuid NOT NULL,
    tenant_id uuid NOT NULL,
    event_id uuid NOT NULL,
    webhook_id uuid NOT NULL,
    status public.delivery_status DEFAULT 'pending'::public.delivery_status NOT NULL,
    attempts integer DEFAULT 0 NOT NULL,
    next_attempt_at timestamp with time zone DEFAULT now() NOT NULL,
    lease_owner text,
    lease_expires_at timestamp with time zone,
    last_attempt_at timestamp with time zone,
    last_status_code integer,
    last_error text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    completed_at timestamp with time zone,
    fifo_seq bigint,
    cycle_started_at timestamp with time zone DEFAULT now() NOT NULL
);

COMMENT ON TABLE public.deliveries IS 'One row per (event, matching webhook): the queue. Workers claim due pending rows with FOR UPDATE SKIP LOCKED.';

COMMENT ON COLUMN public.deliveries.id IS 'Delivery id (UUIDv7); sent as webhook-id, the same on every attempt and replay.';

COMMENT ON COLUMN public.deliveries.tenant_id IS 'Tenant of the event and webhook.';

COMMENT ON COLUMN public.deliveries.event_id IS 'The event being delivered.';

COMMENT ON COLUMN public.deliveries.webhook_id IS 'The webhook it is delivered to.';

COMMENT ON COLUMN public.deliveries.status IS 'pending, in_flight, succeeded, failed (in the DLQ) or cancelled.';

COMMENT ON COLUMN public.deliveries.attempts IS 'Attempts made so far in this delivery cycle (reset by replay and DLQ retry).';

COMMENT ON COLUMN public.deliveries.next_attempt_at IS 'When a pending delivery becomes due. ''infinity'': parked (its webhook is disabled) or, with fifo_seq set, waiting to be its FIFO queue''s head (due as soon as it is).';

COMMENT ON COLUMN public.deliveries.lease_owner IS 'Worker that holds the claim while in_flight.';

COMMENT ON COLUMN public.deliveries.lease_expires_at IS 'When an in_flight claim lapses; after it the delivery is claimable again (its worker is presumed dead).';

COMMENT ON COLUMN public.deliveries.last_attempt_at IS 'Start of the most recent attempt.';

COMMENT ON COLUMN public.deliveries.last_status_code IS 'HTTP status of the most recent attempt, if any answer came.';

COMMENT ON COLUMN public.deliveries.last_error IS 'Error of the most recent failed attempt.';

COMMENT ON COLUMN public.deliveries.created_at IS 'When the delivery was queued (in the ingest transaction).';

COMMENT ON COLUMN public.deliveries.updated_at IS 'When the row last changed state.';

COMMENT ON COLUMN public.deliveries.completed_at IS 'When it reached succeeded, failed or cancelled.';

COMMENT ON COLUMN public.deliveries.fifo_seq IS 'Position in its FIFO webhook''s queue (from deliveries_fifo_seq); NULL for webhooks with ordering none. Only the lowest unfinished position (the head) is claimed.';

COMMENT ON COLUMN public.deliveries.cycle_started_at IS 'When this delivery cycle began: queued at ingest, or queued again by a replay, DLQ retry or recovery. The webhook''s retry_policy.max_age_seconds counts from here (rows queued before this column existed count from the migration).';

CREATE SEQUENCE public.deliveries_fifo_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

COMMENT ON SEQUENCE public.deliveries_fifo_seq IS 'Queue positions of deliveries to FIFO webhooks (deliveries.fifo_seq): one sequence, so positions follow the order events were queued.';

CREATE TABLE public.delivery_attempts (
    id bigint NOT NULL,
    delivery_id uuid NOT NULL,
    attempt integer NOT NULL,
    started_at timestamp with time zone NOT NULL,
    duration_ms integer NOT NULL,
    status_code integer,
    error text,
    response_excerpt text
)
PARTITION BY RANGE (started_at);

COMMENT ON TABLE public.delivery_attempts IS 'One row per HTTP attempt: what was tried and what came back. Partitioned by UTC day of started_at (see delivery_attempt_partitions); retention drops whole days.';

COMMENT ON COLUMN public.delivery_attempts.id IS 'Surrogate key (unique with started_at, the partition key).';

COMMENT ON COLUMN public.delivery_attempts.delivery_id IS 'The delivery attempted (no foreign key: attempts outlive nothing but their day; see docs/design.md).';

COMMENT ON COLUMN public.delivery_attempts.attempt IS '1 for the first attempt of a cycle, then 2, 3, ... (sent as X-Webhook-Attempt).';

COMMENT ON COLUMN public.delivery_attempts.started_at IS 'When the request was started; the partition key.';

COMMENT ON COLUMN public.delivery_attempts.duration_ms IS 'Milliseconds until the answer, timeout or error.';

COMMENT ON COLUMN public.delivery_attempts.status_code IS 'HTTP status received, NULL if none (timeout, connection error).';

COMMENT ON COLUMN public.delivery_attempts.error IS 'Why the attempt failed, NULL on success.';

COMMENT ON COLUMN public.delivery_attempts.response_excerpt IS 'First 1 KiB of the response body.';

CREATE VIEW public.delivery_attempt_partitions AS
 SELECT (c.oid)::regclass AS partition,
    (b.range[1])::timestamp with time zone AS range_from,
    (b.range[2])::timestamp with time zone AS range_to,
    ((c.relpartbound IS NOT NULL) AND (pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT'::text)) AS is_default,
    (GREATEST(c.reltuples, (0)::real))::bigint AS rows_estimate,
    pg_total_relation_size((c.oid)::regclass) AS total_bytes
   FROM ((pg_inherits i
     JOIN pg_class c ON ((c.oid = i.inhrelid)))
     CROSS JOIN LATERAL ( SELECT regexp_match(pg_get_expr(c.relpartbound, c.oid), '^FOR VALUES FROM \(''([^'']+)''\) TO \(''([^'']+)''\)$'::text) AS range) b)
  WHERE (i.inhparent = ('public.delivery_attempts'::regclass)::oid);

COMMENT ON VIEW public.delivery_attempt_partitions IS 'The partitions of delivery_attempts: one per UTC day, plus the default partition for rows outside every day (it should stay empty).';

COMMENT ON COLUMN public.delivery_attempt_partitions.partition IS 'The partition (a table).';

COMMENT ON COLUMN public.delivery_attempt_partitions.range_from IS 'First instant it holds (started_at >= range_from); NULL for the default partition.';

COMMENT ON COLUMN public.delivery_attempt_partitions.range_to IS 'First instant it no longer holds (started_at < range_to); retention drops it once range_to is older than RETENTION_ATTEMPT_DAYS.';

COMMENT ON COLUMN public.delivery_attempt_partitions.is_default IS 'true for delivery_attempts_default, which takes rows no daily partition covers.';

COMMENT ON COLUMN public.delivery_attempt_partitions.rows_estimate IS 'Rows, estimated by the planner statistics (pg_class.reltuples; 0 before the first ANALYZE).';

COMMENT ON COLUMN public.delivery_attempt_partitions.total_bytes IS 'Size on disk with its indexes and TOAST (pg_total_relation_size).';

CREATE TABLE public.delivery_attempts_default (
    id bigint NOT NULL,
    delivery_id uuid NOT NULL,
    attempt integer NOT NULL,
    started_at timestamp with time zone NOT NULL,
    duration_ms integer NOT NULL,
    status_code integer,
    error text,
    response_excerpt text
);

COMMENT ON TABLE public.delivery_attempts_default IS 'Attempts outside every daily partition of delivery_attempts. Should stay empty: rows here mean partitions were not created ahead in time (the maintenance job) or a start time far off; creating their day''s partition moves them.';

ALTER TABLE public.delivery_attempts ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.delivery_attempts_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE public.event_type_versions (
    event_type_id uuid NOT NULL,
    version integer NOT NULL,
    schema jsonb,
    example jsonb,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT event_type_versions_version_check CHECK ((version >= 1))
);

COMMENT ON TABLE public.event_type_versions IS 'Versions of a catalogued type, 1, 2, 3, ...: append-only (a row is never changed), each with an optional JSON Schema and example.';

COMMENT ON COLUMN public.event_type_versions.event_type_id IS 'The type (event_types.id).';

COMMENT ON COLUMN public.event_type_versions.version IS 'Version number, from 1; events.version names it.';

COMMENT ON COLUMN public.event_type_versions.schema IS 'JSON Schema (the subset of docs/event-types.md) payloads of this version must satisfy; NULL: any payload.';

COMMENT ON COLUMN public.event_type_versions.example IS 'An example payload (valid against the schema); NULL: none given.';

COMMENT ON COLUMN public.event_type_versions.created_at IS 'When the version was added.';

CREATE TABLE public.event_types (
    id uuid NOT NULL,
    tenant_id uuid NOT NULL,
    name text NOT NULL,
    description text NOT NULL,
    deprecated boolean DEFAULT false NOT NULL,
    latest_version integer DEFAULT 1 NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL
);

COMMENT ON TABLE public.event_types IS 'The event-type catalog: a tenant''s documented event types (docs/event-types.md). Events of a catalogued type carry a version and, where that version has a schema, are checked against it at ingest.';

COMMENT ON COLUMN public.event_types.id IS 'UUIDv7; the audit log''s object id.';

COMMENT ON COLUMN public.event_types.tenant_id IS 'Owning tenant.';

COMMENT ON COLUMN public.event_types.name IS 'The event type (events.type), unique per tenant; never postbox.* (reserved).';

COMMENT ON COLUMN public.event_types.description IS 'What the event means, for producers and subscribers.';

COMMENT ON COLUMN public.event_types.deprecated IS 'The tenant marked the type deprecated: shown in the catalog and the console; events of it are still accepted.';

COMMENT ON COLUMN public.event_types.latest_version IS 'The highest version in event_type_versions: the version of an event that names none.';

COMMENT ON COLUMN public.event_types.created_at IS 'When the type was added to the catalog.';

COMMENT ON COLUMN public.event_types.updated_at IS 'Last change to the description, deprecation or versions.';

CREATE TABLE public.events (
    id uuid NOT NULL,
    tenant_id uuid NOT NULL,
    type text NOT NULL,
    payload jsonb,
    occurred_at timestamp with time zone NOT NULL,
    received_at timestamp with time zone DEFAULT now() NOT NULL,
    idempotency_key text,
    traceparent text,
    version integer,
    metadata jsonb,
    source text
);

COMMENT ON TABLE public.events IS 'Immutable log of ingested events (a trigger rejects UPDATE and DELETE outside retention; retention deletes rows and removes payloads).';

COMMENT ON COLUMN public.events.id IS 'Event id (UUIDv7); the "id" of the envelope receivers get.';

COMMENT ON COLUMN public.events.tenant_id IS 'Tenant that produced the event.';

COMMENT ON COLUMN public.events.type IS 'Event type, e.g. order.created.';

COMMENT ON COLUMN public.events.payload IS 'The producer''s payload; the "data" of the envelope receivers get. NULL once retention removed it (RETENTION_PAYLOAD_DAYS), never while a pending, in-flight or dead-lettered delivery may still send it.';

COMMENT ON COLUMN public.events.occurred_at IS 'The event''s own timestamp (given by the producer, else the time it was received).';

COMMENT ON COLUMN public.events.received_at IS 'When Postbox stored the event; delivery lag is measured from here.';

COMMENT ON COLUMN public.events.idempotency_key IS 'Producer-chosen key, unique per tenant: a repeat returns the first answer and queues nothing.';

COMMENT ON COLUMN public.events.traceparent IS 'W3C trace context of the event, forwarded on its deliveries. While Postbox traces (OTEL_EXPORTER_OTLP_ENDPOINT set): the traceparent of its ingest span, a child of the producer''s traceparent when one came (same trace id), so the claim, attempt and record spans of every delivery of the event join that trace. Otherwise the producer''s traceparent as sent (its version-00 part). NULL: none.';

COMMENT ON COLUMN public.events.version IS 'The catalog version of its type the payload was checked against (given by the producer, else the latest); NULL when the type is not in the catalog.';

COMMENT ON COLUMN public.events.metadata IS 'The producer''s string-to-string map (at most 50 keys), delivered in the body; NULL: none.';

COMMENT ON COLUMN public.events.source IS 'The producer''s name for itself (1-100 characters), delivered in the body; NULL: not given.';

CREATE TABLE public.notice_digests (
    tenant_id uuid NOT NULL,
    type text NOT NULL,
    subject text NOT NULL,
    pending_count integer DEFAULT 0 NOT NULL,
    first_at timestamp with time zone,
    last_at timestamp with time zone,
    sample jsonb DEFAULT '[]'::jsonb NOT NULL,
    details jsonb DEFAULT '{}'::jsonb NOT NULL,
    not_before timestamp with time zone DEFAULT now() NOT NULL,
    flushed_at timestamp with time zone
);

COMMENT ON TABLE public.notice_digests IS 'Batched operational notices: postbox.delivery.dead_lettered per webhook, postbox.tenant.quota_exceeded per quota. The cause adds to pending_count in its own transaction; postbox.flush_notices() turns a due row into one event and resets it, so 10,000 dead deliveries make a few notices whose counts add up to 10,000.';

COMMENT ON COLUMN public.notice_digests.tenant_id IS 'The tenant notified.';

COMMENT ON COLUMN public.notice_digests.type IS 'The event type of the notice (postbox.delivery.dead_lettered or postbox.tenant.quota_exceeded).';

COMMENT ON COLUMN public.notice_digests.subject IS 'What the notice is about: the webhook id (dead_lettered) or the quota name (quota_exceeded).';

COMMENT ON COLUMN public.notice_digests.pending_count IS 'Occurrences not yet sent in a notice (dead deliveries, or times the quota was exceeded). 0: nothing to send.';

COMMENT ON COLUMN public.notice_digests.first_at IS 'First pending occurrence; NULL when nothing is pending.';

COMMENT ON COLUMN public.notice_digests.last_at IS 'Latest pending occurrence; NULL when nothing is pending.';

COMMENT ON COLUMN public.notice_digests.sample IS 'Up to 10 pending occurrences in full (dead_lettered: delivery, event, type, last error), sent as the notice''s sample.';

COMMENT ON COLUMN public.notice_digests.details IS 'Fields copied into the notice''s payload (webhook_id and url; or quota, limit, current).';

COMMENT ON COLUMN public.notice_digests.not_before IS 'The next notice is not sent before this: a flush moves it one window ahead, so a subject is notified at most once per window (the first occurrence after a quiet window goes out at the next flush).';

COMMENT ON COLUMN public.notice_digests.flushed_at IS 'When the last notice of this row was sent; NULL: never.';

CREATE VIEW public.queue_overview AS
 SELECT p.pending,
    p.due,
    (p.pending - p.due) AS scheduled,
    f.in_flight,
    f.leases_expired,
    ( SELECT count(*) AS count
           FROM public.dead_letter_queue) AS dead_letters,
    o.oldest_due_at,
    (now() - o.oldest_due_at) AS oldest_due_age,
    st.succeeded_estimate,
    st.cancelled_estimate,
    st.total_estimate
   FROM (((( SELECT count(*) AS pending,
            count(*) FILTER (WHERE (d.next_attempt_at <= now())) AS due
           FROM public.deliveries d
          WHERE (d.status = 'pending'::public.delivery_status)) p
     CROSS JOIN ( SELECT min(d.next_attempt_at) AS oldest_due_at
           FROM public.deliveries d
          WHERE ((d.status = 'pending'::public.delivery_status) AND (d.next_attempt_at <= now()))) o)
     CROSS JOIN ( SELECT count(*) AS in_flight,
            count(*) FILTER (WHERE (d.lease_expires_at <= now())) AS leases_expired
           FROM public.deliveries d
          WHERE (d.status = 'in_flight'::public.delivery_status)) f)
     CROSS JOIN ( SELECT (COALESCE(round((sum((mcv.freq * t.n)) FILTER (WHERE (mcv.val = 'succeeded'::text)))::double precision), (0)::double precision))::bigint AS succeeded_estimate,
            (COALESCE(round((sum((mcv.freq * t.n)) FILTER (WHERE (mcv.val = 'cancelled'::text)))::double precision), (0)::double precision))::bigint AS cancelled_estimate,
            ( SELECT (round((GREATEST(c.reltuples, (0)::real))::double precision))::bigint AS round
                   FROM pg_class c
                  WHERE (c.oid = (to_regclass('deliveries'::text))::oid)) AS total_estimate
           FROM (( SELECT GREATEST(c.reltuples, (0)::real) AS n
                   FROM pg_class c
                  WHERE (c.oid = (to_regclass('deliveries'::text))::oid)) t
             LEFT JOIN LATERAL ( SELECT u.val,
                    u.freq
                   FROM pg_stats s,
                    LATERAL UNNEST(((s.most_common_vals)::text)::text[], s.most_common_freqs) u(val, freq)
                  WHERE ((s.schemaname = "current_schema"()) AND (s.tablename = 'deliveries'::name) AND (s.attname = 'status'::name))) mcv ON (true))) st);

COMMENT ON VIEW public.queue_overview IS 'The delivery queue in one row: exact counts of open deliveries (through the partial indexes) and of the DLQ, the oldest due delivery, and estimated counts of finished ones.';

COMMENT ON COLUMN public.queue_overview.pending IS 'Deliveries waiting (due + scheduled), exact.';

COMMENT ON COLUMN public.queue_overview.due IS 'Pending deliveries whose next attempt time has come, waiting for a worker; exact.';

COMMENT ON COLUMN public.queue_overview.scheduled IS 'Pending deliveries waiting for a retry backoff to pass; exact.';

COMMENT ON COLUMN public.queue_overview.in_flight IS 'Deliveries claimed by a worker, exact.';

COMMENT ON COLUMN public.queue_overview.leases_expired IS 'In-flight deliveries whose lease ran out (their worker presumably died; the next claim retakes them).';

COMMENT ON COLUMN public.queue_overview.dead_letters IS 'Rows in dead_letter_queue (deliveries with status failed), exact.';

COMMENT ON COLUMN public.queue_overview.oldest_due_at IS 'next_attempt_at of the longest-waiting due delivery; NULL when nothing is due.';

COMMENT ON COLUMN public.queue_overview.oldest_due_age IS 'How long that delivery has been due: the claim backlog in time.';

COMMENT ON COLUMN public.queue_overview.succeeded_estimate IS 'Succeeded deliveries still within retention, estimated from planner statistics.';

COMMENT ON COLUMN public.queue_overview.cancelled_estimate IS 'Cancelled deliveries still within retention, estimated from planner statistics.';

COMMENT ON COLUMN public.queue_overview.total_estimate IS 'All deliveries rows, estimated from planner statistics (pg_class.reltuples).';

CREATE TABLE public.quotas (
    tenant_id uuid NOT NULL,
    max_events_per_sec integer NOT NULL,
    max_concurrent_deliveries integer NOT NULL,
    max_dlq_size integer NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    claim_seq bigint DEFAULT 0 NOT NULL
);

COMMENT ON TABLE public.quotas IS 'Per-tenant limits; one row per tenant, defaults from configuration.';

COMMENT ON COLUMN public.quotas.tenant_id IS 'The tenant these limits apply to.';

COMMENT ON COLUMN public.quotas.max_events_per_sec IS 'Events the tenant may ingest per second across all Postbox processes; over it POST /events answers 429.';

COMMENT ON COLUMN public.quotas.max_concurrent_deliveries IS 'Deliveries of this tenant that may be in flight at once across all workers.';

COMMENT ON COLUMN public.quotas.max_dlq_size IS 'DLQ size above which the tenant is flagged (logged, counted); nothing is dropped.';

COMMENT ON COLUMN public.quotas.updated_at IS 'When the limits last changed.';

COMMENT ON COLUMN public.quotas.claim_seq IS 'Bumped by every claim that takes deliveries of this tenant; the claim locks this row (SKIP LOCKED) and skips the tenant when the counter moved since its snapshot, so in-flight counts read from that snapshot are never stale and max_concurrent_deliveries / webhooks.max_concurrency hold across worker processes.';

CREATE TABLE public.rate_windows (
    tenant_id uuid NOT NULL,
    window_start bigint NOT NULL,
    count integer NOT NULL
);

COMMENT ON TABLE public.rate_windows IS 'Per-tenant event counters per one-second window, shared by all processes for max_events_per_sec.';

COMMENT ON COLUMN public.rate_windows.tenant_id IS 'The tenant counted.';

COMMENT ON COLUMN public.rate_windows.window_start IS 'Window start in Unix seconds.';

COMMENT ON COLUMN public.rate_windows.count IS 'Events accepted in the window.';

CREATE TABLE public.secrets_key_check (
    id boolean DEFAULT true NOT NULL,
    sealed bytea NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT secrets_key_check_one_row CHECK (id)
);

COMMENT ON TABLE public.secrets_key_check IS 'One row: a known text sealed with the secrets key, opened at start-up to refuse a wrong or lost SECRETS_KEY.';

COMMENT ON COLUMN public.secrets_key_check.id IS 'Always true: the primary key and its CHECK allow exactly one row.';

COMMENT ON COLUMN public.secrets_key_check.sealed IS 'The known text sealed with AES-256-GCM under the secrets key (iv | tag | ciphertext).';

COMMENT ON COLUMN public.secrets_key_check.created_at IS 'When the first start sealed it.';

CREATE TABLE public.tenants (
    id uuid NOT NULL,
    name text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL
);

COMMENT ON TABLE public.tenants IS 'Producers of events. Their API keys are in api_keys.';

COMMENT ON COLUMN public.tenants.id IS 'Tenant id (UUIDv7).';

COMMENT ON COLUMN public.tenants.name IS 'Human-readable name, set at creation.';

COMMENT ON COLUMN public.tenants.created_at IS 'When the tenant was created.';

CREATE VIEW public.tenant_quota_usage AS
 SELECT u.tenant_id,
    u.tenant_name,
    u.max_events_per_sec,
    u.events_this_second,
    u.events_peak_1m,
    u.events_pct,
    u.max_concurrent_deliveries,
    u.in_flight_deliveries,
    u.concurrency_pct,
    u.max_dlq_size,
    u.dlq_size,
    u.dlq_pct,
    GREATEST(u.events_pct, u.concurrency_pct, u.dlq_pct) AS peak_pct
   FROM ( SELECT t.id AS tenant_id,
            t.name AS tenant_name,
            q.max_events_per_sec,
            COALESCE(r.this_second, 0) AS events_this_second,
            COALESCE(r.peak_1m, 0) AS events_peak_1m,
            round(((100.0 * (COALESCE(r.peak_1m, 0))::numeric) / (GREATEST(q.max_events_per_sec, 1))::numeric), 1) AS events_pct,
            q.max_concurrent_deliveries,
            COALESCE(f.in_flight, (0)::bigint) AS in_flight_deliveries,
            round(((100.0 * (COALESCE(f.in_flight, (0)::bigint))::numeric) / (GREATEST(q.max_concurrent_deliveries, 1))::numeric), 1) AS concurrency_pct,
            q.max_dlq_size,
            COALESCE(l.dead_letters, (0)::bigint) AS dlq_size,
            round(((100.0 * (COALESCE(l.dead_letters, (0)::bigint))::numeric) / (GREATEST(q.max_dlq_size, 1))::numeric), 1) AS dlq_pct
           FROM ((((public.tenants t
             JOIN public.quotas q ON ((q.tenant_id = t.id)))
             LEFT JOIN ( SELECT w.tenant_id,
                    max(w.count) FILTER (WHERE (w.window_start = (floor(EXTRACT(epoch FROM now())))::bigint)) AS this_second,
                    max(w.count) AS peak_1m
                   FROM public.rate_windows w
                  WHERE (w.window_start >= ((floor(EXTRACT(epoch FROM now())))::bigint - 60))
                  GROUP BY w.tenant_id) r ON ((r.tenant_id = t.id)))
             LEFT JOIN ( SELECT d.tenant_id,
                    count(*) AS in_flight
                   FROM public.deliveries d
                  WHERE (d.status = 'in_flight'::public.delivery_status)
                  GROUP BY d.tenant_id) f ON ((f.tenant_id = t.id)))
             LEFT JOIN ( SELECT x.tenant_id,
                    count(*) AS dead_letters
                   FROM public.dead_letter_queue x
                  GROUP BY x.tenant_id) l ON ((l.tenant_id = t.id)))) u;

COMMENT ON VIEW public.tenant_quota_usage IS 'Per tenant: each quota''s limit, what is used now, and the use as a percentage of the limit. Exact counts; reads the in-flight deliveries, the last minute of rate windows and the DLQ (all tenants: one pass over the DLQ''s tenant index; WHERE tenant_id = ... reads only that tenant''s). Top tenants: ORDER BY peak_pct DESC. /metrics counts the tenants at 80 % and 100 % instead (postbox_tenants_near_quota, postbox_tenants_at_quota): see docs/observability.md.';

COMMENT ON COLUMN public.tenant_quota_usage.tenant_id IS 'The tenant.';

COMMENT ON COLUMN public.tenant_quota_usage.tenant_name IS 'The tenant''s name (tenants.name).';

COMMENT ON COLUMN public.tenant_quota_usage.max_events_per_sec IS 'Quota: events the tenant may send per second (quotas.max_events_per_sec); more are refused with 429.';

COMMENT ON COLUMN public.tenant_quota_usage.events_this_second IS 'Events counted in the current one-second window (the transaction''s clock): what GET /quotas/:tenant_id shows.';

COMMENT ON COLUMN public.tenant_quota_usage.events_peak_1m IS 'The busiest second of the last minute: events counted in it. A one-second window is too short to look at; the busiest recent second says whether the tenant reaches its limit.';

COMMENT ON COLUMN public.tenant_quota_usage.events_pct IS 'events_peak_1m as a percentage of max_events_per_sec. 100: the tenant hit its limit in the last minute (requests beyond it got 429).';

COMMENT ON COLUMN public.tenant_quota_usage.max_concurrent_deliveries IS 'Quota: the tenant''s deliveries in flight at once (quotas.max_concurrent_deliveries); the claim holds further due deliveries back.';

COMMENT ON COLUMN public.tenant_quota_usage.in_flight_deliveries IS 'The tenant''s deliveries in flight now (status in_flight), counted as the claim counts them.';

COMMENT ON COLUMN public.tenant_quota_usage.concurrency_pct IS 'in_flight_deliveries as a percentage of max_concurrent_deliveries. 100: the tenant''s due deliveries wait for a slot (held, not due, in postbox_queue_depth).';

COMMENT ON COLUMN public.tenant_quota_usage.max_dlq_size IS 'Quota: dead-lettered deliveries the tenant may have (quotas.max_dlq_size). Flagged, not enforced: nothing is dropped past it.';

COMMENT ON COLUMN public.tenant_quota_usage.dlq_size IS 'Rows of the tenant in dead_letter_queue, exact.';

COMMENT ON COLUMN public.tenant_quota_usage.dlq_pct IS 'dlq_size as a percentage of max_dlq_size; above 100 the tenant is over its DLQ quota (a postbox.tenant.quota_exceeded notice was sent).';

COMMENT ON COLUMN public.tenant_quota_usage.peak_pct IS 'The highest of events_pct, concurrency_pct and dlq_pct: how close the tenant is to its nearest limit. Sort by it for the top tenants.';

CREATE TABLE public.webhooks (
    id uuid NOT NULL,
    tenant_id uuid NOT NULL,
    url text NOT NULL,
    secret_ciphertext bytea NOT NULL,
    previous_secret_ciphertext bytea,
    previous_secret_expires_at timestamp with time zone,
    event_types text[] DEFAULT '{*}'::text[] NOT NULL,
    description text,
    retry_policy jsonb NOT NULL,
    timeout_ms integer DEFAULT 15000 NOT NULL,
    max_concurrency integer DEFAULT 200 NOT NULL,
    enabled boolean DEFAULT true NOT NULL,
    disabled_reason text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    deleted_at timestamp with time zone,
    consecutive_failures integer DEFAULT 0 NOT NULL,
    breaker_state text DEFAULT 'closed'::text NOT NULL,
    breaker_open_until timestamp with time zone,
    breaker_opens integer DEFAULT 0 NOT NULL,
    failing_since timestamp with time zone,
    last_success_at timestamp with time zone,
    filter jsonb,
    filter_path jsonpath,
    ordering text DEFAULT 'none'::text NOT NULL,
    concurrency_limit double precision DEFAULT 10 NOT NULL,
    latency_floor_ms double precision,
    latency_recent_ms double precision,
    concurrency_updated_at timestamp with time zone,
    concurrency_decreased_at timestamp with time zone,
    client_cert_pem text,
    client_key_ciphertext bytea,
    client_cert_not_after timestamp with time zone,
    client_cert_expiry_notice text,
    CONSTRAINT webhooks_breaker_state_check CHECK ((breaker_state = ANY (ARRAY['closed'::text, 'open'::text]))),
    CONSTRAINT webhooks_client_cert_expiry_notice_check CHECK ((client_cert_expiry_notice = ANY (ARRAY['expiring'::text, 'expired'::text]))),
    CONSTRAINT webhooks_client_certificate_whole CHECK (((client_cert_pem IS NULL) = (client_key_ciphertext IS NULL))),
    CONSTRAINT webhooks_concurrency_limit_check CHECK ((concurrency_limit >= (1)::double precision)),
    CONSTRAINT webhooks_filter_compiled CHECK (((filter IS NULL) = (filter_path IS NULL))),
    CONSTRAINT webhooks_ordering_check CHECK ((ordering = ANY (ARRAY['none'::text, 'fifo'::text])))
);

COMMENT ON TABLE public.webhooks IS 'Receiver endpoints registered by tenants. Deleted webhooks keep their row (deleted_at) so their deliveries stay explainable.';

COMMENT ON COLUMN public.webhooks.id IS 'Webhook id (UUIDv7).';

COMMENT ON COLUMN public.webhooks.tenant_id IS 'Owning tenant.';

COMMENT ON COLUMN public.webhooks.url IS 'Absolute http(s) URL deliveries are POSTed to.';

COMMENT ON COLUMN public.webhooks.secret_ciphertext IS 'Signing secret, AES-256-GCM encrypted (12-byte IV, 16-byte tag, ciphertext). Never stored in plain text.';

COMMENT ON COLUMN public.webhooks.previous_secret_ciphertext IS 'The secret before the last rotation, encrypted; still signs until previous_secret_expires_at.';

COMMENT ON COLUMN public.webhooks.previous_secret_expires_at IS 'End of the rotation overlap: after it only the current secret signs.';

COMMENT ON COLUMN public.webhooks.event_types IS 'Event types delivered here: exact names or trailing wildcards (order.*); {*} means all.';

COMMENT ON COLUMN public.webhooks.description IS 'Free text from the tenant.';

COMMENT ON COLUMN public.webhooks.retry_policy IS 'JSON {max_attempts, initial_delay_ms, max_delay_ms}: exponential backoff with jitter.';

COMMENT ON COLUMN public.webhooks.timeout_ms IS 'Per-attempt timeout in milliseconds.';

COMMENT ON COLUMN public.webhooks.max_concurrency IS 'Ceiling of deliveries to this webhook in flight at once (set by the user, default 200). The limit in force is concurrency_limit, which adapts below it.';

COMMENT ON COLUMN public.webhooks.enabled IS 'Disabled webhooks match no new events; their queued deliveries wait until re-enabled.';

COMMENT ON COLUMN public.webhooks.disabled_reason IS 'Why the webhook was disabled (by the tenant, or automatically after failing).';

COMMENT ON COLUMN public.webhooks.created_at IS 'When the webhook was registered.';

COMMENT ON COLUMN public.webhooks.updated_at IS 'When the webhook last changed.';

COMMENT ON COLUMN public.webhooks.deleted_at IS 'Set by DELETE /webhooks/:id; the webhook is then gone from the API and its undelivered deliveries are cancelled.';

COMMENT ON COLUMN public.webhooks.consecutive_failures IS 'Failed attempts since the last 2xx (timeouts, connection errors, non-2xx; attempts cut short by a worker shutdown do not count). Reaching BREAKER_FAILURE_THRESHOLD opens the breaker.';

COMMENT ON COLUMN public.webhooks.breaker_state IS 'Circuit breaker: closed (deliveries flow, up to max_concurrency at once) or open (its pending deliveries are not claimed until breaker_open_until; after it, one probe at a time: half-open). A probe''s 2xx closes it, a failure reopens it with a longer cool-down.';

COMMENT ON COLUMN public.webhooks.breaker_open_until IS 'While open: end of the cool-down. Past it the breaker is half-open (one probe delivery at a time). NULL when closed.';

COMMENT ON COLUMN public.webhooks.breaker_opens IS 'Times the breaker opened since it was last closed: each reopen doubles the cool-down (BREAKER_COOLDOWN_MS), up to BREAKER_COOLDOWN_MAX_MS.';

COMMENT ON COLUMN public.webhooks.failing_since IS 'Start of the current run of failed attempts (NULL while the last attempt succeeded). Failing for WEBHOOK_AUTO_DISABLE_AFTER_MS disables the webhook.';

COMMENT ON COLUMN public.webhooks.last_success_at IS 'End of a recent attempt answered 2xx (refreshed at most every 10 seconds, and at once after failures). NULL: none recorded.';

COMMENT ON COLUMN public.webhooks.filter IS 'Payload filter as the tenant wrote it (docs/filters.md), or NULL: only events whose payload matches are delivered here.';

COMMENT ON COLUMN public.webhooks.filter_path IS 'The filter compiled to an SQL/JSON path predicate; ingest matches with payload @@ filter_path. NULL exactly when filter is.';

COMMENT ON COLUMN public.webhooks.ordering IS 'none: deliveries go out in parallel; fifo: one at a time, in event order (deliveries.fifo_seq), a dead-lettered head releases the next.';

COMMENT ON COLUMN public.webhooks.concurrency_limit IS 'Adaptive in-flight limit (AIMD), between 1 and max_concurrency: the recorder raises it while answers succeed and latency stays near latency_floor_ms, and cuts it on timeouts, connection errors, 5xx, 429 and rising latency. The claim takes floor(least(concurrency_limit, max_concurrency)) minus those in flight; shared by every worker process.';

COMMENT ON COLUMN public.webhooks.latency_floor_ms IS 'Recent minimum of the per-batch median duration of 2xx attempts, in ms: the baseline that "latency is rising" is judged against. Drifts up towards the current mean over about a minute, so a receiver that stays slower becomes the new baseline. NULL: no 2xx yet.';

COMMENT ON COLUMN public.webhooks.latency_recent_ms IS 'Moving average of the per-batch median duration of 2xx attempts, in ms: well above latency_floor_ms (3 x floor + 100 ms) counts as congestion and cuts concurrency_limit. NULL: no 2xx yet.';

COMMENT ON COLUMN public.webhooks.concurrency_updated_at IS 'When the recorder last wrote concurrency_limit or latency_floor_ms (the drift of the floor is timed from it).';

COMMENT ON COLUMN public.webhooks.concurrency_decreased_at IS 'When concurrency_limit was last cut: it is cut at most once per mean attempt duration (0.25 s to 1 s), so one overload episode costs one cut, not one per batch.';

COMMENT ON COLUMN public.webhooks.client_cert_pem IS 'Optional mTLS client certificate (PEM, may hold its chain) the sender presents to the receiver; public, shown in the API as subject, issuer, fingerprint and expiry.';

COMMENT ON COLUMN public.webhooks.client_key_ciphertext IS 'The private key of client_cert_pem, sealed with AES-256-GCM under the secrets key (key id | iv | tag | ciphertext); never returned or logged.';

COMMENT ON COLUMN public.webhooks.client_cert_not_after IS 'Expiry (notAfter) of client_cert_pem, read from the certificate when it is stored; NULL without a certificate. A certificate stored before this column existed gets it from the postbox-client-certificates job (which reads the PEM). Feeds postbox_webhook_client_certificates_expiring and the expiry notices.';

COMMENT ON COLUMN public.webhooks.client_cert_expiry_notice IS 'The expiry notice the current client certificate has had: expiring (postbox.endpoint.certificate_expiring, within 14 days of client_cert_not_after) or expired (postbox.endpoint.certificate_expired); NULL: none yet. Reset when the certificate changes.';

COMMENT ON CONSTRAINT webhooks_breaker_state_check ON public.webhooks IS 'breaker_state is closed or open; half-open is open with breaker_open_until passed.';

COMMENT ON CONSTRAINT webhooks_client_cert_expiry_notice_check ON public.webhooks IS 'The two expiry notices a certificate can have had.';

COMMENT ON CONSTRAINT webhooks_concurrency_limit_check ON public.webhooks IS 'The adaptive limit never falls below one delivery at a time.';

CREATE VIEW public.webhook_health AS
 SELECT w.id AS webhook_id,
    w.tenant_id,
    w.url,
    w.enabled,
    COALESCE(q.pending, (0)::bigint) AS pending,
    COALESCE(q.due, (0)::bigint) AS due,
    COALESCE(q.in_flight, (0)::bigint) AS in_flight,
    COALESCE(a.succeeded_1h, (0)::bigint) AS succeeded_1h,
    COALESCE(a.failed_1h, (0)::bigint) AS failed_1h,
    COALESCE(a.succeeded_24h, (0)::bigint) AS succeeded_24h,
    COALESCE(a.failed_24h, (0)::bigint) AS failed_24h,
    COALESCE(a.consecutive_failures, (0)::bigint) AS consecutive_failures,
    COALESCE(a.last_success_at, ( SELECT s.completed_at
           FROM public.deliveries s
          WHERE ((s.webhook_id = w.id) AND (s.status = 'succeeded'::public.delivery_status))
          ORDER BY s.id DESC NULLS LAST
         LIMIT 1)) AS last_success_at,
    q.oldest_due_at,
    COALESCE(dl.dead_letters, (0)::bigint) AS dead_letters,
        CASE
            WHEN ((w.breaker_state = 'open'::text) AND (w.breaker_open_until <= now())) THEN 'half_open'::text
            ELSE w.breaker_state
        END AS breaker_state,
    (floor(LEAST(w.concurrency_limit, (w.max_concurrency)::double precision)))::integer AS concurrency_limit,
    w.max_concurrency,
    round((w.latency_floor_ms)::numeric, 1) AS latency_floor_ms
   FROM (((public.webhooks w
     LEFT JOIN ( SELECT o.webhook_id,
            o.tenant_id,
            count(*) FILTER (WHERE (o.status = 'pending'::public.delivery_status)) AS pending,
            count(*) FILTER (WHERE ((o.status = 'pending'::public.delivery_status) AND (o.next_attempt_at <= now()))) AS due,
            count(*) FILTER (WHERE (o.status = 'in_flight'::public.delivery_status)) AS in_flight,
            min(o.next_attempt_at) FILTER (WHERE ((o.status = 'pending'::public.delivery_status) AND (o.next_attempt_at <= now()))) AS oldest_due_at
           FROM ( SELECT d.webhook_id,
                    d.tenant_id,
                    d.status,
                    d.next_attempt_at
                   FROM public.deliveries d
                  WHERE (d.status = 'pending'::public.delivery_status)
                UNION ALL
                 SELECT d.webhook_id,
                    d.tenant_id,
                    d.status,
                    d.next_attempt_at
                   FROM public.deliveries d
                  WHERE (d.status = 'in_flight'::public.delivery_status)) o
          GROUP BY o.webhook_id, o.tenant_id) q ON (((q.webhook_id = w.id) AND (q.tenant_id = w.tenant_id))))
     LEFT JOIN ( SELECT r.webhook_id,
            r.tenant_id,
            count(*) FILTER (WHERE (r.ok AND (r.started_at > (now() - '01:00:00'::interval)))) AS succeeded_1h,
            count(*) FILTER (WHERE ((NOT r.ok) AND (r.started_at > (now() - '01:00:00'::interval)))) AS failed_1h,
            count(*) FILTER (WHERE r.ok) AS succeeded_24h,
            count(*) FILTER (WHERE (NOT r.ok)) AS failed_24h,
            count(*) FILTER (WHERE ((NOT r.ok) AND (r.started_at > COALESCE(r.last_ok_started_at, '-infinity'::timestamp with time zone)))) AS consecutive_failures,
            max((r.started_at + ((r.duration_ms)::double precision * '00:00:00.001'::interval))) FILTER (WHERE r.ok) AS last_success_at
           FROM ( SELECT d.webhook_id,
                    d.tenant_id,
                    at.started_at,
                    at.duration_ms,
                    COALESCE(((at.status_code >= 200) AND (at.status_code <= 299)), false) AS ok,
                    max(at.started_at) FILTER (WHERE ((at.status_code >= 200) AND (at.status_code <= 299))) OVER (PARTITION BY d.webhook_id, d.tenant_id) AS last_ok_started_at
                   FROM (public.delivery_attempts at
                     JOIN public.deliveries d ON ((d.id = at.delivery_id)))
                  WHERE (at.started_at > (now() - '1 day'::interval))) r
          GROUP BY r.webhook_id, r.tenant_id) a ON (((a.webhook_id = w.id) AND (a.tenant_id = w.tenant_id))))
     LEFT JOIN ( SELECT l.webhook_id,
            l.tenant_id,
            count(*) AS dead_letters
           FROM public.dead_letter_queue l
          GROUP BY l.webhook_id, l.tenant_id) dl ON (((dl.webhook_id = w.id) AND (dl.tenant_id = w.tenant_id))))
  WHERE (w.deleted_at IS NULL);

COMMENT ON VIEW public.webhook_health IS 'Per webhook (deleted ones left out): its queue, its attempts in the last hour and day, failures since its last success, and its DLQ. Filter by webhook_id or tenant_id: the filter reaches the indexes.';

COMMENT ON COLUMN public.webhook_health.webhook_id IS 'The webhook.';

COMMENT ON COLUMN public.webhook_health.tenant_id IS 'Its tenant.';

COMMENT ON COLUMN public.webhook_health.url IS 'Where it delivers.';

COMMENT ON COLUMN public.webhook_health.enabled IS 'false: it matches no new events and its queued deliveries wait.';

COMMENT ON COLUMN public.webhook_health.pending IS 'Deliveries waiting: due now or scheduled for a retry.';

COMMENT ON COLUMN public.webhook_health.due IS 'Pending deliveries whose next attempt time has come (waiting for a worker).';

COMMENT ON COLUMN public.webhook_health.in_flight IS 'Deliveries claimed by a worker right now.';

COMMENT ON COLUMN public.webhook_health.succeeded_1h IS 'Attempts answered 2xx in the last hour.';

COMMENT ON COLUMN public.webhook_health.failed_1h IS 'Attempts that failed (non-2xx, timeout, connection error) in the last hour.';

COMMENT ON COLUMN public.webhook_health.succeeded_24h IS 'Attempts answered 2xx in the last 24 hours.';

COMMENT ON COLUMN public.webhook_health.failed_24h IS 'Attempts that failed in the last 24 hours.';

COMMENT ON COLUMN public.webhook_health.consecutive_failures IS 'Failed attempts since the last 2xx, counted within the last 24 hours (a webhook failing for longer shows its last 24 hours).';

COMMENT ON COLUMN public.webhook_health.last_success_at IS 'When a receiver last answered 2xx (end of that attempt); older than 24 hours: the completion of the newest succeeded delivery. NULL: never.';

COMMENT ON COLUMN public.webhook_health.oldest_due_at IS 'next_attempt_at of the longest-waiting due delivery; NULL when nothing is due.';

COMMENT ON COLUMN public.webhook_health.dead_letters IS 'Its deliveries in the dead letter queue.';

COMMENT ON COLUMN public.webhook_health.breaker_state IS 'Circuit breaker: closed (deliveries flow), open (deliveries wait for the cool-down, see webhooks.breaker_open_until) or half_open (cool-down over: one probe delivery at a time; a 2xx closes it, a failure reopens it).';

COMMENT ON COLUMN public.webhook_health.concurrency_limit IS 'Deliveries that may be in flight at once now: the adaptive limit (webhooks.concurrency_limit), at most max_concurrency. While the breaker is open none are claimed; half-open, one.';

COMMENT ON COLUMN public.webhook_health.max_concurrency IS 'The ceiling of concurrency_limit, set by the user.';

COMMENT ON COLUMN public.webhook_health.latency_floor_ms IS 'Recent minimum of the per-batch median duration of 2xx attempts (ms): latency well above it cuts concurrency_limit.';

CREATE TABLE public.webhook_recoveries (
    id uuid NOT NULL,
    tenant_id uuid NOT NULL,
    webhook_id uuid NOT NULL,
    since timestamp with time zone NOT NULL,
    until timestamp with time zone,
    delivery_ids uuid[] NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL
);

COMMENT ON TABLE public.webhook_recoveries IS 'POST /webhooks/:id/recover: each recovery and the deliveries it queued again. Asking for the same window while any of them is still pending or in flight answers this recovery instead of queueing again. A recovery of the webhook deletes its finished ones; the audit log keeps the history.';

COMMENT ON COLUMN public.webhook_recoveries.id IS 'UUIDv7 of the recovery.';

COMMENT ON COLUMN public.webhook_recoveries.tenant_id IS 'The webhook''s tenant.';

COMMENT ON COLUMN public.webhook_recoveries.webhook_id IS 'The webhook whose failed deliveries were queued again.';

COMMENT ON COLUMN public.webhook_recoveries.since IS 'Start of the window (inclusive): deliveries of events received from then.';

COMMENT ON COLUMN public.webhook_recoveries.until IS 'End of the window (exclusive); NULL: up to the time of the call.';

COMMENT ON COLUMN public.webhook_recoveries.delivery_ids IS 'The deliveries this recovery queued again (status failed before it).';

COMMENT ON COLUMN public.webhook_recoveries.created_at IS 'When the recovery was asked for.';

ALTER TABLE ONLY public.delivery_attempts ATTACH PARTITION public.delivery_attempts_default DEFAULT;

ALTER TABLE ONLY public.api_keys
    ADD CONSTRAINT api_keys_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.audit_log
    ADD CONSTRAINT audit_log_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.dead_letter_queue
    ADD CONSTRAINT dead_letter_queue_pkey PRIMARY KEY (delivery_id);

ALTER TABLE ONLY public.deliveries
    ADD CONSTRAINT deliveries_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.delivery_attempts
    ADD CONSTRAINT delivery_attempts_pkey PRIMARY KEY (id, started_at);

ALTER TABLE ONLY public.delivery_attempts_default
    ADD CONSTRAINT delivery_attempts_default_pkey PRIMARY KEY (id, started_at);

ALTER TABLE ONLY public.event_type_versions
    ADD CONSTRAINT event_type_versions_event_type_id_version_pk PRIMARY KEY (event_type_id, version);

ALTER TABLE ONLY public.event_types
    ADD CONSTRAINT event_types_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.events
    ADD CONSTRAINT events_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.notice_digests
    ADD CONSTRAINT notice_digests_tenant_id_type_subject_pk PRIMARY KEY (tenant_id, type, subject);

COMMENT ON CONSTRAINT notice_digests_tenant_id_type_subject_pk ON public.notice_digests IS 'One digest per tenant, notice type and subject.';

ALTER TABLE ONLY public.quotas
    ADD CONSTRAINT quotas_pkey PRIMARY KEY (tenant_id);

ALTER TABLE ONLY public.rate_windows
    ADD CONSTRAINT rate_windows_tenant_id_window_start_pk PRIMARY KEY (tenant_id, window_start);

ALTER TABLE ONLY public.secrets_key_check
    ADD CONSTRAINT secrets_key_check_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.tenants
    ADD CONSTRAINT tenants_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.webhook_recoveries
    ADD CONSTRAINT webhook_recoveries_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.webhooks
    ADD CONSTRAINT webhooks_pkey PRIMARY KEY (id);

CREATE UNIQUE INDEX api_keys_key_hash_key ON public.api_keys USING btree (key_hash);

COMMENT ON INDEX public.api_keys_key_hash_key IS 'Authentication: one lookup by the hash of the presented key.';

CREATE INDEX api_keys_tenant_idx ON public.api_keys USING btree (tenant_id, id DESC);

COMMENT ON INDEX public.api_keys_tenant_idx IS 'A tenant''s keys (or the admin keys, tenant_id NULL), newest first.';

CREATE INDEX audit_log_action_idx ON public.audit_log USING btree (action, id DESC);

CREATE INDEX audit_log_at_idx ON public.audit_log USING btree (at);

COMMENT ON INDEX public.audit_log_at_idx IS 'Audit retention deletes the oldest rows first (RETENTION_AUDIT_DAYS).';

CREATE INDEX audit_log_tenant_idx ON public.audit_log USING btree (tenant_id, id DESC);

CREATE INDEX dead_letter_queue_dead_at_idx ON public.dead_letter_queue USING btree (dead_at DESC, delivery_id DESC);

CREATE INDEX dead_letter_queue_tenant_idx ON public.dead_letter_queue USING btree (tenant_id, dead_at DESC, delivery_id DESC);

CREATE INDEX dead_letter_queue_webhook_idx ON public.dead_letter_queue USING btree (webhook_id, dead_at DESC);

CREATE INDEX deliveries_due_idx ON public.deliveries USING btree (next_attempt_at) WHERE (status = 'pending'::public.delivery_status);

CREATE INDEX deliveries_event_id_idx ON public.deliveries USING btree (event_id);

CREATE INDEX deliveries_fifo_head_idx ON public.deliveries USING btree (webhook_id, fifo_seq) WHERE ((fifo_seq IS NOT NULL) AND (status = ANY (ARRAY['pending'::public.delivery_status, 'in_flight'::public.delivery_status])));

CREATE INDEX deliveries_in_flight_idx ON public.deliveries USING btree (tenant_id, webhook_id) WHERE (status = 'in_flight'::public.delivery_status);

COMMENT ON INDEX public.deliveries_in_flight_idx IS 'In-flight deliveries per tenant and webhook: the claim counts them against max_concurrent_deliveries and max_concurrency.';

CREATE INDEX deliveries_lease_idx ON public.deliveries USING btree (lease_expires_at) WHERE (status = 'in_flight'::public.delivery_status);

CREATE INDEX deliveries_pending_webhook_idx ON public.deliveries USING btree (webhook_id, next_attempt_at) WHERE (status = 'pending'::public.delivery_status);

COMMENT ON INDEX public.deliveries_pending_webhook_idx IS 'Pending deliveries per webhook, oldest first: the claim takes a webhook''s oldest due rows, and skip-scans for webhooks with due rows behind a head that concurrency limits hold back; parking on disable.';

CREATE INDEX deliveries_tenant_id_idx ON public.deliveries USING btree (tenant_id, id DESC);

CREATE INDEX deliveries_webhook_id_idx ON public.deliveries USING btree (webhook_id, id DESC);

CREATE INDEX delivery_attempts_delivery_id_idx ON ONLY public.delivery_attempts USING btree (delivery_id, attempt);

COMMENT ON INDEX public.delivery_attempts_delivery_id_idx IS 'A delivery''s attempts (the delivery detail, the recorder replacing a lost-attempt placeholder).';

CREATE INDEX delivery_attempts_default_delivery_id_attempt_idx ON public.delivery_attempts_default USING btree (delivery_id, attempt);

CREATE INDEX delivery_attempts_started_at_idx ON ONLY public.delivery_attempts USING btree (started_at);

COMMENT ON INDEX public.delivery_attempts_started_at_idx IS 'Attempts in a time window (webhook_health''s last 24 hours, runbooks).';

CREATE INDEX delivery_attempts_default_started_at_idx ON public.delivery_attempts_default USING btree (started_at);

CREATE INDEX event_types_tenant_id_idx ON public.event_types USING btree (tenant_id, id DESC);

COMMENT ON INDEX public.event_types_tenant_id_idx IS 'GET /event-types: a tenant''s types, newest first.';

CREATE UNIQUE INDEX event_types_tenant_name_key ON public.event_types USING btree (tenant_id, name);

COMMENT ON INDEX public.event_types_tenant_name_key IS 'One entry per tenant and type; ingest finds an event''s type by it.';

CREATE INDEX events_payload_kept_idx ON public.events USING btree (id) WHERE (payload IS NOT NULL);

COMMENT ON INDEX public.events_payload_kept_idx IS 'Events still holding a payload: payload retention walks these, not the emptied ones, on every run.';

CREATE INDEX events_tenant_id_idx ON public.events USING btree (tenant_id, id DESC);

CREATE UNIQUE INDEX events_tenant_idempotency_key ON public.events USING btree (tenant_id, idempotency_key);

CREATE INDEX events_tenant_type_idx ON public.events USING btree (tenant_id, type, id DESC);

CREATE INDEX notice_digests_due_idx ON public.notice_digests USING btree (not_before) WHERE (pending_count > 0);

COMMENT ON INDEX public.notice_digests_due_idx IS 'The flush: rows with something pending, by when they may be sent.';

CREATE INDEX webhook_recoveries_webhook_idx ON public.webhook_recoveries USING btree (webhook_id, since);

COMMENT ON INDEX public.webhook_recoveries_webhook_idx IS 'Finding a running recovery of the same webhook and window.';

CREATE INDEX webhooks_client_cert_not_after_idx ON public.webhooks USING btree (client_cert_not_after) WHERE ((client_cert_pem IS NOT NULL) AND (deleted_at IS NULL));

COMMENT ON INDEX public.webhooks_client_cert_not_after_idx IS 'Webhooks with a client certificate by its expiry: the expiry gauge and the notice job read the range expiring soon.';

CREATE INDEX webhooks_event_types_idx ON public.webhooks USING gin (event_types) WHERE ((deleted_at IS NULL) AND enabled);

CREATE INDEX webhooks_tenant_id_idx ON public.webhooks USING btree (tenant_id, id DESC);

ALTER INDEX public.delivery_attempts_delivery_id_idx ATTACH PARTITION public.delivery_attempts_default_delivery_id_attempt_idx;

ALTER INDEX public.delivery_attempts_pkey ATTACH PARTITION public.delivery_attempts_default_pkey;

ALTER INDEX public.delivery_attempts_started_at_idx ATTACH PARTITION public.delivery_attempts_default_started_at_idx;

CREATE TRIGGER dead_letter_queue_notices AFTER INSERT ON public.dead_letter_queue REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION postbox.dead_letter_notices();

COMMENT ON TRIGGER dead_letter_queue_notices ON public.dead_letter_queue IS 'Batched operational notices for dead deliveries and the DLQ quota (postbox.dead_letter_notices).';

CREATE TRIGGER event_type_versions_append_only BEFORE UPDATE ON public.event_type_versions FOR EACH ROW EXECUTE FUNCTION public.postbox_event_type_versions_append_only();

COMMENT ON TRIGGER event_type_versions_append_only ON public.event_type_versions IS 'Versions are never changed once written.';

CREATE TRIGGER events_delete_children AFTER DELETE ON public.events REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION postbox.delete_children();

COMMENT ON TRIGGER events_delete_children ON public.events IS 'Deletes the event''s deliveries (no foreign key on them; postbox.delete_children). Retention deletes only events without any.';

CREATE TRIGGER events_immutable BEFORE DELETE OR UPDATE ON public.events FOR EACH ROW EXECUTE FUNCTION public.postbox_events_immutable();

CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON public.events FOR EACH STATEMENT EXECUTE FUNCTION public.postbox_events_immutable();

CREATE TRIGGER tenants_delete_children AFTER DELETE ON public.tenants REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION postbox.delete_children();

COMMENT ON TRIGGER tenants_delete_children ON public.tenants IS 'Deletes the tenant''s deliveries and events (no foreign keys on them; postbox.delete_children).';

CREATE TRIGGER webhooks_delete_children AFTER DELETE ON public.webhooks REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION postbox.delete_children();

COMMENT ON TRIGGER webhooks_delete_children ON public.webhooks IS 'Deletes the webhook''s deliveries (no foreign key on them; postbox.delete_children).';

CREATE TRIGGER webhooks_operational_notices AFTER UPDATE OF enabled, breaker_state ON public.webhooks FOR EACH ROW WHEN (((new.deleted_at IS NULL) AND ((old.enabled AND (NOT new.enabled)) OR (old.breaker_state IS DISTINCT FROM new.breaker_state)))) EXECUTE FUNCTION postbox.webhook_notices();

COMMENT ON TRIGGER webhooks_operational_notices ON public.webhooks IS 'Operational notices for disable, breaker open and recovery (postbox.webhook_notices).';

ALTER TABLE ONLY public.api_keys
    ADD CONSTRAINT api_keys_tenant_id_tenants_id_fk FOREIGN KEY (tenant_id) REFERENCES public.tenants(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.dead_letter_queue
    ADD CONSTRAINT dead_letter_queue_delivery_id_deliveries_id_fk FOREIGN KEY (delivery_id) REFERENCES public.deliveries(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.dead_letter_queue
    ADD CONSTRAINT dead_letter_queue_event_id_events_id_fk FOREIGN KEY (event_id) REFERENCES public.events(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.dead_letter_queue
    ADD CONSTRAINT dead_letter_queue_tenant_id_tenants_id_fk FOREIGN KEY (tenant_id) REFERENCES public.tenants(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.dead_letter_queue
    ADD CONSTRAINT dead_letter_queue_webhook_id_webhooks_id_fk FOREIGN KEY (webhook_id) REFERENCES public.webhooks(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.event_type_versions
    ADD CONSTRAINT event_type_versions_event_type_id_event_types_id_fk FOREIGN KEY (event_type_id) REFERENCES public.event_types(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.event_types
    ADD CONSTRAINT event_types_tenant_id_tenants_id_fk FOREIGN KEY (tenant_id) REFERENCES public.tenants(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.notice_digests
    ADD CONSTRAINT notice_digests_tenant_id_tenants_id_fk FOREIGN KEY (tenant_id) REFERENCES public.tenants(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.quotas
    ADD CONSTRAINT quotas_tenant_id_tenants_id_fk FOREIGN KEY (tenant_id) REFERENCES public.tenants(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.rate_windows
    ADD CONSTRAINT rate_windows_tenant_id_tenants_id_fk FOREIGN KEY (tenant_id) REFERENCES public.tenants(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.webhook_recoveries
    ADD CONSTRAINT webhook_recoveries_tenant_id_tenants_id_fk FOREIGN KEY (tenant_id) REFERENCES public.tenants(id) ON DELETE CASCADE;

COMMENT ON CONSTRAINT webhook_recoveries_tenant_id_tenants_id_fk ON public.webhook_recoveries IS 'A tenant''s recoveries go with it.';

ALTER TABLE ONLY public.webhook_recoveries
    ADD CONSTRAINT webhook_recoveries_webhook_id_webhooks_id_fk FOREIGN KEY (webhook_id) REFERENCES public.webhooks(id) ON DELETE CASCADE;

COMMENT ON CONSTRAINT webhook_recoveries_webhook_id_webhooks_id_fk ON public.webhook_recoveries IS 'A webhook''s recoveries go with it (webhooks are soft-deleted, so only a hard delete removes them).';

ALTER TABLE ONLY public.webhooks
    ADD CONSTRAINT webhooks_tenant_id_tenants_id_fk FOREIGN KEY (tenant_id) REFERENCES public.tenants(id) ON DELETE CASCADE;
