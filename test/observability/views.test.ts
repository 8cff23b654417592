/** The operator views webhook_health and queue_overview, on a migrated database with fixtures. */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import {
  sqlAttempts,
  sqlDeadLetter,
  sqlDelivery,
  sqlEvent,
  sqlTenant,
  sqlWebhook,
  type DeliveryFixture,
} from '../helpers/fixtures-sql.js';

const MIN = 60_000;
const HOUR = 60 * MIN;
const ago = (ms: number) => new Date(Date.now() - ms);

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db.drop();
});

async function delivery(tenantId: string, webhookId: string, d: Partial<DeliveryFixture> = {}) {
  const eventId = (await sqlEvent(db.pool, tenantId)).id;
  return sqlDelivery(db.pool, { tenantId, webhookId, eventId, ...d });
}

async function health(webhookId: string) {
  const { rows } = await db.pool.query('SELECT * FROM webhook_health WHERE webhook_id = $1', [webhookId]);
  return rows[0];
}

describe('webhook_health', () => {
  let tenantA: string;
  let tenantB: string;
  let busy: string; // queue, attempts in and out of the windows, a DLQ row
  let disabled: string;
  let deleted: string;
  let longDown: string; // last success 3 days ago, failing since
  const lastSuccessStart = ago(30 * MIN);

  beforeAll(async () => {
    tenantA = (await sqlTenant(db.pool, 'a')).id;
    tenantB = (await sqlTenant(db.pool, 'b')).id;
    busy = (await sqlWebhook(db.pool, tenantA, { url: 'https://a.example/busy' })).id;
    disabled = (await sqlWebhook(db.pool, tenantA, { enabled: false })).id;
    deleted = (await sqlWebhook(db.pool, tenantA, { deleted: true })).id;
    longDown = (await sqlWebhook(db.pool, tenantB)).id;

    await delivery(tenantA, busy, { nextAttemptAt: ago(10 * MIN) });
    await delivery(tenantA, busy, { nextAttemptAt: ago(MIN) });
    await delivery(tenantA, busy, { nextAttemptAt: new Date(Date.now() + HOUR) });
    await delivery(tenantA, busy, { status: 'in_flight' });
    const dead = await delivery(tenantA, busy, { status: 'failed', attempts: 3, lastError: 'HTTP 500' });
    await sqlDeadLetter(db.pool, dead);
    const worked = await delivery(tenantA, busy, { status: 'succeeded' });
    await sqlAttempts(db.pool, worked, [
      { attempt: 1, startedAt: ago(30 * HOUR), statusCode: 200 }, // outside both windows
      { attempt: 2, startedAt: ago(2 * HOUR), statusCode: 204 }, // 24 h only
      { attempt: 3, startedAt: ago(50 * MIN), statusCode: 500, error: 'HTTP 500' },
      { attempt: 4, startedAt: lastSuccessStart, durationMs: 250, statusCode: 200 },
      { attempt: 5, startedAt: ago(20 * MIN), statusCode: null, error: 'timeout' },
      { attempt: 6, startedAt: ago(10 * MIN), statusCode: 503, error: 'HTTP 503' },
    ]);

    await delivery(tenantA, disabled, { nextAttemptAt: ago(5 * MIN) });
    await delivery(tenantA, deleted, { nextAttemptAt: ago(5 * MIN) });

    const old = await delivery(tenantB, longDown, { status: 'succeeded', createdAt: ago(72 * HOUR) });
    await db.pool.query(`UPDATE deliveries SET completed_at = now() - interval '72 hours' WHERE id = $1`, [
      old,
    ]);
    await sqlAttempts(db.pool, old, [{ attempt: 1, startedAt: ago(72 * HOUR), statusCode: 200 }]);
    const failing = await delivery(tenantB, longDown, { attempts: 2, nextAttemptAt: ago(MIN) });
    await sqlAttempts(db.pool, failing, [
      { attempt: 1, startedAt: ago(20 * HOUR), statusCode: 500 },
      { attempt: 2, startedAt: ago(5 * HOUR), statusCode: 502 },
    ]);
  });

  it('counts a webhook’s queue, attempts per window, failures since its last success, and its DLQ', async () => {
    const row = await health(busy);
    expect(row).toMatchObject({
      tenant_id: tenantA,
      url: 'https://a.example/busy',
      enabled: true,
      pending: '3',
      due: '2',
      in_flight: '1',
      succeeded_1h: '1',
      failed_1h: '3',
      succeeded_24h: '2',
      failed_24h: '3',
      consecutive_failures: '2',
      dead_letters: '1',
      breaker_state: 'closed',
    });
    // The end of the last 2xx attempt, not its start.
    expect(row.last_success_at.getTime()).toBe(lastSuccessStart.getTime() + 250);
    expect(Math.abs(row.oldest_due_at.getTime() - ago(10 * MIN).getTime())).toBeLessThan(5000);
  });

  it('a disabled webhook is listed with its waiting deliveries; a deleted one is not listed', async () => {
    expect(await health(disabled)).toMatchObject({
      enabled: false,
      pending: '1',
      due: '1',
      in_flight: '0',
      succeeded_24h: '0',
      failed_24h: '0',
      consecutive_failures: '0',
      last_success_at: null,
      dead_letters: '0',
    });
    expect(await health(deleted)).toBeUndefined();
  });

  it('a webhook failing for days: last success from its deliveries, failures counted within 24 h', async () => {
    const row = await health(longDown);
    expect(row).toMatchObject({
      tenant_id: tenantB,
      pending: '1',
      due: '1',
      failed_24h: '2',
      succeeded_24h: '0',
    });
    expect(row.consecutive_failures).toBe('2');
    expect(Math.abs(row.last_success_at.getTime() - ago(72 * HOUR).getTime())).toBeLessThan(5000);
  });

  it('filters by tenant', async () => {
    const { rows } = await db.pool.query('SELECT webhook_id FROM webhook_health WHERE tenant_id = $1', [
      tenantA,
    ]);
    expect(rows.map((r) => r.webhook_id).sort()).toEqual([busy, disabled].sort());
  });

  it('a webhook with no deliveries at all reads zeros, not NULLs', async () => {
    const quiet = (await sqlWebhook(db.pool, tenantB)).id;
    expect(await health(quiet)).toMatchObject({
      pending: '0',
      due: '0',
      in_flight: '0',
      succeeded_1h: '0',
      failed_1h: '0',
      consecutive_failures: '0',
      dead_letters: '0',
      last_success_at: null,
      oldest_due_at: null,
    });
  });
});

describe('queue_overview', () => {
  it('one row: exact open counts, DLQ, oldest due, and estimates of finished rows after ANALYZE', async () => {
    const { rows: truth } = await db.pool.query<{ status: string; n: string }>(
      `SELECT status::text, count(*)::text AS n FROM deliveries GROUP BY status`,
    );
    const n = (s: string) => Number(truth.find((t) => t.status === s)?.n ?? 0);
    const { rows: due } = await db.pool.query(
      `SELECT count(*)::int AS due, min(next_attempt_at) AS oldest FROM deliveries
        WHERE status = 'pending' AND next_attempt_at <= now()`,
    );
    await db.pool.query('ANALYZE deliveries');
    const { rows } = await db.pool.query('SELECT * FROM queue_overview');
    expect(rows).toHaveLength(1);
    const o = rows[0];
    expect(Number(o.pending)).toBe(n('pending'));
    expect(Number(o.due)).toBe(due[0].due);
    expect(Number(o.scheduled)).toBe(n('pending') - due[0].due);
    expect(Number(o.in_flight)).toBe(n('in_flight'));
    expect(Number(o.leases_expired)).toBe(0);
    expect(Number(o.dead_letters)).toBe(1);
    expect(o.oldest_due_at).toEqual(due[0].oldest);
    expect(o.oldest_due_age.minutes).toBeGreaterThanOrEqual(9);
    // A table this small is analysed whole: the estimates are exact.
    expect(Number(o.succeeded_estimate)).toBe(n('succeeded'));
    expect(Number(o.cancelled_estimate)).toBe(n('cancelled'));
    expect(Number(o.total_estimate)).toBe(truth.reduce((sum, t) => sum + Number(t.n), 0));
  });

  it('reads zeros and NULLs on an empty queue, never no row', async () => {
    const empty = await createTestDatabase();
    try {
      const { rows } = await empty.pool.query('SELECT * FROM queue_overview');
      expect(rows).toEqual([
        expect.objectContaining({
          pending: '0',
          due: '0',
          in_flight: '0',
          dead_letters: '0',
          oldest_due_at: null,
        }),
      ]);
    } finally {
      await empty.drop();
    }
  });
});

describe('comments', () => {
  it('both views and every one of their columns say what they hold', async () => {
    const { rows } = await db.pool.query(
      `SELECT c.relname, a.attname, col_description(c.oid, a.attnum) AS col, obj_description(c.oid, 'pg_class') AS view
         FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0
        WHERE c.relname IN ('webhook_health', 'queue_overview')`,
    );
    expect(new Set(rows.map((r) => r.relname))).toEqual(new Set(['webhook_health', 'queue_overview']));
    for (const r of rows) {
      expect(r.view).toBeTruthy();
      expect({ column: `${r.relname}.${r.attname}`, comment: r.col }).toEqual({
        column: `${r.relname}.${r.attname}`,
        comment: expect.stringMatching(/\w/),
      });
    }
  });
});
