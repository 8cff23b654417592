/**
 * The daily partitions of delivery_attempts (migration 0019) on a real database: created ahead, old
 * days dropped whole while every row in range stays, the default partition as a safety net (and its
 * rows moved out when their day is created), a busy table left for the next run, reads across days,
 * partition pruning where a query has a time bound, and the gauges that watch all this.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { maintainAttemptPartitions } from '../../src/maintenance/partitions.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { listAttempts } from '../../src/queries/deliveries-read.js';
import { readAttemptPartitionStats } from '../../src/queries/partitions.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { sqlDelivery, sqlEvent, sqlTenant, sqlWebhook } from '../helpers/fixtures-sql.js';
import { sampleValue } from '../helpers/prom.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

let db: TestDatabase;
let deliveryId: string;
let webhookId: string;

const options = (attemptDays = 30) => ({ daysAhead: 3, attemptDays, lockTimeoutMs: 2000 });

interface PartitionRow {
  partition: string;
  range_from: Date | null;
  range_to: Date | null;
  is_default: boolean;
}

async function partitions(): Promise<PartitionRow[]> {
  const { rows } = await db.pool.query<PartitionRow>(
    `SELECT partition::text, range_from, range_to, is_default
       FROM delivery_attempt_partitions ORDER BY range_from NULLS FIRST`,
  );
  return rows;
}

/** Daily partitions for the UTC days `from`..`to` days from today (negative: past), made directly. */
async function makeDays(from: number, to: number): Promise<void> {
  await db.pool.query(
    `SELECT postbox.create_attempt_partition((now() AT TIME ZONE 'UTC')::date + g)
       FROM generate_series($1::int, $2::int) g`,
    [from, to],
  );
}

async function insertAttempts(startedAt: Date[]): Promise<void> {
  await db.pool.query(
    `INSERT INTO delivery_attempts (delivery_id, attempt, started_at, duration_ms, status_code)
     SELECT $1, row_number() OVER (), t, 10, 200 FROM unnest($2::timestamptz[]) t`,
    [deliveryId, startedAt],
  );
}

async function startTimes(): Promise<number[]> {
  const { rows } = await db.pool.query<{ t: Date }>(
    'SELECT started_at AS t FROM delivery_attempts ORDER BY started_at',
  );
  return rows.map((r) => r.t.getTime());
}

const utcMidnight = (t: number) => Math.floor(t / DAY) * DAY;

beforeAll(async () => {
  db = await createTestDatabase();
  const tenant = await sqlTenant(db.pool);
  webhookId = (await sqlWebhook(db.pool, tenant.id)).id;
  const eventId = (await sqlEvent(db.pool, tenant.id)).id;
  deliveryId = await sqlDelivery(db.pool, { tenantId: tenant.id, webhookId, eventId, status: 'succeeded' });
});

afterAll(async () => {
  await db.drop();
});

beforeEach(async () => {
  // Every daily partition goes, and the default partition is emptied: each test starts from the migration.
  for (const p of await partitions()) if (!p.is_default) await db.pool.query(`DROP TABLE ${p.partition}`);
  await db.pool.query('DELETE FROM delivery_attempts');
});

describe('partitions created ahead', () => {
  it('today and the next three UTC days, once however often it runs', async () => {
    expect(await partitions()).toEqual([expect.objectContaining({ is_default: true })]);
    const first = await maintainAttemptPartitions(db.pool, options());
    expect(first).toEqual({ created: 4, dropped: 0, lockTimeouts: 0 });
    const today = utcMidnight(Date.now());
    const days = (await partitions()).filter((p) => !p.is_default);
    expect(days.map((p) => [p.range_from!.getTime(), p.range_to!.getTime()])).toEqual(
      [0, 1, 2, 3].map((d) => [today + d * DAY, today + (d + 1) * DAY]),
    );
    expect(days.map((p) => p.partition)).toEqual(
      [0, 1, 2, 3].map(
        (d) => `delivery_attempts_p${new Date(today + d * DAY).toISOString().slice(0, 10).replace(/-/g, '')}`,
      ),
    );
    expect(await maintainAttemptPartitions(db.pool, options())).toEqual({
      created: 0,
      dropped: 0,
      lockTimeouts: 0,
    });

    // Every partition carries a comment, like every table.
    const { rows } = await db.pool.query(
      `SELECT count(*)::int AS n FROM delivery_attempt_partitions WHERE obj_description(partition, 'pg_class') IS NULL`,
    );
    expect(rows[0].n).toBe(0);
  });

  it('rows of a day without a partition land in the default partition, and move into their day when it is made', async () => {
    await maintainAttemptPartitions(db.pool, options());
    const later = utcMidnight(Date.now()) + 6 * DAY + 12 * HOUR;
    await insertAttempts([new Date(later), new Date(later + 1000)]);
    expect(await readAttemptPartitionStats(db.pool, 100)).toMatchObject({ defaultRows: 2 });

    await makeDays(6, 6);
    expect(await readAttemptPartitionStats(db.pool, 100)).toMatchObject({ defaultRows: 0 });
    const { rows } = await db.pool.query(
      'SELECT tableoid::regclass::text AS p, count(*)::int AS n FROM delivery_attempts GROUP BY 1',
    );
    expect(rows).toEqual([
      { p: `delivery_attempts_p${new Date(later).toISOString().slice(0, 10).replace(/-/g, '')}`, n: 2 },
    ]);
  });
});

describe('retention of attempts', () => {
  it('drops the days entirely older than the limit; every row younger than the cutoff stays', async () => {
    await makeDays(-40, 0);
    // One attempt every 6 hours over 40 days.
    const now = Date.now();
    const times = Array.from({ length: 161 }, (_, i) => new Date(now - 40 * DAY + i * 6 * HOUR));
    await insertAttempts(times);

    const result = await maintainAttemptPartitions(db.pool, options(30));
    const cutoff = now - 30 * DAY;
    // The day the cutoff falls in stays whole: attempts are kept at least 30 days, at most 31.
    const firstKeptDay = utcMidnight(cutoff);
    const expectedDrops = (
      await db.pool.query(
        `SELECT 1 FROM generate_series(-40, 0) g
        WHERE ((now() AT TIME ZONE 'UTC')::date + g + 1)::timestamp AT TIME ZONE 'UTC' <= now() - interval '30 days'`,
      )
    ).rowCount;
    expect(result).toEqual({ created: 3, dropped: expectedDrops, lockTimeouts: 0 });
    expect(expectedDrops).toBeGreaterThanOrEqual(9);

    const kept = await startTimes();
    expect(kept).toEqual(times.map((t) => t.getTime()).filter((t) => t >= firstKeptDay));
    expect(Math.min(...kept)).toBeLessThanOrEqual(cutoff + 6 * HOUR); // nothing in range was lost
    expect(
      (await partitions()).filter((p) => !p.is_default).every((p) => p.range_to!.getTime() > cutoff),
    ).toBe(true);

    // A second run finds nothing more to drop.
    expect(await maintainAttemptPartitions(db.pool, options(30))).toEqual({
      created: 0,
      dropped: 0,
      lockTimeouts: 0,
    });
  });

  it('a day whose lock is not granted in time is left for the next run', async () => {
    await maintainAttemptPartitions(db.pool, options()); // today and ahead exist: nothing to create below
    await makeDays(-40, -39);
    await insertAttempts([new Date(Date.now() - 39.5 * DAY)]);
    const reader = await db.pool.connect();
    try {
      // An open transaction that read delivery_attempts holds a lock the DROP must wait for.
      await reader.query('BEGIN');
      await reader.query('SELECT count(*) FROM delivery_attempts');
      const blocked = await maintainAttemptPartitions(db.pool, { ...options(30), lockTimeoutMs: 200 });
      expect(blocked).toMatchObject({ dropped: 0, lockTimeouts: 2 });
    } finally {
      await reader.query('COMMIT');
      reader.release();
    }
    expect(await maintainAttemptPartitions(db.pool, options(30))).toMatchObject({
      dropped: 2,
      lockTimeouts: 0,
    });
    expect(await startTimes()).toEqual([]);
  });

  it('two processes maintaining at once (workers starting together) neither fail nor count a day twice', async () => {
    await makeDays(-40, -35);
    const both = { ...options(30), lockTimeoutMs: 20_000 };
    const [a, b] = await Promise.all([
      maintainAttemptPartitions(db.pool, both),
      maintainAttemptPartitions(db.pool, both),
    ]);
    expect({ created: a.created + b.created, dropped: a.dropped + b.dropped }).toEqual({
      created: 4,
      dropped: 6,
    });
    expect((await partitions()).filter((p) => !p.is_default)).toHaveLength(4);
  });

  it('never drops the default partition, and refuses a table that is not a daily partition', async () => {
    await expect(
      db.pool.query(`SELECT postbox.drop_attempt_partition('delivery_attempts_default')`),
    ).rejects.toThrow(/not a daily partition/);
    await expect(db.pool.query(`SELECT postbox.drop_attempt_partition('deliveries')`)).rejects.toThrow(
      /not a daily partition/,
    );
  });
});

describe('reading across partitions', () => {
  it('a delivery’s attempts come from every day they were made on, the default partition included', async () => {
    await makeDays(-3, 0);
    const now = Date.now();
    const times = [now - 3 * DAY, now - 2 * DAY, now - HOUR, now + 10 * DAY]; // the last: default partition
    await insertAttempts(times.map((t) => new Date(t)));
    const attempts = await listAttempts(db.pool, deliveryId);
    expect(attempts.map((a) => a.startedAt.getTime())).toEqual(times);
    const { rows } = await db.pool.query('SELECT count(DISTINCT tableoid)::int AS n FROM delivery_attempts');
    expect(rows[0].n).toBe(4);
  });

  it('webhook_health counts the last 24 hours whatever partitions they are in', async () => {
    await makeDays(-2, 0);
    const now = Date.now();
    // 23 h and 1 h ago: different UTC days for most of the day; both within the window either way.
    await insertAttempts([new Date(now - 23 * HOUR), new Date(now - 50 * 60_000), new Date(now - 30 * HOUR)]);
    const { rows } = await db.pool.query(
      'SELECT succeeded_24h::int, succeeded_1h::int FROM webhook_health WHERE webhook_id = $1',
      [webhookId],
    );
    expect(rows).toEqual([{ succeeded_24h: 2, succeeded_1h: 1 }]);
  });

  it('a time-bounded query reads only the partitions of its window (partition pruning)', async () => {
    await makeDays(-20, 3);
    const plan = async (sql: string, params: unknown[] = []) =>
      (await db.pool.query(`EXPLAIN ${sql}`, params)).rows.map((r) => r['QUERY PLAN'] as string).join('\n');
    // now() is fixed for the statement, so the days outside the window are removed at executor start.
    const window = await plan(
      `SELECT count(*) FROM delivery_attempts WHERE started_at > now() - interval '1 hour'`,
    );
    expect(window).toMatch(/Subplans Removed: (\d+)/);
    expect(Number(/Subplans Removed: (\d+)/.exec(window)![1])).toBeGreaterThanOrEqual(19);
    // The view's attempts arm (last 24 hours).
    expect(await plan('SELECT * FROM webhook_health WHERE webhook_id = $1', [webhookId])).toMatch(
      /Subplans Removed: \d+/,
    );
    // A literal bound prunes while planning: one day's partition is all the plan holds.
    const literal = await plan(
      `SELECT count(*) FROM delivery_attempts WHERE started_at >= $1::timestamptz AND started_at < $2::timestamptz`,
      [new Date(utcMidnight(Date.now())), new Date(utcMidnight(Date.now()) + DAY)],
    );
    expect(new Set(literal.match(/delivery_attempts_p\d{8}\b/g))).toEqual(
      new Set([`delivery_attempts_p${new Date().toISOString().slice(0, 10).replace(/-/g, '')}`]),
    );
  });
});

describe('gauges', () => {
  it('postbox_attempt_partitions_ahead_seconds and postbox_attempt_partition_default_rows', async () => {
    const render = async () => createMetrics({ pool: db.pool, defaultMetrics: false }).render();
    let text = await render();
    expect(sampleValue(text, 'postbox_attempt_partitions_ahead_seconds')).toBe(0);
    expect(sampleValue(text, 'postbox_attempt_partition_default_rows')).toBe(0);

    await insertAttempts([new Date()]); // no partition yet: into the default partition
    text = await render();
    expect(sampleValue(text, 'postbox_attempt_partition_default_rows')).toBe(1);

    await maintainAttemptPartitions(db.pool, options());
    text = await render();
    expect(sampleValue(text, 'postbox_attempt_partition_default_rows')).toBe(0);
    const ahead = sampleValue(text, 'postbox_attempt_partitions_ahead_seconds')!;
    const toEndOfLastDay = (utcMidnight(Date.now()) + 4 * DAY - Date.now()) / 1000;
    expect(ahead).toBeGreaterThan(toEndOfLastDay - 60);
    expect(ahead).toBeLessThanOrEqual(toEndOfLastDay + 1);
  });
});
