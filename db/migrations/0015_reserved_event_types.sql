-- Hand-written: postbox.check_event refuses the reserved postbox.* types, as POST /events does
-- (src/api/routes/event-schemas.ts). Operational events are Postbox's own (written by
-- postbox.emit_operational, which does not call check_event), so a receiver can trust that a
-- postbox.* event came from Postbox; before this, postbox.emit could forge one.
--
-- Same signature, so CREATE OR REPLACE keeps the function's grants. check_event names no table and
-- calls only pg_catalog, so it has no search_path to pin (as in 0008).
CREATE OR REPLACE FUNCTION postbox.check_event(
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
$$;
--> statement-breakpoint
COMMENT ON FUNCTION postbox.check_event(text, jsonb, text, timestamptz) IS 'Validates one event as POST /events does (postbox.* types are reserved); raises SQLSTATE PB400 naming the field (COLUMN) when it is not valid.';
