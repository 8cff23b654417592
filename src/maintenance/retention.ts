/**
 * Retention: deletes what is older than the retention period, in bounded batches so that no statement
 * holds many locks or builds one giant transaction, and so that a shutdown can stop it between
 * batches (the next run carries on where the data says, not where this run stopped).
 *
 * Order matters: old attempts first (the bulk of the rows), then finished deliveries (their DLQ rows
 * and remaining attempts cascade), then events that no delivery references any more. An event is
 * therefore kept as long as any of its deliveries is live or young.
 */
import type pg from 'pg';
import { withTransaction } from '../db/pool.js';
import {
  allowEventDeletion,
  deleteAttemptsBefore,
  deleteFinishedDeliveriesBatch,
  deleteOrphanEventsBatch,
  FIRST_ID,
  retentionCutoff,
  type KeysetBatch,
} from '../queries/retention.js';

export interface RetentionOptions {
  /** Rows older than this many days are deleted (RETENTION_DAYS). */
  olderThanDays: number;
  /** Rows per statement: large enough to amortise round trips, small enough to keep locks short. */
  batchSize: number;
  /** Aborting stops the run after the current batch (shutdown). */
  signal?: AbortSignal;
}

export interface RetentionResult {
  cutoff: Date;
  attempts: number;
  deliveries: number;
  events: number;
  /** false when the signal stopped the run early. */
  complete: boolean;
}

/**
 * The smallest UUID whose 48-bit UUIDv7 time prefix is `at`: every id generated before `at` sorts
 * below it, every id generated at or after it sorts at or above it.
 */
export function uuidV7Floor(at: Date): string {
  const hex = Math.max(0, Math.floor(at.getTime())).toString(16).padStart(12, '0');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-0000-0000-000000000000`;
}

export async function runRetention(pool: pg.Pool, options: RetentionOptions): Promise<RetentionResult> {
  const { olderThanDays, batchSize, signal } = options;
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new RangeError('batchSize must be a positive integer');
  const stopped = () => signal?.aborted === true;

  const cutoff = await retentionCutoff(pool, olderThanDays);
  const idBound = uuidV7Floor(cutoff);
  const result: RetentionResult = { cutoff, attempts: 0, deliveries: 0, events: 0, complete: false };

  while (!stopped()) {
    const n = await deleteAttemptsBefore(pool, cutoff, batchSize);
    result.attempts += n;
    if (n < batchSize) break;
  }

  // Walks ids below idBound with a key cursor; each batch is its own short statement (or transaction).
  const walk = async (batch: (afterId: string) => Promise<KeysetBatch>): Promise<number> => {
    let afterId = FIRST_ID;
    let deleted = 0;
    while (!stopped()) {
      const b = await batch(afterId);
      deleted += b.deleted;
      if (b.scanned < batchSize || b.lastId === null) break;
      afterId = b.lastId;
    }
    return deleted;
  };

  result.deliveries = await walk((afterId) =>
    deleteFinishedDeliveriesBatch(pool, cutoff, idBound, afterId, batchSize),
  );
  result.events = await walk((afterId) =>
    withTransaction(pool, async (client) => {
      await allowEventDeletion(client);
      return deleteOrphanEventsBatch(client, cutoff, idBound, afterId, batchSize);
    }),
  );
  result.complete = !stopped();
  return result;
}
