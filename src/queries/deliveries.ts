/**
 * The delivery engine's SQL: claim due work (claim.ts), record outcomes in batches (record.ts), release
 * claims on shutdown (here).
 *
 * Claim, commit, then send: no transaction or row lock is held across an HTTP call. A claim marks rows
 * in_flight under a lease; every later write is guarded by "still in flight, under my lease, for this
 * attempt", so a delivery whose lease ran out and was taken by another worker is never clobbered.
 */
import type { Queryable } from '../db/pool.js';

export * from './claim.js';
export * from './record.js';

/**
 * Gives claimed deliveries whose request never went out back (shutdown): pending, due now, the
 * claim's attempt increment undone, lease cleared. Without `ids`, everything this worker still holds
 * (call it after the recorder has written every finished or interrupted attempt). Returns how many
 * were released.
 */
export async function releaseClaims(
  db: Queryable,
  workerId: string,
  ids?: readonly string[],
): Promise<number> {
  const { rowCount } = await db.query(
    `UPDATE deliveries
        SET status = 'pending', attempts = greatest(attempts - 1, 0),
            -- A webhook disabled meanwhile: parked with the rest of its deliveries.
            next_attempt_at = CASE WHEN EXISTS (SELECT 1 FROM webhooks w WHERE w.id = webhook_id AND NOT w.enabled)
                                   THEN 'infinity' ELSE now() END,
            lease_owner = NULL, lease_expires_at = NULL, updated_at = now()
      WHERE status = 'in_flight' AND lease_owner = $1 AND ($2::uuid[] IS NULL OR id = ANY($2::uuid[]))`,
    [workerId, ids ?? null],
  );
  return rowCount ?? 0;
}
