-- Hand-written: delivery_attempts becomes a table partitioned by range of started_at, one partition per
-- UTC day, so retention drops whole days (a catalog change, whatever the row count) instead of deleting
-- rows (docs/design.md, "History"). Existing rows are moved; nothing is lost.
--
-- Why daily: retention is set in days, so a day is the finest step it needs (attempts are kept at least
-- RETENTION_ATTEMPT_DAYS and at most one day more). Coarser (weekly) keeps up to a week too much and makes
-- each drop bigger for no gain; finer (hourly) multiplies the partitions 24 times (720 for 30 days), and
-- every statement that cannot prune by time (a delivery's attempts, by delivery_id) plans and probes each.
--
-- The foreign key to deliveries is dropped, on purpose: with it, every deleted delivery would probe the
-- delivery_id index of every partition and delete its attempts row by row (the cascade), undoing what
-- the partitions are for, and every new partition would lock deliveries while its constraint is added.
-- Attempts are a log with a lifetime of their own: a delivery's attempts are written only while the
-- delivery row exists (the recorder joins it, the claim locks it), read only through it, and dropped with
-- their day. No foreign key points at delivery_attempts, so its primary key may carry the partition key.
--
-- A DEFAULT partition catches any row outside the daily ranges (partitions not created in time, a
-- clock far off); postbox.create_attempt_partition moves such rows into their day when it is created,
-- and postbox_attempt_partition_default_rows (GET /metrics) shows them.

-- The views that read delivery_attempts, to re-point at the new table below (a view binds to the table,
-- not its name). Saved before the rename, so each definition still names delivery_attempts.
CREATE TEMP TABLE postbox_attempt_views ON COMMIT DROP AS
SELECT DISTINCT v.oid::regclass::text AS view_name, pg_get_viewdef(v.oid) AS definition
  FROM pg_depend d
  JOIN pg_rewrite r ON r.oid = d.objid
  JOIN pg_class v ON v.oid = r.ev_class
 WHERE d.classid = 'pg_rewrite'::regclass
   AND d.refobjid = 'delivery_attempts'::regclass
   AND v.oid <> 'delivery_attempts'::regclass;
--> statement-breakpoint
ALTER TABLE delivery_attempts RENAME TO delivery_attempts_unpartitioned;
--> statement-breakpoint
ALTER TABLE delivery_attempts_unpartitioned DROP CONSTRAINT delivery_attempts_delivery_id_deliveries_id_fk;
--> statement-breakpoint
ALTER TABLE delivery_attempts_unpartitioned DROP CONSTRAINT delivery_attempts_pkey;
--> statement-breakpoint
DROP INDEX delivery_attempts_delivery_id_idx;
--> statement-breakpoint
DROP INDEX delivery_attempts_started_at_idx;
--> statement-breakpoint
ALTER SEQUENCE delivery_attempts_id_seq RENAME TO delivery_attempts_unpartitioned_id_seq;
--> statement-breakpoint
CREATE TABLE delivery_attempts (
  id bigint GENERATED ALWAYS AS IDENTITY NOT NULL,
  delivery_id uuid NOT NULL,
  attempt integer NOT NULL,
  started_at timestamp with time zone NOT NULL,
  duration_ms integer NOT NULL,
  status_code integer,
  error text,
  response_excerpt text
) PARTITION BY RANGE (started_at);
--> statement-breakpoint
-- Ids go on from where the old table's left off.
SELECT setval(pg_get_serial_sequence('delivery_attempts', 'id'), s.last_value, s.is_called)
  FROM delivery_attempts_unpartitioned_id_seq s;
--> statement-breakpoint
CREATE TABLE delivery_attempts_default PARTITION OF delivery_attempts DEFAULT;
--> statement-breakpoint
-- The day of an attempt is its UTC day: partition bounds must not move with a session's TimeZone.
CREATE FUNCTION postbox.attempt_partition_name(day date) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT 'delivery_attempts_p' || to_char(day, 'YYYYMMDD')
$$;
--> statement-breakpoint
COMMENT ON FUNCTION postbox.attempt_partition_name(date) IS 'Name of the daily partition of delivery_attempts holding the attempts started on that UTC day.';
--> statement-breakpoint
-- Created standalone, then attached: ATTACH takes only a SHARE UPDATE EXCLUSIVE lock on delivery_attempts,
-- so inserts and reads of other days go on (CREATE TABLE ... PARTITION OF would lock the whole table
-- exclusively). It does take the DEFAULT partition exclusively while checking that it holds no row of the
-- new day; rows of that day found there are moved in first, in the same transaction.
CREATE FUNCTION postbox.create_attempt_partition(day date) RETURNS boolean
LANGUAGE plpgsql AS $$
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
$$;
--> statement-breakpoint
COMMENT ON FUNCTION postbox.create_attempt_partition(date) IS 'Creates the daily partition of delivery_attempts for a UTC day unless it exists, moving that day''s rows out of the default partition; true when it created one. The maintenance job calls it for today and the days ahead.';
--> statement-breakpoint
-- The daily partitions with their bounds, parsed back from the catalog (pg_get_expr prints the bounds in
-- the session's TimeZone, and ::timestamptz reads them back in the same one). A partition whose bounds
-- are not a plain FROM/TO range (made by hand) has NULL bounds and is never dropped by retention.
CREATE VIEW delivery_attempt_partitions AS
SELECT c.oid::regclass AS partition,
       b.range[1]::timestamptz AS range_from,
       b.range[2]::timestamptz AS range_to,
       c.relpartbound IS NOT NULL AND pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT' AS is_default,
       greatest(c.reltuples, 0)::bigint AS rows_estimate,
       pg_total_relation_size(c.oid) AS total_bytes
  FROM pg_inherits i
  JOIN pg_class c ON c.oid = i.inhrelid
 CROSS JOIN LATERAL (SELECT regexp_match(pg_get_expr(c.relpartbound, c.oid),
                                         '^FOR VALUES FROM \(''([^'']+)''\) TO \(''([^'']+)''\)$') AS range) b
 WHERE i.inhparent = 'delivery_attempts'::regclass;
--> statement-breakpoint
COMMENT ON VIEW delivery_attempt_partitions IS 'The partitions of delivery_attempts: one per UTC day, plus the default partition for rows outside every day (it should stay empty).';
COMMENT ON COLUMN delivery_attempt_partitions.partition IS 'The partition (a table).';
COMMENT ON COLUMN delivery_attempt_partitions.range_from IS 'First instant it holds (started_at >= range_from); NULL for the default partition.';
COMMENT ON COLUMN delivery_attempt_partitions.range_to IS 'First instant it no longer holds (started_at < range_to); retention drops it once range_to is older than RETENTION_ATTEMPT_DAYS.';
COMMENT ON COLUMN delivery_attempt_partitions.is_default IS 'true for delivery_attempts_default, which takes rows no daily partition covers.';
COMMENT ON COLUMN delivery_attempt_partitions.rows_estimate IS 'Rows, estimated by the planner statistics (pg_class.reltuples; 0 before the first ANALYZE).';
COMMENT ON COLUMN delivery_attempt_partitions.total_bytes IS 'Size on disk with its indexes and TOAST (pg_total_relation_size).';
--> statement-breakpoint
-- Retention's drop: one partition per call and transaction, so the caller can bound the exclusive lock
-- DROP takes on delivery_attempts with lock_timeout and leave a busy day for the next run.
CREATE FUNCTION postbox.drop_attempt_partition(part regclass) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM delivery_attempt_partitions p WHERE p.partition = part AND NOT p.is_default) THEN
    RAISE EXCEPTION '% is not a daily partition of delivery_attempts', part
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  EXECUTE format('DROP TABLE %s', part);
END
$$;
--> statement-breakpoint
COMMENT ON FUNCTION postbox.drop_attempt_partition(regclass) IS 'Drops one daily partition of delivery_attempts (never the default one): how retention deletes a day of attempts.';
--> statement-breakpoint
-- As for postbox.emit (migration 0008): functions that name tables resolve them in Postbox's schema only.
DO $$
DECLARE
  fn regprocedure;
BEGIN
  FOREACH fn IN ARRAY ARRAY['postbox.create_attempt_partition(date)',
                           'postbox.drop_attempt_partition(regclass)']::regprocedure[] LOOP
    EXECUTE format('ALTER FUNCTION %s SET search_path = %I, pg_catalog, pg_temp', fn, current_schema());
  END LOOP;
END
$$;
--> statement-breakpoint
-- One partition per UTC day that holds rows, from the first to the last (no gaps), then the rows.
SELECT postbox.create_attempt_partition(d::date)
  FROM (SELECT min(started_at) AS lo, max(started_at) AS hi FROM delivery_attempts_unpartitioned) b,
       generate_series((b.lo AT TIME ZONE 'UTC')::date, (b.hi AT TIME ZONE 'UTC')::date, interval '1 day') d
 WHERE b.lo IS NOT NULL;
--> statement-breakpoint
INSERT INTO delivery_attempts
       (id, delivery_id, attempt, started_at, duration_ms, status_code, error, response_excerpt)
OVERRIDING SYSTEM VALUE
SELECT id, delivery_id, attempt, started_at, duration_ms, status_code, error, response_excerpt
  FROM delivery_attempts_unpartitioned;
--> statement-breakpoint
-- Keys and indexes after the rows: one build per partition instead of one insert per row.
ALTER TABLE delivery_attempts ADD CONSTRAINT delivery_attempts_pkey PRIMARY KEY (id, started_at);
--> statement-breakpoint
CREATE INDEX delivery_attempts_delivery_id_idx ON delivery_attempts USING btree (delivery_id, attempt);
--> statement-breakpoint
CREATE INDEX delivery_attempts_started_at_idx ON delivery_attempts USING btree (started_at);
--> statement-breakpoint
DO $$
DECLARE
  v record;
BEGIN
  FOR v IN SELECT * FROM postbox_attempt_views LOOP
    EXECUTE format('CREATE OR REPLACE VIEW %s AS %s', v.view_name, rtrim(v.definition, '; '));
  END LOOP;
END
$$;
--> statement-breakpoint
DROP TABLE delivery_attempts_unpartitioned;
--> statement-breakpoint
COMMENT ON TABLE delivery_attempts IS 'One row per HTTP attempt: what was tried and what came back. Partitioned by UTC day of started_at (see delivery_attempt_partitions); retention drops whole days.';
COMMENT ON COLUMN delivery_attempts.id IS 'Surrogate key (unique with started_at, the partition key).';
COMMENT ON COLUMN delivery_attempts.delivery_id IS 'The delivery attempted (no foreign key: attempts outlive nothing but their day; see docs/design.md).';
COMMENT ON COLUMN delivery_attempts.attempt IS '1 for the first attempt of a cycle, then 2, 3, ... (sent as X-Webhook-Attempt).';
COMMENT ON COLUMN delivery_attempts.started_at IS 'When the request was started; the partition key.';
COMMENT ON COLUMN delivery_attempts.duration_ms IS 'Milliseconds until the answer, timeout or error.';
COMMENT ON COLUMN delivery_attempts.status_code IS 'HTTP status received, NULL if none (timeout, connection error).';
COMMENT ON COLUMN delivery_attempts.error IS 'Why the attempt failed, NULL on success.';
COMMENT ON COLUMN delivery_attempts.response_excerpt IS 'First 1 KiB of the response body.';
COMMENT ON INDEX delivery_attempts_delivery_id_idx IS 'A delivery''s attempts (the delivery detail, the recorder replacing a lost-attempt placeholder).';
COMMENT ON INDEX delivery_attempts_started_at_idx IS 'Attempts in a time window (webhook_health''s last 24 hours, runbooks).';
COMMENT ON TABLE delivery_attempts_default IS 'Attempts outside every daily partition of delivery_attempts. Should stay empty: rows here mean partitions were not created ahead in time (the maintenance job) or a start time far off; creating their day''s partition moves them.';
