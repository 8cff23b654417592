import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { apiKeyPrefix } from '../../src/security/api-keys.js';
import pg from 'pg';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { allPages } from '../helpers/pages.js';
import {
  sqlAttempts,
  sqlDeadDelivery,
  sqlDelivery,
  sqlEvent,
  sqlTenant,
  sqlWebhook,
} from '../helpers/fixtures-sql.js';
import { waitFor } from '../helpers/wait.js';
import { DELIVERIES_CHANNEL } from '../../src/queries/notify.js';

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(async () => {
  await app.close();
});

const UNKNOWN_ID = '0190b6a4-3f1e-7c3a-9d2e-000000000000';

/** A tenant with one webhook and one event: enough to hang deliveries on. */
async function world() {
  const db = app.db.pool;
  const tenant = await sqlTenant(db, 'deliveries');
  const webhook = await sqlWebhook(db, tenant.id);
  const event = await sqlEvent(db, tenant.id, { type: 'order.created' });
  const delivery = (extra: Partial<Parameters<typeof sqlDelivery>[1]> = {}) =>
    sqlDelivery(db, { tenantId: tenant.id, eventId: event.id, webhookId: webhook.id, ...extra });
  return { db, tenant, webhook, event, delivery, key: tenant.apiKey };
}

async function deliveryRow(id: string) {
  const { rows } = await app.db.pool.query('SELECT * FROM deliveries WHERE id = $1', [id]);
  return rows[0];
}

describe('GET /deliveries', () => {
  it('needs a key', async () => {
    expect((await app.request('GET', '/deliveries', { key: null })).status).toBe(401);
  });

  it('lists the tenant’s deliveries newest first, in the documented shape', async () => {
    const w = await world();
    const older = await w.delivery({ status: 'succeeded', lastStatusCode: 200 });
    const newer = await w.delivery();
    const res = await app.request('GET', '/deliveries', { key: w.key });
    expect(res.status).toBe(200);
    expect(res.body.next_cursor).toBeNull();
    expect(res.body.data.map((d: any) => d.id)).toEqual([newer, older]);
    expect(res.body.data[1]).toEqual({
      id: older,
      tenant_id: w.tenant.id,
      event_id: w.event.id,
      webhook_id: w.webhook.id,
      event_type: 'order.created',
      status: 'succeeded',
      attempts: 1,
      attempt_count: 1,
      next_attempt_at: expect.any(String),
      last_attempt_at: expect.any(String),
      last_status_code: 200,
      last_error: null,
      created_at: expect.any(String),
      updated_at: expect.any(String),
      completed_at: expect.any(String),
    });
    expect(res.body.data[0]).toMatchObject({ status: 'pending', attempts: 0, completed_at: null });
  });

  it('filters by webhook_id, event_id and status', async () => {
    const w = await world();
    const otherHook = await sqlWebhook(w.db, w.tenant.id);
    const otherEvent = await sqlEvent(w.db, w.tenant.id, { type: 'order.paid' });
    const a = await w.delivery({ status: 'failed' });
    const b = await sqlDelivery(w.db, {
      tenantId: w.tenant.id,
      eventId: w.event.id,
      webhookId: otherHook.id,
    });
    const c = await sqlDelivery(w.db, {
      tenantId: w.tenant.id,
      eventId: otherEvent.id,
      webhookId: w.webhook.id,
      status: 'failed',
    });
    const ids = async (query: string) => {
      const res = await app.request('GET', `/deliveries?${query}`, { key: w.key });
      expect(res.status).toBe(200);
      return res.body.data.map((d: any) => d.id);
    };
    expect(await ids(`webhook_id=${w.webhook.id}`)).toEqual([c, a]);
    expect(await ids(`webhook_id=${otherHook.id}`)).toEqual([b]);
    expect(await ids(`event_id=${w.event.id}`)).toEqual([b, a]);
    expect(await ids(`status=failed`)).toEqual([c, a]);
    expect(await ids(`status=pending`)).toEqual([b]);
    expect(await ids(`status=failed&event_id=${otherEvent.id}`)).toEqual([c]);
    expect(await ids(`status=cancelled`)).toEqual([]);
  });

  it('filters by from and to on created_at, both inclusive', async () => {
    const w = await world();
    const jan = await w.delivery({ createdAt: new Date('2026-01-01T00:00:00Z') });
    const feb = await w.delivery({ createdAt: new Date('2026-02-01T00:00:00Z') });
    const mar = await w.delivery({ createdAt: new Date('2026-03-01T00:00:00Z') });
    const ids = async (query: string) =>
      (await app.request('GET', `/deliveries?${query}`, { key: w.key })).body.data.map((d: any) => d.id);
    expect(await ids('from=2026-02-01T00:00:00Z')).toEqual([mar, feb]);
    expect(await ids('to=2026-02-01T00:00:00Z')).toEqual([feb, jan]);
    expect(await ids('from=2026-01-15T00:00:00Z&to=2026-02-15T00:00:00Z')).toEqual([feb]);
    // An offset is honoured: 2026-02-01T01:00+01:00 is midnight UTC.
    expect(await ids('from=2026-02-01T01:00:00%2B01:00&to=2026-02-01T01:00:00%2B01:00')).toEqual([feb]);
  });

  it('pages with limit and cursor, newest first, each delivery once', async () => {
    const w = await world();
    const made: string[] = [];
    for (let i = 0; i < 5; i++) made.push(await w.delivery());
    const pages = await allPages(app, '/deliveries?limit=2', w.key);
    expect(pages.map((p) => p.length)).toEqual([2, 2, 1]);
    expect(pages.flat().map((d) => d.id)).toEqual([...made].reverse());
  });

  it('keeps the filters across pages', async () => {
    const w = await world();
    const failed: string[] = [];
    for (let i = 0; i < 3; i++) {
      failed.push(await w.delivery({ status: 'failed' }));
      await w.delivery({ status: 'succeeded' });
    }
    const first = await app.request('GET', '/deliveries?status=failed&limit=2', { key: w.key });
    const second = await app.request(
      'GET',
      `/deliveries?status=failed&limit=2&cursor=${first.body.next_cursor}`,
      { key: w.key },
    );
    expect([...first.body.data, ...second.body.data].map((d: any) => d.id)).toEqual(failed.reverse());
    expect(second.body.next_cursor).toBeNull();
  });

  it('shows a tenant only its own deliveries; the admin sees all and may pick a tenant', async () => {
    const a = await world();
    const b = await world();
    const da = await a.delivery();
    const db = await b.delivery();
    const asB = await app.request('GET', '/deliveries', { key: b.key });
    expect(asB.body.data.map((d: any) => d.id)).toEqual([db]);
    // Filtering on another tenant's webhook finds nothing rather than leaking it.
    const probe = await app.request('GET', `/deliveries?webhook_id=${a.webhook.id}`, { key: b.key });
    expect(probe.body.data).toEqual([]);
    const admin = await app.request('GET', '/deliveries?limit=500');
    expect(admin.body.data.map((d: any) => d.id)).toEqual(expect.arrayContaining([da, db]));
    const scoped = await app.request('GET', `/deliveries?tenant_id=${a.tenant.id}`);
    expect(scoped.body.data.map((d: any) => d.id)).toEqual([da]);
    const otherTenant = await app.request('GET', `/deliveries?tenant_id=${a.tenant.id}`, { key: b.key });
    expect(otherTenant.status).toBe(404);
    const ownTenant = await app.request('GET', `/deliveries?tenant_id=${b.tenant.id}`, { key: b.key });
    expect(ownTenant.body.data.map((d: any) => d.id)).toEqual([db]);
  });

  it.each([
    ['status=done', 'status'],
    ['status=pending&status=failed', 'status'],
    ['webhook_id=abc', 'webhook_id'],
    ['event_id=123', 'event_id'],
    ['tenant_id=x', 'tenant_id'],
    ['from=yesterday', 'from'],
    ['from=2026-01-01', 'from'],
    ['to=2026-13-01T00:00:00Z', 'to'],
    ['from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z', 'to'],
    ['limit=0', 'limit'],
    ['limit=501', 'limit'],
    ['limit=ten', 'limit'],
    ['cursor=not-a-cursor', 'cursor'],
    [`cursor=${Buffer.from('["x"]').toString('base64url')}`, 'cursor'],
    [`cursor=${Buffer.from('[1]').toString('base64url')}`, 'cursor'],
    ['staus=pending', 'staus'],
  ])('answers 400 for %s, naming %s', async (query, path) => {
    const res = await app.request('GET', `/deliveries?${query}`);
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('validation_failed');
    expect(res.body.error.details.map((d: any) => d.path)).toContain(path);
  });
});

describe('GET /deliveries/:id', () => {
  it('returns the delivery with its attempts in order, and the count in attempt_count', async () => {
    const w = await world();
    const id = await w.delivery({
      status: 'pending',
      attempts: 2,
      lastStatusCode: 503,
      lastError: 'HTTP 503',
    });
    await sqlAttempts(w.db, id, [
      { attempt: 1, startedAt: new Date('2026-01-01T00:00:00Z'), error: 'connect ECONNREFUSED' },
      {
        attempt: 2,
        startedAt: new Date('2026-01-01T00:00:05Z'),
        durationMs: 40,
        statusCode: 503,
        error: 'HTTP 503',
        responseExcerpt: 'busy',
      },
    ]);
    const res = await app.request('GET', `/deliveries/${id}`, { key: w.key });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      id,
      tenant_id: w.tenant.id,
      event_type: 'order.created',
      status: 'pending',
      attempt_count: 2,
      last_status_code: 503,
      last_error: 'HTTP 503',
    });
    expect(res.body.attempts).toEqual([
      {
        attempt: 1,
        started_at: '2026-01-01T00:00:00.000Z',
        duration_ms: 12,
        status_code: null,
        error: 'connect ECONNREFUSED',
        response_excerpt: null,
      },
      {
        attempt: 2,
        started_at: '2026-01-01T00:00:05.000Z',
        duration_ms: 40,
        status_code: 503,
        error: 'HTTP 503',
        response_excerpt: 'busy',
      },
    ]);
  });

  it('returns an empty attempts list for a delivery not tried yet', async () => {
    const w = await world();
    const id = await w.delivery();
    const res = await app.request('GET', `/deliveries/${id}`, { key: w.key });
    expect(res.body).toMatchObject({ attempts: [], attempt_count: 0 });
  });

  it('answers 404 for another tenant’s delivery and for an unknown id; the admin sees any', async () => {
    const a = await world();
    const b = await world();
    const id = await a.delivery();
    const res = await app.request('GET', `/deliveries/${id}`, { key: b.key });
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('not_found');
    expect(JSON.stringify(res.body)).not.toContain(a.event.id);
    expect((await app.request('GET', `/deliveries/${UNKNOWN_ID}`, { key: a.key })).status).toBe(404);
    expect((await app.request('GET', `/deliveries/${id}`)).status).toBe(200);
  });

  it('answers 400 for an id that is not an id', async () => {
    const res = await app.request('GET', '/deliveries/nope');
    expect(res.status).toBe(400);
    expect(res.body.error.details[0].path).toBe('id');
  });
});

describe('POST /deliveries/:id/replay', () => {
  it('starts a new cycle of a dead delivery: same id, pending, attempts 0, out of the DLQ, audited', async () => {
    const w = await world();
    const { deliveryId } = await sqlDeadDelivery(w.db, w.tenant.id, w.webhook.id, { attempts: 4 });
    const before = Date.now();
    const res = await app.request('POST', `/deliveries/${deliveryId}/replay`, { key: w.key });
    expect(res.status).toBe(202);
    expect(res.body).toEqual({ delivery_id: deliveryId, status: 'pending' });

    const row = await deliveryRow(deliveryId);
    expect(row).toMatchObject({
      status: 'pending',
      attempts: 0,
      lease_owner: null,
      lease_expires_at: null,
      completed_at: null,
    });
    expect(row.next_attempt_at.getTime()).toBeLessThanOrEqual(Date.now());
    expect(row.next_attempt_at.getTime()).toBeGreaterThanOrEqual(before - 5_000);
    const dlq = await w.db.query('SELECT 1 FROM dead_letter_queue WHERE delivery_id = $1', [deliveryId]);
    expect(dlq.rowCount).toBe(0);
    // The history of the earlier cycle stays.
    const detail = await app.request('GET', `/deliveries/${deliveryId}`, { key: w.key });
    expect(detail.body.attempts).toHaveLength(4);
    expect(detail.body.attempt_count).toBe(0);

    const audit = await w.db.query('SELECT * FROM audit_log WHERE action = $1 AND object_id = $2', [
      'delivery.replay',
      deliveryId,
    ]);
    expect(audit.rows).toHaveLength(1);
    expect(audit.rows[0]).toMatchObject({
      actor: apiKeyPrefix(w.key),
      object_type: 'delivery',
      tenant_id: w.tenant.id,
      changes: { status: { from: 'failed', to: 'pending' }, attempts: { from: 4, to: 0 } },
    });
  });

  it('replays a succeeded delivery too, and the admin may replay any tenant’s', async () => {
    const w = await world();
    const id = await w.delivery({ status: 'succeeded', lastStatusCode: 200 });
    const res = await app.request('POST', `/deliveries/${id}/replay`);
    expect(res.status).toBe(202);
    expect(await deliveryRow(id)).toMatchObject({ status: 'pending', attempts: 0, completed_at: null });
    const audit = await w.db.query('SELECT actor FROM audit_log WHERE object_id = $1', [id]);
    expect(audit.rows).toEqual([{ actor: 'admin' }]);
  });

  it('wakes the workers (NOTIFY on commit)', async () => {
    const w = await world();
    const id = await w.delivery({ status: 'succeeded' });
    const listener = new pg.Client({ connectionString: app.db.url });
    await listener.connect();
    try {
      let notified = 0;
      listener.on('notification', (n) => {
        if (n.channel === DELIVERIES_CHANNEL) notified++;
      });
      await listener.query(`LISTEN ${DELIVERIES_CHANNEL}`);
      expect((await app.request('POST', `/deliveries/${id}/replay`, { key: w.key })).status).toBe(202);
      await waitFor(() => notified > 0, { what: 'a deliveries-due notification' });
    } finally {
      await listener.end();
    }
  });

  it('answers 409 while the delivery is in flight, and leaves it alone', async () => {
    const w = await world();
    const id = await w.delivery({ status: 'in_flight', attempts: 1 });
    const before = await deliveryRow(id);
    const res = await app.request('POST', `/deliveries/${id}/replay`, { key: w.key });
    expect(res.status).toBe(409);
    expect(res.body.error.code).toBe('conflict');
    expect(await deliveryRow(id)).toEqual(before);
  });

  it('answers 409 when the webhook is deleted (its deliveries were cancelled)', async () => {
    const w = await world();
    const gone = await sqlWebhook(w.db, w.tenant.id, { deleted: true });
    const id = await sqlDelivery(w.db, {
      tenantId: w.tenant.id,
      eventId: w.event.id,
      webhookId: gone.id,
      status: 'cancelled',
    });
    const res = await app.request('POST', `/deliveries/${id}/replay`, { key: w.key });
    expect(res.status).toBe(409);
    expect((await deliveryRow(id)).status).toBe('cancelled');
    const audit = await w.db.query('SELECT 1 FROM audit_log WHERE object_id = $1', [id]);
    expect(audit.rowCount).toBe(0);
  });

  it('answers 404 for another tenant’s delivery and leaves it alone', async () => {
    const a = await world();
    const b = await world();
    const { deliveryId } = await sqlDeadDelivery(a.db, a.tenant.id, a.webhook.id);
    const res = await app.request('POST', `/deliveries/${deliveryId}/replay`, { key: b.key });
    expect(res.status).toBe(404);
    expect((await deliveryRow(deliveryId)).status).toBe('failed');
    const dlq = await a.db.query('SELECT 1 FROM dead_letter_queue WHERE delivery_id = $1', [deliveryId]);
    expect(dlq.rowCount).toBe(1);
    expect((await app.request('POST', `/deliveries/${UNKNOWN_ID}/replay`, { key: a.key })).status).toBe(404);
  });

  it('answers 400 for a bad id or an unexpected body', async () => {
    const bad = await app.request('POST', '/deliveries/123/replay');
    expect(bad.status).toBe(400);
    expect(bad.body.error.details[0].path).toBe('id');
    const w = await world();
    const id = await w.delivery({ status: 'succeeded' });
    const body = await app.request('POST', `/deliveries/${id}/replay`, { key: w.key, body: { force: true } });
    expect(body.status).toBe(400);
    expect(body.body.error.details[0].path).toBe('force');
    expect((await deliveryRow(id)).status).toBe('succeeded');
    const empty = await app.request('POST', `/deliveries/${id}/replay`, { key: w.key, body: {} });
    expect(empty.status).toBe(202);
  });
});
