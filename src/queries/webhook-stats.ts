/**
 * The console's per-webhook chart: attempts per hour over the last hours, split into succeeded (2xx)
 * and failed, by the same rule as the webhook_health view. Read-only.
 */
import type { Queryable } from '../db/pool.js';

export interface AttemptBucket {
  /** Start of the hour (UTC). */
  start: Date;
  succeeded: number;
  failed: number;
}

/**
 * Every hour of the window, oldest first, empty hours as zeros (generate_series), so the chart's x
 * axis is the clock. Attempts are found from the webhook's deliveries (deliveries_webhook_id_idx) and
 * their attempts by delivery (delivery_attempts_delivery_id_idx): the cost follows this webhook's
 * traffic, not every webhook's. `tenantId` scopes a tenant key (null: the admin key).
 */
export async function webhookAttemptsPerHour(
  db: Queryable,
  webhookId: string,
  tenantId: string | null,
  hours: number,
): Promise<AttemptBucket[]> {
  const { rows } = await db.query<AttemptBucket>(
    `WITH win AS (SELECT date_trunc('hour', now()) - ($3::int - 1) * interval '1 hour' AS since),
     hits AS (
       SELECT date_trunc('hour', a.started_at) AS start,
              count(*) FILTER (WHERE a.status_code BETWEEN 200 AND 299)::int AS succeeded,
              count(*) FILTER (WHERE a.status_code IS NULL OR a.status_code NOT BETWEEN 200 AND 299)::int AS failed
         FROM deliveries d
         JOIN delivery_attempts a ON a.delivery_id = d.id
        WHERE d.webhook_id = $1 AND ($2::uuid IS NULL OR d.tenant_id = $2)
          AND a.started_at >= (SELECT since FROM win)
        GROUP BY 1)
     SELECT h AS start, coalesce(hits.succeeded, 0) AS succeeded, coalesce(hits.failed, 0) AS failed
       FROM generate_series((SELECT since FROM win), date_trunc('hour', now()), interval '1 hour') h
       LEFT JOIN hits ON hits.start = h
      ORDER BY h`,
    [webhookId, tenantId, hours],
  );
  return rows;
}
