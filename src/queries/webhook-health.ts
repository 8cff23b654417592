/**
 * The console's webhook list: each webhook with its health numbers, read from the `webhook_health`
 * view (db/migrations/0003_operator_views.sql) so psql, runbooks and the console agree on what
 * "healthy" means. Read-only; locks nothing.
 */
import type { Queryable } from '../db/pool.js';

export interface WebhookHealthRow {
  id: string;
  tenantId: string;
  url: string;
  description: string | null;
  enabled: boolean;
  createdAt: Date;
  pending: number;
  due: number;
  inFlight: number;
  succeededAttempts1h: number;
  failedAttempts1h: number;
  succeededAttempts24h: number;
  failedAttempts24h: number;
  consecutiveFailures: number;
  lastSuccessAt: Date | null;
  oldestDueAt: Date | null;
  breakerState: string;
  deadLetters: number;
  /** The adaptive in-flight limit in force (at most maxConcurrency). */
  concurrencyLimit: number;
  maxConcurrency: number;
  latencyFloorMs: number | null;
}

export interface WebhookHealthFilter {
  /** undefined: every tenant (the admin key). */
  tenantId?: string;
  /** Keyset cursor: only webhooks with a smaller (older) id. */
  beforeId?: string;
  /** Rows to return; callers pass page size + 1 to learn whether there is a next page. */
  limit: number;
}

/**
 * One page of webhooks first (webhooks_tenant_id_idx or the primary key, newest first), then the view
 * for each row of that page only, so the cost follows the page size, not the number of webhooks.
 * `OFFSET 0` keeps the lateral subquery from being flattened into a join: flattened, the planner
 * aggregates the view for every webhook (a day of attempts) and joins afterwards; kept, the per-row
 * `webhook_id = p.id AND tenant_id = p.tenant_id` is pushed into each of the view's grouped
 * subqueries and reaches their indexes (checked with EXPLAIN). The view's counts are bigint; one
 * webhook's fit in int.
 */
export async function listWebhookHealth(db: Queryable, f: WebhookHealthFilter): Promise<WebhookHealthRow[]> {
  const { rows } = await db.query<WebhookHealthRow>(
    `WITH page AS (
       SELECT w.id, w.tenant_id, w.description, w.created_at
         FROM webhooks w
        WHERE w.deleted_at IS NULL
          AND ($1::uuid IS NULL OR w.tenant_id = $1)
          AND ($2::uuid IS NULL OR w.id < $2)
        ORDER BY w.id DESC
        LIMIT $3)
     SELECT p.id, p.tenant_id AS "tenantId", h.url, p.description, h.enabled, p.created_at AS "createdAt",
            h.pending::int, h.due::int, h.in_flight::int AS "inFlight",
            h.succeeded_1h::int AS "succeededAttempts1h", h.failed_1h::int AS "failedAttempts1h",
            h.succeeded_24h::int AS "succeededAttempts24h", h.failed_24h::int AS "failedAttempts24h",
            h.consecutive_failures::int AS "consecutiveFailures", h.last_success_at AS "lastSuccessAt",
            h.oldest_due_at AS "oldestDueAt", h.breaker_state AS "breakerState",
            h.dead_letters::int AS "deadLetters", h.concurrency_limit AS "concurrencyLimit",
            h.max_concurrency AS "maxConcurrency", h.latency_floor_ms::float8 AS "latencyFloorMs"
       FROM page p
       CROSS JOIN LATERAL (
         SELECT * FROM webhook_health v WHERE v.webhook_id = p.id AND v.tenant_id = p.tenant_id OFFSET 0) h
      ORDER BY p.id DESC`,
    [f.tenantId ?? null, f.beforeId ?? null, f.limit],
  );
  return rows;
}
