/** The capped counts and their fallback to planner estimates, pure and against a real database. */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { QueueStatsReader, resolveQueueStats } from '../../src/observability/queue-stats.js';
import type { RawQueueStats } from '../../src/queries/metrics.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { sqlDelivery, sqlEvent, sqlTenant, sqlWebhook } from '../helpers/fixtures-sql.js';
import { queueMany, sqlWebhookOfOwnType } from '../helpers/fixtures.js';

const raw = (r: Partial<RawQueueStats>): RawQueueStats => ({
  due: 0,
  held: 0,
  parked: 0,
  parkedInfinity: 0,
  scheduled: 0,
  inFlight: 0,
  leasesExpired: 0,
  deadLetters: 0,
  oldestDueSeconds: 0,
  dueWebhooksBehind: 0,
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
      held: 0,
      parked: 0,
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

  it('held and parked rows are not due; parked includes rows parked at infinity; exact below the cap', () => {
    expect(
      resolveQueueStats(raw({ due: 3, held: 5, parked: 4, parkedInfinity: 2, scheduled: 1 }), 100),
    ).toMatchObject({ due: 3, held: 5, parked: 6, scheduled: 1 });
  });

  it('a capped head is split into due, held and parked in the proportion read', () => {
    expect(
      resolveQueueStats(
        raw({ due: 50, held: 25, parked: 25, scheduled: 10, parkedInfinity: 5, pendingEstimate: 1015 }),
        100,
      ),
    ).toMatchObject({ due: 500, held: 250, parked: 255, scheduled: 10 });
  });

  it('a head all held: claimable webhooks found behind it make due at least one each', () => {
    expect(
      resolveQueueStats(raw({ held: 100, dueWebhooksBehind: 3, pendingEstimate: 5000 }), 100),
    ).toMatchObject({ due: 3, held: 5000 });
  });

  it('rows parked at infinity past the cap take their share of the estimate', () => {
    expect(
      resolveQueueStats(raw({ due: 2, parkedInfinity: 100, scheduled: 8, pendingEstimate: 2010 }), 100),
    ).toMatchObject({ due: 2, parked: 2000, scheduled: 8 });
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

  it('parked: due rows of a disabled webhook; they do not age the oldest-due reading', async () => {
    const tenant = await sqlTenant(db.pool);
    const off = await sqlWebhook(db.pool, tenant.id);
    await queueMany(db.pool, tenant.id, off.id, 3);
    // Disabled behind the API's back, so its deliveries stay due rather than parked at 'infinity'.
    await db.pool.query(`UPDATE webhooks SET enabled = false WHERE id = $1`, [off.id]);
    await db.pool.query(
      `UPDATE deliveries SET next_attempt_at = now() - interval '1 hour' WHERE webhook_id = $1`,
      [off.id],
    );
    const stats = await new QueueStatsReader({ pool: db.pool, ttlMs: 0 }).get();
    expect(stats).toMatchObject({ due: 0, held: 0, parked: 3, oldestDueSeconds: 0 });
    // With the head of the queue all parked and the read capped there, nothing behind it is due either.
    const capped = await new QueueStatsReader({ pool: db.pool, ttlMs: 0, cap: 2 }).get();
    expect(capped).toMatchObject({ due: 0, oldestDueSeconds: 0 });
    await db.pool.query(`UPDATE deliveries SET next_attempt_at = 'infinity' WHERE webhook_id = $1`, [off.id]);
    expect(await new QueueStatsReader({ pool: db.pool, ttlMs: 0 }).get()).toMatchObject({
      parked: 3,
      scheduled: 0,
    });
    await db.pool.query(`UPDATE deliveries SET status = 'cancelled' WHERE webhook_id = $1`, [off.id]);
  });

  it('a FIFO queue: its head is due and ages the reading, the rows waiting behind it are parked', async () => {
    const tenant = await sqlTenant(db.pool);
    const hook = await sqlWebhook(db.pool, tenant.id, { eventTypes: ['fifo.stats'] });
    await db.pool.query(`UPDATE webhooks SET ordering = 'fifo' WHERE id = $1`, [hook.id]);
    await db.pool.query(
      `SELECT count(*) FROM postbox.ingest((
         SELECT json_agg(json_build_object('ord', i, 'id', postbox.uuidv7(), 'tenant_id', $1::uuid,
                                           'type', 'fifo.stats', 'payload', '{}'::json))
           FROM generate_series(0, 4) AS i))`,
      [tenant.id],
    );
    await db.pool.query(
      `UPDATE deliveries SET next_attempt_at = now() - interval '1 hour'
        WHERE webhook_id = $1 AND next_attempt_at < 'infinity'`,
      [hook.id],
    );
    const stats = await new QueueStatsReader({ pool: db.pool, ttlMs: 0 }).get();
    expect(stats).toMatchObject({ due: 1, held: 0, parked: 4 });
    expect(stats!.oldestDueSeconds).toBeGreaterThanOrEqual(3600);
    await db.pool.query(`UPDATE deliveries SET status = 'cancelled' WHERE webhook_id = $1`, [hook.id]);
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

describe('held back on purpose is not due', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await db.drop();
  });
  const read = (cap?: number) => new QueueStatsReader({ pool: db.pool, ttlMs: 0, cap }).get();
  const ageRows = (webhookId: string, minutes: number) =>
    db.pool.query(
      `UPDATE deliveries SET next_attempt_at = now() - make_interval(mins => $2) WHERE webhook_id = $1`,
      [webhookId, minutes],
    );
  // By hand: deliveries in flight under a lease, which ingest cannot produce.
  const inFlight = async (tenantId: string, webhookId: string, n: number, leaseMs = 60_000) => {
    for (let i = 0; i < n; i++)
      await sqlDelivery(db.pool, {
        tenantId,
        webhookId,
        eventId: (await sqlEvent(db.pool, tenantId)).id,
        status: 'in_flight',
        leaseExpiresAt: new Date(Date.now() + leaseMs),
      });
  };
  const clear = () =>
    db.pool.query(`UPDATE deliveries SET status = 'cancelled' WHERE status IN ('pending', 'in_flight')`);

  it('an open breaker with a backlog: held, and the oldest-due reading stays 0', async () => {
    const tenant = await sqlTenant(db.pool);
    const dead = await sqlWebhook(db.pool, tenant.id);
    await queueMany(db.pool, tenant.id, dead.id, 40);
    await ageRows(dead.id, 60);
    await db.pool.query(
      `UPDATE webhooks SET breaker_state = 'open', breaker_open_until = now() + interval '5 minutes' WHERE id = $1`,
      [dead.id],
    );
    expect(await read()).toMatchObject({ due: 0, held: 40, oldestDueSeconds: 0 });

    // Its cool-down over (half-open), one probe may go: due again, aged from when it became due.
    await db.pool.query(
      `UPDATE webhooks SET breaker_open_until = now() - interval '1 second' WHERE id = $1`,
      [dead.id],
    );
    const halfOpen = await read();
    expect(halfOpen).toMatchObject({ due: 40, held: 0 });
    expect(halfOpen!.oldestDueSeconds).toBeGreaterThanOrEqual(3599);
    // ... and with its probe in flight, held again.
    await inFlight(tenant.id, dead.id, 1);
    expect(await read()).toMatchObject({ due: 0, held: 40, oldestDueSeconds: 0 });
    await clear();
  });

  it('a webhook or tenant at its concurrency limit is held; an expired lease frees its slot', async () => {
    const tenant = await sqlTenant(db.pool);
    const slow = await sqlWebhookOfOwnType(db.pool, tenant.id, { maxConcurrency: 2 });
    await queueMany(db.pool, tenant.id, slow.id, 5, { type: slow.type });
    await ageRows(slow.id, 30);
    await inFlight(tenant.id, slow.id, 1);
    expect(await read()).toMatchObject({ due: 5, held: 0 });
    await inFlight(tenant.id, slow.id, 1, -60_000);
    // Two in flight, but one lease ran out: a live worker's claim would retake it, so it is due work.
    expect(await read()).toMatchObject({ due: 5, held: 0 });
    await inFlight(tenant.id, slow.id, 1);
    expect(await read()).toMatchObject({ due: 0, held: 5, oldestDueSeconds: 0 });

    const other = await sqlWebhookOfOwnType(db.pool, tenant.id);
    await queueMany(db.pool, tenant.id, other.id, 3, { type: other.type });
    expect((await read())!.due).toBe(3);
    await db.pool.query(`UPDATE quotas SET max_concurrent_deliveries = 2 WHERE tenant_id = $1`, [tenant.id]);
    expect(await read()).toMatchObject({ due: 0, held: 8 });
    await clear();
  });

  it('claimable work behind a head that is all held is found, and ages the reading', async () => {
    const tenant = await sqlTenant(db.pool);
    const dead = await sqlWebhookOfOwnType(db.pool, tenant.id);
    await queueMany(db.pool, tenant.id, dead.id, 30, { type: dead.type });
    await ageRows(dead.id, 120);
    await db.pool.query(
      `UPDATE webhooks SET breaker_state = 'open', breaker_open_until = now() + interval '5 minutes' WHERE id = $1`,
      [dead.id],
    );
    const healthy = await sqlWebhookOfOwnType(db.pool, tenant.id);
    await queueMany(db.pool, tenant.id, healthy.id, 2, { type: healthy.type });
    await ageRows(healthy.id, 10);
    // A head of 10 rows sees only the dead webhook's backlog; the skip scan finds the healthy one.
    const stats = await read(10);
    expect(stats!.due).toBeGreaterThanOrEqual(1);
    expect(stats!.oldestDueSeconds).toBeGreaterThanOrEqual(599);
    expect(stats!.oldestDueSeconds).toBeLessThan(660);
    await clear();
  });
});
