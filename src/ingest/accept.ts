/**
 * Accepting events, the use-case behind POST /events and /events/batch: take the tenants' quota,
 * write through the group commit, give the quota back if the write failed, count what was stored.
 * The routes parse and answer; this decides.
 */
import type pg from 'pg';
import type { Logger } from '../logger.js';
import type { Metrics } from '../observability/metrics.js';
import { enforceEventQuota, releaseEventQuota } from '../quotas/enforce.js';
import { ingestGroupCommitFor } from './group-commit.js';
import { ingestFailure, type EventInput, type IngestResult } from './ingest.js';

export interface AcceptContext {
  pool: pg.Pool;
  logger: Logger;
  metrics: Pick<Metrics, 'eventsIngested'>;
}

/** Results in the order of `events`; throws 429 over quota, or the ingest's own AppError. */
export async function acceptEvents(
  ctx: AcceptContext,
  events: EventInput[],
  requestId?: string,
  /** Where event `ord` of `events` is in the request, for error paths (`events.3.` in a batch). */
  eventPath?: (ord: number) => string,
): Promise<IngestResult[]> {
  // The quota is taken before the write, in its own statement (why: src/quotas/enforce.ts).
  const grants = await enforceEventQuota(
    ctx,
    events.map((e) => e.tenantId),
  );
  let results: IngestResult[];
  try {
    results = await ingestGroupCommitFor(ctx.pool).ingest(events);
  } catch (err) {
    void releaseEventQuota(ctx, grants);
    throw ingestFailure(err, ctx.logger, requestId, eventPath);
  }
  // Outside the try: the events are stored, so nothing after this may give their quota back.
  ctx.metrics.eventsIngested(results.filter((r) => r.created).length);
  return results;
}
