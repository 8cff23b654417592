/**
 * The queue gauges' data: read from PostgreSQL on scrape, at most once per `ttlMs` however many
 * gauges (or scrapers) ask, and never holding a scrape longer than `maxWaitMs`: a slow or absent
 * database makes /metrics serve the last values (and postbox_queue_stats_up 0), not hang.
 */
import type pg from 'pg';
import { withTransaction } from '../db/pool.js';
import { readQueueStats, setLocalStatementTimeout, type RawQueueStats } from '../queries/metrics.js';
import { ScrapeCache } from './scrape-cache.js';

/** The queue by state; the states partition open deliveries (due + held + parked + scheduled = pending). */
export interface QueueStats {
  /** Due and claimable now (webhook live, below its limits, breaker not open): what workers should take. */
  due: number;
  /** Due but held back on purpose: open breaker, or the webhook's or tenant's concurrency limit is full. */
  held: number;
  /** Pending for a disabled or deleted webhook: waits for it to be re-enabled, not for a worker. */
  parked: number;
  /** Pending, waiting out a retry backoff (next_attempt_at in the future). */
  scheduled: number;
  inFlight: number;
  leasesExpired: number;
  deadLetters: number;
  /** Age of the oldest claimable due delivery: only work a worker could take now ages it. */
  oldestDueSeconds: number;
}

export interface QueueStatsOptions {
  pool: pg.Pool;
  /** Reuse a reading this long (default 5 s): scrapes are cheap, and several gauges share one read. */
  ttlMs?: number;
  /** Counts stop at this many rows, then the planner's estimate takes over (default 10,000). */
  cap?: number;
  /** statement_timeout of the read (default 2 s). */
  statementTimeoutMs?: number;
  /** A scrape waits at most this long for a fresh reading, then serves the last one (default 2.5 s). */
  maxWaitMs?: number;
}

export const QUEUE_STATS_DEFAULTS = Object.freeze({
  ttlMs: 5_000,
  cap: 10_000,
  statementTimeoutMs: 2_000,
  maxWaitMs: 2_500,
});

/**
 * Exact counts below the cap; at the cap, the planner's estimate (never less than the cap). Pending
 * rows are one index (deliveries_due_idx), so its estimate covers every pending group together: the
 * head of due rows (due + held + parked), the rows parked at 'infinity' and the scheduled ones. The
 * estimate minus the exact groups goes to the capped ones: each capped group other than the head
 * reads the cap, and the head takes the rest (the numbers alerts look at err high, not low). A capped
 * head is split into due, held and parked in the proportion read; claimable webhooks found behind an
 * all-held head make `due` at least one row each. Pure.
 */
export function resolveQueueStats(raw: RawQueueStats, cap: number): QueueStats {
  const capped = (n: number) => n >= cap;
  const headRead = raw.due + raw.held + raw.parked;
  const groups = [headRead, raw.parkedInfinity, raw.scheduled];
  let [head, parkedInfinity, scheduled] = groups as [number, number, number];
  if (groups.some(capped)) {
    const pending = Math.max(Math.round(raw.pendingEstimate), head + parkedInfinity + scheduled);
    const exact = groups.filter((n) => !capped(n)).reduce((a, n) => a + n, 0);
    const cappedOthers = [parkedInfinity, scheduled].filter(capped).length;
    const rest = pending - exact;
    if (capped(head)) head = Math.max(cap, rest - cappedOthers * cap);
    else if (capped(parkedInfinity) && capped(scheduled)) {
      // Both tails capped and the head exact: the scheduled side takes the remainder.
      scheduled = Math.max(cap, rest - cap);
    } else if (capped(parkedInfinity)) parkedInfinity = Math.max(cap, rest);
    else scheduled = Math.max(cap, rest);
  }
  const share = (n: number) => (headRead === 0 ? 0 : Math.round((head * n) / headRead));
  const due = Math.max(share(raw.due), raw.due > 0 ? 0 : raw.dueWebhooksBehind);
  const held = share(raw.held);
  return {
    due,
    held,
    parked: Math.max(0, head - share(raw.due) - held) + parkedInfinity,
    scheduled,
    inFlight: capped(raw.inFlight) ? Math.max(cap, Math.round(raw.inFlightEstimate)) : raw.inFlight,
    // No index of its own to estimate from: a lower bound is all an alert needs.
    leasesExpired: raw.leasesExpired,
    deadLetters: capped(raw.deadLetters)
      ? Math.max(cap, Math.round(raw.deadLettersEstimate))
      : raw.deadLetters,
    oldestDueSeconds: Math.max(0, raw.oldestDueSeconds),
  };
}

export class QueueStatsReader {
  private readonly cache: ScrapeCache<QueueStats>;

  constructor(options: QueueStatsOptions) {
    const o: Required<QueueStatsOptions> = { ...QUEUE_STATS_DEFAULTS, ...options };
    this.cache = new ScrapeCache({
      ttlMs: o.ttlMs,
      maxWaitMs: o.maxWaitMs,
      read: async () => {
        const raw = await withTransaction(o.pool, async (client) => {
          await setLocalStatementTimeout(client, o.statementTimeoutMs);
          return readQueueStats(client, o.cap);
        });
        return resolveQueueStats(raw, o.cap);
      },
    });
  }

  /** Whether the latest read succeeded and is recent (false before the first, and while a read hangs). */
  get healthy(): boolean {
    return this.cache.healthy;
  }

  /** The latest values (fresh within ttlMs when the database answers in time), or undefined before any. */
  get(): Promise<QueueStats | undefined> {
    return this.cache.get();
  }
}
