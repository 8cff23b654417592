/**
 * The daily partitions of delivery_attempts: today's and the next days' are created ahead, and days
 * entirely past the attempt retention are dropped whole: a catalog change that takes the same time
 * for ten rows or ten million, and leaves no dead rows for vacuum (docs/design.md, "History").
 *
 * Each partition is created or dropped in a transaction of its own under a short lock_timeout: a DROP
 * needs an exclusive lock on delivery_attempts, and waiting long for it would queue the recorder's
 * inserts behind it. A day that cannot get its lock in time is left for the next run (hourly).
 */
import type pg from 'pg';
import { withTransaction } from '../db/pool.js';
import {
  attemptPartitionsEndingBy,
  createAttemptPartition,
  dropAttemptPartition,
  setLocalLockTimeout,
} from '../queries/partitions.js';
import { retentionCutoff } from '../queries/retention.js';

export interface PartitionOptions {
  /** Days after today that get their partition ahead of time (today always does). */
  daysAhead: number;
  /** Attempts are kept this many days (RETENTION_ATTEMPT_DAYS); a day is dropped once entirely older. */
  attemptDays: number;
  /** How long one create or drop waits for its lock before it gives up until the next run. */
  lockTimeoutMs: number;
  /** Aborting stops between partitions (shutdown). */
  signal?: AbortSignal;
}

export const PARTITION_DEFAULTS = Object.freeze({ daysAhead: 3, lockTimeoutMs: 2000 });

export interface PartitionResult {
  created: number;
  dropped: number;
  /** Partitions (created or dropped) left for the next run because their lock was not granted in time. */
  lockTimeouts: number;
}

const LOCK_NOT_AVAILABLE = '55P03';

const isLockTimeout = (err: unknown) => (err as { code?: unknown }).code === LOCK_NOT_AVAILABLE;

/** Runs one DDL step in a transaction under lock_timeout; 'busy' when a lock was not granted in time. */
async function underLockTimeout<T>(
  pool: pg.Pool,
  lockTimeoutMs: number,
  step: (client: pg.PoolClient) => Promise<T>,
): Promise<T | 'busy'> {
  try {
    return await withTransaction(pool, async (client) => {
      await setLocalLockTimeout(client, lockTimeoutMs);
      return step(client);
    });
  } catch (err) {
    if (isLockTimeout(err)) return 'busy';
    throw err;
  }
}

export async function maintainAttemptPartitions(
  pool: pg.Pool,
  options: PartitionOptions,
): Promise<PartitionResult> {
  const { daysAhead, attemptDays, lockTimeoutMs, signal } = options;
  const result: PartitionResult = { created: 0, dropped: 0, lockTimeouts: 0 };
  // Today first: it is the one inserts need now.
  for (let day = 0; day <= daysAhead && !signal?.aborted; day++) {
    const created = await underLockTimeout(pool, lockTimeoutMs, (client) =>
      createAttemptPartition(client, day),
    );
    if (created === 'busy') result.lockTimeouts++;
    else if (created) result.created++;
  }
  const cutoff = await retentionCutoff(pool, attemptDays);
  for (const partition of await attemptPartitionsEndingBy(pool, cutoff)) {
    if (signal?.aborted) break;
    const dropped = await underLockTimeout(pool, lockTimeoutMs, (client) =>
      dropAttemptPartition(client, partition.name),
    );
    if (dropped === 'busy') result.lockTimeouts++;
    else if (dropped) result.dropped++;
  }
  return result;
}
