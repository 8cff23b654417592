/**
 * What the ingest path calls: take the tenant's events from its per-second quota or answer 429.
 *
 * The quota is taken in its own short statement before the ingest transaction, not inside it: inside,
 * the counter row would stay locked until the ingest commits, serialising every ingest of a tenant.
 * If the ingest then fails, `releaseEventQuota` gives the events back.
 */
import type pg from 'pg';
import { AppError } from '../errors.js';
import type { Logger } from '../logger.js';
import { EventRateLimiter, type QuotaGrant } from './event-rate-limiter.js';
import { noteEventRateExceeded } from '../queries/notices.js';

export type { QuotaGrant } from './event-rate-limiter.js';

/** One limiter per pool (per process, in practice): it holds the coalescing queues. */
const limiters = new WeakMap<pg.Pool, EventRateLimiter>();

function limiterFor(ctx: { pool: pg.Pool; logger?: Logger }): EventRateLimiter {
  let limiter = limiters.get(ctx.pool);
  if (!limiter) {
    limiter = new EventRateLimiter(ctx.pool, ctx.logger);
    limiters.set(ctx.pool, limiter);
  }
  return limiter;
}

/**
 * Takes the events of one request from their tenants' current second: one entry per event, so a batch
 * counts as its number of events (an admin batch may span tenants; each is checked). If any tenant is
 * over its limit, whatever was taken is given back and 429 rate_limited with Retry-After is thrown.
 * Call it after the input is validated and before anything is stored. An idempotent replay counts:
 * it is a request served.
 */
export async function enforceEventQuota(
  ctx: { pool: pg.Pool; logger?: Logger },
  tenantIds: readonly string[],
): Promise<QuotaGrant[]> {
  const counts = new Map<string, number>();
  for (const id of tenantIds) counts.set(id, (counts.get(id) ?? 0) + 1);
  const limiter = limiterFor(ctx);
  const decisions = await Promise.all([...counts].map(([id, n]) => limiter.consume(id, n)));
  const grants = decisions.flatMap((d) => (d.ok ? [d.grant] : []));
  const refusedAt = decisions.findIndex((d) => !d.ok);
  const refused = decisions[refusedAt];
  if (refused && !refused.ok) {
    void releaseEventQuota(ctx, grants);
    noteRefusal(ctx, [...counts.keys()][refusedAt]!);
    throw AppError.rateLimited(refused.retryAfterSeconds, refused.message);
  }
  return grants;
}

/** Per pool: when each tenant's last refusal was noted, so a flood of 429s writes once a second. */
const lastNoted = new WeakMap<pg.Pool, Map<string, number>>();
const NOTE_EVERY_MS = 1000;

/**
 * A refusal goes into the tenant's postbox.tenant.quota_exceeded digest (sent as an operational
 * notice at most once a minute), at most once a second per tenant and process. Not awaited: the 429
 * does not wait for it, and a failure to note it only costs the notice.
 */
function noteRefusal(ctx: { pool: pg.Pool; logger?: Logger }, tenantId: string): void {
  let noted = lastNoted.get(ctx.pool);
  if (!noted) lastNoted.set(ctx.pool, (noted = new Map()));
  const now = Date.now();
  if ((noted.get(tenantId) ?? 0) > now - NOTE_EVERY_MS) return;
  if (noted.size > 10_000) noted.clear();
  noted.set(tenantId, now);
  noteEventRateExceeded(ctx.pool, tenantId).catch((err: Error) =>
    ctx.logger?.warn('could not note an exceeded quota', { tenant_id: tenantId, error: err.message }),
  );
}

/** Gives back grants whose events were not stored (the ingest failed). Never throws. */
export async function releaseEventQuota(
  ctx: { pool: pg.Pool; logger?: Logger },
  grants: readonly QuotaGrant[],
): Promise<void> {
  const limiter = limiterFor(ctx);
  await Promise.all(grants.filter((g) => g.n > 0).map((g) => limiter.refund(g)));
}
