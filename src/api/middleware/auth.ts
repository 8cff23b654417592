/**
 * Bearer authentication. The admin key is compared by hash in constant time; tenant keys are looked
 * up by hash (unique index) and cached briefly so the hot ingest path does not pay a query per call.
 */
import type { NextFunction, Request, Response } from 'express';
import type { ApiContext, Principal } from '../context.js';
import { AppError } from '../../errors.js';
import { hashApiKey, hashesEqual } from '../../security/api-keys.js';
import { findTenantByKeyHash } from '../../queries/tenants.js';

const CACHE_TTL_MS = 30_000;
const CACHE_MAX = 10_000;

export function authenticate(ctx: ApiContext) {
  const cache = new Map<string, { principal: Principal; expires: number }>();

  async function resolvePrincipal(key: string): Promise<Principal | undefined> {
    const hash = hashApiKey(key);
    if (hashesEqual(hash, ctx.adminKeyHash)) return { kind: 'admin' };
    const cacheKey = hash.toString('base64');
    const hit = cache.get(cacheKey);
    if (hit && hit.expires > Date.now()) return hit.principal;
    const tenant = await findTenantByKeyHash(ctx.pool, hash);
    if (!tenant || !hashesEqual(tenant.apiKeyHash, hash)) return undefined;
    const principal: Principal = { kind: 'tenant', tenantId: tenant.id, keyPrefix: tenant.apiKeyPrefix };
    if (cache.size >= CACHE_MAX) cache.clear();
    cache.set(cacheKey, { principal, expires: Date.now() + CACHE_TTL_MS });
    return principal;
  }

  return async (req: Request, _res: Response, next: NextFunction): Promise<void> => {
    const header = req.headers.authorization;
    const match = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    if (!match?.[1]) throw AppError.unauthorized();
    const principal = await resolvePrincipal(match[1]);
    if (!principal) throw AppError.unauthorized();
    req.principal = principal;
    next();
  };
}

export function principalOf(req: Request): Principal {
  if (!req.principal) throw AppError.unauthorized();
  return req.principal;
}

export function requireAdmin(req: Request): void {
  if (principalOf(req).kind !== 'admin') throw AppError.forbidden('this route needs the admin key');
}

/** How the audit log names the caller. */
export function actorOf(principal: Principal): string {
  return principal.kind === 'admin' ? 'admin' : `tenant:${principal.tenantId}`;
}

/**
 * The tenant a call acts on. A tenant key: its own tenant (a different tenant_id in the body is not
 * found). The admin key: the tenant_id it names, which is then required (reported at `path`, e.g.
 * `events.3.tenant_id` in a batch).
 */
export function tenantScope(req: Request, bodyTenantId: string | undefined, path = 'tenant_id'): string {
  const principal = principalOf(req);
  if (principal.kind === 'tenant') {
    if (bodyTenantId !== undefined && bodyTenantId !== principal.tenantId) throw AppError.notFound('tenant');
    return principal.tenantId;
  }
  if (bodyTenantId === undefined)
    throw AppError.validation('tenant_id is required with the admin key', [
      { path, message: 'required when acting as admin' },
    ]);
  return bodyTenantId;
}

/** For reads: a tenant key sees its own tenant; the admin key sees all (undefined). */
export function readScope(req: Request): string | undefined {
  const principal = principalOf(req);
  return principal.kind === 'tenant' ? principal.tenantId : undefined;
}
