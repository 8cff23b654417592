/**
 * SQL for the event-type catalog (docs/event-types.md): a tenant's types and their append-only
 * versions. A type is read with all its versions in one statement (json_agg), oldest version first.
 * `tenantId` is always given: a type is named by (tenant, name).
 */
import type { Queryable } from '../db/pool.js';
import type { eventTypes, eventTypeVersions } from '../../db/schema.js';

export type EventTypeVersionRow = Pick<
  typeof eventTypeVersions.$inferSelect,
  'version' | 'schema' | 'example'
> & { createdAt: string };

export type EventTypeRow = typeof eventTypes.$inferSelect & { versions: EventTypeVersionRow[] };

// created_at of a version as ISO 8601 text: it arrives inside JSON, where a Date would be a string anyway.
const WITH_VERSIONS = `t.id, t.tenant_id AS "tenantId", t.name, t.description, t.deprecated,
  t.latest_version AS "latestVersion", t.created_at AS "createdAt", t.updated_at AS "updatedAt",
  (SELECT json_agg(json_build_object('version', v.version, 'schema', v.schema, 'example', v.example,
                                     'createdAt', to_char(v.created_at AT TIME ZONE 'UTC',
                                                          'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
                   ORDER BY v.version)
     FROM event_type_versions v WHERE v.event_type_id = t.id) AS versions`;

export interface NewEventType {
  id: string;
  tenantId: string;
  name: string;
  description: string;
  schema: unknown;
  example: unknown;
}

/** A type with its version 1, in one statement. A name the tenant already has: unique_violation. */
export async function insertEventType(db: Queryable, t: NewEventType): Promise<EventTypeRow> {
  const { rows } = await db.query<EventTypeRow>(
    `WITH t AS (
       INSERT INTO event_types (id, tenant_id, name, description) VALUES ($1, $2, $3, $4) RETURNING *),
     v AS (
       INSERT INTO event_type_versions (event_type_id, version, schema, example)
       SELECT id, 1, $5::jsonb, $6::jsonb FROM t RETURNING *)
     SELECT t.id, t.tenant_id AS "tenantId", t.name, t.description, t.deprecated,
            t.latest_version AS "latestVersion", t.created_at AS "createdAt", t.updated_at AS "updatedAt",
            json_build_array(json_build_object(
              'version', v.version, 'schema', v.schema, 'example', v.example,
              'createdAt', to_char(v.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))) AS versions
       FROM t, v`,
    [t.id, t.tenantId, t.name, t.description, jsonOrNull(t.schema), jsonOrNull(t.example)],
  );
  return rows[0]!;
}

/** `FOR UPDATE`: the PATCH transaction holds the type while it appends a version. */
export async function getEventType(
  db: Queryable,
  tenantId: string,
  name: string,
  forUpdate = false,
): Promise<EventTypeRow | undefined> {
  const { rows } = await db.query<EventTypeRow>(
    `SELECT ${WITH_VERSIONS} FROM event_types t WHERE t.tenant_id = $1 AND t.name = $2
      ${forUpdate ? 'FOR UPDATE OF t' : ''}`,
    [tenantId, name],
  );
  return rows[0];
}

export interface EventTypeListFilter {
  /** undefined: every tenant (the admin key). */
  tenantId: string | undefined;
  beforeId: string | undefined;
  /** Rows to fetch; callers pass page size + 1. */
  limit: number;
}

/** Newest first (event_types_tenant_id_idx). */
export async function listEventTypes(db: Queryable, f: EventTypeListFilter): Promise<EventTypeRow[]> {
  const { rows } = await db.query<EventTypeRow>(
    `SELECT ${WITH_VERSIONS} FROM event_types t
      WHERE ($1::uuid IS NULL OR t.tenant_id = $1) AND ($2::uuid IS NULL OR t.id < $2)
      ORDER BY t.id DESC LIMIT $3`,
    [f.tenantId ?? null, f.beforeId ?? null, f.limit],
  );
  return rows;
}

export interface EventTypeChange {
  description: string;
  deprecated: boolean;
  /** A version to append as latest_version + 1; undefined: none. */
  newVersion?: { schema: unknown; example: unknown };
}

/** Applies a PATCH to a type read FOR UPDATE in the same transaction; answers the type as it is now. */
export async function updateEventType(
  db: Queryable,
  current: EventTypeRow,
  c: EventTypeChange,
): Promise<EventTypeRow> {
  const version = c.newVersion ? current.latestVersion + 1 : current.latestVersion;
  if (c.newVersion)
    await db.query(
      `INSERT INTO event_type_versions (event_type_id, version, schema, example) VALUES ($1, $2, $3::jsonb, $4::jsonb)`,
      [current.id, version, jsonOrNull(c.newVersion.schema), jsonOrNull(c.newVersion.example)],
    );
  await db.query(
    `UPDATE event_types SET description = $2, deprecated = $3, latest_version = $4, updated_at = now()
      WHERE id = $1`,
    [current.id, c.description, c.deprecated, version],
  );
  return (await getEventType(db, current.tenantId, current.name))!;
}

/** postbox.schema_violation (the validator ingest uses): null, or [path, problem] under `path`. */
export async function schemaViolation(
  db: Queryable,
  schema: unknown,
  value: unknown,
  path: string,
): Promise<[string, string] | null> {
  const { rows } = await db.query<{ v: [string, string] | null }>(
    `SELECT postbox.schema_violation($1::jsonb, $2::jsonb, $3) AS v`,
    [JSON.stringify(schema), JSON.stringify(value), path],
  );
  return rows[0]!.v;
}

/** The patterns (by index) that PostgreSQL cannot compile. */
export async function invalidPatterns(db: Queryable, patterns: readonly string[]): Promise<number[]> {
  if (patterns.length === 0) return [];
  const { rows } = await db.query<{ i: number }>(
    `SELECT (i - 1)::int AS i FROM unnest($1::text[]) WITH ORDINALITY AS p(pattern, i)
      WHERE NOT postbox.is_regex(pattern) ORDER BY i`,
    [patterns],
  );
  return rows.map((r) => r.i);
}

/** Absent or JSON null: SQL NULL (no schema, no example); anything else as JSON text. */
function jsonOrNull(value: unknown): string | null {
  return value === undefined || value === null ? null : JSON.stringify(value);
}
