/**
 * max_events_per_sec across every process sharing the database. The count lives in rate_windows and
 * is changed only by consumeEventQuota's single statement, so the limit holds however many API
 * processes run. This class makes that statement cheap on the hot path:
 *
 * - Coalescing: per tenant, at most one statement is in flight per process; requests that arrive
 *   meanwhile are added up and sent together. Concurrent upserts of one row wait for each other's
 *   commit (a WAL flush each), so one statement per request would cap a busy tenant at the disk's
 *   flush rate. Requests are still all-or-nothing: a refused group is split in arrival order.
 * - Local refusal: once a statement reports the window's count, any request larger than what is left
 *   is refused here until the window ends. Counts only grow within a window, so this never refuses
 *   what the database would have accepted (short of a refund).
 */
import type pg from 'pg';
import type { Logger } from '../logger.js';
import { consumeEventQuota, deleteOldRateWindows, refundEventQuota } from '../queries/quotas.js';

/** What a granted request took: give it back with `refund` if the ingest does not happen. */
export interface QuotaGrant {
  tenantId: string;
  windowStart: number;
  n: number;
}

export type QuotaDecision =
  { ok: true; grant: QuotaGrant } | { ok: false; retryAfterSeconds: number; message: string };

interface Pending {
  n: number;
  resolve(decision: QuotaDecision): void;
  reject(err: unknown): void;
}

interface TenantState {
  /** Window last reported by the database, what is left in it (an upper bound), and the limit. */
  windowStart: number;
  remaining: number;
  limit: number;
  busy: boolean;
  queue: Pending[];
}

/** Local knowledge of a window is dropped this long before the window ends (clock estimate slack). */
const WINDOW_SLACK_SECONDS = 0.05;
/** Rounds of a refused group before the rest is refused outright (only under heavy contention). */
const MAX_ROUNDS = 5;
const CLEANUP_INTERVAL_MS = 30_000;

export class EventRateLimiter {
  private readonly tenants = new Map<string, TenantState>();
  /** Database clock minus local clock, in seconds, from the last statement. */
  private clockOffset = 0;
  private lastCleanup = Date.now();

  constructor(
    private readonly pool: pg.Pool,
    private readonly logger?: Logger,
  ) {}

  /** Takes n events from the tenant's current window, or says why not. */
  consume(tenantId: string, n: number): Promise<QuotaDecision> {
    let state = this.tenants.get(tenantId);
    if (!state) {
      state = { windowStart: 0, remaining: Infinity, limit: Infinity, busy: false, queue: [] };
      this.tenants.set(tenantId, state);
    }
    if (this.windowKnown(state) && n > state.remaining) return Promise.resolve(this.refusal(n, state));
    const s = state;
    return new Promise<QuotaDecision>((resolve, reject) => {
      s.queue.push({ n, resolve, reject });
      if (!s.busy) void this.drain(tenantId, s);
    });
  }

  /** Gives back what a grant took; best effort (a lost refund only makes the window stricter). */
  async refund(grant: QuotaGrant): Promise<void> {
    const state = this.tenants.get(grant.tenantId);
    if (state && state.windowStart === grant.windowStart) state.remaining += grant.n;
    try {
      await refundEventQuota(this.pool, grant.tenantId, grant.windowStart, grant.n);
    } catch (err) {
      this.logger?.warn('event quota refund failed', { tenant_id: grant.tenantId, error: String(err) });
    }
  }

  private dbNow(): number {
    return Date.now() / 1000 + this.clockOffset;
  }

  private windowKnown(state: TenantState): boolean {
    return this.dbNow() < state.windowStart + 1 - WINDOW_SLACK_SECONDS;
  }

  private refusal(n: number, state: { windowStart: number; limit: number }): QuotaDecision {
    const retryAfterSeconds = Math.max(1, Math.ceil(state.windowStart + 1 - this.dbNow()));
    const message =
      n > state.limit
        ? `${n} events are more than max_events_per_sec (${state.limit}) allows in one second; send smaller batches`
        : `over max_events_per_sec (${state.limit}); retry after the current second`;
    return { ok: false, retryAfterSeconds, message };
  }

  private async drain(tenantId: string, state: TenantState): Promise<void> {
    state.busy = true;
    try {
      while (state.queue.length > 0) {
        const batch = state.queue.splice(0);
        try {
          await this.settle(tenantId, state, batch);
        } catch (err) {
          for (const p of batch) p.reject(err);
        }
      }
    } finally {
      state.busy = false;
    }
    this.maybeCleanup();
  }

  /** Resolves every request of the batch: one statement when they fit together, more if not. */
  private async settle(tenantId: string, state: TenantState, batch: Pending[]): Promise<void> {
    let open = batch;
    for (let round = 0; open.length > 0; round++) {
      if (round === MAX_ROUNDS) {
        for (const p of open) p.resolve(this.refusal(p.n, state));
        return;
      }
      const total = open.reduce((sum, p) => sum + p.n, 0);
      const result = await consumeEventQuota(this.pool, tenantId, total);
      if (!result) {
        // No such tenant (the admin named one): nothing to count; the ingest answers 404 for it.
        for (const p of open) p.resolve({ ok: true, grant: { tenantId, windowStart: 0, n: 0 } });
        return;
      }
      this.clockOffset = result.now - Date.now() / 1000;
      state.windowStart = result.windowStart;
      state.limit = result.limit;
      state.remaining = result.limit - result.count;
      if (result.granted) {
        for (const p of open)
          p.resolve({ ok: true, grant: { tenantId, windowStart: result.windowStart, n: p.n } });
        return;
      }
      // Refused together: keep those that fit in what is left (in arrival order), refuse the others,
      // and try again with the keepers. If all fit, the count read was stale: the next round sees more.
      let left = state.remaining;
      const keep: Pending[] = [];
      for (const p of open) {
        if (p.n <= left) {
          keep.push(p);
          left -= p.n;
        } else {
          p.resolve(this.refusal(p.n, state));
        }
      }
      open = keep;
    }
  }

  /** Now and then: delete old windows and forget idle tenants. */
  private maybeCleanup(): void {
    if (Date.now() - this.lastCleanup < CLEANUP_INTERVAL_MS) return;
    this.lastCleanup = Date.now();
    for (const [id, s] of this.tenants) if (!s.busy && !this.windowKnown(s)) this.tenants.delete(id);
    deleteOldRateWindows(this.pool).catch((err: unknown) =>
      this.logger?.warn('deleting old rate windows failed', { error: String(err) }),
    );
  }
}
