/** SQL for tenants and their quotas. */
import type { Queryable } from '../db/pool.js';

export interface TenantRow {
  id: string;
  name: string;
  createdAt: Date;
  maxEventsPerSec: number;
  maxConcurrentDeliveries: number;
  maxDlqSize: number;
}

const TENANT_COLUMNS = `t.id, t.name, t.created_at AS "createdAt",
  q.max_events_per_sec AS "maxEventsPerSec",
  q.max_concurrent_deliveries AS "maxConcurrentDeliveries",
  q.max_dlq_size AS "maxDlqSize"`;

export interface NewTenant {
  id: string;
  name: string;
  maxEventsPerSec: number;
  maxConcurrentDeliveries: number;
  maxDlqSize: number;
}

/** Inserts the tenant and its quotas row in one statement (its first API key: insertApiKey). */
export async function insertTenant(db: Queryable, t: NewTenant): Promise<TenantRow> {
  const { rows } = await db.query<TenantRow>(
    `WITH t AS (
       INSERT INTO tenants (id, name) VALUES ($1, $2)
       RETURNING id, name, created_at),
     q AS (
       INSERT INTO quotas (tenant_id, max_events_per_sec, max_concurrent_deliveries, max_dlq_size)
       SELECT id, $3, $4, $5 FROM t
       RETURNING tenant_id, max_events_per_sec, max_concurrent_deliveries, max_dlq_size)
     SELECT ${TENANT_COLUMNS} FROM t JOIN q ON q.tenant_id = t.id`,
    [t.id, t.name, t.maxEventsPerSec, t.maxConcurrentDeliveries, t.maxDlqSize],
  );
  return rows[0]!;
}

export async function getTenant(db: Queryable, id: string): Promise<TenantRow | undefined> {
  const { rows } = await db.query<TenantRow>(
    `SELECT ${TENANT_COLUMNS} FROM tenants t JOIN quotas q ON q.tenant_id = t.id WHERE t.id = $1`,
    [id],
  );
  return rows[0];
}
