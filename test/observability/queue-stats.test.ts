/** The capped counts and their fallback to planner estimates, pure and against a real database. */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { QueueStatsReader, resolveQueueStats } from '../../src/observability/queue-stats.js';
import type { RawQueueStats } from '../../src/queries/metrics.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { sqlTenant, sqlWebhook } from '../helpers/fixtures-sql.js';
import { queueMany } from '../helpers/fixtures.js';

const raw = (r: Partial<RawQueueStats>): RawQueueStats => ({
  due: 0,
  paused: 0,
  scheduled: 0,
  inFlight: 0,
  leasesExpired: 0,
  deadLetters: 0,
  oldestDueSeconds: 0,
  pendingEstimate: 0,
  inFlightEstimate: 0,
  deadLettersEstimate: 0,
  ...r,
});

describe('resolveQueueStats', () => {
  it('below the cap, the counts are exact and the estimates ignored', () => {
    expect(
      resolveQueueStats(
        raw({
          due: 3,
          scheduled: 4,
          inFlight: 5,
          deadLetters: 6,
          pendingEstimate: 1e6,
          inFlightEstimate: 1e6,
        }),
        100,
      ),
    ).toEqual({
      due: 3,
      paused: 0,
      scheduled: 4,
      inFlight: 5,
      leasesExpired: 0,
      deadLetters: 6,
      oldestDueSeconds: 0,
    });
  });

  it('due at the cap: the pending estimate minus the exact scheduled count', () => {
    expect(resolveQueueStats(raw({ due: 100, scheduled: 40, pendingEstimate: 5040 }), 100)).toMatchObject({
      due: 5000,
      scheduled: 40,
    });
  });

  it('scheduled at the cap: the pending estimate minus the exact due count', () => {
    expect(resolveQueueStats(raw({ due: 7, scheduled: 100, pendingEstimate: 907 }), 100)).toMatchObject({
      due: 7,
      scheduled: 900,
    });
  });

  it('both at the cap: due takes the remainder, scheduled reads the cap', () => {
    expect(resolveQueueStats(raw({ due: 100, scheduled: 100, pendingEstimate: 1000 }), 100)).toMatchObject({
      due: 900,
      scheduled: 100,
    });
  });

  it('due rows of disabled webhooks are paused, not due; below the cap both are exact', () => {
    expect(resolveQueueStats(raw({ due: 3, paused: 4, scheduled: 1 }), 100)).toMatchObject({
      due: 3,
      paused: 4,
      scheduled: 1,
    });
  });

  it('a capped due side is split into due and paused in the proportion read', () => {
    expect(
      resolveQueueStats(raw({ due: 75, paused: 25, scheduled: 10, pendingEstimate: 1010 }), 100),
    ).toMatchObject({ due: 750, paused: 250, scheduled: 10 });
  });

  it('a stale or missing estimate never reads below the cap', () => {
    expect(
      resolveQueueStats(
        raw({
          due: 100,
          scheduled: 3,
          inFlight: 100,
          deadLetters: 100,
          pendingEstimate: 0,
          inFlightEstimate: 12,
        }),
        100,
      ),
    ).toMatchObject({ due: 100, scheduled: 3, inFlight: 100, deadLetters: 100 });
  });

  it('in flight and the DLQ at the cap use their own estimates', () => {
    expect(
      resolveQueueStats(
        raw({ inFlight: 100, deadLetters: 100, inFlightEstimate: 2500.4, deadLettersEstimate: 1e6 }),
        100,
      ),
    ).toMatchObject({ inFlight: 2500, deadLetters: 1e6 });
  });
});

describe('QueueStatsReader on a real database', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await db.drop();
  });

  it('paused: due rows of a disabled webhook; they do not age the oldest-due reading', async () => {
    const tenant = await sqlTenant(db.pool);
    const off = await sqlWebhook(db.pool, tenant.id, { enabled: false });
    await queueMany(db.pool, tenant.id, off.id, 3);
    await db.pool.query(
      `UPDATE deliveries SET next_attempt_at = now() - interval '1 hour' WHERE webhook_id = $1`,
      [off.id],
    );
    const stats = await new QueueStatsReader({ pool: db.pool, ttlMs: 0 }).get();
    expect(stats).toMatchObject({ due: 0, paused: 3, oldestDueSeconds: 0 });
    // With the head of the queue all paused and the read capped there, the age is an upper bound.
    const capped = await new QueueStatsReader({ pool: db.pool, ttlMs: 0, cap: 2 }).get();
    expect(capped!.oldestDueSeconds).toBeGreaterThanOrEqual(3599);
    await db.pool.query(`UPDATE deliveries SET status = 'cancelled' WHERE webhook_id = $1`, [off.id]);
  });

  it('counts exactly up to the cap, then follows the statistics ANALYZE leaves', async () => {
    const tenant = await sqlTenant(db.pool);
    const hook = await sqlWebhook(db.pool, tenant.id);
    await queueMany(db.pool, tenant.id, hook.id, 250);
    const read = () => new QueueStatsReader({ pool: db.pool, ttlMs: 0, cap: 50 }).get();

    // Never analysed: no estimate, so the capped count is what shows.
    expect(await read()).toMatchObject({ due: 50, scheduled: 0 });
    await db.pool.query('ANALYZE deliveries');
    expect((await read())!.due).toBe(250);

    const exact = await new QueueStatsReader({ pool: db.pool, ttlMs: 0, cap: 10_000 }).get();
    expect(exact).toMatchObject({ due: 250, scheduled: 0, inFlight: 0, deadLetters: 0 });
    expect(exact!.oldestDueSeconds).toBeGreaterThanOrEqual(0);
  });
});
