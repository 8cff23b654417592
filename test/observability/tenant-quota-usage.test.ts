/**
 * Per-tenant quota usage on a real database: the tenant_quota_usage view, the gauges that count
 * tenants near and at their quotas (no tenant label), and the console route that names the top ones.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createMetrics } from '../../src/observability/metrics.js';
import { countTenantsNearQuota, listTopQuotaUsage, QUOTA_NAMES } from '../../src/queries/quota-usage.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { sqlDeadDelivery, sqlDelivery, sqlEvent, sqlTenant, sqlWebhook } from '../helpers/fixtures-sql.js';
import { parseSamples } from '../helpers/prom.js';

let app: TestApp;
const t: Record<'rate' | 'busy' | 'dead' | 'idle', { id: string; apiKey: string }> = {} as never;

async function setQuotas(tenantId: string, events: number, concurrent: number, dlq: number) {
  await app.db.pool.query(
    `UPDATE quotas SET max_events_per_sec = $2, max_concurrent_deliveries = $3, max_dlq_size = $4
      WHERE tenant_id = $1`,
    [tenantId, events, concurrent, dlq],
  );
}

/** A rate window `secondsAgo` before the database's current second. */
async function rateWindow(tenantId: string, secondsAgo: number, count: number) {
  await app.db.pool.query(
    `INSERT INTO rate_windows (tenant_id, window_start, count)
     VALUES ($1, floor(extract(epoch FROM now()))::bigint - $2, $3)`,
    [tenantId, secondsAgo, count],
  );
}

async function inFlight(tenantId: string, webhookId: string, n: number) {
  for (let i = 0; i < n; i++) {
    const event = await sqlEvent(app.db.pool, tenantId);
    await sqlDelivery(app.db.pool, { tenantId, webhookId, eventId: event.id, status: 'in_flight' });
  }
}

async function gauges() {
  const metrics = createMetrics({ pool: app.db.pool, defaultMetrics: false, quotaGauges: { ttlMs: 0 } });
  const samples = parseSamples(await metrics.render());
  const value = (name: string, quota: string) =>
    samples.find((s) => s.name === name && s.labels.quota === quota)?.value;
  return Object.fromEntries(
    QUOTA_NAMES.map((q) => [
      q,
      { near: value('postbox_tenants_near_quota', q), at: value('postbox_tenants_at_quota', q) },
    ]),
  );
}

beforeAll(async () => {
  app = await startTestApp();
  const db = app.db.pool;
  for (const name of ['rate', 'busy', 'dead', 'idle'] as const) t[name] = await sqlTenant(db, name);
  // rate: 9 events this second, 10 (its limit) 30 s ago, 500 two minutes ago (outside the minute).
  await setQuotas(t.rate.id, 10, 100, 100);
  await rateWindow(t.rate.id, 0, 9);
  await rateWindow(t.rate.id, 30, 10);
  await rateWindow(t.rate.id, 120, 500);
  // busy: 4 of 4 deliveries in flight.
  await setQuotas(t.busy.id, 1000, 4, 100);
  await inFlight(t.busy.id, (await sqlWebhook(db, t.busy.id)).id, 4);
  // dead: 4 dead letters of 5 allowed, and 2 in flight of 10.
  await setQuotas(t.dead.id, 1000, 10, 5);
  const deadHook = (await sqlWebhook(db, t.dead.id)).id;
  for (let i = 0; i < 4; i++) await sqlDeadDelivery(db, t.dead.id, deadHook);
  await inFlight(t.dead.id, deadHook, 2);
}, 60_000);

afterAll(async () => {
  await app.close();
});

describe('tenant_quota_usage', () => {
  it('shows each limit, its use and the percentage, per tenant', async () => {
    const { rows } = await app.db.pool.query(
      `SELECT * FROM tenant_quota_usage WHERE tenant_id = ANY($1) ORDER BY tenant_name`,
      [[t.rate.id, t.busy.id, t.dead.id, t.idle.id]],
    );
    const byName = Object.fromEntries(rows.map((r) => [r.tenant_name, r]));
    expect(byName.rate).toMatchObject({
      max_events_per_sec: 10,
      events_this_second: 9,
      events_peak_1m: 10, // the window two minutes ago is not counted
      events_pct: '100.0',
      in_flight_deliveries: '0',
      dlq_size: '0',
      peak_pct: '100.0',
    });
    expect(byName.busy).toMatchObject({
      max_concurrent_deliveries: 4,
      in_flight_deliveries: '4',
      concurrency_pct: '100.0',
      peak_pct: '100.0',
    });
    expect(byName.dead).toMatchObject({
      max_dlq_size: 5,
      dlq_size: '4',
      dlq_pct: '80.0',
      concurrency_pct: '20.0',
      peak_pct: '80.0',
    });
    expect(byName.idle).toMatchObject({
      events_this_second: 0,
      events_peak_1m: 0,
      in_flight_deliveries: '0',
      dlq_size: '0',
      peak_pct: '0.0',
    });
  });

  it('comments the view and every column for operators', async () => {
    const { rows } = await app.db.pool.query(
      `SELECT a.attname, col_description(c.oid, a.attnum) AS comment, obj_description(c.oid, 'pg_class') AS view
         FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0
        WHERE c.relname = 'tenant_quota_usage'`,
    );
    expect(rows.length).toBe(13);
    expect(rows[0].view).toMatch(/\w/);
    for (const r of rows)
      expect({ column: r.attname, comment: r.comment }).toEqual({
        column: r.attname,
        comment: expect.stringMatching(/\w/),
      });
  });

  it('lists the top tenants nearest their limits first, or one tenant', async () => {
    const top = await listTopQuotaUsage(app.db.pool, { limit: 3 });
    expect(
      top
        .map((r) => r.tenantName)
        .slice(0, 2)
        .sort(),
    ).toEqual(['busy', 'rate']);
    expect(top[2]).toMatchObject({ tenantName: 'dead', dlqSize: 4, dlqPct: 80, peakPct: 80 });
    const one = await listTopQuotaUsage(app.db.pool, { tenantId: t.busy.id, limit: 10 });
    expect(one).toEqual([expect.objectContaining({ tenantId: t.busy.id, inFlightDeliveries: 4 })]);
  });
});

describe('the quota gauges', () => {
  it('count the tenants at 80 % and at 100 % of each quota, with no tenant label', async () => {
    expect(await gauges()).toEqual({
      events_per_sec: { near: 1, at: 1 },
      concurrent_deliveries: { near: 1, at: 1 },
      dlq_size: { near: 1, at: 0 },
    });
    const text = await createMetrics({ pool: app.db.pool, defaultMetrics: false }).render();
    expect(text).not.toMatch(/tenant_id=/);
    expect(text).toMatch(/^postbox_tenant_quota_stats_up 1$/m);
  });

  it('agree with the view, also past a limit (the DLQ count stops at the limit)', async () => {
    const hook = (await sqlWebhook(app.db.pool, t.dead.id)).id;
    for (let i = 0; i < 3; i++) await sqlDeadDelivery(app.db.pool, t.dead.id, hook); // 7 of 5
    const counts = await countTenantsNearQuota(app.db.pool);
    expect(counts.dlq_size).toEqual({ near: 1, at: 1 });
    const { rows } = await app.db.pool.query(
      `SELECT count(*) FILTER (WHERE events_pct >= 80)::int AS events_near,
              count(*) FILTER (WHERE events_pct >= 100)::int AS events_at,
              count(*) FILTER (WHERE concurrency_pct >= 80)::int AS concurrency_near,
              count(*) FILTER (WHERE concurrency_pct >= 100)::int AS concurrency_at,
              count(*) FILTER (WHERE dlq_pct >= 80)::int AS dlq_near,
              count(*) FILTER (WHERE dlq_pct >= 100)::int AS dlq_at,
              max(dlq_pct) FILTER (WHERE tenant_name = 'dead')::float8 AS dead_pct
         FROM tenant_quota_usage`,
    );
    const v = rows[0];
    expect(counts).toEqual({
      events_per_sec: { near: v.events_near, at: v.events_at },
      concurrent_deliveries: { near: v.concurrency_near, at: v.concurrency_at },
      dlq_size: { near: v.dlq_near, at: v.dlq_at },
    });
    expect(v.dead_pct).toBe(140); // the view counts exactly: 7 of 5
    expect((await listTopQuotaUsage(app.db.pool, { limit: 1 }))[0]).toMatchObject({ tenantName: 'dead' });
  });
});

describe('GET /console/api/tenant-usage', () => {
  it('ranks tenants for the admin key', async () => {
    const res = await app.request('GET', '/console/api/tenant-usage?limit=2');
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.body.data).toHaveLength(2);
    expect(res.body.data[0]).toEqual({
      tenant_id: t.dead.id,
      name: 'dead',
      peak_percent: 140,
      quotas: {
        events_per_sec: { limit: 1000, used: 0, percent: 0 },
        concurrent_deliveries: { limit: 10, used: 2, percent: 20 },
        dlq_size: { limit: 5, used: 7, percent: 140 },
      },
    });
  });

  it('shows a tenant key its own row only, and hides other tenants', async () => {
    const own = await app.request('GET', '/console/api/tenant-usage', { key: t.busy.apiKey });
    expect(own.body.data.map((r: { tenant_id: string }) => r.tenant_id)).toEqual([t.busy.id]);
    const other = await app.request('GET', `/console/api/tenant-usage?tenant_id=${t.dead.id}`, {
      key: t.busy.apiKey,
    });
    expect(other.status).toBe(404);
  });

  it('refuses bad input with 400 and no key with 401', async () => {
    for (const q of ['limit=0', 'limit=101', 'limit=x', 'tenant_id=nope', 'order=asc']) {
      const res = await app.request('GET', `/console/api/tenant-usage?${q}`);
      expect({ q, status: res.status, code: res.body.error?.code }).toEqual({
        q,
        status: 400,
        code: 'validation_failed',
      });
    }
    expect((await app.request('GET', '/console/api/tenant-usage', { key: null })).status).toBe(401);
  });
});
