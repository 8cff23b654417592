import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { sqlDeadDelivery, sqlDelivery, sqlEvent, sqlWebhook } from '../helpers/fixtures-sql.js';
import { consumeEventQuota } from '../../src/queries/quotas.js';
import { waitFor } from '../helpers/wait.js';

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(async () => {
  await app.close();
});

describe('GET /quotas/:tenant_id', () => {
  it('answers limits and zero usage for a new tenant', async () => {
    const t = await app.createTenant('fresh', { max_events_per_sec: 7, max_dlq_size: 3 });
    const res = await app.request('GET', `/quotas/${t.id}`);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      tenant_id: t.id,
      limits: { max_events_per_sec: 7, max_concurrent_deliveries: expect.any(Number), max_dlq_size: 3 },
      current_usage: { events_this_second: 0, in_flight_deliveries: 0, dlq_size: 0, over_dlq_limit: false },
    });
  });

  it('counts this second, in-flight deliveries and the DLQ, and flags a DLQ over its size', async () => {
    const t = await app.createTenant('busy', { max_dlq_size: 1 });
    const webhook = await sqlWebhook(app.db.pool, t.id);
    const event = await sqlEvent(app.db.pool, t.id);
    await sqlDelivery(app.db.pool, {
      tenantId: t.id,
      eventId: event.id,
      webhookId: webhook.id,
      status: 'in_flight',
    });
    await sqlDelivery(app.db.pool, {
      tenantId: t.id,
      eventId: event.id,
      webhookId: webhook.id,
      status: 'pending',
    });
    await sqlDeadDelivery(app.db.pool, t.id, webhook.id);
    await sqlDeadDelivery(app.db.pool, t.id, webhook.id);
    // Early in a second (the database runs on this host's clock), so the read lands in the same window.
    await waitFor(() => Date.now() % 1000 < 500, { intervalMs: 10, what: 'the start of a second' });
    await consumeEventQuota(app.db.pool, t.id, 4);
    const res = await app.request('GET', `/quotas/${t.id}`, { key: t.apiKey });
    expect(res.status).toBe(200);
    expect(res.body.current_usage).toEqual({
      events_this_second: 4,
      in_flight_deliveries: 1,
      dlq_size: 2,
      over_dlq_limit: true,
    });
  });

  it('lets a tenant read only its own quotas', async () => {
    const a = await app.createTenant('a');
    const b = await app.createTenant('b');
    expect((await app.request('GET', `/quotas/${a.id}`, { key: a.apiKey })).status).toBe(200);
    const other = await app.request('GET', `/quotas/${b.id}`, { key: a.apiKey });
    expect(other.status).toBe(404);
    expect(other.body.error.code).toBe('not_found');
    expect(JSON.stringify(other.body)).not.toContain('max_events_per_sec');
  });

  it('answers 404 for an unknown tenant, 400 for a bad id, 401 without a key', async () => {
    expect((await app.request('GET', '/quotas/0190b6a4-3f1e-7c3a-9d2e-000000000000')).status).toBe(404);
    const bad = await app.request('GET', '/quotas/nope');
    expect(bad.status).toBe(400);
    expect(bad.body.error.details[0].path).toBe('tenant_id');
    expect((await app.request('GET', '/quotas/nope', { key: null })).status).toBe(401);
  });
});

describe('PATCH /quotas/:tenant_id', () => {
  it('changes the named limits, keeps the others, and writes an audit row', async () => {
    const t = await app.createTenant('grow', {
      max_events_per_sec: 5,
      max_concurrent_deliveries: 6,
      max_dlq_size: 7,
    });
    const res = await app.request('PATCH', `/quotas/${t.id}`, { body: { max_events_per_sec: 50 } });
    expect(res.status).toBe(200);
    expect(res.body.limits).toEqual({
      max_events_per_sec: 50,
      max_concurrent_deliveries: 6,
      max_dlq_size: 7,
    });
    expect((await app.request('GET', `/tenants/${t.id}`)).body.quotas.max_events_per_sec).toBe(50);
    const { rows } = await app.db.pool.query(
      `SELECT actor, action, object_type, object_id, changes FROM audit_log
        WHERE tenant_id = $1 AND action = 'quota.update'`,
      [t.id],
    );
    expect(rows).toEqual([
      {
        actor: 'admin',
        action: 'quota.update',
        object_type: 'quota',
        object_id: t.id,
        changes: {
          before: { max_events_per_sec: 5, max_concurrent_deliveries: 6, max_dlq_size: 7 },
          after: { max_events_per_sec: 50, max_concurrent_deliveries: 6, max_dlq_size: 7 },
        },
      },
    ]);
  });

  it('takes effect on the next ingest check', async () => {
    const t = await app.createTenant('tight', { max_events_per_sec: 1 });
    expect((await consumeEventQuota(app.db.pool, t.id, 3))?.granted).toBe(false);
    await app.request('PATCH', `/quotas/${t.id}`, { body: { max_events_per_sec: 10 } });
    expect((await consumeEventQuota(app.db.pool, t.id, 3))?.granted).toBe(true);
  });

  it('is admin-only', async () => {
    const t = await app.createTenant('self');
    const res = await app.request('PATCH', `/quotas/${t.id}`, {
      key: t.apiKey,
      body: { max_events_per_sec: 1e6 },
    });
    expect(res.status).toBe(403);
    expect((await app.request('GET', `/quotas/${t.id}`)).body.limits.max_events_per_sec).not.toBe(1e6);
  });

  it('rejects bad input with 400 and changes nothing', async () => {
    const t = await app.createTenant('strict');
    const empty = await app.request('PATCH', `/quotas/${t.id}`, { body: {} });
    expect(empty.status).toBe(400);
    expect(empty.body.error.code).toBe('validation_failed');
    const negative = await app.request('PATCH', `/quotas/${t.id}`, { body: { max_dlq_size: 0 } });
    expect(negative.status).toBe(400);
    expect(negative.body.error.details[0].path).toBe('max_dlq_size');
    const unknown = await app.request('PATCH', `/quotas/${t.id}`, { body: { max_events: 5 } });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error.details[0].path).toBe('max_events');
    const notNumber = await app.request('PATCH', `/quotas/${t.id}`, { body: { max_events_per_sec: '5' } });
    expect(notNumber.status).toBe(400);
    const { rows } = await app.db.pool.query(
      `SELECT count(*)::int AS n FROM audit_log WHERE tenant_id = $1 AND action = 'quota.update'`,
      [t.id],
    );
    expect(rows[0].n).toBe(0);
  });

  it('answers 404 for an unknown tenant', async () => {
    const res = await app.request('PATCH', '/quotas/0190b6a4-3f1e-7c3a-9d2e-000000000000', {
      body: { max_events_per_sec: 5 },
    });
    expect(res.status).toBe(404);
  });
});
