/** Small helpers shared by the list routes of tenant-owned resources (webhooks, events). */
import type { Request } from 'express';
import { AppError } from '../errors.js';
import { decodeCursor } from './pagination.js';
import { principalOf } from './middleware/auth.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Which tenant a list shows. The admin key: all tenants, or the one it names in `?tenant_id=`.
 * A tenant key: its own; naming another tenant is answered like any other tenant's object (404).
 */
export function listScope(req: Request, queryTenantId: string | undefined): string | undefined {
  const principal = principalOf(req);
  if (principal.kind === 'admin') return queryTenantId;
  if (queryTenantId !== undefined && queryTenantId !== principal.tenantId) throw AppError.notFound('tenant');
  return principal.tenantId;
}

/** A cursor that is one id (the last row of the previous page), checked before it reaches SQL. */
export function idCursor(cursor: string | undefined): string | undefined {
  const key = decodeCursor(cursor, 1);
  if (key === undefined) return undefined;
  if (!UUID.test(key[0]!))
    throw AppError.validation('cursor is not valid', [
      { path: 'cursor', message: 'is not a cursor from this API' },
    ]);
  return key[0];
}
