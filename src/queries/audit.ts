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
