/**
 * Defects found from outside (issue 9, item 1): each case below answered 500 or did something the
 * caller did not ask for before its fix.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { sqlDeadDelivery, sqlTenant, sqlWebhook } from '../helpers/fixtures-sql.js';

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp({ SSRF_ALLOW_CIDRS: '127.0.0.0/8' });
});
afterAll(async () => {
  await app.close();
});

const ID = '0190b6a4-3f1e-7c3a-9d2e-000000000000';

function expectErrorShape(res: { status: number; body: any }, status: number) {
  expect(res.status).toBe(status);
  expect(res.body).toEqual({
    error: expect.objectContaining({ code: expect.any(String), message: expect.any(String) }),
  });
}

async function count(table: string): Promise<number> {
  const { rows } = await app.db.pool.query(`SELECT count(*)::int AS n FROM ${table}`);
  return rows[0].n;
}

describe('a parked delivery (next_attempt_at = infinity) reads back', () => {
  // The API-only instance runs no workers, so the delivery stays pending until the disable parks it.
  it('lists, shows and appears under its event with next_attempt_at null', async () => {
    const tenant = await app.createTenant('parked');
    const hook = await app.request('POST', '/webhooks', {
      key: tenant.apiKey,
      body: { url: 'http://127.0.0.1:9/hook' },
    });
    expect(hook.status).toBe(201);
    const event = await app.request('POST', '/events', {
      key: tenant.apiKey,
      body: { type: 'order.created', payload: {} },
    });
    expect(event.status).toBe(202);
    const disabled = await app.request('PATCH', `/webhooks/${hook.body.id}`, {
      key: tenant.apiKey,
      body: { enabled: false },
    });
    expect(disabled.status).toBe(200);
    const [deliveryId] = event.body.delivery_ids;
    const { rows } = await app.db.pool.query(
      `SELECT next_attempt_at = 'infinity' AS parked FROM deliveries WHERE id = $1`,
      [deliveryId],
    );
    expect(rows[0].parked).toBe(true);

    for (const key of [tenant.apiKey, undefined]) {
      const list = await app.request('GET', '/deliveries', { key });
      expect(list.status).toBe(200);
      expect(list.body.data.find((d: any) => d.id === deliveryId).next_attempt_at).toBeNull();
    }
    const one = await app.request('GET', `/deliveries/${deliveryId}`, { key: tenant.apiKey });
    expect(one.status).toBe(200);
    expect(one.body.next_attempt_at).toBeNull();
    const byEvent = await app.request('GET', `/events/${event.body.event_id}`, { key: tenant.apiKey });
    expect(byEvent.status).toBe(200);
    expect(byEvent.body.deliveries[0].next_attempt_at).toBeNull();
  });
});

describe('NUL characters are a 400 naming the field, not a database error', () => {
  it.each([
    ['tenant name', 'POST', '/tenants', { name: 'a\u0000b' }, 'name'],
    [
      'webhook description',
      'POST',
      '/webhooks',
      { url: 'http://127.0.0.1:9/h', tenant_id: ID, description: '\u0000' },
      'description',
    ],
    ['event type', 'POST', '/events', { type: 'a\u0000', payload: {}, tenant_id: ID }, 'type'],
    [
      'a key of the payload',
      'POST',
      '/events',
      { type: 'a', payload: { 'k\u0000': 1 }, tenant_id: ID },
      'payload',
    ],
    ['bulk DLQ retry filter', 'POST', '/dlq/retry', { event_type: 'x\u0000y' }, 'event_type'],
  ])('%s', async (_what, method, path, body, field) => {
    const tenantsBefore = await count('tenants');
    const res = await app.request(method, path, { body });
    expectErrorShape(res, 400);
    expect(res.body.error.details).toEqual([expect.objectContaining({ path: field })]);
    expect(await count('tenants')).toBe(tenantsBefore);
  });

  it.each([
    ['/dlq?event_type=a%00b', 'event_type'],
    ['/audit?action=a%00b', 'action'],
    ['/events?type=a%00b', 'type'],
  ])('query %s', async (path, field) => {
    const res = await app.request('GET', path);
    expectErrorShape(res, 400);
    expect(res.body.error.details).toEqual([expect.objectContaining({ path: field })]);
  });
});

describe('bodies that are not a JSON object', () => {
  async function deadLetters() {
    const db = app.db.pool;
    const tenant = await sqlTenant(db, 'dlq-shape');
    const webhook = await sqlWebhook(db, tenant.id);
    const dead = await sqlDeadDelivery(db, tenant.id, webhook.id, { type: 'keep.me' });
    return { tenant, webhook, dead };
  }
  const failedCount = async () =>
    (await app.db.pool.query(`SELECT count(*)::int AS n FROM dead_letter_queue`)).rows[0].n as number;

  it('POST /dlq/retry with a text/plain filter is 415 and requeues nothing', async () => {
    await deadLetters();
    const before = await failedCount();
    expect(before).toBeGreaterThan(0);
    const res = await app.request('POST', '/dlq/retry', {
      rawBody: JSON.stringify({ event_type: 'nothing.matches' }),
      headers: { 'content-type': 'text/plain' },
    });
    expectErrorShape(res, 415);
    expect(await failedCount()).toBe(before);
  });

  it('POST /dlq/retry with a JSON array is 400 and requeues nothing', async () => {
    await deadLetters();
    const before = await failedCount();
    const res = await app.request('POST', '/dlq/retry', { body: [{ event_type: 'nothing.matches' }] });
    expectErrorShape(res, 400);
    expect(await failedCount()).toBe(before);
  });

  it('PATCH /webhooks/:id and rotate-secret refuse an array and change nothing', async () => {
    const { tenant, webhook } = await deadLetters();
    const before = (await app.db.pool.query('SELECT * FROM webhooks WHERE id = $1', [webhook.id])).rows[0];
    const patch = await app.request('PATCH', `/webhooks/${webhook.id}`, { key: tenant.apiKey, body: [] });
    expectErrorShape(patch, 400);
    const rotate = await app.request('POST', `/webhooks/${webhook.id}/rotate-secret`, {
      key: tenant.apiKey,
      body: [],
    });
    expectErrorShape(rotate, 400);
    const after = (await app.db.pool.query('SELECT * FROM webhooks WHERE id = $1', [webhook.id])).rows[0];
    expect(after).toEqual(before);
  });

  const routes: [string, string][] = [
    ['POST', '/tenants'],
    ['POST', '/webhooks'],
    ['PATCH', `/webhooks/${ID}`],
    ['DELETE', `/webhooks/${ID}`],
    ['POST', `/webhooks/${ID}/rotate-secret`],
    ['POST', '/events'],
    ['POST', '/events/batch'],
    ['POST', `/deliveries/${ID}/replay`],
    ['POST', '/dlq/retry'],
    ['POST', `/dlq/${ID}/retry`],
  ];

  it.each(routes)('%s %s: a form or text body is 415', async (method, path) => {
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'application/xml']) {
      const res = await app.request(method, path, { rawBody: 'a=1', headers: { 'content-type': type } });
      expectErrorShape(res, 415);
    }
  });

  it.each(routes)('%s %s: a JSON value that is not an object is 400', async (method, path) => {
    for (const raw of ['[]', '[{}]', '"x"', '1', 'null', 'true']) {
      const res = await app.request(method, path, { rawBody: raw });
      expectErrorShape(res, 400);
    }
  });
});

describe('webhook secrets', () => {
  it.each([
    ['16 spaces', ' '.repeat(16)],
    ['leading space', ' abcdefghijklmnop'],
  ])('refuses %s', async (_what, secret) => {
    const tenant = await app.createTenant('secrets');
    const before = await count('webhooks');
    const res = await app.request('POST', '/webhooks', {
      key: tenant.apiKey,
      body: { url: 'http://127.0.0.1:9/h', secret },
    });
    expectErrorShape(res, 400);
    expect(res.body.error.details).toEqual([expect.objectContaining({ path: 'secret' })]);
    expect(JSON.stringify(res.body)).not.toContain(secret);
    expect(await count('webhooks')).toBe(before);
  });
});
