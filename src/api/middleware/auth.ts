/**
 * Bearer authentication. Keys are looked up by hash in api_keys (unique index) and cached briefly, so
 * the hot ingest path does not pay a query per call; the cache never outlives a rotated key's expiry,
 * and a revocation clears this process's cache at once (other processes: within CACHE_TTL_MS). The
 * configured admin key also works before start-up registered it (compared in constant time).
 */
import { isIP } from 'node:net';
import type { NextFunction, Request, Response } from 'express';
import type { ApiContext, Principal } from '../context.js';
import { AppError } from '../../errors.js';
import { apiKeyPrefix, hashApiKey, hashesEqual } from '../../security/api-keys.js';
import type { AuditActor } from '../../queries/audit.js';
import { lookupApiKey } from '../../queries/api-keys.js';

const CACHE_TTL_MS = 30_000;
const CACHE_MAX = 10_000;

export interface KeyResolver {
  resolve(key: string): Promise<Principal | undefined>;
  /** After a revocation or rotation: drop every cached key so the change applies at once. */
  forgetAll(): void;
}

export function keyResolver(ctx: Pick<ApiContext, 'pool' | 'adminKeyHash'>): KeyResolver {
  const cache = new Map<string, { principal: Principal | undefined; expires: number }>();

  async function lookup(
    hash: Buffer,
    key: string,
  ): Promise<{ principal: Principal | undefined; expires: number }> {
    const row = await lookupApiKey(ctx.pool, hash);
    const expires = Math.min(Date.now() + CACHE_TTL_MS, row?.expiresAt?.getTime() ?? Infinity);
    if (!row) {
      const admin = hashesEqual(hash, ctx.adminKeyHash);
      const principal: Principal = { kind: 'admin', keyPrefix: apiKeyPrefix(key), bootstrap: true };
      return { principal: admin ? principal : undefined, expires };
    }
    if (!row.usable) return { principal: undefined, expires };
    if (row.tenantId === null)
      return {
        principal: { kind: 'admin', keyPrefix: row.prefix, bootstrap: row.origin === 'bootstrap' },
        expires,
      };
    return { principal: { kind: 'tenant', tenantId: row.tenantId, keyPrefix: row.prefix }, expires };
  }

  return {
    async resolve(key) {
      const hash = hashApiKey(key);
      const cacheKey = hash.toString('base64');
      const hit = cache.get(cacheKey);
      if (hit && hit.expires > Date.now()) return hit.principal;
      const found = await lookup(hash, key);
      // Only known keys are cached: unknown ones would let a caller fill the cache with garbage.
      if (found.principal) {
        if (cache.size >= CACHE_MAX) cache.clear();
        cache.set(cacheKey, found);
      }
      return found.principal;
    },
    forgetAll: () => cache.clear(),
  };
}

export function authenticate(keys: KeyResolver) {
  return async (req: Request, _res: Response, next: NextFunction): Promise<void> => {
    const header = req.headers.authorization;
    const match = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    if (!match?.[1]) throw AppError.unauthorized();
    const principal = await keys.resolve(match[1]);
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

/**
 * How the audit log names the caller: a tenant key by its prefix (pbk_…); the configured admin key
 * as `admin`, an admin key created through the API as `admin:<prefix>`.
 */
export function actorOf(principal: Principal): string {
  if (principal.kind === 'tenant') return principal.keyPrefix;
  return principal.bootstrap ? 'admin' : `admin:${principal.keyPrefix}`;
}

/**
 * Everything the audit log keeps about the caller: the actor, the key's prefix, and the client
 * address as Express reports it under the app's `trust proxy` setting (src/app.ts). A value that is
 * not an address (a forwarded header can say anything) is kept as null rather than refused.
 */
export function auditActor(req: Request): AuditActor {
  const principal = principalOf(req);
  return { actor: actorOf(principal), keyPrefix: principal.keyPrefix, clientIp: clientIpOf(req) };
}

function clientIpOf(req: Request): string | null {
  const ip = req.ip;
  if (!ip || isIP(ip) === 0) return null;
  // An IPv4 client on a dual-stack socket: store the IPv4 address people will search for.
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  return mapped ? mapped[1]! : ip;
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

/**
 * The tenant a list (or a call that reads like one: quotas, bulk retry) covers. The admin key: all
 * tenants (undefined), or the one it names. A tenant key: its own; naming another tenant is answered
 * like any other tenant's object (404).
 */
export function listScope(req: Request, tenantId: string | undefined): string | undefined {
  const principal = principalOf(req);
  if (principal.kind === 'admin') return tenantId;
  if (tenantId !== undefined && tenantId !== principal.tenantId) throw AppError.notFound('tenant');
  return principal.tenantId;
}

/** For reads: a tenant key sees its own tenant; the admin key sees all (undefined). */
export function readScope(req: Request): string | undefined {
  const principal = principalOf(req);
  return principal.kind === 'tenant' ? principal.tenantId : undefined;
}
