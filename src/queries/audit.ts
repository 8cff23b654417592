/** SQL for the audit log. Rows are written inside the transaction of the change they record. */
import type { Queryable } from '../db/pool.js';

/** Who made a change: the caller's actor name, key prefix and address (see auditActor in auth.ts). */
export interface AuditActor {
  actor: string;
  /** The acting API key's prefix; null for the system. */
  keyPrefix: string | null;
  /** The client's address; null for the system or when unknown. */
  clientIp: string | null;
}

/** The marker that stands in for a secret in before/after values. */
export const REDACTED = '[redacted]';

export interface AuditEntry extends AuditActor {
  action: string;
  objectType: string;
  objectId: string;
  tenantId: string | null;
  /** What changed; an update as {before, after} of the fields it touched. Secrets: REDACTED only. */
  changes?: Record<string, unknown>;
}

export async function insertAudit(db: Queryable, e: AuditEntry): Promise<void> {
  await insertAudits(db, [e]);
}

/** Several audit rows in one multi-row statement (a bulk operation touching several tenants). */
export async function insertAudits(db: Queryable, entries: AuditEntry[]): Promise<void> {
  if (entries.length === 0) return;
  const params: unknown[] = [];
  const tuples = entries.map((e) => {
    params.push(e.actor, e.action, e.objectType, e.objectId, e.tenantId);
    params.push(e.changes ? JSON.stringify(e.changes) : null, e.keyPrefix, e.clientIp);
    const n = params.length;
    return `($${n - 7}, $${n - 6}, $${n - 5}, $${n - 4}, $${n - 3}::uuid, $${n - 2}::jsonb, $${n - 1}, $${n}::inet)`;
  });
  await db.query(
    `INSERT INTO audit_log (actor, action, object_type, object_id, tenant_id, changes, key_prefix, client_ip)
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
  keyPrefix: string | null;
  clientIp: string | null;
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
            tenant_id AS "tenantId", changes, key_prefix AS "keyPrefix", host(client_ip) AS "clientIp"
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
