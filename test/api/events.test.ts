import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import pg from 'pg';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { waitFor } from '../helpers/wait.js';
import { DELIVERIES_CHANNEL } from '../../src/queries/notify.js';
import { INGEST_EVENTS_SQL, ingestParams } from '../../src/queries/events.js';
import { newId } from '../../src/ids.js';
import { DeliveryWakeup, deliveryWakeupFor } from '../../src/ingest/wakeup.js';
import { runRetention } from '../../src/maintenance/retention.js';
import { v7 } from 'uuid';

type Tenant = { id: string; apiKey: string };
let app: TestApp;
let acme: Tenant;
let other: Tenant;
const MISSING = '0190b6a4-3f1e-7c3a-9d2e-000000000000';
const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

beforeAll(async () => {
  app = await startTestApp();
  acme = await app.createTenant('acme');
  other = await app.createTenant('other');
});
afterAll(async () => {
  await app.close();
});

async function createWebhook(tenant: Tenant, eventTypes: string[], extra: Record<string, unknown> = {}) {
  const res = await app.request('POST', '/webhooks', {
    key: tenant.apiKey,
    body: { url: 'https://example.com/hook', event_types: eventTypes, ...extra },
  });
  if (res.status !== 201) throw new Error(`createWebhook: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.id as string;
}

function postEvent(tenant: Tenant | null, body: unknown, headers: Record<string, string> = {}) {
  return app.request('POST', '/events', { key: tenant ? tenant.apiKey : undefined, body, headers });
}

async function count(sql: string, params: unknown[]): Promise<number> {
  const { rows } = await app.db.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${sql}`, params);
  return rows[0]!.n;
}

async function deliveriesOf(eventId: string) {
  const { rows } = await app.db.pool.query(
    `SELECT id, webhook_id, tenant_id, status::text, attempts, next_attempt_at <= now() AS due
       FROM deliveries WHERE event_id = $1 ORDER BY id`,
    [eventId],
  );
  return rows;
}

/** Makes every insert into deliveries fail in this test's database while `fn` runs. */
async function withFailingDeliveries<T>(fn: () => Promise<T>): Promise<T> {
  await app.db.pool.query(`
    CREATE FUNCTION test_fail_deliveries() RETURNS trigger LANGUAGE plpgsql AS
      $$ BEGIN RAISE EXCEPTION 'injected failure after the event insert'; END $$;
    CREATE TRIGGER test_fail_deliveries BEFORE INSERT ON deliveries
      FOR EACH ROW EXECUTE FUNCTION test_fail_deliveries();`);
  try {
    return await fn();
  } finally {
    await app.db.pool.query(`
      DROP TRIGGER test_fail_deliveries ON deliveries; DROP FUNCTION test_fail_deliveries();`);
  }
}

describe('POST /events', () => {
  it('stores an event with no matching webhooks and queues nothing', async () => {
    const tenant = await app.createTenant('quiet');
    const res = await postEvent(tenant, { type: 'user.signed_up', payload: { user: 1 } });
    expect(res.status).toBe(202);
    expect(res.body).toEqual({ event_id: expect.any(String), webhooks_queued: 0, delivery_ids: [] });
    const read = await app.request('GET', `/events/${res.body.event_id}`, { key: tenant.apiKey });
    expect(read.status).toBe(200);
    expect(read.body).toEqual({
      id: res.body.event_id,
      tenant_id: tenant.id,
      type: 'user.signed_up',
      payload: { user: 1 },
      payload_removed: false,
      timestamp: expect.any(String),
      idempotency_key: null,
      traceparent: null,
      // Not in the catalog, and the producer sent neither metadata nor source.
      version: null,
      metadata: null,
      source: null,
      received_at: expect.any(String),
      deliveries: [],
      deliveries_truncated: false,
    });
    // Without a timestamp the event's time is the time it was stored.
    expect(read.body.timestamp).toBe(read.body.received_at);
  });

  it('queues one pending delivery per enabled, undeleted, matching webhook of the tenant', async () => {
    const tenant = await app.createTenant('matching');
    const all = await createWebhook(tenant, ['*']);
    const prefix = await createWebhook(tenant, ['order.*']);
    const exact = await createWebhook(tenant, ['invoice.paid', 'order.created']);
    await createWebhook(tenant, ['order.created.v2', 'orders.*', 'invoice.*']);
    const disabled = await createWebhook(tenant, ['order.created']);
    await app.request('PATCH', `/webhooks/${disabled}`, { key: tenant.apiKey, body: { enabled: false } });
    const deleted = await createWebhook(tenant, ['order.*']);
    await app.request('DELETE', `/webhooks/${deleted}`, { key: tenant.apiKey });
    await createWebhook(other, ['*', 'order.created']);

    const res = await postEvent(tenant, { type: 'order.created', payload: { id: 7 } });
    expect(res.status).toBe(202);
    expect(res.body.webhooks_queued).toBe(3);
    expect(res.body.delivery_ids).toHaveLength(3);
    expect([...res.body.delivery_ids].sort()).toEqual(res.body.delivery_ids);
    for (const id of res.body.delivery_ids)
      expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab]/);

    const rows = await deliveriesOf(res.body.event_id);
    expect(rows.map((r) => r.id)).toEqual(res.body.delivery_ids);
    expect(rows.map((r) => r.webhook_id).sort()).toEqual([all, prefix, exact].sort());
    for (const r of rows)
      expect(r).toMatchObject({ tenant_id: tenant.id, status: 'pending', attempts: 0, due: true });

    const deeper = await postEvent(tenant, { type: 'order.line.added', payload: {} });
    expect((await deliveriesOf(deeper.body.event_id)).map((r) => r.webhook_id).sort()).toEqual(
      [all, prefix].sort(),
    );
    const bare = await postEvent(tenant, { type: 'order', payload: {} });
    expect((await deliveriesOf(bare.body.event_id)).map((r) => r.webhook_id)).toEqual([all]);
  });

  it('wakes the workers when it queues deliveries', async () => {
    const tenant = await app.createTenant('notify');
    await createWebhook(tenant, ['*']);
    const listener = new pg.Client({ connectionString: app.db.url });
    await listener.connect();
    const notes: string[] = [];
    listener.on('notification', (n) => notes.push(n.channel));
    await listener.query(`LISTEN ${DELIVERIES_CHANNEL}`);
    try {
      const res = await postEvent(tenant, { type: 'ping', payload: null });
      expect(res.status).toBe(202);
      await waitFor(() => notes.includes(DELIVERIES_CHANNEL), { what: 'a deliveries-due notification' });
    } finally {
      await listener.end();
    }
  });

  it('keeps any JSON payload, the given timestamp and a valid traceparent exactly', async () => {
    const payloads = [null, 'text', 42.5, true, [1, 'two', { three: 3 }], { nested: { emoji: '📦', n: -1 } }];
    for (const payload of payloads) {
      const res = await postEvent(acme, { type: 'payload.kind', payload });
      expect(res.status).toBe(202);
      const read = await app.request('GET', `/events/${res.body.event_id}`, { key: acme.apiKey });
      expect(read.body.payload).toEqual(payload);
    }
    const res = await postEvent(
      acme,
      { type: 'timed', payload: {}, timestamp: '2026-01-02T03:04:05.678+02:00' },
      { traceparent: TRACEPARENT },
    );
    const read = await app.request('GET', `/events/${res.body.event_id}`, { key: acme.apiKey });
    expect(read.body).toMatchObject({ timestamp: '2026-01-02T01:04:05.678Z', traceparent: TRACEPARENT });
  });

  it('ignores an invalid traceparent rather than failing', async () => {
    for (const bad of [
      'garbage',
      '00-00000000000000000000000000000000-00f067aa0ba902b7-01',
      'ff-' + 'a'.repeat(50),
    ]) {
      const res = await postEvent(acme, { type: 'traced', payload: {} }, { traceparent: bad });
      expect(res.status).toBe(202);
      const read = await app.request('GET', `/events/${res.body.event_id}`, { key: acme.apiKey });
      expect(read.body.traceparent).toBeNull();
    }
  });

  it('answers a repeated idempotency key with the first answer and queues nothing new', async () => {
    const tenant = await app.createTenant('idem');
    await createWebhook(tenant, ['*']);
    const first = await postEvent(tenant, { type: 'a.b', payload: { n: 1 }, idempotency_key: 'k-1' });
    expect(first.status).toBe(202);
    expect(first.body.webhooks_queued).toBe(1);
    await createWebhook(tenant, ['a.*']); // would match a new event, must not get the repeat

    const again = await postEvent(tenant, { type: 'a.b', payload: { n: 2 }, idempotency_key: 'k-1' });
    expect(again.status).toBe(200);
    expect(again.body).toEqual(first.body);
    const viaHeader = await postEvent(tenant, { type: 'a.b', payload: {} }, { 'Idempotency-Key': 'k-1' });
    expect(viaHeader.status).toBe(200);
    expect(viaHeader.body).toEqual(first.body);
    const both = await postEvent(
      tenant,
      { type: 'a.b', payload: {}, idempotency_key: 'k-1' },
      {
        'Idempotency-Key': 'k-1',
      },
    );
    expect(both.status).toBe(200);
    expect(await count('events WHERE tenant_id = $1', [tenant.id])).toBe(1);
    expect(await count('deliveries WHERE tenant_id = $1', [tenant.id])).toBe(1);

    // Keys are per tenant.
    const elsewhere = await postEvent(other, { type: 'a.b', payload: {}, idempotency_key: 'k-1' });
    expect(elsewhere.status).toBe(202);
    expect(elsewhere.body.event_id).not.toBe(first.body.event_id);
    const read = await app.request('GET', `/events/${first.body.event_id}`, { key: tenant.apiKey });
    expect(read.body).toMatchObject({ idempotency_key: 'k-1', payload: { n: 1 } });
  });

  it('takes the key from the Idempotency-Key header', async () => {
    const first = await postEvent(acme, { type: 'hdr', payload: {} }, { 'Idempotency-Key': 'hdr-1' });
    expect(first.status).toBe(202);
    const again = await postEvent(acme, { type: 'hdr', payload: {}, idempotency_key: 'hdr-1' });
    expect(again.status).toBe(200);
    expect(again.body.event_id).toBe(first.body.event_id);
  });

  it('stores exactly one event for 20 concurrent requests with the same key', async () => {
    const tenant = await app.createTenant('race');
    await createWebhook(tenant, ['*']);
    await createWebhook(tenant, ['race.*']);
    const responses = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        postEvent(tenant, { type: 'race.run', payload: { i } }, { 'Idempotency-Key': 'same-key' }),
      ),
    );
    const statuses = responses.map((r) => r.status).sort();
    expect(statuses).toEqual([200, ...Array(18).fill(200), 202].sort());
    const created = responses.find((r) => r.status === 202)!;
    expect(created.body.webhooks_queued).toBe(2);
    for (const r of responses) expect(r.body).toEqual(created.body);
    expect(await count('events WHERE tenant_id = $1', [tenant.id])).toBe(1);
    expect(await count('deliveries WHERE tenant_id = $1', [tenant.id])).toBe(2);
  });

  it('stores nothing and answers 503 when the write fails after the event insert', async () => {
    const tenant = await app.createTenant('atomic');
    await createWebhook(tenant, ['*']);
    const failed = await withFailingDeliveries(() =>
      postEvent(tenant, { type: 'atomic.test', payload: {}, idempotency_key: 'retry-me' }),
    );
    expect(failed.status).toBe(503);
    expect(failed.body.error.code).toBe('unavailable');
    expect(failed.headers.get('retry-after')).toBe('1');
    expect(await count('events WHERE tenant_id = $1', [tenant.id])).toBe(0);
    expect(await count('deliveries WHERE tenant_id = $1', [tenant.id])).toBe(0);

    // The producer's retry with the same key then succeeds as a first request.
    const retried = await postEvent(tenant, {
      type: 'atomic.test',
      payload: {},
      idempotency_key: 'retry-me',
    });
    expect(retried.status).toBe(202);
    expect(retried.body.webhooks_queued).toBe(1);
  });

  it('makes the admin name an existing tenant, and keeps tenants to their own', async () => {
    const named = await postEvent(null, { type: 'admin.sent', payload: {}, tenant_id: acme.id });
    expect(named.status).toBe(202);
    const read = await app.request('GET', `/events/${named.body.event_id}`, { key: acme.apiKey });
    expect(read.body.tenant_id).toBe(acme.id);

    const unnamed = await postEvent(null, { type: 'admin.sent', payload: {} });
    expect(unnamed.status).toBe(400);
    expect(unnamed.body.error.details[0].path).toBe('tenant_id');
    const unknown = await postEvent(null, { type: 'admin.sent', payload: {}, tenant_id: MISSING });
    expect(unknown.status).toBe(404);
    const foreign = await postEvent(acme, { type: 'x', payload: {}, tenant_id: other.id });
    expect(foreign.status).toBe(404);
  });

  it.each([
    ['missing type', { payload: {} }, 'type'],
    ['missing payload', { type: 'a.b' }, 'payload'],
    ['type not a string', { type: 5, payload: {} }, 'type'],
    ['empty type', { type: '', payload: {} }, 'type'],
    ['type with a wildcard', { type: 'order.*', payload: {} }, 'type'],
    ['type with a space', { type: 'order created', payload: {} }, 'type'],
    ['type over 200 characters', { type: 't'.repeat(201), payload: {} }, 'type'],
    ['unknown field', { type: 'a', payload: {}, event_type: 'a' }, 'event_type'],
    ['timestamp not ISO 8601', { type: 'a', payload: {}, timestamp: 'yesterday' }, 'timestamp'],
    ['timestamp without a zone', { type: 'a', payload: {}, timestamp: '2026-01-01T00:00:00' }, 'timestamp'],
    [
      'timestamp on a day that does not exist',
      { type: 'a', payload: {}, timestamp: '2026-02-30T00:00:00Z' },
      'timestamp',
    ],
    ['timestamp as a number', { type: 'a', payload: {}, timestamp: 1767225600 }, 'timestamp'],
    ['empty idempotency_key', { type: 'a', payload: {}, idempotency_key: '' }, 'idempotency_key'],
    [
      'idempotency_key over 255',
      { type: 'a', payload: {}, idempotency_key: 'k'.repeat(256) },
      'idempotency_key',
    ],
    ['idempotency_key not a string', { type: 'a', payload: {}, idempotency_key: 12 }, 'idempotency_key'],
    ['tenant_id not a UUID', { type: 'a', payload: {}, tenant_id: 'acme' }, 'tenant_id'],
    ['payload with NUL', { type: 'a', payload: { s: 'a\u0000b' } }, 'payload'],
    ['payload with a lone surrogate', { type: 'a', payload: ['\ud800'] }, 'payload'],
  ])('answers 400 for %s, naming the field', async (_what, body, path) => {
    const before = await count('events WHERE tenant_id = $1', [acme.id]);
    const res = await postEvent(acme, body);
    expect(res.status).toBe(400);
    expect(res.body.error.details.map((d: { path: string }) => d.path)).toContain(path);
    expect(await count('events WHERE tenant_id = $1', [acme.id])).toBe(before);
  });

  it('answers 400 for bad headers, bad JSON and non-objects; 413 over the limit; never 5xx', async () => {
    const differ = await postEvent(
      acme,
      { type: 'a', payload: {}, idempotency_key: 'x' },
      { 'Idempotency-Key': 'y' },
    );
    expect([differ.status, differ.body.error.details[0].path]).toEqual([400, 'idempotency_key']);
    const longHeader = await postEvent(
      acme,
      { type: 'a', payload: {} },
      { 'Idempotency-Key': 'k'.repeat(256) },
    );
    expect([longHeader.status, longHeader.body.error.details[0].path]).toEqual([400, 'Idempotency-Key']);

    const badJson = await app.request('POST', '/events', { key: acme.apiKey, rawBody: '{"type": "a", ' });
    expect([badJson.status, badJson.body.error.code]).toEqual([400, 'invalid_json']);
    for (const body of [[], 'text', 12, null]) expect((await postEvent(acme, body)).status).toBe(400);
    const escapedNul = await app.request('POST', '/events', {
      key: acme.apiKey,
      rawBody: '{"type":"a","payload":{"k\\u0000":"v"}}',
    });
    expect([escapedNul.status, escapedNul.body.error.details[0].path]).toEqual([400, 'payload']);
    // A literal backslash-u0000 (escaped backslash) is ordinary text and is kept.
    const literal = await postEvent(acme, { type: 'a', payload: '\\u0000' });
    expect(literal.status).toBe(202);

    const deep = await app.request('POST', '/events', {
      key: acme.apiKey,
      rawBody: `{"type":"deep","payload":${'['.repeat(200_000)}${']'.repeat(200_000)}}`,
    });
    expect([deep.status, deep.body.error.details[0].path]).toEqual([400, 'payload']);

    const big = await app.request('POST', '/events', {
      key: acme.apiKey,
      rawBody: JSON.stringify({ type: 'big', payload: 'x'.repeat(1024 * 1024) }),
    });
    expect([big.status, big.body.error.code]).toEqual([413, 'payload_too_large']);
    expect((await postEvent(null, { type: 'a', payload: {} }, {})).status).toBe(400);
    expect(
      (await app.request('POST', '/events', { key: null, body: { type: 'a', payload: {} } })).status,
    ).toBe(401);
  });
});

describe('POST /events/batch', () => {
  it('stores every event in one go and answers in order', async () => {
    const tenant = await app.createTenant('batch');
    const orders = await createWebhook(tenant, ['order.*']);
    const invoices = await createWebhook(tenant, ['invoice.paid']);
    const res = await app.request('POST', '/events/batch', {
      key: tenant.apiKey,
      headers: { traceparent: TRACEPARENT },
      body: {
        events: [
          { type: 'order.created', payload: { n: 0 } },
          { type: 'invoice.paid', payload: { n: 1 }, timestamp: '2026-03-01T00:00:00Z' },
          { type: 'nobody.cares', payload: { n: 2 } },
          { type: 'order.shipped', payload: { n: 3 } },
        ],
      },
    });
    expect(res.status).toBe(202);
    expect(res.body.data.map((d: any) => d.webhooks_queued)).toEqual([1, 1, 0, 1]);
    const expected = [[orders], [invoices], [], [orders]];
    for (const [i, answer] of res.body.data.entries()) {
      const read = await app.request('GET', `/events/${answer.event_id}`, { key: tenant.apiKey });
      expect(read.body.payload).toEqual({ n: i });
      expect(read.body.traceparent).toBe(TRACEPARENT);
      expect(read.body.deliveries.map((d: any) => d.id)).toEqual(answer.delivery_ids);
      expect(read.body.deliveries.map((d: any) => d.webhook_id)).toEqual(expected[i]);
    }
  });

  it('gives repeated keys, in the database or in the batch, the first answer', async () => {
    const tenant = await app.createTenant('batch-idem');
    await createWebhook(tenant, ['*']);
    const before = await postEvent(tenant, { type: 'x', payload: {}, idempotency_key: 'old' });
    const res = await app.request('POST', '/events/batch', {
      key: tenant.apiKey,
      body: {
        events: [
          { type: 'x', payload: {}, idempotency_key: 'new' },
          { type: 'x', payload: {}, idempotency_key: 'old' },
          { type: 'x', payload: {} },
          { type: 'x', payload: { other: true }, idempotency_key: 'new' },
          { type: 'x', payload: {} },
        ],
      },
    });
    expect(res.status).toBe(202);
    const [a, b, c, d, e] = res.body.data;
    expect(b).toEqual(before.body);
    expect(d).toEqual(a);
    expect(new Set([a.event_id, b.event_id, c.event_id, e.event_id]).size).toBe(4);
    expect(await count('events WHERE tenant_id = $1', [tenant.id])).toBe(4);
    expect(await count('deliveries WHERE tenant_id = $1', [tenant.id])).toBe(4);
  });

  it('takes 1000 events and refuses 1001', async () => {
    const tenant = await app.createTenant('batch-big');
    await createWebhook(tenant, ['bulk.*']);
    const events = Array.from({ length: 1000 }, (_, i) => ({ type: `bulk.e${i % 7}`, payload: { i } }));
    const ok = await app.request('POST', '/events/batch', { key: tenant.apiKey, body: { events } });
    expect(ok.status).toBe(202);
    expect(ok.body.data).toHaveLength(1000);
    expect(ok.body.data.every((d: any) => d.webhooks_queued === 1)).toBe(true);
    expect(await count('deliveries WHERE tenant_id = $1', [tenant.id])).toBe(1000);

    const tooMany = await app.request('POST', '/events/batch', {
      key: tenant.apiKey,
      body: { events: [...events, { type: 'one.more', payload: {} }] },
    });
    expect(tooMany.status).toBe(400);
    expect(tooMany.body.error.details).toEqual([
      { path: 'events', message: 'must hold at most 1000 events' },
    ]);
  });

  it('validates every event before storing any, naming the item', async () => {
    const tenant = await app.createTenant('batch-bad');
    const res = await app.request('POST', '/events/batch', {
      key: tenant.apiKey,
      body: {
        events: [
          { type: 'ok', payload: {} },
          { type: 'ok', payload: {} },
          { type: 'ok', payload: {} },
          { type: 'bad type', payload: {} },
          { type: 'ok', payload: { s: '\u0000' } },
        ],
      },
    });
    expect(res.status).toBe(400);
    expect(res.body.error.details[0].path).toBe('events.3.type');
    const nul = await app.request('POST', '/events/batch', {
      key: tenant.apiKey,
      body: {
        events: [
          { type: 'ok', payload: {} },
          { type: 'ok', payload: { s: '\u0000' } },
        ],
      },
    });
    expect(nul.body.error.details[0].path).toBe('events.1.payload');
    expect(await count('events WHERE tenant_id = $1', [tenant.id])).toBe(0);

    for (const [body, path] of [
      [{ events: [] }, 'events'],
      [{ events: 'x' }, 'events'],
      [{}, 'events'],
      [{ events: [{ type: 'a', payload: {}, typo: 1 }] }, 'events.0.typo'],
      [{ events: [{ type: 'a', payload: {} }], extra: true }, 'extra'],
    ] as const) {
      const r = await app.request('POST', '/events/batch', { key: tenant.apiKey, body });
      expect([r.status, r.body.error.details[0].path]).toEqual([400, path]);
    }
    const header = await app.request('POST', '/events/batch', {
      key: tenant.apiKey,
      headers: { 'Idempotency-Key': 'k' },
      body: { events: [{ type: 'a', payload: {} }] },
    });
    expect([header.status, header.body.error.details[0].path]).toEqual([400, 'Idempotency-Key']);
  });

  it('lets the admin write for several tenants, each named', async () => {
    const res = await app.request('POST', '/events/batch', {
      body: {
        events: [
          { type: 'multi', payload: {}, tenant_id: acme.id },
          { type: 'multi', payload: {}, tenant_id: other.id },
        ],
      },
    });
    expect(res.status).toBe(202);
    const owners = await Promise.all(
      res.body.data.map((d: any) =>
        app.request('GET', `/events/${d.event_id}`).then((r) => r.body.tenant_id),
      ),
    );
    expect(owners).toEqual([acme.id, other.id]);
    const unnamed = await app.request('POST', '/events/batch', {
      body: {
        events: [
          { type: 'multi', payload: {}, tenant_id: acme.id },
          { type: 'multi', payload: {} },
        ],
      },
    });
    expect([unnamed.status, unnamed.body.error.details[0].path]).toEqual([400, 'events.1.tenant_id']);
  });

  it('stores nothing of the batch when the write fails', async () => {
    const tenant = await app.createTenant('batch-atomic');
    await createWebhook(tenant, ['b']);
    const res = await withFailingDeliveries(() =>
      app.request('POST', '/events/batch', {
        key: tenant.apiKey,
        body: {
          events: [
            { type: 'a', payload: {} },
            { type: 'b', payload: {} },
          ],
        },
      }),
    );
    expect(res.status).toBe(503);
    expect(await count('events WHERE tenant_id = $1', [tenant.id])).toBe(0);
  });
});

describe('GET /events', () => {
  let tenant: Tenant;
  const ids: string[] = [];
  beforeAll(async () => {
    tenant = await app.createTenant('reader');
    for (const type of ['r.one', 'r.two', 'r.one', 'r.three', 'r.one'])
      ids.push((await postEvent(tenant, { type, payload: { type } })).body.event_id);
  });

  it('lists newest first, page by page', async () => {
    const first = await app.request('GET', '/events?limit=3', { key: tenant.apiKey });
    expect(first.status).toBe(200);
    expect(first.body.data.map((e: any) => e.id)).toEqual([ids[4], ids[3], ids[2]]);
    expect(first.body.data[0]).toEqual({
      id: ids[4],
      tenant_id: tenant.id,
      type: 'r.one',
      payload: { type: 'r.one' },
      payload_removed: false,
      timestamp: expect.any(String),
      idempotency_key: null,
      traceparent: null,
      // Not in the catalog, and the producer sent neither metadata nor source.
      version: null,
      metadata: null,
      source: null,
      received_at: expect.any(String),
    });
    const second = await app.request('GET', `/events?limit=3&cursor=${first.body.next_cursor}`, {
      key: tenant.apiKey,
    });
    expect(second.body).toEqual({
      data: [expect.objectContaining({ id: ids[1] }), expect.objectContaining({ id: ids[0] })],
      next_cursor: null,
    });
  });

  it('filters by type and by received_at', async () => {
    const byType = await app.request('GET', '/events?type=r.one', { key: tenant.apiKey });
    expect(byType.body.data.map((e: any) => e.id)).toEqual([ids[4], ids[2], ids[0]]);
    const all = (await app.request('GET', '/events', { key: tenant.apiKey })).body.data;
    const middle = all.find((e: any) => e.id === ids[2]).received_at;
    const from = await app.request('GET', `/events?from=${middle}`, { key: tenant.apiKey });
    expect(from.body.data.map((e: any) => e.id)).toEqual(expect.arrayContaining([ids[4], ids[3], ids[2]]));
    for (const e of from.body.data) expect(e.received_at >= middle).toBe(true);
    const to = await app.request('GET', `/events?to=${middle}`, { key: tenant.apiKey });
    for (const e of to.body.data) expect(e.received_at < middle).toBe(true);
    const future = await app.request('GET', '/events?from=2999-01-01T00:00:00Z', { key: tenant.apiKey });
    expect(future.body).toEqual({ data: [], next_cursor: null });
  });

  it('keeps tenants apart; the admin sees all or one', async () => {
    const mine = await app.request('GET', '/events?limit=500', { key: acme.apiKey });
    expect(mine.body.data.every((e: any) => e.tenant_id === acme.id)).toBe(true);
    expect((await app.request('GET', `/events/${ids[0]}`, { key: acme.apiKey })).status).toBe(404);
    expect((await app.request('GET', `/events?tenant_id=${tenant.id}`, { key: acme.apiKey })).status).toBe(
      404,
    );
    const admin = await app.request('GET', `/events?tenant_id=${tenant.id}`);
    expect(admin.body.data.map((e: any) => e.id)).toEqual([...ids].reverse());
    expect((await app.request('GET', `/events/${ids[0]}`)).status).toBe(200);
  });

  it('shows an event with its deliveries', async () => {
    const hooked = await app.createTenant('hooked');
    const hook = await createWebhook(hooked, ['*']);
    const posted = await postEvent(hooked, { type: 'shown', payload: {} });
    const read = await app.request('GET', `/events/${posted.body.event_id}`, { key: hooked.apiKey });
    expect(read.body.deliveries).toEqual([
      {
        id: posted.body.delivery_ids[0],
        webhook_id: hook,
        status: 'pending',
        attempts: 0,
        next_attempt_at: expect.any(String),
        last_status_code: null,
        last_error: null,
        created_at: expect.any(String),
        completed_at: null,
      },
    ]);
  });

  it('tells a payload removed by retention from a JSON null payload', async () => {
    const t = await app.createTenant('retained');
    const jsonNull = (await postEvent(t, { type: 'r.null', payload: null })).body.event_id;
    // Received ten days ago (with the UUIDv7 id it would have had), then past RETENTION_PAYLOAD_DAYS 7.
    const tenDaysAgo = Date.now() - 10 * 86_400_000;
    const aged = v7({ msecs: tenDaysAgo });
    await app.db.pool.query(
      `INSERT INTO events (id, tenant_id, type, payload, occurred_at, received_at)
       VALUES ($1, $2, 'r.aged', '{"order": 1}', $3, $3)`,
      [aged, t.id, new Date(tenDaysAgo)],
    );
    const days = 3650;
    const policy = { recordDays: days, payloadDays: 7, attemptDays: days, dlqDays: days, auditDays: days };
    expect(await runRetention(app.db.pool, { policy, batchSize: 100 })).toMatchObject({ payloads: 1 });

    const removed = await app.request('GET', `/events/${aged}`, { key: t.apiKey });
    expect(removed.body).toMatchObject({ payload: null, payload_removed: true });
    const kept = await app.request('GET', `/events/${jsonNull}`, { key: t.apiKey });
    expect(kept.body).toMatchObject({ payload: null, payload_removed: false });
    const list = await app.request('GET', '/events', { key: t.apiKey });
    expect(list.body.data.map((e: any) => [e.id, e.payload, e.payload_removed])).toEqual([
      [jsonNull, null, false],
      [aged, null, true],
    ]);
  });

  it.each([
    ['a bad type', 'type=a*b', 'type'],
    ['a bad from', 'from=monday', 'from'],
    ['a to without a zone', 'to=2026-01-01T00:00:00', 'to'],
    ['limit 0', 'limit=0', 'limit'],
    ['a bad cursor', 'cursor=zzz', 'cursor'],
    ['an unknown parameter', 'kind=x', 'kind'],
  ])('answers 400 for %s', async (_what, query, path) => {
    const res = await app.request('GET', `/events?${query}`, { key: tenant.apiKey });
    expect([res.status, res.body.error.details[0].path]).toEqual([400, path]);
  });

  it('answers 400 for an id that is not a UUID and 404 for an unknown one', async () => {
    expect((await app.request('GET', '/events/42', { key: tenant.apiKey })).status).toBe(400);
    expect((await app.request('GET', `/events/${MISSING}`, { key: tenant.apiKey })).status).toBe(404);
  });
});

describe('worker wake-ups', () => {
  it('sends one wake-up for requests made while another is being sent', async () => {
    const listener = new pg.Client({ connectionString: app.db.url });
    await listener.connect();
    const notes: string[] = [];
    listener.on('notification', (n) => notes.push(n.channel));
    await listener.query(`LISTEN ${DELIVERIES_CHANNEL}; LISTEN test_marker`);
    try {
      const wakeup = new DeliveryWakeup(app.db.pool);
      for (let i = 0; i < 50; i++) wakeup.request();
      await wakeup.settled();
      // Notifications arrive in commit order: once the marker is here, every wake-up is too.
      await app.db.pool.query(`SELECT pg_notify('test_marker', '')`);
      await waitFor(() => notes.includes('test_marker'), { what: 'the marker notification' });
      expect(notes.filter((c) => c === DELIVERIES_CHANNEL)).toHaveLength(2);
    } finally {
      await listener.end();
    }
  });
});

describe('wake-ups carried by ingest statements', () => {
  /** DELIVERIES_CHANNEL notifications sent by `act`, counted once a later marker arrived. */
  async function wakeUpsDuring(act: () => Promise<void>): Promise<number> {
    const listener = new pg.Client({ connectionString: app.db.url });
    await listener.connect();
    const notes: string[] = [];
    listener.on('notification', (n) => notes.push(n.channel));
    await listener.query(`LISTEN ${DELIVERIES_CHANNEL}; LISTEN test_marker`);
    try {
      await act();
      await app.db.pool.query(`SELECT pg_notify('test_marker', '')`);
      await waitFor(() => notes.includes('test_marker'), { what: 'the marker notification' });
      return notes.filter((c) => c === DELIVERIES_CHANNEL).length;
    } finally {
      await listener.end();
    }
  }

  it('a commit while a statement carries the wake-up is woken once that one ends', async () => {
    const wakeup = new DeliveryWakeup(app.db.pool);
    const sent = await wakeUpsDuring(async () => {
      const carrier = wakeup.carry();
      expect(carrier).toEqual({ carry: true, always: false });
      wakeup.request(); // another statement committed deliveries meanwhile
      expect(wakeup.carry().carry).toBe(false); // one wake-up under way at a time
      wakeup.carried(carrier, true);
      await wakeup.settled();
    });
    expect(sent).toBe(1); // the carrier sent nothing here (it is not a real statement): one standalone
  });

  it('the next statement starting in the same turn carries an owed wake-up instead', async () => {
    const wakeup = new DeliveryWakeup(app.db.pool);
    const sent = await wakeUpsDuring(async () => {
      const carrier = wakeup.carry();
      wakeup.request();
      wakeup.carried(carrier, true);
      const next = wakeup.carry();
      expect(next).toEqual({ carry: true, always: true });
      wakeup.carried(next, true);
      await wakeup.settled();
    });
    expect(sent).toBe(0);
  });

  it('a failed carrier leaves what it took over owed', async () => {
    const wakeup = new DeliveryWakeup(app.db.pool);
    const sent = await wakeUpsDuring(async () => {
      const first = wakeup.carry();
      wakeup.request();
      wakeup.carried(first, true);
      const failing = wakeup.carry();
      wakeup.carried(failing, false);
      await wakeup.settled();
    });
    expect(sent).toBe(1);
  });

  it('an ingest with deliveries wakes the workers from its own statement', async () => {
    const tenant = await app.createTenant('carried');
    await createWebhook(tenant, ['carried.*']);
    await deliveryWakeupFor(app.db.pool).settled();
    const sent = await wakeUpsDuring(async () => {
      const res = await postEvent(tenant, { type: 'carried.one', payload: {} });
      expect(res.status).toBe(202);
      await deliveryWakeupFor(app.db.pool).settled();
    });
    expect(sent).toBe(1);
  });
});

describe('matching at scale', () => {
  it('finds the right webhooks among 100,000 through the GIN index', async () => {
    const tenant = await app.createTenant('scale');
    // 100,000 webhooks that do not match, in one statement; every 20,000th subscribes to scale.*.
    await app.db.pool.query(
      `INSERT INTO webhooks (id, tenant_id, url, secret_ciphertext, event_types, retry_policy)
       SELECT gen_random_uuid(), $1, 'https://example.com/' || g, '\\x00'::bytea,
              CASE WHEN g % 20000 = 0 THEN ARRAY['scale.*'] ELSE ARRAY['bulk.type' || g, 'bulk.*'] END,
              '{"max_attempts":1,"initial_delay_ms":100,"max_delay_ms":100}'
         FROM generate_series(1, 100000) g`,
      [tenant.id],
    );
    const disabled = await createWebhook(tenant, ['scale.hit']);
    await app.request('PATCH', `/webhooks/${disabled}`, { key: tenant.apiKey, body: { enabled: false } });
    await createWebhook(other, ['scale.*']);
    await app.db.pool.query('ANALYZE webhooks');

    const { rows: expected } = await app.db.pool.query(
      `SELECT id FROM webhooks WHERE tenant_id = $1 AND event_types = ARRAY['scale.*'] ORDER BY id`,
      [tenant.id],
    );
    expect(expected).toHaveLength(5);
    const res = await postEvent(tenant, { type: 'scale.hit', payload: {} });
    expect(res.status).toBe(202);
    expect(res.body.webhooks_queued).toBe(5);
    expect((await deliveriesOf(res.body.event_id)).map((d) => d.webhook_id).sort()).toEqual(
      expected.map((r) => r.id).sort(),
    );

    // The statement runs inside postbox.ingest: auto_explain reports the plans of nested statements.
    const client = new pg.Client({ connectionString: app.db.url });
    await client.connect();
    const plans: any[] = [];
    client.on('notice', (n) => {
      const at = n.message?.indexOf('{') ?? -1;
      if (at >= 0) plans.push(JSON.parse(n.message!.slice(at)));
    });
    try {
      await client.query(`LOAD 'auto_explain'`);
      await client.query(`SET auto_explain.log_min_duration = 0; SET auto_explain.log_nested_statements = on;
        SET auto_explain.log_format = 'json'; SET auto_explain.log_level = 'notice'`);
      await client.query(
        INGEST_EVENTS_SQL,
        ingestParams([
          {
            ord: 0,
            id: newId(),
            tenantId: tenant.id,
            type: 'scale.hit',
            payload: '{}',
            occurredAt: null,
            idempotencyKey: null,
            traceparent: null,
          },
        ]),
      );
    } finally {
      await client.end();
    }
    const plan = plans.find((p) => String(p['Query Text']).includes('INSERT INTO deliveries'));
    expect(plan).toBeDefined();
    const nodes: any[] = [];
    const walk = (node: any) => {
      nodes.push(node);
      for (const child of node.Plans ?? []) walk(child);
    };
    walk(plan.Plan);
    const onWebhooks = nodes.filter((n) => n['Relation Name'] === 'webhooks');
    expect(onWebhooks.map((n) => n['Node Type'])).not.toContain('Seq Scan');
    expect(nodes.map((n) => n['Index Name'])).toContain('webhooks_event_types_idx');
  });
});
