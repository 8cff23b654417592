/**
 * SQL for events: the ingest statement (the transactional outbox) and the reads.
 *
 * Ingest is ONE statement for any number of events: insert the events, match webhooks, insert one
 * pending delivery per match, answer repeated idempotency keys. A single statement is its own
 * transaction, so an event is never stored without its deliveries (or the reverse), and a request
 * costs one round trip.
 */
import type { Queryable } from '../db/pool.js';
import { DELIVERIES_CHANNEL } from './notify.js';

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
  /** The catalog version named by the producer; null or absent: the type's latest. */
  version?: number | null;
  metadata?: Record<string, string> | null;
  source?: string | null;
}

export interface IngestedRow {
  ord: number;
  eventId: string;
  /** Ordered by id, so a repeat of the request can reconstruct the same answer. */
  deliveryIds: string[];
  /** false: the idempotency key was already used; this is the first event's answer, nothing queued. */
  created: boolean;
}

/**
 * The ingest statement is the SQL function postbox.ingest (db/migrations/0008_postbox_emit.sql, now
 * 0030), so that POST /events and postbox.emit (a producer's own transaction) share one implementation
 * of validation, matching and idempotency. $1 is a JSON array of rows: one parameter however many
 * events, sent as jsonb so that each payload is parsed once (as json it was lexed twice, then parsed).
 * A function call is one statement, so an event is never stored without its deliveries.
 * There is deliberately no pg_notify in it for this path: see src/ingest/wakeup.ts.
 */
export const INGEST_EVENTS_SQL = `SELECT ord, event_id AS "eventId", delivery_ids AS "deliveryIds", created
  FROM postbox.ingest_jsonb($1::jsonb) ORDER BY ord, created DESC`;

/**
 * INGEST_EVENTS_SQL that also wakes the workers, in its own transaction (delivered at its commit):
 * when it queued deliveries, or when $2 says an earlier commit's wake-up was left to it
 * (src/ingest/wakeup.ts). A statement less per wake-up than sending it separately.
 */
export const INGEST_EVENTS_WAKING_SQL = `WITH ingested AS MATERIALIZED (
  SELECT ord, event_id, delivery_ids, created FROM postbox.ingest_jsonb($1::jsonb)
), woken AS MATERIALIZED (
  SELECT pg_notify('${DELIVERIES_CHANNEL}', '') FROM ingested i
   WHERE $2::boolean OR (i.created AND cardinality(i.delivery_ids) > 0)
   LIMIT 1
)
SELECT ord, event_id AS "eventId", delivery_ids AS "deliveryIds", created, (SELECT count(*) FROM woken) AS woken
  FROM ingested ORDER BY ord, created DESC`;

/** The parameter of INGEST_EVENTS_SQL. */
export function ingestParams(rows: readonly IngestRow[]): [string] {
  const json = rows.map((r) => {
    const fields = JSON.stringify({
      ord: r.ord,
      id: r.id,
      tenant_id: r.tenantId,
      type: r.type,
      occurred_at: r.occurredAt,
      idempotency_key: r.idempotencyKey,
      traceparent: r.traceparent,
      version: r.version,
      metadata: r.metadata,
      source: r.source,
    });
    // The payload is spliced in as the JSON text it already is, not parsed and re-encoded.
    return `${fields.slice(0, -1)},"payload":${r.payload}}`;
  });
  return [`[${json.join(',')}]`];
}

/**
 * Stores events and queues their deliveries; one answer per row, in `ord` order. A row whose
 * idempotency key was already used answers with the first event (created: false). With `wake`, the
 * statement also wakes the workers at its commit (INGEST_EVENTS_WAKING_SQL).
 */
export async function insertEventsWithDeliveries(
  db: Queryable,
  rows: readonly IngestRow[],
  wake?: { always: boolean },
): Promise<IngestedRow[]> {
  if (rows.length === 0) return [];
  // Named: prepared once per connection, so the hot path skips parse and plan on every call.
  const result = await db.query<IngestedRow>(
    wake
      ? {
          name: 'ingest_events_waking',
          text: INGEST_EVENTS_WAKING_SQL,
          values: [...ingestParams(rows), wake.always],
        }
      : { name: 'ingest_events', text: INGEST_EVENTS_SQL, values: ingestParams(rows) },
  );
  return result.rows;
}

export interface EventRow {
  id: string;
  tenantId: string;
  type: string;
  /** null both for a producer's JSON null and for a payload retention removed: see payloadRemoved. */
  payload: unknown;
  /** Retention (RETENTION_PAYLOAD_DAYS) emptied the column (SQL NULL; a JSON null is a jsonb value). */
  payloadRemoved: boolean;
  occurredAt: Date;
  receivedAt: Date;
  idempotencyKey: string | null;
  traceparent: string | null;
  version: number | null;
  metadata: Record<string, string> | null;
  source: string | null;
}

const EVENT_COLUMNS = `id, tenant_id AS "tenantId", type, payload, payload IS NULL AS "payloadRemoved",
  occurred_at AS "occurredAt",
  received_at AS "receivedAt", idempotency_key AS "idempotencyKey", traceparent, version, metadata, source`;

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
  /** null while parked (its webhook is disabled): stored as 'infinity', which JavaScript cannot date. */
  nextAttemptAt: Date | null;
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
    `SELECT id, webhook_id AS "webhookId", status, attempts,
            NULLIF(next_attempt_at, 'infinity') AS "nextAttemptAt",
            last_status_code AS "lastStatusCode", last_error AS "lastError", created_at AS "createdAt",
            completed_at AS "completedAt"
       FROM deliveries WHERE event_id = $1
      ORDER BY id
      LIMIT $2`,
    [eventId, limit],
  );
  return rows;
}
