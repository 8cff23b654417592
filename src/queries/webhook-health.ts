/**
 * The console's webhook list: each webhook with its health numbers (queue depth, attempt outcomes in
 * the last hour and day, consecutive failures, breaker state). Read-only; locks nothing.
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
 * One page of webhooks first (by the tenant index), then the health numbers for just those rows,
 * so the cost is bounded by the page size, not by the number of webhooks.
 */
export async function listWebhookHealth(db: Queryable, f: WebhookHealthFilter): Promise<WebhookHealthRow[]> {
  const { rows } = await db.query<WebhookHealthRow>(
    `WITH page AS (
       SELECT w.id, w.tenant_id, w.url, w.description, w.enabled, w.created_at
         FROM webhooks w
        WHERE w.deleted_at IS NULL
          AND ($1::uuid IS NULL OR w.tenant_id = $1)
          AND ($2::uuid IS NULL OR w.id < $2)
        ORDER BY w.id DESC
        LIMIT $3)
     SELECT p.id, p.tenant_id AS "tenantId", p.url, p.description, p.enabled, p.created_at AS "createdAt",
            q.pending, q.due, q.in_flight AS "inFlight",
            a.ok_1h AS "succeededAttempts1h", a.failed_1h AS "failedAttempts1h",
            a.ok_24h AS "succeededAttempts24h", a.failed_24h AS "failedAttempts24h",
            s.consecutive_failures AS "consecutiveFailures", ls.last_success_at AS "lastSuccessAt",
            q.oldest_due_at AS "oldestDueAt",
            'closed' AS "breakerState",
            dl.dead_letters AS "deadLetters"
       FROM page p
       CROSS JOIN LATERAL (
         SELECT count(*) FILTER (WHERE d.status = 'pending')::int AS pending,
                count(*) FILTER (WHERE d.status = 'pending' AND d.next_attempt_at <= now())::int AS due,
                count(*) FILTER (WHERE d.status = 'in_flight')::int AS in_flight,
                min(d.next_attempt_at) FILTER (WHERE d.status = 'pending' AND d.next_attempt_at <= now())
                  AS oldest_due_at
           FROM deliveries d
          WHERE d.webhook_id = p.id AND d.status IN ('pending', 'in_flight')) q
       CROSS JOIN LATERAL (
         SELECT count(*) FILTER (WHERE ok AND at > now() - interval '1 hour')::int AS ok_1h,
                count(*) FILTER (WHERE NOT ok AND at > now() - interval '1 hour')::int AS failed_1h,
                count(*) FILTER (WHERE ok)::int AS ok_24h,
                count(*) FILTER (WHERE NOT ok)::int AS failed_24h
           FROM (SELECT a.started_at AS at, coalesce(a.status_code BETWEEN 200 AND 299, false) AS ok
                   FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id
                  WHERE d.webhook_id = p.id AND a.started_at > now() - interval '1 day') recent) a
       CROSS JOIN LATERAL (
         SELECT max(a.started_at) AS last_success_at
           FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id
          WHERE d.webhook_id = p.id AND a.status_code BETWEEN 200 AND 299) ls
       CROSS JOIN LATERAL (
         SELECT count(*)::int AS consecutive_failures
           FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id
          WHERE d.webhook_id = p.id AND a.started_at > coalesce(ls.last_success_at, '-infinity')
            AND coalesce(a.status_code NOT BETWEEN 200 AND 299, true)) s
       CROSS JOIN LATERAL (
         SELECT count(*)::int AS dead_letters FROM dead_letter_queue l WHERE l.webhook_id = p.id) dl
      ORDER BY p.id DESC`,
    [f.tenantId ?? null, f.beforeId ?? null, f.limit],
  );
  return rows;
}
