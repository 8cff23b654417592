import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import type pg from 'pg';
import { createPool } from '../../src/db/pool.js';
import { newId } from '../../src/ids.js';
import { insertTenant } from '../../src/queries/tenants.js';
import { consumeEventQuota, deleteOldRateWindows, refundEventQuota } from '../../src/queries/quotas.js';
import { EventRateLimiter, type QuotaDecision } from '../../src/quotas/event-rate-limiter.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { waitFor } from '../helpers/wait.js';

let db: TestDatabase;
let otherPool: pg.Pool;
beforeAll(async () => {
  db = await createTestDatabase();
  // A second pool stands in for a second Postbox process on the same database.
  otherPool = createPool(db.url, 5);
});
afterAll(async () => {
  await otherPool.end();
  await db.drop();
});

async function tenant(maxEventsPerSec: number): Promise<string> {
  const id = newId();
  await insertTenant(db.pool, {
    id,
    name: 't',
    maxEventsPerSec,
    maxConcurrentDeliveries: 10,
    maxDlqSize: 10,
  });
  return id;
}

/** Waits until the database clock is early in a second, so a short burst stays in one window. */
async function freshSecond(): Promise<void> {
  await waitFor(
    async () => {
      const { rows } = await db.pool.query<{ f: number }>(
        'SELECT extract(epoch FROM clock_timestamp()) % 1 AS f',
      );
      return Number(rows[0]!.f) < 0.4;
    },
    { intervalMs: 10, what: 'the start of a second' },
  );
}

async function windowCounts(tenantId: string): Promise<Map<number, number>> {
  const { rows } = await db.pool.query<{ window_start: string; count: number }>(
    'SELECT window_start, count FROM rate_windows WHERE tenant_id = $1',
    [tenantId],
  );
  return new Map(rows.map((r) => [Number(r.window_start), r.count]));
}

/** Granted events per window, from the decisions themselves. */
function grantedPerWindow(decisions: QuotaDecision[]): Map<number, number> {
  const m = new Map<number, number>();
  for (const d of decisions)
    if (d.ok) m.set(d.grant.windowStart, (m.get(d.grant.windowStart) ?? 0) + d.grant.n);
  return m;
}

describe('consumeEventQuota (the statement)', () => {
  it('adds n only while the window stays within the limit', async () => {
    const id = await tenant(5);
    await freshSecond();
    const a = await consumeEventQuota(db.pool, id, 3);
    const b = await consumeEventQuota(db.pool, id, 3);
    const c = await consumeEventQuota(db.pool, id, 2);
    expect(a).toMatchObject({ granted: true, limit: 5, count: 3 });
    expect(b).toMatchObject({ granted: false, limit: 5, count: 3 });
    expect(c).toMatchObject({ granted: true, limit: 5, count: 5 });
    expect(c!.windowStart).toBe(a!.windowStart);
    expect((await windowCounts(id)).get(a!.windowStart)).toBe(5);
  });

  it('refuses more than the limit at once, even in an empty window', async () => {
    const id = await tenant(5);
    expect(await consumeEventQuota(db.pool, id, 6)).toMatchObject({ granted: false, count: 0 });
    expect((await windowCounts(id)).size).toBe(0);
  });

  it('answers undefined for a tenant without quotas', async () => {
    expect(await consumeEventQuota(db.pool, newId(), 1)).toBeUndefined();
  });

  it('refunds, and deletes windows older than a minute', async () => {
    const id = await tenant(100);
    const r = await consumeEventQuota(db.pool, id, 10);
    await refundEventQuota(db.pool, id, r!.windowStart, 4);
    expect((await windowCounts(id)).get(r!.windowStart)).toBe(6);
    await db.pool.query('INSERT INTO rate_windows (tenant_id, window_start, count) VALUES ($1, $2, 1)', [
      id,
      r!.windowStart - 120,
    ]);
    expect(await deleteOldRateWindows(db.pool)).toBeGreaterThanOrEqual(1);
    expect([...(await windowCounts(id)).keys()]).toEqual([r!.windowStart]);
  });
});

describe('EventRateLimiter', () => {
  it('never grants more than the limit per window, and refuses with Retry-After', async () => {
    const id = await tenant(5);
    const limiter = new EventRateLimiter(db.pool);
    const decisions = await Promise.all(Array.from({ length: 20 }, () => limiter.consume(id, 1)));
    const granted = grantedPerWindow(decisions);
    for (const n of granted.values()) expect(n).toBeLessThanOrEqual(5);
    expect(await windowCounts(id)).toEqual(granted);
    const refused = decisions.filter((d) => !d.ok);
    expect(refused.length).toBeGreaterThanOrEqual(10);
    expect(refused[0]).toEqual({
      ok: false,
      retryAfterSeconds: 1,
      message: 'over max_events_per_sec (5); retry after the current second',
    });
  });

  it('shares the limit between processes on one database', async () => {
    const id = await tenant(10);
    const one = new EventRateLimiter(db.pool);
    const two = new EventRateLimiter(otherPool);
    const decisions = await Promise.all(
      Array.from({ length: 40 }, (_, i) => (i % 2 ? one : two).consume(id, 1)),
    );
    const granted = grantedPerWindow(decisions);
    for (const n of granted.values()) expect(n).toBeLessThanOrEqual(10);
    expect(await windowCounts(id)).toEqual(granted);
    expect(decisions.filter((d) => !d.ok).length).toBeGreaterThanOrEqual(20);
  });

  it('coalesces concurrent requests into few statements', async () => {
    const id = await tenant(100_000);
    const spy = jest.spyOn(db.pool, 'query');
    try {
      const limiter = new EventRateLimiter(db.pool);
      const decisions = await Promise.all(Array.from({ length: 200 }, () => limiter.consume(id, 1)));
      expect(decisions.every((d) => d.ok)).toBe(true);
      expect(spy.mock.calls.length).toBeLessThan(20);
    } finally {
      spy.mockRestore();
    }
    const total = [...(await windowCounts(id)).values()].reduce((a, b) => a + b, 0);
    expect(total).toBe(200);
  });

  it('splits a refused group: requests that fit still pass, all-or-nothing each', async () => {
    const id = await tenant(5);
    const limiter = new EventRateLimiter(db.pool);
    await freshSecond();
    // The first goes alone; the other two are queued behind it and sent together (4 > 2 left).
    const [a, b, c] = await Promise.all([
      limiter.consume(id, 3),
      limiter.consume(id, 3),
      limiter.consume(id, 1),
    ]);
    expect(a!.ok).toBe(true);
    expect(b!.ok).toBe(false);
    expect(c!.ok).toBe(true);
    expect([...(await windowCounts(id)).values()]).toEqual([4]);
  });

  it('refuses locally once the window is known to be full', async () => {
    const id = await tenant(2);
    const limiter = new EventRateLimiter(db.pool);
    await freshSecond();
    expect((await limiter.consume(id, 2)).ok).toBe(true);
    const spy = jest.spyOn(db.pool, 'query');
    try {
      expect((await limiter.consume(id, 1)).ok).toBe(false);
      expect(spy).not.toHaveBeenCalled();
    } finally {
      spy.mockRestore();
    }
  });

  it('lets an unknown tenant through with nothing counted (the ingest answers 404)', async () => {
    const id = newId();
    expect(await new EventRateLimiter(db.pool).consume(id, 3)).toEqual({
      ok: true,
      grant: { tenantId: id, windowStart: 0, n: 0 },
    });
  });

  it('explains a batch that can never fit', async () => {
    const id = await tenant(5);
    const decision = await new EventRateLimiter(db.pool).consume(id, 50);
    expect(decision).toEqual({
      ok: false,
      retryAfterSeconds: 1,
      message: '50 events are more than max_events_per_sec (5) allows in one second; send smaller batches',
    });
  });

  it('refunds a grant', async () => {
    const id = await tenant(5);
    const limiter = new EventRateLimiter(db.pool);
    await freshSecond();
    const d = await limiter.consume(id, 5);
    if (!d.ok) throw new Error('expected a grant');
    await limiter.refund(d.grant);
    expect((await windowCounts(id)).get(d.grant.windowStart)).toBe(0);
    expect((await limiter.consume(id, 5)).ok).toBe(true);
  });
});
