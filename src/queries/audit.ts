/** SQL for the audit log. Rows are written inside the transaction of the change they record. */
import type { Queryable } from '../db/pool.js';

export interface AuditEntry {
  actor: string;
  action: string;
  objectType: string;
  objectId: string;
  tenantId: string | null;
  /** Changed fields; callers must leave secrets out. */
  changes?: Record<string, unknown>;
}

export async function insertAudit(db: Queryable, e: AuditEntry): Promise<void> {
  await db.query(
    `INSERT INTO audit_log (actor, action, object_type, object_id, tenant_id, changes)
     VALUES ($1, $2, $3, $4, $5, $6)`,
    [e.actor, e.action, e.objectType, e.objectId, e.tenantId, e.changes ? JSON.stringify(e.changes) : null],
  );
}

/** Several audit rows in one multi-row statement (a bulk operation touching several tenants). */
export async function insertAudits(db: Queryable, entries: AuditEntry[]): Promise<void> {
  if (entries.length === 0) return;
  const params: unknown[] = [];
  const tuples = entries.map((e) => {
    params.push(e.actor, e.action, e.objectType, e.objectId, e.tenantId);
    params.push(e.changes ? JSON.stringify(e.changes) : null);
    const n = params.length;
    return `($${n - 5}, $${n - 4}, $${n - 3}, $${n - 2}, $${n - 1}::uuid, $${n}::jsonb)`;
  });
  await db.query(
    `INSERT INTO audit_log (actor, action, object_type, object_id, tenant_id, changes)
     VALUES ${tuples.join(', ')}`,
    params,
  );
}

export interface AuditRow {
  /** bigint identity, as text (pg returns int8 as a string). */
  id: string;
  at: Date;
  actor: string;
  action: string;
  objectType: string;
  objectId: string;
  tenantId: string | null;
  changes: Record<string, unknown> | null;
}

export interface AuditFilter {
  tenantId?: string;
  action?: string;
  /** Keyset cursor: only rows with a smaller id (older). */
  beforeId?: string;
  /** Rows to return; callers pass page size + 1. */
  limit: number;
}

/** Newest first by id; (tenant_id, id DESC) and (action, id DESC) serve the two filters. */
export async function listAudit(db: Queryable, f: AuditFilter): Promise<AuditRow[]> {
  const { rows } = await db.query<AuditRow>(
    `SELECT id, at, actor, action, object_type AS "objectType", object_id AS "objectId",
            tenant_id AS "tenantId", changes
       FROM audit_log
      WHERE ($1::uuid IS NULL OR tenant_id = $1)
        AND ($2::text IS NULL OR action = $2)
        AND ($3::bigint IS NULL OR id < $3)
      ORDER BY id DESC
      LIMIT $4`,
    [f.tenantId ?? null, f.action ?? null, f.beforeId ?? null, f.limit],
  );
  return rows;
}
