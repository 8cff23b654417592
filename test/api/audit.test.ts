import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { apiKeyPrefix } from '../../src/security/api-keys.js';
import { ADMIN_KEY, startTestApp, type TestApp } from '../helpers/app.js';
import { allPages } from '../helpers/pages.js';
import { sqlDeadDelivery, sqlWebhook } from '../helpers/fixtures-sql.js';

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(async () => {
  await app.close();
});

/** Writes n audit rows for a tenant directly, oldest first; returns their object ids in that order. */
async function auditRows(tenantId: string | null, action: string, n: number): Promise<string[]> {
  const ids = Array.from({ length: n }, (_, i) => `${action}-${i}-${Math.random().toString(36).slice(2)}`);
  for (const id of ids)
    await app.db.pool.query(
      `INSERT INTO audit_log (actor, action, object_type, object_id, tenant_id, changes)
       VALUES ('admin', $1, 'thing', $2, $3, '{"k": 1}')`,
      [action, id, tenantId],
    );
  return ids;
}

describe('GET /audit', () => {
  it('needs the admin key', async () => {
    const tenant = await app.createTenant('audited');
    expect((await app.request('GET', '/audit', { key: null })).status).toBe(401);
    const res = await app.request('GET', '/audit', { key: tenant.apiKey });
    expect(res.status).toBe(403);
    expect(res.body.error.code).toBe('forbidden');
  });

  it('lists changes newest first, in the documented shape', async () => {
    const tenant = await app.createTenant('shape');
    const res = await app.request('GET', `/audit?tenant_id=${tenant.id}`);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      data: [
        {
          at: expect.any(String),
          actor: 'admin',
          action: 'tenant.create',
          object_type: 'tenant',
          object_id: tenant.id,
          tenant_id: tenant.id,
          changes: expect.objectContaining({ name: 'shape' }),
          key_prefix: expect.any(String),
          client_ip: '127.0.0.1',
        },
      ],
      next_cursor: null,
    });
    expect(Number.isNaN(Date.parse(res.body.data[0].at))).toBe(false);
  });

  it('records replays and DLQ retries with their actor, filterable by action', async () => {
    const tenant = await app.createTenant('recovery');
    const hook = await sqlWebhook(app.db.pool, tenant.id);
    const one = await sqlDeadDelivery(app.db.pool, tenant.id, hook.id);
    const two = await sqlDeadDelivery(app.db.pool, tenant.id, hook.id);
    await sqlDeadDelivery(app.db.pool, tenant.id, hook.id);
    expect((await app.request('POST', `/dlq/${one.deliveryId}/retry`, { key: tenant.apiKey })).status).toBe(
      202,
    );
    expect((await app.request('POST', `/deliveries/${two.deliveryId}/replay`)).status).toBe(202);
    expect((await app.request('POST', '/dlq/retry', { key: tenant.apiKey })).status).toBe(202);

    const all = await app.request('GET', `/audit?tenant_id=${tenant.id}`);
    expect(all.body.data.map((r: any) => [r.action, r.actor])).toEqual([
      ['dlq.retry_bulk', apiKeyPrefix(tenant.apiKey)],
      ['delivery.replay', 'admin'],
      ['dlq.retry', apiKeyPrefix(tenant.apiKey)],
      ['tenant.create', 'admin'],
    ]);
    const replays = await app.request('GET', `/audit?tenant_id=${tenant.id}&action=delivery.replay`);
    expect(replays.body.data).toEqual([
      expect.objectContaining({ object_type: 'delivery', object_id: two.deliveryId, tenant_id: tenant.id }),
    ]);
    expect(replays.body.data[0].changes.status).toEqual({ from: 'failed', to: 'pending' });
    const bulk = await app.request('GET', `/audit?tenant_id=${tenant.id}&action=dlq.retry_bulk`);
    expect(bulk.body.data[0].changes).toEqual({
      requeued: 1,
      filters: { webhook_id: null, event_type: null },
    });
  });

  it('filters by action across tenants, including rows without a tenant', async () => {
    const action = `test.${Math.random().toString(36).slice(2)}`;
    const tenant = await app.createTenant('filter');
    const withTenant = await auditRows(tenant.id, action, 1);
    const global = await auditRows(null, action, 1);
    const res = await app.request('GET', `/audit?action=${action}`);
    expect(res.body.data.map((r: any) => r.object_id)).toEqual([global[0], withTenant[0]]);
    expect(res.body.data[0].tenant_id).toBeNull();
    expect(
      (await app.request('GET', `/audit?action=${action}&tenant_id=${tenant.id}`)).body.data,
    ).toHaveLength(1);
  });

  it('pages with limit and cursor, each row once', async () => {
    const tenant = await app.createTenant('pages');
    const ids = await auditRows(tenant.id, 'test.page', 7);
    const pages = await allPages(app, `/audit?tenant_id=${tenant.id}&action=test.page&limit=3`);
    expect(pages.map((p) => p.length)).toEqual([3, 3, 1]);
    expect(pages.flat().map((r) => r.object_id)).toEqual([...ids].reverse());
  });

  it('records who (key prefix), from where (client address) and before/after values of an update', async () => {
    const tenant = await app.createTenant('before-after');
    const created = await app.request('POST', '/webhooks', {
      key: tenant.apiKey,
      body: { url: 'https://example.com/a', description: 'first', secret: 'a-secret-of-enough-length' },
    });
    const id = created.body.id;
    // The test client connects from loopback, the proxy TRUST_PROXY trusts by default: its X-Forwarded-For names the client.
    const patched = await app.request('PATCH', `/webhooks/${id}`, {
      key: tenant.apiKey,
      body: { url: 'https://example.com/b', enabled: false },
      headers: { 'x-forwarded-for': '203.0.113.7' },
    });
    expect(patched.status).toBe(200);
    const rotated = await app.request('POST', `/webhooks/${id}/rotate-secret`, {
      key: tenant.apiKey,
      headers: { 'x-forwarded-for': '198.51.100.1, 2001:db8::5' },
    });

    const rows = (await app.request('GET', `/audit?tenant_id=${tenant.id}`)).body.data;
    const byAction = (a: string) => rows.find((r: any) => r.action === a);
    expect(byAction('webhook.update')).toEqual({
      at: expect.any(String),
      actor: apiKeyPrefix(tenant.apiKey),
      key_prefix: apiKeyPrefix(tenant.apiKey),
      client_ip: '203.0.113.7',
      action: 'webhook.update',
      object_type: 'webhook',
      object_id: id,
      tenant_id: tenant.id,
      changes: {
        before: { url: 'https://example.com/a', enabled: true, disabled_reason: null },
        after: { url: 'https://example.com/b', enabled: false, disabled_reason: 'disabled by tenant' },
      },
    });
    // Only the hop the app trusts counts: the rightmost forwarded address, not one a client prepends.
    expect(byAction('webhook.rotate_secret')).toMatchObject({
      client_ip: '2001:db8::5',
      changes: { before: { secret: '[redacted]' }, after: { secret: '[redacted]' } },
    });
    // Without a proxy header: the connecting address. The configured admin key: actor admin, with its prefix.
    expect(byAction('tenant.create')).toMatchObject({
      actor: 'admin',
      key_prefix: apiKeyPrefix(ADMIN_KEY),
      client_ip: '127.0.0.1',
    });
    const text = JSON.stringify(rows);
    for (const secret of ['a-secret-of-enough-length', rotated.body.secret])
      expect(text).not.toContain(secret);
  });

  it('records the connecting address, not X-Forwarded-For, from a peer TRUST_PROXY does not name', async () => {
    const direct = await startTestApp({ TRUST_PROXY: 'false' });
    try {
      const made = await direct.request('POST', '/tenants', {
        body: { name: 'direct' },
        headers: { 'x-forwarded-for': '203.0.113.9' },
      });
      expect(made.status).toBe(201);
      const rows = (await direct.request('GET', `/audit?tenant_id=${made.body.id}`)).body.data;
      expect(rows).toEqual([expect.objectContaining({ action: 'tenant.create', client_ip: '127.0.0.1' })]);
    } finally {
      await direct.close();
    }
  });

  it('keeps a forwarded value that is not an address as null, and still records the change', async () => {
    const tenant = await app.createTenant('bad-forwarded');
    const created = await app.request('POST', '/webhooks', {
      key: tenant.apiKey,
      body: { url: 'https://example.com/x' },
      headers: { 'x-forwarded-for': "1.2.3.4'); DROP TABLE audit_log;--" },
    });
    expect(created.status).toBe(201);
    const row = (await app.request('GET', `/audit?tenant_id=${tenant.id}&action=webhook.create`)).body
      .data[0];
    expect(row).toMatchObject({ key_prefix: apiKeyPrefix(tenant.apiKey), client_ip: null });
  });

  it.each([
    ['tenant_id=abc', 'tenant_id'],
    ['action=', 'action'],
    ['action=a&action=b', 'action'],
    ['actor=admin', 'actor'],
    ['limit=1000', 'limit'],
    ['cursor=zz', 'cursor'],
    [`cursor=${Buffer.from('["12a"]').toString('base64url')}`, 'cursor'],
    [`cursor=${Buffer.from('["99999999999999999999999"]').toString('base64url')}`, 'cursor'],
  ])('answers 400 for %s, naming %s', async (query, path) => {
    const res = await app.request('GET', `/audit?${query}`);
    expect(res.status).toBe(400);
    expect(res.body.error.details.map((d: any) => d.path)).toContain(path);
  });
});
