/**
 * SQL for events: the ingest statement (the transactional outbox) and the reads.
 *
 * Ingest is ONE statement for any number of events: insert the events, match webhooks, insert one
 * pending delivery per match. A single statement is its own transaction, so an
 * event is never stored without its deliveries (or the reverse), and a request costs one round trip.
 */
import type { Queryable } from '../db/pool.js';

/** One event to store, already validated; `payload` is its JSON text. */
export interface IngestRow {
  /** Position in the request: answers come back in this order. */
  ord: number;
  id: string;
  tenantId: string;
  type: string;
  payload: string;
  /** ISO 8601, or null for "now" (the transaction's time, as received_at). */
  occurredAt: string | null;
  idempotencyKey: string | null;
  traceparent: string | null;
  /** patternsForType(type): the event_types entries that match it. */
  patterns: string[];
}

export interface IngestedRow {
  ord: number;
  eventId: string;
  /** Ordered by id, so a repeat of the request can reconstruct the same answer. */
  deliveryIds: string[];
}

/**
 * A UUIDv7 made in SQL (the layout of src/ids.ts): deliveries are created by the statement that finds
 * the matches, so their number is unknown before it runs. 48-bit Unix ms, then gen_random_uuid()'s
 * random bits with the version nibble turned from 4 into 7 (bits 52 and 53).
 */
const UUIDV7_SQL = `encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid()) placing
  substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3) FROM 1 FOR 6),
  52, 1), 53, 1), 'hex')::uuid`;

/**
 * $1: JSON array of rows (one parameter however many events: no statement or bind per event).
 * $2: every pattern of every event; $3: every tenant. `candidates` finds the webhooks that can match
 * any event with one GIN probe: its predicate repeats the partial index's (`deleted_at IS NULL AND
 * enabled`) exactly so webhooks_event_types_idx serves it, and it is MATERIALIZED so the planner
 * cannot fold it into a join that scans webhooks once per event. Each event then picks its own
 * webhooks from that small set.
 *
 * ON CONFLICT DO NOTHING makes idempotency the database's job: a concurrent duplicate waits on the
 * unique index and then inserts nothing, so it queues nothing. Repeats are answered by
 * findIngestedByIdempotencyKey in a later statement (this one cannot see the other's commit).
 *
 * A JSON null payload arrives from json_to_recordset as SQL NULL; COALESCE puts the JSON null back.
 * There is deliberately no pg_notify here: see src/ingest/wakeup.ts for why and what wakes workers.
 */
export const INGEST_EVENTS_SQL = `
WITH input AS MATERIALIZED (
  SELECT * FROM json_to_recordset($1::json) AS i(
    ord int, id uuid, tenant_id uuid, type text, payload jsonb, occurred_at timestamptz,
    idempotency_key text, traceparent text, patterns text[])
),
inserted AS (
  INSERT INTO events (id, tenant_id, type, payload, occurred_at, idempotency_key, traceparent)
  SELECT id, tenant_id, type, COALESCE(payload, 'null'::jsonb), COALESCE(occurred_at, now()),
         idempotency_key, traceparent
    FROM input
  ON CONFLICT (tenant_id, idempotency_key) DO NOTHING
  RETURNING id
),
candidates AS MATERIALIZED (
  SELECT w.id, w.tenant_id, w.event_types
    FROM webhooks w
   WHERE w.event_types && $2::text[]
     AND w.tenant_id = ANY($3::uuid[])
     AND w.deleted_at IS NULL AND w.enabled
),
queued AS (
  INSERT INTO deliveries (id, tenant_id, event_id, webhook_id, next_attempt_at)
  SELECT ${UUIDV7_SQL}, i.tenant_id, i.id, c.id, now()
    FROM inserted e
    JOIN input i ON i.id = e.id
    JOIN candidates c ON c.tenant_id = i.tenant_id AND c.event_types && i.patterns
  RETURNING id, event_id
)
SELECT i.ord, i.id AS "eventId",
       COALESCE(array_agg(q.id ORDER BY q.id) FILTER (WHERE q.id IS NOT NULL), '{}') AS "deliveryIds"
  FROM inserted e
  JOIN input i ON i.id = e.id
  LEFT JOIN queued q ON q.event_id = e.id
 GROUP BY i.ord, i.id
 ORDER BY i.ord`;

/** The parameters of INGEST_EVENTS_SQL (exported for the plan test). */
export function ingestParams(rows: readonly IngestRow[]): [string, string[], string[]] {
  const json = rows.map((r) => {
    const fields = JSON.stringify({
      ord: r.ord,
      id: r.id,
      tenant_id: r.tenantId,
      type: r.type,
      occurred_at: r.occurredAt,
      idempotency_key: r.idempotencyKey,
      traceparent: r.traceparent,
      patterns: r.patterns,
    });
    // The payload is spliced in as the JSON text it already is, not parsed and re-encoded.
    return `${fields.slice(0, -1)},"payload":${r.payload}}`;
  });
  const patterns = new Set<string>();
  const tenants = new Set<string>();
  for (const r of rows) {
    for (const p of r.patterns) patterns.add(p);
    tenants.add(r.tenantId);
  }
  return [`[${json.join(',')}]`, [...patterns], [...tenants]];
}

/** Stores events and queues their deliveries. Rows whose idempotency key already exists are absent. */
export async function insertEventsWithDeliveries(
  db: Queryable,
  rows: readonly IngestRow[],
): Promise<IngestedRow[]> {
  if (rows.length === 0) return [];
  // Named: prepared once per connection, so the hot path skips parse and plan on every call.
  const result = await db.query<IngestedRow>({
    name: 'ingest_events',
    text: INGEST_EVENTS_SQL,
    values: ingestParams(rows),
  });
  return result.rows;
}

export interface IdempotentHit {
  tenantId: string;
  idempotencyKey: string;
  eventId: string;
  deliveryIds: string[];
}

/** The first answer for keys already used: the event and its deliveries, ordered as ingest orders them. */
export async function findIngestedByIdempotencyKey(
  db: Queryable,
  keys: readonly { tenantId: string; idempotencyKey: string }[],
): Promise<IdempotentHit[]> {
  if (keys.length === 0) return [];
  const { rows } = await db.query<IdempotentHit>(
    `SELECT e.tenant_id AS "tenantId", e.idempotency_key AS "idempotencyKey", e.id AS "eventId",
            COALESCE(array_agg(d.id ORDER BY d.id) FILTER (WHERE d.id IS NOT NULL), '{}') AS "deliveryIds"
       FROM events e
       LEFT JOIN deliveries d ON d.event_id = e.id
      WHERE (e.tenant_id, e.idempotency_key) IN (SELECT * FROM unnest($1::uuid[], $2::text[]))
      GROUP BY e.id`,
    [keys.map((k) => k.tenantId), keys.map((k) => k.idempotencyKey)],
  );
  return rows;
}

export interface EventRow {
  id: string;
  tenantId: string;
  type: string;
  payload: unknown;
  occurredAt: Date;
  receivedAt: Date;
  idempotencyKey: string | null;
  traceparent: string | null;
}

const EVENT_COLUMNS = `id, tenant_id AS "tenantId", type, payload, occurred_at AS "occurredAt",
  received_at AS "receivedAt", idempotency_key AS "idempotencyKey", traceparent`;

export async function getEvent(
  db: Queryable,
  id: string,
  tenantId: string | undefined,
): Promise<EventRow | undefined> {
  const { rows } = await db.query<EventRow>(
    `SELECT ${EVENT_COLUMNS} FROM events WHERE id = $1 AND ($2::uuid IS NULL OR tenant_id = $2)`,
    [id, tenantId ?? null],
  );
  return rows[0];
}

export interface EventListFilter {
  tenantId: string | undefined;
  type: string | undefined;
  /** received_at >= from */
  from: Date | undefined;
  /** received_at < to */
  to: Date | undefined;
  beforeId: string | undefined;
  /** Rows to fetch; callers pass page size + 1. */
  limit: number;
}

/**
 * Newest first by id (UUIDv7, so creation order). (tenant_id, id DESC) and (tenant_id, type, id DESC)
 * serve a tenant's list with and without a type; from/to filter the rows walked.
 */
export async function listEvents(db: Queryable, f: EventListFilter): Promise<EventRow[]> {
  const { rows } = await db.query<EventRow>(
    `SELECT ${EVENT_COLUMNS} FROM events
      WHERE ($1::uuid IS NULL OR tenant_id = $1)
        AND ($2::text IS NULL OR type = $2)
        AND ($3::timestamptz IS NULL OR received_at >= $3)
        AND ($4::timestamptz IS NULL OR received_at < $4)
        AND ($5::uuid IS NULL OR id < $5)
      ORDER BY id DESC
      LIMIT $6`,
    [f.tenantId ?? null, f.type ?? null, f.from ?? null, f.to ?? null, f.beforeId ?? null, f.limit],
  );
  return rows;
}

export interface EventDeliveryRow {
  id: string;
  webhookId: string;
  status: string;
  attempts: number;
  nextAttemptAt: Date;
  lastStatusCode: number | null;
  lastError: string | null;
  createdAt: Date;
  completedAt: Date | null;
}

/** An event's deliveries in id order, at most `limit` (an event can fan out to many webhooks). */
export async function listEventDeliveries(
  db: Queryable,
  eventId: string,
  limit: number,
): Promise<EventDeliveryRow[]> {
  const { rows } = await db.query<EventDeliveryRow>(
    `SELECT id, webhook_id AS "webhookId", status, attempts, next_attempt_at AS "nextAttemptAt",
            last_status_code AS "lastStatusCode", last_error AS "lastError", created_at AS "createdAt",
            completed_at AS "completedAt"
       FROM deliveries WHERE event_id = $1
      ORDER BY id
      LIMIT $2`,
    [eventId, limit],
  );
  return rows;
}
