/**
 * Fixtures written straight into the database, for states the API cannot produce on demand (a
 * delivery that died after 5 attempts, an in-flight lease, a deleted webhook) or before the routes
 * that would create them exist. Secrets are sealed with the test SECRETS_KEY, exactly as the API
 * stores them, so a real instance can sign deliveries to these webhooks.
 */
import { randomBytes } from 'node:crypto';
import type { Queryable } from '../../src/db/pool.js';
import { newId } from '../../src/ids.js';
import { apiKeyPrefix, generateApiKey, hashApiKey } from '../../src/security/api-keys.js';
import { SecretBox, parseSecretsKey } from '../../src/security/secret-box.js';
import { DEFAULT_RETRY_POLICY, type RetryPolicy } from '../../src/delivery/retry-policy.js';
import type { DeliveryStatus } from '../../src/queries/deliveries-read.js';
import { WEBHOOK_DEFAULTS } from '../../db/schema.js';
import { SECRETS_KEY } from './app.js';

export const testSecretBox = new SecretBox(parseSecretsKey(SECRETS_KEY)!);

export async function sqlTenant(db: Queryable, name = 'fixture'): Promise<{ id: string; apiKey: string }> {
  const id = newId();
  const apiKey = generateApiKey();
  await db.query(
    `WITH t AS (INSERT INTO tenants (id, name) VALUES ($1, $2) RETURNING id),
     k AS (INSERT INTO api_keys (id, tenant_id, name, key_hash, prefix) SELECT id, id, 'default', $3, $4 FROM t)
     INSERT INTO quotas (tenant_id, max_events_per_sec, max_concurrent_deliveries, max_dlq_size)
     SELECT id, 1000, 100, 10000 FROM t`,
    [id, name, hashApiKey(apiKey), apiKeyPrefix(apiKey)],
  );
  return { id, apiKey };
}

export interface WebhookFixture {
  url?: string;
  secret?: string;
  eventTypes?: string[];
  retryPolicy?: RetryPolicy;
  timeoutMs?: number;
  /** webhooks.max_concurrency (default WEBHOOK_DEFAULTS.maxConcurrency, as the API's). */
  maxConcurrency?: number;
  enabled?: boolean;
  deleted?: boolean;
}

export async function sqlWebhook(
  db: Queryable,
  tenantId: string,
  w: WebhookFixture = {},
): Promise<{ id: string; secret: string }> {
  const id = newId();
  const secret = w.secret ?? 'whsec_' + randomBytes(32).toString('base64');
  await db.query(
    `INSERT INTO webhooks (id, tenant_id, url, secret_ciphertext, event_types, retry_policy, timeout_ms,
                           enabled, deleted_at, max_concurrency)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, CASE WHEN $9 THEN now() END, $10)`,
    [
      id,
      tenantId,
      w.url ?? 'https://example.com/hook',
      testSecretBox.encrypt(secret),
      w.eventTypes ?? [...WEBHOOK_DEFAULTS.eventTypes],
      JSON.stringify(w.retryPolicy ?? DEFAULT_RETRY_POLICY),
      w.timeoutMs ?? WEBHOOK_DEFAULTS.timeoutMs,
      w.enabled ?? true,
      w.deleted ?? false,
      w.maxConcurrency ?? WEBHOOK_DEFAULTS.maxConcurrency,
    ],
  );
  return { id, secret };
}

export async function sqlEvent(
  db: Queryable,
  tenantId: string,
  e: { type?: string; payload?: unknown; occurredAt?: Date } = {},
): Promise<{ id: string; type: string }> {
  const id = newId();
  const type = e.type ?? 'order.created';
  await db.query(
    `INSERT INTO events (id, tenant_id, type, payload, occurred_at) VALUES ($1, $2, $3, $4, $5)`,
    [
      id,
      tenantId,
      type,
      JSON.stringify(e.payload === undefined ? { n: 1 } : e.payload),
      e.occurredAt ?? new Date(),
    ],
  );
  return { id, type };
}

export interface DeliveryFixture {
  tenantId: string;
  eventId: string;
  webhookId: string;
  status?: DeliveryStatus;
  attempts?: number;
  nextAttemptAt?: Date;
  createdAt?: Date;
  lastError?: string | null;
  lastStatusCode?: number | null;
  /** For in_flight: who holds the lease, until when. */
  leaseOwner?: string;
  leaseExpiresAt?: Date;
}

/** A delivery in any state; finished states get completed_at and last_attempt_at filled in. */
export async function sqlDelivery(db: Queryable, d: DeliveryFixture): Promise<string> {
  const id = newId();
  const status = d.status ?? 'pending';
  const attempts = d.attempts ?? (status === 'pending' ? 0 : 1);
  await db.query(
    `INSERT INTO deliveries (id, tenant_id, event_id, webhook_id, status, attempts, next_attempt_at,
                             lease_owner, lease_expires_at, last_attempt_at, last_status_code, last_error,
                             created_at, updated_at, completed_at)
     VALUES ($1, $2, $3, $4, $5::delivery_status, $6::int, coalesce($7, now()), $8, $9,
             CASE WHEN $6::int > 0 THEN now() END, $10, $11, coalesce($12, now()), now(),
             CASE WHEN $5::delivery_status IN ('succeeded', 'failed', 'cancelled') THEN now() END)`,
    [
      id,
      d.tenantId,
      d.eventId,
      d.webhookId,
      status,
      attempts,
      d.nextAttemptAt ?? null,
      d.leaseOwner ?? (status === 'in_flight' ? 'fixture-worker' : null),
      d.leaseExpiresAt ?? (status === 'in_flight' ? new Date(Date.now() + 60_000) : null),
      d.lastStatusCode ?? null,
      d.lastError ?? null,
      d.createdAt ?? null,
    ],
  );
  return id;
}

export interface AttemptFixture {
  attempt: number;
  startedAt?: Date;
  durationMs?: number;
  statusCode?: number | null;
  error?: string | null;
  responseExcerpt?: string | null;
}

/** Attempt rows, one multi-row insert. */
export async function sqlAttempts(
  db: Queryable,
  deliveryId: string,
  attempts: AttemptFixture[],
): Promise<void> {
  if (attempts.length === 0) return;
  await db.query(
    `INSERT INTO delivery_attempts (delivery_id, attempt, started_at, duration_ms, status_code, error,
                                    response_excerpt)
     SELECT $1, a.attempt, a.started_at, a.duration_ms, a.status_code, a.error, a.response_excerpt
       FROM jsonb_to_recordset($2::jsonb) AS a(attempt int, started_at timestamptz, duration_ms int,
                                                status_code int, error text, response_excerpt text)`,
    [
      deliveryId,
      JSON.stringify(
        attempts.map((a, i) => ({
          attempt: a.attempt,
          started_at: (a.startedAt ?? new Date(Date.now() - (attempts.length - i) * 1000)).toISOString(),
          duration_ms: a.durationMs ?? 12,
          status_code: a.statusCode ?? null,
          error: a.error ?? null,
          response_excerpt: a.responseExcerpt ?? null,
        })),
      ),
    ],
  );
}

/** The DLQ row of a delivery (which should be `failed`), copying what the engine would copy. */
export async function sqlDeadLetter(db: Queryable, deliveryId: string, deadAt?: Date): Promise<void> {
  await db.query(
    `INSERT INTO dead_letter_queue (delivery_id, tenant_id, webhook_id, event_id, event_type, last_error,
                                    attempts, dead_at)
     SELECT d.id, d.tenant_id, d.webhook_id, d.event_id, e.type, d.last_error, d.attempts, coalesce($2, now())
       FROM deliveries d JOIN events e ON e.id = d.event_id
      WHERE d.id = $1`,
    [deliveryId, deadAt ?? null],
  );
}

/**
 * A delivery that ran out of retries: a new event, the delivery `failed` after `attempts` attempts
 * (each answered 500), their attempt rows, and its DLQ row.
 */
export async function sqlDeadDelivery(
  db: Queryable,
  tenantId: string,
  webhookId: string,
  opts: { type?: string; attempts?: number; deadAt?: Date; payload?: unknown } = {},
): Promise<{ deliveryId: string; eventId: string }> {
  const event = await sqlEvent(db, tenantId, { type: opts.type, payload: opts.payload });
  const attempts = opts.attempts ?? 3;
  const deliveryId = await sqlDelivery(db, {
    tenantId,
    eventId: event.id,
    webhookId,
    status: 'failed',
    attempts,
    lastStatusCode: 500,
    lastError: 'HTTP 500',
  });
  await sqlAttempts(
    db,
    deliveryId,
    Array.from({ length: attempts }, (_, i) => ({
      attempt: i + 1,
      statusCode: 500,
      error: 'HTTP 500',
      responseExcerpt: 'boom',
    })),
  );
  await sqlDeadLetter(db, deliveryId, opts.deadAt);
  return { deliveryId, eventId: event.id };
}
