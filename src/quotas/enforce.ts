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
 * Takes n events (a batch counts as its number of events) from the tenant's current second, or throws
 * 429 rate_limited with Retry-After. Call it after the input is validated and before anything is stored.
 */
export async function enforceEventQuota(
  ctx: { pool: pg.Pool; logger?: Logger },
  tenantId: string,
  n: number,
): Promise<QuotaGrant> {
  const decision = await limiterFor(ctx).consume(tenantId, n);
  if (!decision.ok) throw AppError.rateLimited(decision.retryAfterSeconds, decision.message);
  return decision.grant;
}

/** Gives back a grant whose ingest did not store the events (it failed, or was an idempotent replay). */
export async function releaseEventQuota(
  ctx: { pool: pg.Pool; logger?: Logger },
  grant: QuotaGrant,
): Promise<void> {
  if (grant.n > 0) await limiterFor(ctx).refund(grant);
}
