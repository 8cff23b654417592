-- Hand-written: postbox.event_type_patterns (0009) in plpgsql, as a loop of simple expressions. As a SQL
-- function with a subquery it cannot be inlined, so every statement that called it parsed, analysed and
-- planned its body again (fmgr_sql keeps a plan only for the statement it runs in): ~100-130 µs of
-- backend CPU per ingest statement, a sixth of a single-event ingest's ~600 (perf, docs/perf.md). A
-- plpgsql function keeps its compiled body for the session, and simple expressions are evaluated
-- without the planner. Same results, same order (test/ingest/sql-rules.test.ts holds it to
-- patternsForType in src/ingest/event-types.ts).
CREATE OR REPLACE FUNCTION postbox.event_type_patterns(event_type text)
RETURNS text[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE STRICT AS $$
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
