/**
 * Delivery-engine fixtures on top of fixtures-sql.ts: queue events the way ingest does (event and
 * deliveries in one statement, NOTIFY on commit), rotate a webhook's secret, and read back what the
 * engine wrote.
 */
import type { Queryable } from '../../src/db/pool.js';
import { newId } from '../../src/ids.js';
import { DELIVERIES_CHANNEL } from '../../src/queries/notify.js';
import { testSecretBox } from './fixtures-sql.js';

export interface QueuedEvent {
  eventId: string;
  /** One per webhook, in the order given. */
  deliveryIds: string[];
}

/**
 * An event and one pending, due delivery per webhook, committed together with a NOTIFY, like
 * POST /events. `notify: false` leaves the workers to find it by polling.
 */
export async function queueEvent(
  db: Queryable,
  tenantId: string,
  webhookIds: string[],
  e: { type?: string; payload?: unknown; traceparent?: string; occurredAt?: Date; notify?: boolean } = {},
): Promise<QueuedEvent> {
  const eventId = newId();
  const deliveryIds = webhookIds.map(() => newId());
  await db.query(
    `WITH ev AS (
       INSERT INTO events (id, tenant_id, type, payload, occurred_at, traceparent)
       VALUES ($1, $2, $3, $4, $5, $6) RETURNING id)
     INSERT INTO deliveries (id, tenant_id, event_id, webhook_id)
     SELECT d.id, $2, ev.id, d.webhook_id FROM ev, unnest($7::uuid[], $8::uuid[]) AS d(id, webhook_id)`,
    [
      eventId,
      tenantId,
      e.type ?? 'order.created',
      JSON.stringify(e.payload ?? { n: 1 }),
      e.occurredAt ?? new Date(),
      e.traceparent ?? null,
      deliveryIds,
      webhookIds,
    ],
  );
  if (e.notify !== false) await db.query(`SELECT pg_notify('${DELIVERIES_CHANNEL}', '')`);
  return { eventId, deliveryIds };
}

/** `count` events at once for one webhook (one statement), without NOTIFY unless asked. */
export async function queueMany(
  db: Queryable,
  tenantId: string,
  webhookId: string,
  count: number,
  notify = false,
): Promise<string[]> {
  const eventIds = Array.from({ length: count }, () => newId());
  const deliveryIds = eventIds.map(() => newId());
  await db.query(
    `WITH ev AS (
       INSERT INTO events (id, tenant_id, type, payload, occurred_at)
       SELECT id, $1, 'bulk.test', jsonb_build_object('i', i), now()
         FROM unnest($2::uuid[]) WITH ORDINALITY AS t(id, i))
     INSERT INTO deliveries (id, tenant_id, event_id, webhook_id)
     SELECT d, $1, e, $3 FROM unnest($4::uuid[], $2::uuid[]) AS x(d, e)`,
    [tenantId, eventIds, webhookId, deliveryIds],
  );
  if (notify) await db.query(`SELECT pg_notify('${DELIVERIES_CHANNEL}', '')`);
  return deliveryIds;
}

/** Makes `oldSecret` the previous secret (signing until `expiresAt`) and `newSecret` the current one. */
export async function rotateSecretSql(
  db: Queryable,
  webhookId: string,
  newSecret: string,
  oldSecret: string,
  expiresAt: Date,
): Promise<void> {
  await db.query(
    `UPDATE webhooks SET secret_ciphertext = $2, previous_secret_ciphertext = $3,
                         previous_secret_expires_at = $4 WHERE id = $1`,
    [webhookId, testSecretBox.encrypt(newSecret), testSecretBox.encrypt(oldSecret), expiresAt],
  );
}

export interface DeliveryState {
  id: string;
  status: string;
  attempts: number;
  next_attempt_at: Date;
  lease_owner: string | null;
  lease_expires_at: Date | null;
  last_status_code: number | null;
  last_error: string | null;
  completed_at: Date | null;
}

export async function deliveryState(db: Queryable, id: string): Promise<DeliveryState> {
  const { rows } = await db.query<DeliveryState>(
    `SELECT id, status, attempts, next_attempt_at, lease_owner, lease_expires_at, last_status_code,
            last_error, completed_at
       FROM deliveries WHERE id = $1`,
    [id],
  );
  if (!rows[0]) throw new Error(`no delivery ${id}`);
  return rows[0];
}

export interface AttemptRow {
  attempt: number;
  started_at: Date;
  duration_ms: number;
  status_code: number | null;
  error: string | null;
  response_excerpt: string | null;
}

export async function attemptRows(db: Queryable, deliveryId: string): Promise<AttemptRow[]> {
  const { rows } = await db.query<AttemptRow>(
    `SELECT attempt, started_at, duration_ms, status_code, error, response_excerpt
       FROM delivery_attempts WHERE delivery_id = $1 ORDER BY attempt, id`,
    [deliveryId],
  );
  return rows;
}
