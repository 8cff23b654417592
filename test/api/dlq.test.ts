import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { apiKeyPrefix } from '../../src/security/api-keys.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { allPages } from '../helpers/pages.js';
import { sqlDeadDelivery, sqlDelivery, sqlEvent, sqlTenant, sqlWebhook } from '../helpers/fixtures-sql.js';

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(async () => {
  await app.close();
});

const UNKNOWN_ID = '0190b6a4-3f1e-7c3a-9d2e-000000000000';

async function world() {
  const db = app.db.pool;
  const tenant = await sqlTenant(db, 'dlq');
  const webhook = await sqlWebhook(db, tenant.id);
  const dead = (opts: Parameters<typeof sqlDeadDelivery>[3] = {}, webhookId = webhook.id) =>
    sqlDeadDelivery(db, tenant.id, webhookId, opts);
  return { db, tenant, webhook, dead, key: tenant.apiKey };
}

async function deliveryRow(id: string) {
  const { rows } = await app.db.pool.query('SELECT * FROM deliveries WHERE id = $1', [id]);
  return rows[0];
}

async function inDlq(id: string): Promise<boolean> {
  const { rowCount } = await app.db.pool.query('SELECT 1 FROM dead_letter_queue WHERE delivery_id = $1', [
    id,
  ]);
  return rowCount === 1;
}

const listIds = async (key: string | undefined, query = '') => {
  const res = await app.request('GET', `/dlq${query ? `?${query}` : ''}`, { key });
  expect(res.status).toBe(200);
  return res.body.data.map((d: any) => d.delivery_id);
};

describe('GET /dlq', () => {
  it('needs a key', async () => {
    expect((await app.request('GET', '/dlq', { key: null })).status).toBe(401);
  });

  it('lists dead deliveries newest first, in the documented shape', async () => {
    const w = await world();
    const older = await w.dead({
      type: 'order.created',
      attempts: 5,
      deadAt: new Date('2026-01-01T00:00:00Z'),
    });
    const newer = await w.dead({ type: 'order.paid', deadAt: new Date('2026-01-02T00:00:00Z') });
    const res = await app.request('GET', '/dlq', { key: w.key });
    expect(res.status).toBe(200);
    expect(res.body.next_cursor).toBeNull();
    expect(res.body.data).toEqual([
      expect.objectContaining({ delivery_id: newer.deliveryId }),
      {
        delivery_id: older.deliveryId,
        tenant_id: w.tenant.id,
        webhook_id: w.webhook.id,
        event_id: older.eventId,
        event_type: 'order.created',
        last_error: 'HTTP 500',
        attempts: 5,
        dead_at: '2026-01-01T00:00:00.000Z',
        fifo_order_broken: false,
      },
    ]);
  });

  it('filters by webhook_id and event_type', async () => {
    const w = await world();
    const hook2 = await sqlWebhook(w.db, w.tenant.id);
    const a = await w.dead({ type: 'order.created' });
    const b = await w.dead({ type: 'order.paid' });
    const c = await w.dead({ type: 'order.created' }, hook2.id);
    expect(await listIds(w.key, `webhook_id=${w.webhook.id}`)).toEqual([b.deliveryId, a.deliveryId]);
    expect(await listIds(w.key, `webhook_id=${hook2.id}`)).toEqual([c.deliveryId]);
    expect(await listIds(w.key, 'event_type=order.created')).toEqual([c.deliveryId, a.deliveryId]);
    expect(await listIds(w.key, `event_type=order.created&webhook_id=${w.webhook.id}`)).toEqual([
      a.deliveryId,
    ]);
  });

  it('pages across equal and microsecond-apart dead_at values without losing or repeating rows', async () => {
    const w = await world();
    const same = new Date('2026-03-01T00:00:00Z');
    const made = [];
    for (let i = 0; i < 4; i++) made.push((await w.dead({ deadAt: same })).deliveryId);
    // Two rows a few microseconds apart: a millisecond cursor would conflate them.
    const micro = [];
    for (const us of ['000001', '000002']) {
      const d = await w.dead();
      await w.db.query('UPDATE dead_letter_queue SET dead_at = $1 WHERE delivery_id = $2', [
        `2026-03-01T00:00:00.${us}Z`,
        d.deliveryId,
      ]);
      micro.push(d.deliveryId);
    }
    const pages = await allPages(app, '/dlq?limit=2', w.key);
    for (const page of pages) expect(page.length).toBeLessThanOrEqual(2);
    const seen = pages.flat().map((d) => d.delivery_id);
    // Newest dead_at first; among equal dead_at, the larger delivery id first.
    expect(seen).toEqual([micro[1], micro[0], ...[...made].sort().reverse()]);
  });

  it('shows a tenant only its own DLQ; the admin sees all and may pick a tenant', async () => {
    const a = await world();
    const b = await world();
    const da = await a.dead();
    const db = await b.dead();
    expect(await listIds(b.key)).toEqual([db.deliveryId]);
    expect(await listIds(b.key, `webhook_id=${a.webhook.id}`)).toEqual([]);
    expect(await listIds(undefined, 'limit=500')).toEqual(
      expect.arrayContaining([da.deliveryId, db.deliveryId]),
    );
    expect(await listIds(undefined, `tenant_id=${a.tenant.id}`)).toEqual([da.deliveryId]);
    expect((await app.request('GET', `/dlq?tenant_id=${a.tenant.id}`, { key: b.key })).status).toBe(404);
  });

  it.each([
    ['webhook_id=x', 'webhook_id'],
    ['tenant_id=x', 'tenant_id'],
    ['event_type=', 'event_type'],
    ['event_type=a&event_type=b', 'event_type'],
    ['limit=0', 'limit'],
    ['cursor=abc', 'cursor'],
    [`cursor=${Buffer.from(JSON.stringify([UNKNOWN_ID])).toString('base64url')}`, 'cursor'],
    [`cursor=${Buffer.from(JSON.stringify(['yesterday', UNKNOWN_ID])).toString('base64url')}`, 'cursor'],
    ['status=failed', 'status'],
  ])('answers 400 for %s, naming %s', async (query, path) => {
    const res = await app.request('GET', `/dlq?${query}`);
    expect(res.status).toBe(400);
    expect(res.body.error.details.map((d: any) => d.path)).toContain(path);
  });
});

describe('POST /dlq/:delivery_id/retry', () => {
  it('requeues the same delivery, takes it out of the listing, and audits it', async () => {
    const w = await world();
    const dead = await w.dead({ attempts: 7 });
    const stays = await w.dead();
    const res = await app.request('POST', `/dlq/${dead.deliveryId}/retry`, { key: w.key });
    expect(res.status).toBe(202);
    expect(res.body).toEqual({ delivery_id: dead.deliveryId, status: 'pending' });
    expect(await listIds(w.key)).toEqual([stays.deliveryId]);
    expect(await deliveryRow(dead.deliveryId)).toMatchObject({
      status: 'pending',
      attempts: 0,
      completed_at: null,
      lease_owner: null,
    });
    const audit = await w.db.query('SELECT * FROM audit_log WHERE action = $1 AND object_id = $2', [
      'dlq.retry',
      dead.deliveryId,
    ]);
    expect(audit.rows).toHaveLength(1);
    expect(audit.rows[0]).toMatchObject({ actor: apiKeyPrefix(w.key), tenant_id: w.tenant.id });
    // It is no longer in the DLQ, so a second retry finds nothing to retry.
    expect((await app.request('POST', `/dlq/${dead.deliveryId}/retry`, { key: w.key })).status).toBe(404);
  });

  it('answers 404 for a delivery that is not in the DLQ, another tenant’s, or unknown', async () => {
    const a = await world();
    const b = await world();
    const event = await sqlEvent(a.db, a.tenant.id);
    const ok = await sqlDelivery(a.db, {
      tenantId: a.tenant.id,
      eventId: event.id,
      webhookId: a.webhook.id,
      status: 'succeeded',
    });
    expect((await app.request('POST', `/dlq/${ok}/retry`, { key: a.key })).status).toBe(404);
    expect((await deliveryRow(ok)).status).toBe('succeeded');
    const dead = await a.dead();
    const res = await app.request('POST', `/dlq/${dead.deliveryId}/retry`, { key: b.key });
    expect(res.status).toBe(404);
    expect(await inDlq(dead.deliveryId)).toBe(true);
    expect((await app.request('POST', `/dlq/${UNKNOWN_ID}/retry`, { key: a.key })).status).toBe(404);
    // The admin may retry any tenant's.
    expect((await app.request('POST', `/dlq/${dead.deliveryId}/retry`)).status).toBe(202);
  });

  it('answers 409 when the webhook is deleted, and keeps the row in the DLQ', async () => {
    const w = await world();
    const gone = await sqlWebhook(w.db, w.tenant.id);
    const dead = await w.dead({}, gone.id);
    await w.db.query('UPDATE webhooks SET deleted_at = now() WHERE id = $1', [gone.id]);
    const res = await app.request('POST', `/dlq/${dead.deliveryId}/retry`, { key: w.key });
    expect(res.status).toBe(409);
    expect(await inDlq(dead.deliveryId)).toBe(true);
  });

  it('answers 400 for a bad id or an unexpected body', async () => {
    const bad = await app.request('POST', '/dlq/xyz/retry');
    expect(bad.status).toBe(400);
    expect(bad.body.error.details[0].path).toBe('delivery_id');
    const w = await world();
    const dead = await w.dead();
    const res = await app.request('POST', `/dlq/${dead.deliveryId}/retry`, { key: w.key, body: { now: 1 } });
    expect(res.status).toBe(400);
    expect(await inDlq(dead.deliveryId)).toBe(true);
  });
});

describe('POST /dlq/retry', () => {
  it('requeues every dead delivery of the tenant, and only of that tenant', async () => {
    const a = await world();
    const b = await world();
    const deadA = [await a.dead(), await a.dead(), await a.dead()];
    const deadB = await b.dead();
    const res = await app.request('POST', '/dlq/retry', { key: a.key });
    expect(res.status).toBe(202);
    expect(res.body).toEqual({ requeued: 3 });
    expect(await listIds(a.key)).toEqual([]);
    for (const d of deadA)
      expect(await deliveryRow(d.deliveryId)).toMatchObject({ status: 'pending', attempts: 0 });
    expect(await inDlq(deadB.deliveryId)).toBe(true);
    const audit = await a.db.query('SELECT * FROM audit_log WHERE action = $1 AND tenant_id = $2', [
      'dlq.retry_bulk',
      a.tenant.id,
    ]);
    expect(audit.rows).toHaveLength(1);
    expect(audit.rows[0]).toMatchObject({
      actor: apiKeyPrefix(a.key),
      object_type: 'tenant',
      object_id: a.tenant.id,
      changes: { requeued: 3, filters: { webhook_id: null, event_type: null } },
    });
  });

  it('filters by webhook_id and event_type', async () => {
    const w = await world();
    const hook2 = await sqlWebhook(w.db, w.tenant.id);
    const created = await w.dead({ type: 'order.created' });
    const paid = await w.dead({ type: 'order.paid' });
    const other = await w.dead({ type: 'order.created' }, hook2.id);
    const byType = await app.request('POST', '/dlq/retry', {
      key: w.key,
      body: { webhook_id: w.webhook.id, event_type: 'order.created' },
    });
    expect(byType.body).toEqual({ requeued: 1 });
    expect(await listIds(w.key)).toEqual([other.deliveryId, paid.deliveryId]);
    expect(await inDlq(created.deliveryId)).toBe(false);
    const byHook = await app.request('POST', '/dlq/retry', { key: w.key, body: { webhook_id: hook2.id } });
    expect(byHook.body).toEqual({ requeued: 1 });
    expect(await listIds(w.key)).toEqual([paid.deliveryId]);
  });

  it('answers {requeued: 0} when nothing matches, and writes no audit row', async () => {
    const w = await world();
    const res = await app.request('POST', '/dlq/retry', { key: w.key, body: { event_type: 'nothing.here' } });
    expect(res.status).toBe(202);
    expect(res.body).toEqual({ requeued: 0 });
    const audit = await w.db.query('SELECT 1 FROM audit_log WHERE tenant_id = $1', [w.tenant.id]);
    expect(audit.rowCount).toBe(0);
  });

  it('leaves the dead deliveries of deleted webhooks in the DLQ', async () => {
    const w = await world();
    const gone = await sqlWebhook(w.db, w.tenant.id);
    const kept = await w.dead({}, gone.id);
    const retried = await w.dead();
    await w.db.query('UPDATE webhooks SET deleted_at = now() WHERE id = $1', [gone.id]);
    const res = await app.request('POST', '/dlq/retry', { key: w.key });
    expect(res.body).toEqual({ requeued: 1 });
    expect(await inDlq(kept.deliveryId)).toBe(true);
    expect(await inDlq(retried.deliveryId)).toBe(false);
  });

  it('lets the admin retry one tenant or all, with an audit row per tenant', async () => {
    const a = await world();
    const b = await world();
    await a.dead();
    await b.dead();
    await b.dead();
    const one = await app.request('POST', '/dlq/retry', { body: { tenant_id: a.tenant.id } });
    expect(one.body).toEqual({ requeued: 1 });
    expect(await listIds(b.key)).toHaveLength(2);
    await a.dead();
    const all = await app.request('POST', '/dlq/retry', { body: {} });
    expect(all.status).toBe(202);
    expect(all.body.requeued).toBeGreaterThanOrEqual(3);
    expect(await listIds(a.key)).toEqual([]);
    expect(await listIds(b.key)).toEqual([]);
    const audit = await a.db.query(
      `SELECT tenant_id, changes FROM audit_log WHERE action = 'dlq.retry_bulk' AND actor = 'admin'
        AND tenant_id = ANY($1) ORDER BY id`,
      [[a.tenant.id, b.tenant.id]],
    );
    expect(audit.rows.map((r) => [r.tenant_id, r.changes.requeued])).toEqual(
      expect.arrayContaining([
        [a.tenant.id, 1],
        [a.tenant.id, 1],
        [b.tenant.id, 2],
      ]),
    );
  });

  it('counts each delivery once when two bulk retries race', async () => {
    const w = await world();
    for (let i = 0; i < 40; i++) await w.dead();
    const [x, y] = await Promise.all([
      app.request('POST', '/dlq/retry', { key: w.key }),
      app.request('POST', '/dlq/retry', { key: w.key }),
    ]);
    expect([x.status, y.status]).toEqual([202, 202]);
    expect(x.body.requeued + y.body.requeued).toBe(40);
    const { rows } = await w.db.query(
      `SELECT count(*)::int AS n FROM deliveries WHERE tenant_id = $1 AND status = 'pending'`,
      [w.tenant.id],
    );
    expect(rows[0].n).toBe(40);
  });

  it('requeues many rows in one go', async () => {
    const w = await world();
    // 600 dead deliveries, written in bulk: more than any page, to show nothing loops per row or page.
    await w.db.query(
      `WITH e AS (
         INSERT INTO events (id, tenant_id, type, payload, occurred_at)
         SELECT gen_random_uuid(), $1, 'bulk.test', '{}', now() FROM generate_series(1, 600)
         RETURNING id),
       d AS (
         INSERT INTO deliveries (id, tenant_id, event_id, webhook_id, status, attempts, completed_at)
         SELECT gen_random_uuid(), $1, e.id, $2, 'failed', 3, now() FROM e
         RETURNING id, event_id)
       INSERT INTO dead_letter_queue (delivery_id, tenant_id, webhook_id, event_id, event_type, attempts)
       SELECT d.id, $1, $2, d.event_id, 'bulk.test', 3 FROM d`,
      [w.tenant.id, w.webhook.id],
    );
    const res = await app.request('POST', '/dlq/retry', { key: w.key, body: { event_type: 'bulk.test' } });
    expect(res.body).toEqual({ requeued: 600 });
    expect(await listIds(w.key)).toEqual([]);
  });

  it('scopes a tenant key to its own tenant', async () => {
    const a = await world();
    const b = await world();
    const dead = await a.dead();
    const res = await app.request('POST', '/dlq/retry', { key: b.key, body: { tenant_id: a.tenant.id } });
    expect(res.status).toBe(404);
    expect(await inDlq(dead.deliveryId)).toBe(true);
    // Naming another tenant's webhook as a filter matches nothing of the caller's.
    const probe = await app.request('POST', '/dlq/retry', { key: b.key, body: { webhook_id: a.webhook.id } });
    expect(probe.body).toEqual({ requeued: 0 });
    expect(await inDlq(dead.deliveryId)).toBe(true);
  });

  it.each([
    [{ webhook_id: 'x' }, 'webhook_id'],
    [{ event_type: '' }, 'event_type'],
    [{ event_type: 5 }, 'event_type'],
    [{ tenant_id: 'x' }, 'tenant_id'],
    [{ event_types: ['a'] }, 'event_types'],
  ])('answers 400 for %j, naming %s, and requeues nothing', async (body, path) => {
    const w = await world();
    const dead = await w.dead();
    const res = await app.request('POST', '/dlq/retry', { key: w.key, body });
    expect(res.status).toBe(400);
    expect(res.body.error.details.map((d: any) => d.path)).toContain(path);
    expect(await inDlq(dead.deliveryId)).toBe(true);
  });

  it('answers 400 for a body that is not JSON or not an object', async () => {
    expect((await app.request('POST', '/dlq/retry', { rawBody: '{' })).status).toBe(400);
    expect((await app.request('POST', '/dlq/retry', { body: [1] })).status).toBe(400);
  });
});
