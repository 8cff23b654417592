/** The audit log (admin only): who changed what, newest first. */
import { Router, type RequestHandler } from 'express';
import * as v from 'valibot';
import type { ApiContext } from '../context.js';
import { requireAdmin } from '../middleware/auth.js';
import { decodeCursorAs, page, PageQuery } from '../pagination.js';
import { parseInput, QueryString, Uuid } from '../validate.js';
import { listAudit, type AuditRow } from '../../queries/audit.js';
import type { AuditJson } from '../response-schemas.js';

export function auditJson(row: AuditRow): AuditJson {
  return {
    at: row.at.toISOString(),
    actor: row.actor,
    action: row.action,
    object_type: row.objectType,
    object_id: row.objectId,
    tenant_id: row.tenantId,
    changes: row.changes,
    key_prefix: row.keyPrefix,
    client_ip: row.clientIp,
  };
}

export const ListAuditQuery = v.strictObject(
  {
    ...PageQuery,
    tenant_id: v.optional(v.pipe(QueryString, Uuid)),
    action: v.optional(v.pipe(QueryString, v.minLength(1, 'must not be empty'), v.maxLength(100))),
  },
  'is not a known query parameter',
);

/** The cursor is the last row's id (a bigint identity, increasing). */
const CursorKey = v.tuple([v.pipe(v.string(), v.regex(/^\d{1,18}$/))]);

export function auditRouter(ctx: ApiContext, guard: RequestHandler[]): Router {
  const router = Router();

  router.get('/audit', ...guard, async (req, res) => {
    requireAdmin(req);
    const q = parseInput(ListAuditQuery, req.query, 'query');
    const beforeId = decodeCursorAs(q.cursor, CursorKey)?.[0];
    const rows = await listAudit(ctx.pool, {
      tenantId: q.tenant_id,
      action: q.action,
      beforeId,
      limit: q.limit + 1,
    });
    const result = page(rows, q.limit, (row) => [row.id]);
    res.json({ data: result.data.map(auditJson), next_cursor: result.next_cursor });
  });

  return router;
}
