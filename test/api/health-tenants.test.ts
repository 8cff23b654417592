import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startTestApp, type TestApp } from '../helpers/app.js';

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(async () => {
  await app.close();
});

describe('health and readiness', () => {
  it('GET /health answers ok without a key', async () => {
    const res = await app.request('GET', '/health', { key: null });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: 'ok' });
  });

  it('GET /ready answers 200 when migrations are current', async () => {
    const res = await app.request('GET', '/ready', { key: null });
    expect(res.status).toBe(200);
  });

  it('GET /ready answers 503 when the applied migrations are behind', async () => {
    const { rows } = await app.db.pool.query<{ id: number }>(
      'SELECT id FROM drizzle.__drizzle_migrations ORDER BY created_at DESC LIMIT 1',
    );
    const saved = await app.db.pool.query(
      'DELETE FROM drizzle.__drizzle_migrations WHERE id = $1 RETURNING *',
      [rows[0]!.id],
    );
    try {
      const res = await app.request('GET', '/ready', { key: null });
      expect(res.status).toBe(503);
    } finally {
      const r = saved.rows[0];
      await app.db.pool.query(
        'INSERT INTO drizzle.__drizzle_migrations (id, hash, created_at) VALUES ($1, $2, $3)',
        [r.id, r.hash, r.created_at],
      );
    }
  });

  it('answers 404 JSON for an unknown route', async () => {
    const res = await app.request('GET', '/nope', { key: null });
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('not_found');
  });
});

describe('tenants', () => {
  it('needs a key', async () => {
    expect((await app.request('POST', '/tenants', { key: null, body: { name: 'x' } })).status).toBe(401);
    expect((await app.request('POST', '/tenants', { key: 'wrong-key', body: { name: 'x' } })).status).toBe(
      401,
    );
  });

  it('creates a tenant with default quotas and shows its key once', async () => {
    const res = await app.request('POST', '/tenants', { body: { name: 'acme' } });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ name: 'acme', quotas: { max_events_per_sec: expect.any(Number) } });
    expect(res.body.api_key).toMatch(/^pbk_/);
    const again = await app.request('GET', `/tenants/${res.body.id}`);
    expect(again.status).toBe(200);
    expect(again.body).toEqual({
      id: res.body.id,
      name: 'acme',
      quotas: res.body.quotas,
      created_at: res.body.created_at,
    });
    expect(again.body.api_key).toBeUndefined();
  });

  it('stores only a hash of the API key', async () => {
    const res = await app.request('POST', '/tenants', { body: { name: 'hashed' } });
    const { rows } = await app.db.pool.query('SELECT * FROM tenants WHERE id = $1', [res.body.id]);
    expect(JSON.stringify(rows[0])).not.toContain(res.body.api_key);
  });

  it('accepts quotas at creation', async () => {
    const res = await app.request('POST', '/tenants', {
      body: { name: 'small', quotas: { max_events_per_sec: 5, max_dlq_size: 10 } },
    });
    expect(res.status).toBe(201);
    expect(res.body.quotas).toMatchObject({ max_events_per_sec: 5, max_dlq_size: 10 });
  });

  it('rejects bad input with 400 and names the field', async () => {
    const unknown = await app.request('POST', '/tenants', { body: { name: 'x', nmae: 'y' } });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error.code).toBe('validation_failed');
    expect(unknown.body.error.details[0].path).toBe('nmae');
    const empty = await app.request('POST', '/tenants', { body: { name: '' } });
    expect(empty.status).toBe(400);
    expect(empty.body.error.details[0].path).toBe('name');
    const badJson = await app.request('POST', '/tenants', { rawBody: '{"name":' });
    expect(badJson.status).toBe(400);
    expect(badJson.body.error.code).toBe('invalid_json');
    const badQuota = await app.request('POST', '/tenants', {
      body: { name: 'q', quotas: { max_dlq_size: -1 } },
    });
    expect(badQuota.status).toBe(400);
    expect(badQuota.body.error.details[0].path).toBe('quotas.max_dlq_size');
  });

  it('is admin-only', async () => {
    const tenant = await app.createTenant('plain');
    expect((await app.request('POST', '/tenants', { key: tenant.apiKey, body: { name: 'x' } })).status).toBe(
      403,
    );
    expect((await app.request('GET', `/tenants/${tenant.id}`, { key: tenant.apiKey })).status).toBe(403);
  });

  it('answers 404 for an unknown tenant and 400 for an id that is not an id', async () => {
    expect((await app.request('GET', '/tenants/0190b6a4-3f1e-7c3a-9d2e-000000000000')).status).toBe(404);
    const bad = await app.request('GET', '/tenants/not-an-id');
    expect(bad.status).toBe(400);
    expect(bad.body.error.details[0].path).toBe('id');
  });

  it('answers 413 for a body over the limit', async () => {
    const res = await app.request('POST', '/tenants', {
      rawBody: JSON.stringify({ name: 'x'.repeat(1024 * 1024 + 10) }),
    });
    expect(res.status).toBe(413);
    expect(res.body.error.code).toBe('payload_too_large');
  });
});
