/**
 * Reads of deliveries and their attempts for the API. The engine's writes (claim, complete, retry,
 * dead-letter) live in deliveries.ts; these are visibility only and never lock anything.
 */
import type { Queryable } from '../db/pool.js';
import type { deliveryStatus } from '../../db/schema.js';

export type DeliveryStatus = (typeof deliveryStatus.enumValues)[number];

// A Record, so the compiler fails here if the schema's enum gains or loses a value; the API
// validates against this without loading drizzle's schema at runtime.
const STATUS_SET: Record<DeliveryStatus, true> = {
  pending: true,
  in_flight: true,
  succeeded: true,
  failed: true,
  cancelled: true,
};
export const DELIVERY_STATUSES = Object.keys(STATUS_SET) as DeliveryStatus[];

export interface DeliveryRow {
  id: string;
  tenantId: string;
  eventId: string;
  webhookId: string;
  eventType: string;
  status: DeliveryStatus;
  attempts: number;
  /** null while parked (its webhook is disabled): stored as 'infinity', which JavaScript cannot date. */
  nextAttemptAt: Date | null;
  lastAttemptAt: Date | null;
  lastStatusCode: number | null;
  lastError: string | null;
  createdAt: Date;
  updatedAt: Date;
  completedAt: Date | null;
}

export interface AttemptRow {
  attempt: number;
  startedAt: Date;
  durationMs: number;
  statusCode: number | null;
  error: string | null;
  responseExcerpt: string | null;
}

export interface DeliveryFilter {
  /** undefined: every tenant (the admin key). */
  tenantId?: string;
  webhookId?: string;
  eventId?: string;
  status?: DeliveryStatus;
  /** created_at >= from */
  from?: Date;
  /** created_at <= to */
  to?: Date;
  /** Keyset cursor: only ids below this one (ids are UUIDv7, so this is "older than"). */
  beforeId?: string;
  /** Rows to return; callers pass page size + 1 to learn whether there is a next page. */
  limit: number;
}

// The event type is not stored on the delivery; the join is by primary key, per returned row only.
const DELIVERY_COLUMNS = `d.id, d.tenant_id AS "tenantId", d.event_id AS "eventId",
  d.webhook_id AS "webhookId", e.type AS "eventType", d.status, d.attempts,
  NULLIF(d.next_attempt_at, 'infinity') AS "nextAttemptAt", d.last_attempt_at AS "lastAttemptAt",
  d.last_status_code AS "lastStatusCode", d.last_error AS "lastError", d.created_at AS "createdAt",
  d.updated_at AS "updatedAt", d.completed_at AS "completedAt"`;

/**
 * Newest first by id. Only the conditions actually given are emitted, so the planner can pick the
 * matching index: (tenant_id, id DESC), (webhook_id, id DESC) or (event_id).
 */
export async function listDeliveries(db: Queryable, f: DeliveryFilter): Promise<DeliveryRow[]> {
  const where: string[] = [];
  const params: unknown[] = [];
  const add = (condition: (p: string) => string, value: unknown) => {
    params.push(value);
    where.push(condition(`$${params.length}`));
  };
  if (f.tenantId !== undefined) add((p) => `d.tenant_id = ${p}`, f.tenantId);
  if (f.webhookId !== undefined) add((p) => `d.webhook_id = ${p}`, f.webhookId);
  if (f.eventId !== undefined) add((p) => `d.event_id = ${p}`, f.eventId);
  if (f.status !== undefined) add((p) => `d.status = ${p}`, f.status);
  if (f.from !== undefined) add((p) => `d.created_at >= ${p}`, f.from);
  if (f.to !== undefined) add((p) => `d.created_at <= ${p}`, f.to);
  if (f.beforeId !== undefined) add((p) => `d.id < ${p}`, f.beforeId);
  params.push(f.limit);
  const { rows } = await db.query<DeliveryRow>(
    `SELECT ${DELIVERY_COLUMNS}
       FROM deliveries d JOIN events e ON e.id = d.event_id
      ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
      ORDER BY d.id DESC
      LIMIT $${params.length}`,
    params,
  );
  return rows;
}

/** One delivery; tenantId undefined means any tenant (admin). Another tenant's id is simply not found. */
export async function getDelivery(
  db: Queryable,
  id: string,
  tenantId: string | undefined,
): Promise<DeliveryRow | undefined> {
  const { rows } = await db.query<DeliveryRow>(
    `SELECT ${DELIVERY_COLUMNS}
       FROM deliveries d JOIN events e ON e.id = d.event_id
      WHERE d.id = $1 AND ($2::uuid IS NULL OR d.tenant_id = $2)`,
    [id, tenantId ?? null],
  );
  return rows[0];
}

/** Most attempts a detail view returns; replays can grow the history without bound. */
export const ATTEMPTS_SHOWN = 1000;

/**
 * A delivery's attempts in the order they were made, across replays (attempt numbers restart at 1
 * with each new cycle, so the order is by start time, not by number). The latest ATTEMPTS_SHOWN.
 */
export async function listAttempts(db: Queryable, deliveryId: string): Promise<AttemptRow[]> {
  const { rows } = await db.query<AttemptRow>(
    `SELECT attempt, "startedAt", "durationMs", "statusCode", error, "responseExcerpt" FROM (
       SELECT id, attempt, started_at AS "startedAt", duration_ms AS "durationMs",
              status_code AS "statusCode", error, response_excerpt AS "responseExcerpt"
         FROM delivery_attempts WHERE delivery_id = $1
        ORDER BY started_at DESC, id DESC
        LIMIT ${ATTEMPTS_SHOWN}) latest
     ORDER BY "startedAt", id`,
    [deliveryId],
  );
  return rows;
}
