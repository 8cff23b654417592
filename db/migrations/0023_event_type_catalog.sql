CREATE TABLE "event_type_versions" (
	"event_type_id" uuid NOT NULL,
	"version" integer NOT NULL,
	"schema" jsonb,
	"example" jsonb,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "event_type_versions_event_type_id_version_pk" PRIMARY KEY("event_type_id","version"),
	CONSTRAINT "event_type_versions_version_check" CHECK ("event_type_versions"."version" >= 1)
);
--> statement-breakpoint
CREATE TABLE "event_types" (
	"id" uuid PRIMARY KEY NOT NULL,
	"tenant_id" uuid NOT NULL,
	"name" text NOT NULL,
	"description" text NOT NULL,
	"deprecated" boolean DEFAULT false NOT NULL,
	"latest_version" integer DEFAULT 1 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "events" ADD COLUMN "version" integer;--> statement-breakpoint
ALTER TABLE "events" ADD COLUMN "metadata" jsonb;--> statement-breakpoint
ALTER TABLE "events" ADD COLUMN "source" text;--> statement-breakpoint
ALTER TABLE "event_type_versions" ADD CONSTRAINT "event_type_versions_event_type_id_event_types_id_fk" FOREIGN KEY ("event_type_id") REFERENCES "public"."event_types"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "event_types" ADD CONSTRAINT "event_types_tenant_id_tenants_id_fk" FOREIGN KEY ("tenant_id") REFERENCES "public"."tenants"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "event_types_tenant_name_key" ON "event_types" USING btree ("tenant_id","name");--> statement-breakpoint
CREATE INDEX "event_types_tenant_id_idx" ON "event_types" USING btree ("tenant_id","id" DESC NULLS FIRST);--> statement-breakpoint
-- Hand-written: comments, versions kept append-only, and the JSON Schema validator ingest uses
-- (docs/event-types.md). The validator is SQL so that POST /events, /events/batch and postbox.emit
-- share one implementation: postbox.ingest calls it (the next migration).
COMMENT ON TABLE event_types IS 'The event-type catalog: a tenant''s documented event types (docs/event-types.md). Events of a catalogued type carry a version and, where that version has a schema, are checked against it at ingest.';
--> statement-breakpoint
COMMENT ON COLUMN event_types.id IS 'UUIDv7; the audit log''s object id.';
--> statement-breakpoint
COMMENT ON COLUMN event_types.tenant_id IS 'Owning tenant.';
--> statement-breakpoint
COMMENT ON COLUMN event_types.name IS 'The event type (events.type), unique per tenant; never postbox.* (reserved).';
--> statement-breakpoint
COMMENT ON COLUMN event_types.description IS 'What the event means, for producers and subscribers.';
--> statement-breakpoint
COMMENT ON COLUMN event_types.deprecated IS 'The tenant marked the type deprecated: shown in the catalog and the console; events of it are still accepted.';
--> statement-breakpoint
COMMENT ON COLUMN event_types.latest_version IS 'The highest version in event_type_versions: the version of an event that names none.';
--> statement-breakpoint
COMMENT ON COLUMN event_types.created_at IS 'When the type was added to the catalog.';
--> statement-breakpoint
COMMENT ON COLUMN event_types.updated_at IS 'Last change to the description, deprecation or versions.';
--> statement-breakpoint
COMMENT ON INDEX event_types_tenant_name_key IS 'One entry per tenant and type; ingest finds an event''s type by it.';
--> statement-breakpoint
COMMENT ON INDEX event_types_tenant_id_idx IS 'GET /event-types: a tenant''s types, newest first.';
--> statement-breakpoint
COMMENT ON TABLE event_type_versions IS 'Versions of a catalogued type, 1, 2, 3, ...: append-only (a row is never changed), each with an optional JSON Schema and example.';
--> statement-breakpoint
COMMENT ON COLUMN event_type_versions.event_type_id IS 'The type (event_types.id).';
--> statement-breakpoint
COMMENT ON COLUMN event_type_versions.version IS 'Version number, from 1; events.version names it.';
--> statement-breakpoint
COMMENT ON COLUMN event_type_versions.schema IS 'JSON Schema (the subset of docs/event-types.md) payloads of this version must satisfy; NULL: any payload.';
--> statement-breakpoint
COMMENT ON COLUMN event_type_versions.example IS 'An example payload (valid against the schema); NULL: none given.';
--> statement-breakpoint
COMMENT ON COLUMN event_type_versions.created_at IS 'When the version was added.';
--> statement-breakpoint
COMMENT ON COLUMN events.version IS 'The catalog version of its type the payload was checked against (given by the producer, else the latest); NULL when the type is not in the catalog.';
--> statement-breakpoint
COMMENT ON COLUMN events.metadata IS 'The producer''s string-to-string map (at most 50 keys), delivered in the body; NULL: none.';
--> statement-breakpoint
COMMENT ON COLUMN events.source IS 'The producer''s name for itself (1-100 characters), delivered in the body; NULL: not given.';
--> statement-breakpoint
CREATE FUNCTION postbox_event_type_versions_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'event_type_versions is append-only: add a version instead of changing one';
END
$$;
--> statement-breakpoint
COMMENT ON FUNCTION postbox_event_type_versions_append_only() IS 'Trigger: refuses UPDATE of event_type_versions (versions are append-only).';
--> statement-breakpoint
CREATE TRIGGER event_type_versions_append_only BEFORE UPDATE ON event_type_versions
  FOR EACH ROW EXECUTE FUNCTION postbox_event_type_versions_append_only();
--> statement-breakpoint
COMMENT ON TRIGGER event_type_versions_append_only ON event_type_versions IS 'Versions are never changed once written.';
--> statement-breakpoint
-- PostgreSQL's regular expressions (AREs) are the dialect of "pattern"; the API compiles each pattern
-- of a schema with this at registration, so a bad one is a 400 then, not an error at ingest.
CREATE FUNCTION postbox.is_regex(pattern text) RETURNS boolean
  LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
  PERFORM '' ~ pattern;
  RETURN true;
EXCEPTION WHEN invalid_regular_expression THEN
  RETURN false;
END
$$;
--> statement-breakpoint
COMMENT ON FUNCTION postbox.is_regex(text) IS 'Whether a text compiles as a PostgreSQL regular expression (the dialect of JSON Schema "pattern" here).';
--> statement-breakpoint
-- "must be a string", "must be an integer or null": the words of a schema's type list.
CREATE FUNCTION postbox.schema_type_words(types jsonb) RETURNS text
  LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT string_agg(CASE t WHEN 'object' THEN 'an object' WHEN 'array' THEN 'an array'
                           WHEN 'integer' THEN 'an integer' WHEN 'null' THEN 'null' ELSE 'a ' || t END,
                    ' or ' ORDER BY n)
    FROM jsonb_array_elements_text(types) WITH ORDINALITY AS x(t, n)
$$;
--> statement-breakpoint
COMMENT ON FUNCTION postbox.schema_type_words(jsonb) IS 'The words for a JSON Schema type list in an error message (a string, an integer or null).';
--> statement-breakpoint
-- At most this many values of an enum are quoted in a message.
CREATE FUNCTION postbox.schema_values_words(vals jsonb) RETURNS text
  LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT string_agg(v::text, ', ' ORDER BY n) || CASE WHEN jsonb_array_length(vals) > 10 THEN ', ...' ELSE '' END
    FROM jsonb_array_elements(vals) WITH ORDINALITY AS x(v, n) WHERE n <= 10
$$;
--> statement-breakpoint
COMMENT ON FUNCTION postbox.schema_values_words(jsonb) IS 'The first ten values of a JSON Schema enum, as JSON, for an error message.';
--> statement-breakpoint
-- The validator: the first place `value` breaks `schema`, as ARRAY[path, problem], or NULL when it
-- satisfies it. `path` names `value` (payload, payload.items.0.sku); a missing required property is
-- named by its own path. The supported keywords are those of docs/event-types.md; the API refuses
-- any other at registration, and this ignores the annotations it lets through (title, format, ...).
-- Checks run type, enum/const, then those of the value's kind; object members in the order jsonb
-- keeps keys (shorter first), array items in order.
CREATE FUNCTION postbox.schema_violation(schema jsonb, value jsonb, path text) RETURNS text[]
  LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
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
--> statement-breakpoint
COMMENT ON FUNCTION postbox.schema_violation(jsonb, jsonb, text) IS 'Validates a JSON value against a JSON Schema of the subset in docs/event-types.md: NULL when valid, else ARRAY[path, problem] of the first violation (path starts with the given one).';
--> statement-breakpoint
REVOKE ALL ON FUNCTION postbox.is_regex(text), postbox.schema_type_words(jsonb), postbox.schema_values_words(jsonb),
  postbox.schema_violation(jsonb, jsonb, text) FROM PUBLIC;
