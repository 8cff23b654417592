/**
 * API keys: list, create, revoke and rotate, per tenant (/tenants/:id/api-keys, the admin key or
 * that tenant's own keys) and for the operator (/admin/api-keys, admin only). A key is shown once,
 * in the answer that creates it; only its hash is stored. Every change is audited with the caller's
 * key prefix as the actor.
 */
import { Router, type Request, type RequestHandler } from 'express';
import * as v from 'valibot';
import type { ApiContext } from '../context.js';
import { auditActor, principalOf, type KeyResolver } from '../middleware/auth.js';
import { PageQuery, idCursor, page } from '../pagination.js';
import { NoBody, NoNul, Uuid, parseInput } from '../validate.js';
import { AppError } from '../../errors.js';
import type { ApiKeyJson } from '../response-schemas.js';
import { withTransaction, type Queryable } from '../../db/pool.js';
import { newId } from '../../ids.js';
import { insertAudit } from '../../queries/audit.js';
import { getTenant } from '../../queries/tenants.js';
import {
  countOtherUsableAdminKeys,
  expireApiKey,
  insertApiKey,
  listApiKeys,
  lockApiKey,
  revokeApiKey,
  type ApiKeyRow,
} from '../../queries/api-keys.js';
import { apiKeyPrefix, generateAdminKey, generateApiKey, hashApiKey } from '../../security/api-keys.js';
import { replaceAdminKeyFile } from '../../security/key-files.js';

const KeyName = v.pipe(v.string('must be a string'), v.trim(), v.minLength(1), v.maxLength(200), NoNul);
export const CreateApiKey = v.nullish(v.strictObject({ name: v.optional(KeyName) }));
export const RotateApiKey = v.nullish(
  v.strictObject({
    // 0: the old key stops at once. Default: a day, as for webhook secrets.
    overlap_seconds: v.optional(
      v.pipe(
        v.number('must be a number'),
        v.integer('must be a whole number'),
        v.minValue(0),
        v.maxValue(604800),
      ),
    ),
  }),
);
export const ApiKeysQuery = v.strictObject(PageQuery);
export const TenantParams = v.object({ id: Uuid });
export const TenantKeyParams = v.object({ id: Uuid, key_id: Uuid });
export const AdminKeyParams = v.object({ key_id: Uuid });

export function apiKeyJson(row: ApiKeyRow): ApiKeyJson {
  const now = Date.now();
  return {
    id: row.id,
    tenant_id: row.tenantId,
    name: row.name,
    prefix: row.prefix,
    created_at: row.createdAt.toISOString(),
    last_used_at: row.lastUsedAt?.toISOString() ?? null,
    expires_at: row.expiresAt?.toISOString() ?? null,
    revoked_at: row.revokedAt?.toISOString() ?? null,
    active: row.revokedAt === null && (row.expiresAt === null || row.expiresAt.getTime() > now),
  };
}

/** The tenant of /tenants/:id/…: the admin key any (that exists), a tenant key only its own (else 404). */
async function ownerTenant(ctx: ApiContext, req: Request): Promise<string> {
  const { id } = parseInput(TenantParams, req.params, 'path');
  const principal = principalOf(req);
  if (principal.kind === 'tenant' && principal.tenantId !== id) throw AppError.notFound('tenant');
  if (principal.kind === 'admin' && !(await getTenant(ctx.pool, id))) throw AppError.notFound('tenant');
  return id;
}

function requireAdminKeys(req: Request): void {
  if (principalOf(req).kind !== 'admin') throw AppError.forbidden('admin keys need the admin key');
}

function audit(db: Queryable, req: Request, action: string, row: ApiKeyRow, extra: object = {}) {
  return insertAudit(db, {
    ...auditActor(req),
    action,
    objectType: 'api_key',
    objectId: row.id,
    tenantId: row.tenantId,
    changes: { prefix: row.prefix, name: row.name, ...extra },
  });
}

export function apiKeysRouter(ctx: ApiContext, guard: RequestHandler[], keys: KeyResolver): Router {
  const router = Router();
  const generate = (tenantId: string | null) => (tenantId === null ? generateAdminKey() : generateApiKey());

  async function list(req: Request, tenantId: string | null) {
    const q = parseInput(ApiKeysQuery, req.query, 'query');
    const rows = await listApiKeys(ctx.pool, tenantId, idCursor(q.cursor), q.limit + 1);
    const p = page(rows, q.limit, (r) => [r.id]);
    return { data: p.data.map(apiKeyJson), next_cursor: p.next_cursor };
  }

  async function create(req: Request, tenantId: string | null) {
    const input = parseInput(CreateApiKey, req.body, 'api key') ?? {};
    const key = generate(tenantId);
    const row = await withTransaction(ctx.pool, async (tx) => {
      const created = await insertApiKey(tx, {
        id: newId(),
        tenantId,
        name: input.name ?? null,
        hash: hashApiKey(key),
        prefix: apiKeyPrefix(key),
      });
      await audit(tx, req, 'api_key.create', created);
      return created;
    });
    return { ...apiKeyJson(row), api_key: key };
  }

  async function revoke(req: Request, tenantId: string | null, keyId: string) {
    parseInput(NoBody, req.body, 'request');
    await withTransaction(ctx.pool, async (tx) => {
      const old = await lockApiKey(tx, tenantId, keyId);
      if (!old) throw AppError.notFound('api key');
      if (tenantId === null && old.usable && (await countOtherUsableAdminKeys(tx, keyId)) === 0)
        throw AppError.conflict('this is the last active admin key: create another before revoking it');
      await audit(tx, req, 'api_key.revoke', await revokeApiKey(tx, keyId));
    });
    keys.forgetAll();
  }

  /**
   * A new key with the old one's name (and, for the configured admin key, its place: the new key
   * is written to DATA_DIR/admin-api-key); the old key works for overlap_seconds more.
   */
  async function rotate(req: Request, tenantId: string | null, keyId: string) {
    const input = parseInput(RotateApiKey, req.body, 'rotation') ?? {};
    const overlap = input.overlap_seconds ?? 86_400;
    const key = generate(tenantId);
    const result = await withTransaction(ctx.pool, async (tx) => {
      const old = await lockApiKey(tx, tenantId, keyId);
      if (!old) throw AppError.notFound('api key');
      if (!old.usable) throw AppError.conflict('the key is revoked or expired; create a new one instead');
      // The configured key from DATA_DIR: its successor is the configured key, found in the file.
      const toFile = old.origin === 'bootstrap' && ctx.adminKeyFile !== undefined;
      const expired = await expireApiKey(tx, keyId, overlap);
      const created = await insertApiKey(tx, {
        id: newId(),
        tenantId,
        name: old.name,
        hash: hashApiKey(key),
        prefix: apiKeyPrefix(key),
        origin: toFile ? 'bootstrap' : 'api',
      });
      await audit(tx, req, 'api_key.rotate', expired, {
        replaced_by: created.prefix,
        overlap_seconds: overlap,
      });
      await audit(tx, req, 'api_key.create', created, { replaces: expired.prefix });
      // Written before COMMIT: if the file cannot be written, nothing changes.
      if (toFile) replaceAdminKeyFile(ctx.adminKeyFile!, key);
      return { created, expired };
    });
    keys.forgetAll();
    return { ...apiKeyJson(result.created), api_key: key, replaced: apiKeyJson(result.expired) };
  }

  router.get('/tenants/:id/api-keys', ...guard, async (req, res) => {
    res.json(await list(req, await ownerTenant(ctx, req)));
  });
  router.post('/tenants/:id/api-keys', ...guard, async (req, res) => {
    res.status(201).json(await create(req, await ownerTenant(ctx, req)));
  });
  router.delete('/tenants/:id/api-keys/:key_id', ...guard, async (req, res) => {
    const tenantId = await ownerTenant(ctx, req);
    await revoke(req, tenantId, parseInput(TenantKeyParams, req.params, 'path').key_id);
    res.status(204).end();
  });
  router.post('/tenants/:id/api-keys/:key_id/rotate', ...guard, async (req, res) => {
    const tenantId = await ownerTenant(ctx, req);
    res.status(201).json(await rotate(req, tenantId, parseInput(TenantKeyParams, req.params, 'path').key_id));
  });

  router.get('/admin/api-keys', ...guard, async (req, res) => {
    requireAdminKeys(req);
    res.json(await list(req, null));
  });
  router.post('/admin/api-keys', ...guard, async (req, res) => {
    requireAdminKeys(req);
    res.status(201).json(await create(req, null));
  });
  router.delete('/admin/api-keys/:key_id', ...guard, async (req, res) => {
    requireAdminKeys(req);
    await revoke(req, null, parseInput(AdminKeyParams, req.params, 'path').key_id);
    res.status(204).end();
  });
  router.post('/admin/api-keys/:key_id/rotate', ...guard, async (req, res) => {
    requireAdminKeys(req);
    res.status(201).json(await rotate(req, null, parseInput(AdminKeyParams, req.params, 'path').key_id));
  });

  return router;
}
