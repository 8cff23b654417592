/**
 * SQL for webhooks. Every read filters `deleted_at IS NULL`: a deleted webhook is gone from the API.
 * `tenantId` undefined means the admin key (every tenant); otherwise rows of other tenants do not exist.
 * The sealed secret columns are never read here: only the claim reads them, to sign (src/queries/claim.ts).
 * Of the client certificate the reads return the certificate (public), never its sealed key.
 */
import type { Queryable } from '../db/pool.js';
import type { RetryPolicy } from '../../db/schema.js';

export interface WebhookRow {
  id: string;
  tenantId: string;
  url: string;
  eventTypes: string[];
  description: string | null;
  retryPolicy: RetryPolicy;
  timeoutMs: number;
  maxConcurrency: number;
  /** The adaptive in-flight limit in force now (1..maxConcurrency), adapted by the recorder. */
  concurrencyLimit: number;
  enabled: boolean;
  disabledReason: string | null;
  /** The payload filter as written (docs/filters.md), or null. */
  filter: unknown;
  ordering: WebhookOrdering;
  /** The mTLS client certificate (PEM), or null. Its key is not read here. */
  clientCertPem: string | null;
  createdAt: Date;
  updatedAt: Date;
}

/** A client certificate as stored: the PEM, its private key sealed (SecretBox), and its expiry. */
export interface StoredClientCertificate {
  pem: string;
  keyCiphertext: Buffer;
  notAfter: Date;
}

/** none: deliveries in parallel; fifo: one at a time in event order (src/queries/claim.ts). */
export type WebhookOrdering = 'none' | 'fifo';

/** A payload filter and its compiled predicate (src/ingest/payload-filter.ts), or both null. */
export interface StoredFilter {
  filter: unknown;
  filterPath: string | null;
}

const COLUMNS = `id, tenant_id AS "tenantId", url, event_types AS "eventTypes", description,
  retry_policy AS "retryPolicy", timeout_ms AS "timeoutMs", max_concurrency AS "maxConcurrency",
  floor(least(concurrency_limit, max_concurrency))::int AS "concurrencyLimit",
  enabled, disabled_reason AS "disabledReason", filter, ordering, client_cert_pem AS "clientCertPem",
  created_at AS "createdAt", updated_at AS "updatedAt"`;

export interface NewWebhook {
  id: string;
  tenantId: string;
  url: string;
  secretCiphertext: Buffer;
  eventTypes: string[];
  description: string | null;
  retryPolicy: RetryPolicy;
  timeoutMs: number;
  maxConcurrency: number;
  filter: StoredFilter;
  ordering: WebhookOrdering;
  clientCertificate: StoredClientCertificate | null;
}

/** Inserts a webhook. An unknown tenant fails on the foreign key (23503), which callers map to 404. */
export async function insertWebhook(db: Queryable, w: NewWebhook): Promise<WebhookRow> {
  const { rows } = await db.query<WebhookRow>(
    `INSERT INTO webhooks (id, tenant_id, url, secret_ciphertext, event_types, description, retry_policy,
                           timeout_ms, max_concurrency, filter, filter_path, ordering, client_cert_pem,
                           client_key_ciphertext, client_cert_not_after)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
     RETURNING ${COLUMNS}`,
    [
      w.id,
      w.tenantId,
      w.url,
      w.secretCiphertext,
      w.eventTypes,
      w.description,
      JSON.stringify(w.retryPolicy),
      w.timeoutMs,
      w.maxConcurrency,
      w.filter.filter === null ? null : JSON.stringify(w.filter.filter),
      w.filter.filterPath,
      w.ordering,
      w.clientCertificate?.pem ?? null,
      w.clientCertificate?.keyCiphertext ?? null,
      w.clientCertificate?.notAfter ?? null,
    ],
  );
  return rows[0]!;
}

export async function getWebhook(
  db: Queryable,
  id: string,
  tenantId: string | undefined,
): Promise<WebhookRow | undefined> {
  const { rows } = await db.query<WebhookRow>(
    `SELECT ${COLUMNS} FROM webhooks
      WHERE id = $1 AND deleted_at IS NULL AND ($2::uuid IS NULL OR tenant_id = $2)`,
    [id, tenantId ?? null],
  );
  return rows[0];
}

/** As getWebhook, locking the row for a read-modify-write (PATCH merges retry_policy). */
export async function lockWebhook(
  db: Queryable,
  id: string,
  tenantId: string | undefined,
): Promise<WebhookRow | undefined> {
  const { rows } = await db.query<WebhookRow>(
    `SELECT ${COLUMNS} FROM webhooks
      WHERE id = $1 AND deleted_at IS NULL AND ($2::uuid IS NULL OR tenant_id = $2)
        FOR UPDATE`,
    [id, tenantId ?? null],
  );
  return rows[0];
}

export interface WebhookListFilter {
  tenantId: string | undefined;
  /** Keyset cursor: only webhooks older than this id. */
  beforeId: string | undefined;
  /** Rows to fetch; callers pass page size + 1. */
  limit: number;
}

/** Newest first; (tenant_id, id DESC) serves a tenant's list, the primary key the admin's. */
export async function listWebhooks(db: Queryable, f: WebhookListFilter): Promise<WebhookRow[]> {
  const { rows } = await db.query<WebhookRow>(
    `SELECT ${COLUMNS} FROM webhooks
      WHERE deleted_at IS NULL
        AND ($1::uuid IS NULL OR tenant_id = $1)
        AND ($2::uuid IS NULL OR id < $2)
      ORDER BY id DESC
      LIMIT $3`,
    [f.tenantId ?? null, f.beforeId ?? null, f.limit],
  );
  return rows;
}

/** The full set of mutable fields, as PATCH computes them from the locked row and the request. */
export interface WebhookUpdate {
  url: string;
  eventTypes: string[];
  description: string | null;
  retryPolicy: RetryPolicy;
  timeoutMs: number;
  maxConcurrency: number;
  enabled: boolean;
  disabledReason: string | null;
  /** undefined: keep the stored filter. */
  filter: StoredFilter | undefined;
  ordering: WebhookOrdering;
  /** undefined: keep the stored one; null: remove it. */
  clientCertificate: StoredClientCertificate | null | undefined;
}

export async function updateWebhook(db: Queryable, id: string, u: WebhookUpdate): Promise<WebhookRow> {
  const { rows } = await db.query<WebhookRow>(
    `UPDATE webhooks
        SET url = $2, event_types = $3, description = $4, retry_policy = $5, timeout_ms = $6,
            max_concurrency = $7, enabled = $8, disabled_reason = $9, updated_at = now(),
            filter = CASE WHEN $10 THEN $11::jsonb ELSE filter END,
            filter_path = CASE WHEN $10 THEN $12::jsonpath ELSE filter_path END,
            ordering = $13,
            client_cert_pem = CASE WHEN $14 THEN $15 ELSE client_cert_pem END,
            client_key_ciphertext = CASE WHEN $14 THEN $16::bytea ELSE client_key_ciphertext END,
            client_cert_not_after = CASE WHEN $14 THEN $17::timestamptz ELSE client_cert_not_after END,
            -- A new certificate (or none) has had no expiry notice yet.
            client_cert_expiry_notice = CASE WHEN $14 THEN NULL ELSE client_cert_expiry_notice END
      WHERE id = $1
      RETURNING ${COLUMNS}`,
    [
      id,
      u.url,
      u.eventTypes,
      u.description,
      JSON.stringify(u.retryPolicy),
      u.timeoutMs,
      u.maxConcurrency,
      u.enabled,
      u.disabledReason,
      u.filter !== undefined,
      u.filter?.filter == null ? null : JSON.stringify(u.filter.filter),
      u.filter?.filterPath ?? null,
      u.ordering,
      u.clientCertificate !== undefined,
      u.clientCertificate?.pem ?? null,
      u.clientCertificate?.keyCiphertext ?? null,
      u.clientCertificate?.notAfter ?? null,
    ],
  );
  return rows[0]!;
}

/**
 * A webhook turned FIFO: its unfinished deliveries join the queue in event order (event ids are
 * UUIDv7, and one API process makes them in increasing order even within a millisecond; delivery ids
 * are made in SQL, random within one), so they go first and one at a time; those behind the first
 * wait at 'infinity' (src/queries/claim.ts).
 * Turned back to none: they leave it and go out in parallel again, due now unless the webhook is
 * disabled (then they stay parked).
 */
export async function requeueForOrdering(
  db: Queryable,
  id: string,
  ordering: WebhookOrdering,
): Promise<void> {
  if (ordering === 'fifo')
    await db.query(
      `UPDATE deliveries d
          SET fifo_seq = s.seq,
              next_attempt_at = CASE WHEN d.status = 'pending' AND s.n > 1 THEN 'infinity'
                                     ELSE d.next_attempt_at END
         FROM (SELECT o.id, o.n, nextval('deliveries_fifo_seq') AS seq
                 FROM (SELECT id, row_number() OVER (ORDER BY event_id, id) AS n FROM deliveries
                        WHERE webhook_id = $1 AND fifo_seq IS NULL AND status IN ('pending', 'in_flight')
                        ORDER BY event_id, id) o) s
        WHERE d.id = s.id`,
      [id],
    );
  else
    await db.query(
      `UPDATE deliveries d
          SET fifo_seq = NULL,
              next_attempt_at = CASE WHEN d.next_attempt_at = 'infinity' AND w.enabled THEN now()
                                     ELSE d.next_attempt_at END
         FROM webhooks w
        WHERE w.id = $1 AND d.webhook_id = $1 AND d.fifo_seq IS NOT NULL AND d.status IN ('pending', 'in_flight')`,
      [id],
    );
}

/**
 * Disabling: the webhook's pending deliveries are kept but parked (next_attempt_at = 'infinity'), so
 * they stay out of the claim's way (deliveries_due_idx reads them last, never) until re-enabled.
 */
export async function parkWebhookDeliveries(db: Queryable, id: string): Promise<number> {
  const { rowCount } = await db.query(
    `UPDATE deliveries SET next_attempt_at = 'infinity', updated_at = now()
      WHERE webhook_id = $1 AND status = 'pending' AND next_attempt_at < 'infinity'`,
    [id],
  );
  return rowCount ?? 0;
}

/**
 * PATCH enabled=true: a fresh start for the receiver. The circuit breaker closes (failure count and
 * cool-down cleared) and parked deliveries are due now, in one statement; of a FIFO webhook's, only
 * the head: the rest wait behind it at 'infinity'. Returns how many were queued.
 */
export async function resumeWebhook(db: Queryable, id: string): Promise<number> {
  const { rows } = await db.query<{ resumed: number }>(
    `WITH breaker AS (
       UPDATE webhooks
          SET breaker_state = 'closed', breaker_open_until = NULL, breaker_opens = 0,
              consecutive_failures = 0, failing_since = NULL
        WHERE id = $1),
     resumed AS (
       UPDATE deliveries d SET next_attempt_at = now(), updated_at = now()
        WHERE d.webhook_id = $1 AND d.status = 'pending' AND d.next_attempt_at = 'infinity'
          AND (d.fifo_seq IS NULL
               OR d.id = (SELECT x.id FROM deliveries x
                           WHERE x.webhook_id = $1 AND x.fifo_seq IS NOT NULL AND x.status IN ('pending', 'in_flight')
                           ORDER BY x.fifo_seq LIMIT 1))
        RETURNING d.fifo_seq)
     SELECT (SELECT count(*) FROM resumed WHERE fifo_seq IS NULL)::int
            + (SELECT count(*) FROM deliveries
                WHERE webhook_id = $1 AND status = 'pending' AND fifo_seq IS NOT NULL)::int AS resumed`,
    [id],
  );
  return rows[0]!.resumed;
}

/**
 * Soft delete, and in the same statement cancel what was still to be delivered. In-flight rows are
 * cancelled too: their worker's outcome write is guarded by status = 'in_flight', so it is dropped.
 */
export async function softDeleteWebhook(
  db: Queryable,
  id: string,
  tenantId: string | undefined,
): Promise<{ id: string; tenantId: string; cancelled: number } | undefined> {
  const { rows } = await db.query<{ id: string; tenantId: string; cancelled: number }>(
    `WITH gone AS (
       UPDATE webhooks SET deleted_at = now(), updated_at = now()
        WHERE id = $1 AND deleted_at IS NULL AND ($2::uuid IS NULL OR tenant_id = $2)
        RETURNING id, tenant_id),
     cancelled AS (
       UPDATE deliveries d
          SET status = 'cancelled', completed_at = now(), updated_at = now(),
              lease_owner = NULL, lease_expires_at = NULL
         FROM gone
        WHERE d.webhook_id = gone.id AND d.status IN ('pending', 'in_flight')
        RETURNING d.id)
     SELECT id, tenant_id AS "tenantId", (SELECT count(*) FROM cancelled)::int AS cancelled FROM gone`,
    [id, tenantId ?? null],
  );
  return rows[0];
}

/**
 * Rotation: the current sealed secret becomes the previous one, which keeps signing until
 * now() + overlap; the new sealed secret becomes current.
 */
export async function rotateWebhookSecret(
  db: Queryable,
  id: string,
  tenantId: string | undefined,
  newSecretCiphertext: Buffer,
  overlapSeconds: number,
): Promise<{ id: string; tenantId: string; previousSecretExpiresAt: Date } | undefined> {
  const { rows } = await db.query<{ id: string; tenantId: string; previousSecretExpiresAt: Date }>(
    `UPDATE webhooks
        SET previous_secret_ciphertext = secret_ciphertext,
            previous_secret_expires_at = now() + make_interval(secs => $4),
            secret_ciphertext = $3,
            updated_at = now()
      WHERE id = $1 AND deleted_at IS NULL AND ($2::uuid IS NULL OR tenant_id = $2)
      RETURNING id, tenant_id AS "tenantId", previous_secret_expires_at AS "previousSecretExpiresAt"`,
    [id, tenantId ?? null, newSecretCiphertext, overlapSeconds],
  );
  return rows[0];
}
