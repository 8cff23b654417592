/**
 * SQL for API keys: tenant keys (tenant_id set) and admin keys (tenant_id NULL), stored by hash.
 * A key is usable while not revoked and not past expires_at (the overlap a rotation leaves).
 */
import type { Queryable } from '../db/pool.js';

export interface ApiKeyRow {
  id: string;
  tenantId: string | null;
  name: string | null;
  prefix: string;
  origin: 'api' | 'bootstrap';
  createdAt: Date;
  lastUsedAt: Date | null;
  expiresAt: Date | null;
  revokedAt: Date | null;
}

const COLUMNS = `id, tenant_id AS "tenantId", name, prefix, origin, created_at AS "createdAt",
  last_used_at AS "lastUsedAt", expires_at AS "expiresAt", revoked_at AS "revokedAt"`;

const USABLE = `revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())`;

export interface KeyLookup extends ApiKeyRow {
  usable: boolean;
}

/**
 * authenticate: the key with this hash, and refresh its last_used_at in the same round trip. The
 * refresh is skipped when it is under a minute old, so a busy key does not rewrite its row per call.
 */
export async function lookupApiKey(db: Queryable, hash: Buffer): Promise<KeyLookup | undefined> {
  const { rows } = await db.query<KeyLookup>(
    `WITH k AS (SELECT *, ${USABLE} AS usable FROM api_keys WHERE key_hash = $1),
     touched AS (
       UPDATE api_keys a SET last_used_at = now() FROM k
        WHERE a.id = k.id AND k.usable
          AND (k.last_used_at IS NULL OR k.last_used_at < now() - interval '1 minute'))
     SELECT ${COLUMNS}, usable FROM k`,
    [hash],
  );
  return rows[0];
}

export interface NewApiKey {
  id: string;
  tenantId: string | null;
  name: string | null;
  hash: Buffer;
  prefix: string;
  origin?: 'api' | 'bootstrap';
}

export async function insertApiKey(db: Queryable, k: NewApiKey): Promise<ApiKeyRow> {
  const { rows } = await db.query<ApiKeyRow>(
    `INSERT INTO api_keys (id, tenant_id, name, key_hash, prefix, origin) VALUES ($1, $2, $3, $4, $5, $6)
     RETURNING ${COLUMNS}`,
    [k.id, k.tenantId, k.name, k.hash, k.prefix, k.origin ?? 'api'],
  );
  return rows[0]!;
}

/** A tenant's keys (tenantId) or the admin keys (null), newest first, revoked ones included. */
export async function listApiKeys(
  db: Queryable,
  tenantId: string | null,
  beforeId: string | undefined,
  limit: number,
): Promise<ApiKeyRow[]> {
  const { rows } = await db.query<ApiKeyRow>(
    `SELECT ${COLUMNS} FROM api_keys
      WHERE tenant_id IS NOT DISTINCT FROM $1 AND ($2::uuid IS NULL OR id < $2)
      ORDER BY tenant_id, id DESC LIMIT $3`,
    [tenantId, beforeId ?? null, limit],
  );
  return rows;
}

/** The key, locked for the change that follows; undefined when it is not this owner's. */
export async function lockApiKey(db: Queryable, tenantId: string | null, id: string) {
  const { rows } = await db.query<ApiKeyRow & { usable: boolean }>(
    `SELECT ${COLUMNS}, ${USABLE} AS usable FROM api_keys
      WHERE id = $1 AND tenant_id IS NOT DISTINCT FROM $2 FOR UPDATE`,
    [id, tenantId],
  );
  return rows[0];
}

export async function revokeApiKey(db: Queryable, id: string): Promise<ApiKeyRow> {
  const { rows } = await db.query<ApiKeyRow>(
    `UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1 RETURNING ${COLUMNS}`,
    [id],
  );
  return rows[0]!;
}

/** A rotation: the old key keeps working until now + overlap (never later than an expiry it had). */
export async function expireApiKey(db: Queryable, id: string, overlapSeconds: number): Promise<ApiKeyRow> {
  const { rows } = await db.query<ApiKeyRow>(
    `UPDATE api_keys
        SET expires_at = least(coalesce(expires_at, 'infinity'), now() + make_interval(secs => $2))
      WHERE id = $1 RETURNING ${COLUMNS}`,
    [id, overlapSeconds],
  );
  return rows[0]!;
}

/** Usable admin keys other than `exceptId`: the last one cannot be revoked (nobody could log in). */
export async function countOtherUsableAdminKeys(db: Queryable, exceptId: string): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM api_keys WHERE tenant_id IS NULL AND id <> $1 AND ${USABLE}`,
    [exceptId],
  );
  return rows[0]!.n;
}

/**
 * Start-up: the admin key of ADMIN_API_KEY or DATA_DIR/admin-api-key becomes (or stays) a row, and
 * bootstrap keys registered before it without an expiry are revoked: replacing the configured key
 * and restarting retires the old one, as it did before keys were stored. A key a rotation left
 * expiring keeps its overlap.
 */
export async function registerBootstrapKey(
  db: Queryable,
  k: { id: string; hash: Buffer; prefix: string },
): Promise<void> {
  await db.query(
    `WITH ins AS (
       INSERT INTO api_keys (id, tenant_id, name, key_hash, prefix, origin)
       VALUES ($1, NULL, 'bootstrap', $2, $3, 'bootstrap')
       ON CONFLICT (key_hash) DO NOTHING RETURNING created_at),
     cur AS (
       SELECT created_at FROM ins
       UNION ALL SELECT created_at FROM api_keys WHERE key_hash = $2 AND tenant_id IS NULL)
     UPDATE api_keys SET revoked_at = now()
      WHERE tenant_id IS NULL AND origin = 'bootstrap' AND key_hash <> $2
        AND revoked_at IS NULL AND expires_at IS NULL
        AND created_at < (SELECT max(created_at) FROM cur)`,
    [k.id, k.hash, k.prefix],
  );
}
