/**
 * SQL for quotas: the shared per-second event counter (rate_windows), limits, and current usage.
 *
 * Windows are one second long and keyed by the database clock, so every Postbox process counts in the
 * same window whatever its own clock says.
 */
import type { Queryable } from '../db/pool.js';

const NOW_EPOCH = 'extract(epoch FROM clock_timestamp())';

export interface QuotaConsumption {
  /** Whether n was added (all of it) to the window. */
  granted: boolean;
  /** The tenant's max_events_per_sec. */
  limit: number;
  /** The window's count after the statement: including n if granted, without it if not. */
  count: number;
  /** The window (Unix seconds) and the database's time (Unix seconds, fractional). */
  windowStart: number;
  now: number;
}

/**
 * Adds n events to the tenant's current window only if the window stays within max_events_per_sec.
 * One statement (postbox.consume_event_quota, shared with postbox.emit): the upsert's row lock makes check-and-add atomic across processes, and a refused
 * update changes nothing. The current count is read back (without n) so callers can refuse locally
 * until the window ends. Undefined if the tenant has no quotas row.
 */
export async function consumeEventQuota(
  db: Queryable,
  tenantId: string,
  n: number,
): Promise<QuotaConsumption | undefined> {
  const { rows } = await db.query<{
    limit: number;
    windowStart: string;
    now: string;
    granted: number | null;
    current: number | null;
  }>({
    // Named: prepared once per connection (this runs for every ingest request).
    name: 'consume_event_quota',
    // The check-and-add is the SQL function postbox.emit also calls (db/migrations/0008_postbox_emit.sql).
    // Committed without waiting for its WAL flush (synchronous_commit off for this transaction only,
    // here and not in the function, which runs inside producers' own transactions too): the request then
    // waits for one flush, the ingest's, instead of two (~10 ms each on a slow disk). Nothing an API
    // caller relies on can be lost: the ingest's own commit flushes the WAL past this commit record,
    // and a crash before it loses only the count of events that were never stored.
    text: `SELECT "limit", "windowStart", "now", granted, "current"
             FROM postbox.consume_event_quota($1, $2), set_config('synchronous_commit', 'off', true)`,
    values: [tenantId, n],
  });
  const row = rows[0];
  if (!row) return undefined;
  const granted = row.granted !== null;
  return {
    granted,
    limit: row.limit,
    count: granted ? row.granted! : (row.current ?? 0),
    windowStart: Number(row.windowStart),
    now: Number(row.now),
  };
}

/** Gives back n events taken from a window (the ingest they were taken for did not happen). */
export async function refundEventQuota(
  db: Queryable,
  tenantId: string,
  windowStart: number,
  n: number,
): Promise<void> {
  await db.query(
    `UPDATE rate_windows SET count = greatest(count - $3, 0) WHERE tenant_id = $1 AND window_start = $2`,
    [tenantId, windowStart, n],
  );
}

/**
 * Drops windows older than a minute. The table holds a few rows per active tenant, so the scan is
 * cheap; callers run it occasionally rather than per request.
 */
export async function deleteOldRateWindows(db: Queryable): Promise<number> {
  const { rowCount } = await db.query(
    `DELETE FROM rate_windows WHERE window_start < floor(${NOW_EPOCH})::bigint - 60`,
  );
  return rowCount ?? 0;
}

export interface QuotaLimits {
  maxEventsPerSec: number;
  maxConcurrentDeliveries: number;
  maxDlqSize: number;
}

export interface QuotaUsage extends QuotaLimits {
  tenantId: string;
  eventsThisSecond: number;
  inFlightDeliveries: number;
  dlqSize: number;
}

/** Limits and current usage of one tenant in one statement; undefined if there is no such tenant. */
export async function getQuotaUsage(db: Queryable, tenantId: string): Promise<QuotaUsage | undefined> {
  const { rows } = await db.query<QuotaUsage>(
    `SELECT q.tenant_id AS "tenantId",
            q.max_events_per_sec AS "maxEventsPerSec",
            q.max_concurrent_deliveries AS "maxConcurrentDeliveries",
            q.max_dlq_size AS "maxDlqSize",
            coalesce((SELECT count FROM rate_windows
                       WHERE tenant_id = q.tenant_id AND window_start = floor(${NOW_EPOCH})::bigint), 0)
              AS "eventsThisSecond",
            -- in_flight rows are few (bounded by worker concurrency): the partial lease index finds them.
            (SELECT count(*)::int FROM deliveries
              WHERE status = 'in_flight' AND tenant_id = q.tenant_id) AS "inFlightDeliveries",
            (SELECT count(*)::int FROM dead_letter_queue WHERE tenant_id = q.tenant_id) AS "dlqSize"
       FROM quotas q WHERE q.tenant_id = $1`,
    [tenantId],
  );
  return rows[0];
}

/** Changes the given limits; undefined if there is no such tenant. Returns the limits before and after. */
export async function updateQuotaLimits(
  db: Queryable,
  tenantId: string,
  changes: Partial<QuotaLimits>,
): Promise<{ before: QuotaLimits; after: QuotaLimits } | undefined> {
  const { rows } = await db.query<{ before: QuotaLimits; after: QuotaLimits }>(
    `WITH old AS (SELECT * FROM quotas WHERE tenant_id = $1 FOR UPDATE)
     UPDATE quotas q
        SET max_events_per_sec = coalesce($2, q.max_events_per_sec),
            max_concurrent_deliveries = coalesce($3, q.max_concurrent_deliveries),
            max_dlq_size = coalesce($4, q.max_dlq_size),
            updated_at = now()
       FROM old WHERE q.tenant_id = old.tenant_id
     RETURNING json_build_object('maxEventsPerSec', old.max_events_per_sec,
                                 'maxConcurrentDeliveries', old.max_concurrent_deliveries,
                                 'maxDlqSize', old.max_dlq_size) AS before,
               json_build_object('maxEventsPerSec', q.max_events_per_sec,
                                 'maxConcurrentDeliveries', q.max_concurrent_deliveries,
                                 'maxDlqSize', q.max_dlq_size) AS after`,
    [
      tenantId,
      changes.maxEventsPerSec ?? null,
      changes.maxConcurrentDeliveries ?? null,
      changes.maxDlqSize ?? null,
    ],
  );
  return rows[0];
}
