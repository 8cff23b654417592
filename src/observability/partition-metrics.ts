/**
 * The daily partitions of delivery_attempts, as two gauges read on scrape: how far ahead partitions
 * exist, and rows that fell into the default partition. Either going wrong means the partition job is
 * not running (or a clock is far off); see runbooks/history-retention.md.
 *
 * Read through a ScrapeCache at most once a minute (partitions change hourly at most), under a
 * statement timeout, and never holding a scrape longer than `maxWaitMs`.
 */
import type pg from 'pg';
import { Gauge, type Registry } from 'prom-client';
import { withTransaction } from '../db/pool.js';
import { setLocalStatementTimeout } from '../queries/metrics.js';
import { readAttemptPartitionStats, type AttemptPartitionStats } from '../queries/partitions.js';
import { ScrapeCache } from './scrape-cache.js';

export interface PartitionMetricsOptions {
  /** Reuse a reading this long (default 60 s). */
  ttlMs?: number;
  /** The default partition is counted up to this many rows (default 10,000). */
  cap?: number;
  /** statement_timeout of the read (default 2 s). */
  statementTimeoutMs?: number;
  /** A scrape waits at most this long for a fresh reading, then serves the last one (default 2.5 s). */
  maxWaitMs?: number;
}

export const PARTITION_METRICS_DEFAULTS = Object.freeze({
  ttlMs: 60_000,
  cap: 10_000,
  statementTimeoutMs: 2_000,
  maxWaitMs: 2_500,
});

export function registerPartitionMetrics(
  registry: Registry,
  pool: pg.Pool,
  options: PartitionMetricsOptions = {},
): void {
  const o = { ...PARTITION_METRICS_DEFAULTS, ...options };
  const cache = new ScrapeCache<AttemptPartitionStats>({
    ttlMs: o.ttlMs,
    maxWaitMs: o.maxWaitMs,
    read: () =>
      withTransaction(pool, async (client) => {
        await setLocalStatementTimeout(client, o.statementTimeoutMs);
        return readAttemptPartitionStats(client, o.cap);
      }),
  });

  new Gauge({
    name: 'postbox_attempt_partitions_ahead_seconds',
    help: 'How far ahead of now delivery_attempts has daily partitions, unbroken (about 3 days after the hourly job; 0: none covers now, so new attempts land in the default partition).',
    registers: [registry],
    async collect() {
      const s = await cache.get();
      if (s) this.set(s.coveredAheadSeconds);
    },
  });
  new Gauge({
    name: 'postbox_attempt_partition_default_rows',
    help: 'Delivery attempts in the default partition of delivery_attempts (no daily partition covered their start time); should be 0. Counted up to 10,000.',
    registers: [registry],
    async collect() {
      const s = await cache.get();
      if (s) this.set(s.defaultRows);
    },
  });
}
