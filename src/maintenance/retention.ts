/**
 * Retention: each kind of history goes after its own period (RetentionPolicy, from RETENTION_*_DAYS).
 *
 * - Attempts go a whole UTC day at a time: a partition dropped (partitions.ts), constant time, no dead
 *   rows. Only the default partition's rows, which should not exist, are deleted row by row.
 * - Everything else is deleted in bounded batches, so that no statement holds many locks or builds one
 *   giant transaction, and so that a shutdown can stop it between batches (the next run carries on
 *   where the data says, not where this run stopped).
 *
 * Order: finished deliveries (their DLQ rows cascade), then events no delivery references any more (an
 * event is kept as long as any of its deliveries is live or young), then the payloads of the events
 * that stay (none that a live or dead-lettered delivery may still send), then the audit log.
 */
import type pg from 'pg';
import type { RetentionPolicy } from '../config.js';
import { withTransaction } from '../db/pool.js';
import { deleteDefaultAttemptsBefore } from '../queries/partitions.js';
import {
  allowRetentionWrites,
  deleteAuditBefore,
  deleteFinishedDeliveriesBatch,
  deleteOrphanEventsBatch,
  emptyPayloads,
  FIRST_ID,
  lockPayloadCandidates,
  retentionCutoffs,
  type KeysetBatch,
  type RetentionCutoffs,
} from '../queries/retention.js';
import { maintainAttemptPartitions, PARTITION_DEFAULTS } from './partitions.js';

export interface RetentionOptions {
  policy: RetentionPolicy;
  /** Rows per statement: large enough to amortise round trips, small enough to keep locks short. */
  batchSize: number;
  /** Aborting stops the run after the current batch (shutdown). */
  signal?: AbortSignal;
  /** How long dropping one day of attempts waits for its lock (default PARTITION_DEFAULTS). */
  lockTimeoutMs?: number;
}

export interface RetentionResult {
  cutoffs: RetentionCutoffs;
  /** Days of attempts dropped whole. */
  attemptDays: number;
  /** Attempts deleted row by row from the default partition. */
  defaultAttempts: number;
  /** Finished deliveries deleted, dead-lettered ones included. */
  deliveries: number;
  /** Of those, dead-lettered ones (their DLQ rows went with them). */
  deadLetters: number;
  events: number;
  /** Events whose payload was emptied. */
  payloads: number;
  audit: number;
  /** Days of attempts left for the next run: their lock was not granted within the lock timeout. */
  attemptDaysDeferred: number;
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

const later = (a: Date, b: Date) => (a > b ? a : b);

export async function runRetention(pool: pg.Pool, options: RetentionOptions): Promise<RetentionResult> {
  const { policy, batchSize, signal } = options;
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new RangeError('batchSize must be a positive integer');
  const stopped = () => signal?.aborted === true;

  const cutoffs = await retentionCutoffs(pool, policy);
  const result: RetentionResult = {
    cutoffs,
    attemptDays: 0,
    defaultAttempts: 0,
    deliveries: 0,
    deadLetters: 0,
    events: 0,
    payloads: 0,
    audit: 0,
    attemptDaysDeferred: 0,
    complete: false,
  };

  const partitions = await maintainAttemptPartitions(pool, {
    daysAhead: PARTITION_DEFAULTS.daysAhead,
    attemptDays: policy.attemptDays,
    lockTimeoutMs: options.lockTimeoutMs ?? PARTITION_DEFAULTS.lockTimeoutMs,
    ...(signal ? { signal } : {}),
  });
  result.attemptDays = partitions.dropped;
  result.attemptDaysDeferred = partitions.lockTimeouts;
  result.defaultAttempts = await repeat((limit) =>
    deleteDefaultAttemptsBefore(pool, cutoffs.attempts, limit),
  );

  // Walks ids below idBound with a key cursor; each batch is its own short statement (or transaction).
  const walk = async <B extends KeysetBatch>(
    batch: (afterId: string) => Promise<B>,
    add: (b: B) => void,
  ): Promise<void> => {
    let afterId = FIRST_ID;
    while (!stopped()) {
      const b = await batch(afterId);
      add(b);
      if (b.scanned < batchSize || b.lastId === null) break;
      afterId = b.lastId;
    }
  };

  // Finished deliveries: succeeded and cancelled by the records cutoff, dead-lettered by the DLQ one.
  const deliveriesBound = uuidV7Floor(later(cutoffs.records, cutoffs.deadLetters));
  await walk(
    (afterId) => deleteFinishedDeliveriesBatch(pool, cutoffs, deliveriesBound, afterId, batchSize),
    (b) => {
      result.deliveries += b.deleted;
      result.deadLetters += b.deadLetters;
    },
  );
  const eventsBound = uuidV7Floor(cutoffs.records);
  await walk(
    (afterId) =>
      withTransaction(pool, async (client) => {
        await allowRetentionWrites(client);
        return deleteOrphanEventsBatch(client, cutoffs.records, eventsBound, afterId, batchSize);
      }),
    (b) => (result.events += b.deleted),
  );
  const payloadsBound = uuidV7Floor(cutoffs.payloads);
  await walk(
    (afterId) =>
      withTransaction(pool, async (client) => {
        await allowRetentionWrites(client);
        const c = await lockPayloadCandidates(client, cutoffs.payloads, payloadsBound, afterId, batchSize);
        return { scanned: c.scanned, lastId: c.lastId, deleted: await emptyPayloads(client, c.locked) };
      }),
    (b) => (result.payloads += b.deleted),
  );
  result.audit = await repeat((limit) => deleteAuditBefore(pool, cutoffs.audit, limit));
  result.complete = !stopped();
  return result;

  /** Runs a "delete up to limit" statement until it deletes fewer (or the run is stopped). */
  async function repeat(step: (limit: number) => Promise<number>): Promise<number> {
    let total = 0;
    while (!stopped()) {
      const n = await step(batchSize);
      total += n;
      if (n < batchSize) break;
    }
    return total;
  }
}
