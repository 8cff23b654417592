/**
 * Worker presence: each delivery engine holds a session-level advisory lock keyed by its worker id
 * (lease_owner) on its LISTEN connection for as long as it lives. PostgreSQL releases a session lock
 * the moment the session ends, so "the lock is free" means "that worker's process is gone" (its
 * socket was closed: kill -9, crash, OOM), and its leases need not be waited out.
 * Why a lock and not a heartbeat row: docs/design.md ("Dead workers").
 */
import type { Queryable } from '../db/pool.js';

/** Advisory-lock class (first key of the two-key form) of presence locks: 'PBWK'. */
export const WORKER_LOCK_CLASS = 0x5042574b;

/** Takes this worker's presence lock on the session of `db`; false if another session holds it. */
export async function announceWorker(db: Queryable, workerId: string): Promise<boolean> {
  const { rows } = await db.query<{ held: boolean }>({
    name: 'postbox_announce_worker',
    text: 'SELECT pg_try_advisory_lock($1, hashtext($2)) AS held',
    values: [WORKER_LOCK_CLASS, workerId],
  });
  return rows[0]?.held === true;
}

/**
 * Ends the leases of workers that are gone: in-flight rows whose lease_owner holds no presence lock
 * get lease_expires_at = now(), so the next claim rescues them (recording the lost attempt) instead
 * of waiting for the lease. A worker is probed with a transaction-level try-lock on its key, which
 * succeeds only if no session holds it, and is released with this statement.
 * Returns the owners whose leases were ended, once per row.
 */
export async function expireLeasesOfGoneWorkers(db: Queryable, selfId: string): Promise<string[]> {
  const { rows } = await db.query<{ owner: string }>({
    name: 'postbox_expire_leases_of_gone_workers',
    text: `WITH owners AS (
         SELECT DISTINCT lease_owner FROM deliveries
          WHERE status = 'in_flight' AND lease_expires_at > now() AND lease_owner <> $1
       ), gone AS (
         SELECT lease_owner FROM owners WHERE pg_try_advisory_xact_lock($2, hashtext(lease_owner))
       )
       UPDATE deliveries d SET lease_expires_at = now(), updated_at = now()
         FROM gone
        WHERE d.status = 'in_flight' AND d.lease_owner = gone.lease_owner AND d.lease_expires_at > now()
       RETURNING d.lease_owner AS owner`,
    values: [selfId, WORKER_LOCK_CLASS],
  });
  return rows.map((r) => r.owner);
}
