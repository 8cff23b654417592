/**
 * Delivery-engine fixtures on top of fixtures-sql.ts: queue events through the real ingest path
 * (postbox.ingest: validation, webhook matching, FIFO positions; then the wake-up after commit, as
 * POST /events does), rotate a webhook's secret, and read back what the engine wrote.
 *
 * Ingest queues a delivery for every matching webhook of the tenant. The fixtures name the webhooks
 * the test expects and throw if the event matched any other, so a test gives its webhooks a tenant
 * of their own, or event types that tell them apart. States ingest cannot produce (in flight under a
 * lease, finished, due in the past) are written by hand with fixtures-sql.ts.
 */
import type { Queryable } from '../../src/db/pool.js';
import { newId } from '../../src/ids.js';
import { ingestEvents, type EventInput } from '../../src/ingest/ingest.js';
import { deliveryWakeupFor } from '../../src/ingest/wakeup.js';
import { insertEventsWithDeliveries } from '../../src/queries/events.js';
import { sqlWebhook, testSecretBox, type WebhookFixture } from './fixtures-sql.js';

export interface QueuedEvent {
  eventId: string;
  /** One per webhook, in the order given. */
  deliveryIds: string[];
}

/**
 * Ingests `events` and returns their ids in order. With `notify`, as POST /events does (ingestEvents,
 * then the workers' wake-up, awaited); without, the ingest statement alone, left for the workers'
 * poll to find.
 */
async function ingest(db: Queryable, events: EventInput[], notify: boolean): Promise<string[]> {
  if (notify) {
    const results = await ingestEvents(db, events);
    await deliveryWakeupFor(db).settled();
    return results.map((r) => r.event_id);
  }
  const rows = await insertEventsWithDeliveries(
    db,
    events.map((e, ord) => ({
      ord,
      id: newId(),
      tenantId: e.tenantId,
      type: e.type,
      payload: e.payloadJson,
      occurredAt: e.timestamp?.toISOString() ?? null,
      idempotencyKey: null,
      traceparent: e.traceparent ?? null,
    })),
  );
  return rows.map((r) => r.eventId);
}

/** For each event, its deliveries' ids in the order of `webhookIds`; throws if they matched others. */
async function deliveriesOf(db: Queryable, eventIds: string[], webhookIds: string[]): Promise<string[][]> {
  const { rows } = await db.query<{ id: string; event_id: string; webhook_id: string }>(
    `SELECT id, event_id, webhook_id FROM deliveries WHERE event_id = ANY($1) ORDER BY id`,
    [eventIds],
  );
  const byEvent = new Map<string, Map<string, string>>(eventIds.map((id) => [id, new Map()]));
  for (const r of rows) byEvent.get(r.event_id)!.set(r.webhook_id, r.id);
  const expected = [...webhookIds].sort().join(', ');
  return eventIds.map((eventId) => {
    const byWebhook = byEvent.get(eventId)!;
    const got = [...byWebhook.keys()].sort().join(', ');
    if (got !== expected)
      throw new Error(
        `event ${eventId} was queued for webhooks [${got}], not [${webhookIds.join(', ')}]: ` +
          'give the test a tenant of its own, or event types that tell its webhooks apart',
      );
    return webhookIds.map((w) => byWebhook.get(w)!);
  });
}

/**
 * An event ingested for `tenantId`, which must match exactly `webhookIds` (each once): one pending,
 * due delivery per webhook. `notify: false` leaves the workers to find it by polling.
 */
export async function queueEvent(
  db: Queryable,
  tenantId: string,
  webhookIds: string[],
  e: { type?: string; payload?: unknown; traceparent?: string; occurredAt?: Date; notify?: boolean } = {},
): Promise<QueuedEvent> {
  const [eventId] = await ingest(
    db,
    [
      {
        tenantId,
        type: e.type ?? 'order.created',
        payloadJson: JSON.stringify(e.payload ?? { n: 1 }),
        timestamp: e.occurredAt,
        traceparent: e.traceparent,
      },
    ],
    e.notify !== false,
  );
  const [deliveryIds] = await deliveriesOf(db, [eventId!], webhookIds);
  return { eventId: eventId!, deliveryIds: deliveryIds! };
}

/**
 * `count` events ingested at once (one statement), each matching only `webhookId`; their deliveries'
 * ids in event order. Without a wake-up unless `notify`.
 */
export async function queueMany(
  db: Queryable,
  tenantId: string,
  webhookId: string,
  count: number,
  { notify = false, type = 'bulk.test' }: { notify?: boolean; type?: string } = {},
): Promise<string[]> {
  const events = Array.from({ length: count }, (_, i) => ({
    tenantId,
    type,
    payloadJson: JSON.stringify({ i: i + 1 }),
  }));
  const eventIds = await ingest(db, events, notify);
  return (await deliveriesOf(db, eventIds, [webhookId])).map(([id]) => id!);
}

let ownTypes = 0;

/**
 * A webhook (sqlWebhook) subscribed to an event type of its own, for tests that give several webhooks
 * of one tenant backlogs of their own: `queueMany(db, tenantId, hook.id, n, { type: hook.type })`.
 */
export async function sqlWebhookOfOwnType(
  db: Queryable,
  tenantId: string,
  w: WebhookFixture = {},
): Promise<{ id: string; secret: string; type: string }> {
  const type = `own-type.${++ownTypes}`;
  return { ...(await sqlWebhook(db, tenantId, { ...w, eventTypes: [type] })), type };
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
