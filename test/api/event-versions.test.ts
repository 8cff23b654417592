/**
 * Events of catalogued types (docs/event-types.md): POST /events and /events/batch get the version
 * (named, or the latest), are refused with 400 naming the JSON path when the payload breaks the
 * version's schema, and carry metadata and source, stored, returned and delivered in the body.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';

let app: TestApp;
let receiver: Receiver;
let tenant: { id: string; apiKey: string };

beforeAll(async () => {
  receiver = await startReceiver();
  app = await startTestApp({ POSTBOX_ROLE: 'all', SSRF_ALLOW_CIDRS: '127.0.0.0/8', POLL_INTERVAL_MS: '200' });
  tenant = await app.createTenant('versions');
  const v1 = { type: 'object', required: ['id'], properties: { id: { type: 'string' } } };
  const v2 = {
    type: 'object',
    required: ['id', 'total'],
    properties: { id: { type: 'string' }, total: { type: 'number', minimum: 0 } },
  };
  expect(
    (await post('/event-types', { name: 'order.created', description: 'placed', schema: v1 })).status,
  ).toBe(201);
  const patched = await app.request('PATCH', '/event-types/order.created', {
    key: tenant.apiKey,
    body: { new_version: { schema: v2, example: { id: 'o', total: 1 } } },
  });
  expect(patched.body.latest_version).toBe(2);
});
afterAll(async () => {
  await app.close();
  await receiver.close();
});

const post = (path: string, body: unknown) => app.request('POST', path, { key: tenant.apiKey, body });
const read = async (id: string) => (await app.request('GET', `/events/${id}`, { key: tenant.apiKey })).body;
const count = async () =>
  (
    await app.db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM events WHERE tenant_id = $1', [
      tenant.id,
    ])
  ).rows[0]!.n;

describe('the version of an event', () => {
  it("is the type's latest when the event names none, and the one it names otherwise", async () => {
    const latest = await post('/events', { type: 'order.created', payload: { id: 'a', total: 3 } });
    expect(latest.status).toBe(202);
    expect((await read(latest.body.event_id)).version).toBe(2);
    // Version 1's schema does not require total.
    const older = await post('/events', { type: 'order.created', version: 1, payload: { id: 'b' } });
    expect(older.status).toBe(202);
    expect((await read(older.body.event_id)).version).toBe(1);
  });

  it('is null for a type that is not in the catalog, which takes any payload', async () => {
    const res = await post('/events', { type: 'not.catalogued', payload: [1, 'x'] });
    expect(res.status).toBe(202);
    expect((await read(res.body.event_id)).version).toBeNull();
  });

  it.each<[string, Record<string, unknown>, string, string]>([
    ['a payload the latest schema refuses', { payload: { id: 'c' } }, 'payload.total', 'is required'],
    ['a wrong type deep in it', { payload: { id: 'c', total: 'ten' } }, 'payload.total', 'must be a number'],
    [
      'a payload the named version refuses',
      { version: 1, payload: { id: 7 } },
      'payload.id',
      'must be a string',
    ],
    [
      'a version the type does not have',
      { version: 3, payload: {} },
      'version',
      'order.created has no version 3',
    ],
  ])('refuses %s with 400 naming the path, storing nothing', async (_what, fields, path, message) => {
    const before = await count();
    const res = await post('/events', { type: 'order.created', ...fields });
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code: 'validation_failed', details: [{ path, message }] });
    expect(await count()).toBe(before);
  });

  it('refuses a version for a type that is not in the catalog', async () => {
    const res = await post('/events', { type: 'not.catalogued', version: 1, payload: {} });
    expect(res.body.error.details).toEqual([
      { path: 'version', message: 'not.catalogued is not in the event-type catalog (send no version)' },
    ]);
  });

  it('refuses a whole batch for one bad event, naming it by its position', async () => {
    const before = await count();
    const res = await post('/events/batch', {
      events: [
        { type: 'order.created', payload: { id: 'ok', total: 1 } },
        { type: 'other.type', payload: {} },
        { type: 'order.created', payload: { id: 'bad', total: -5 } },
      ],
    });
    expect(res.status).toBe(400);
    expect(res.body.error.details).toEqual([
      { path: 'events.2.payload.total', message: 'must be at least 0' },
    ]);
    expect(await count()).toBe(before);
  });

  it('is still accepted for a deprecated type', async () => {
    await post('/event-types', { name: 'old.thing', description: 'going away' });
    await app.request('PATCH', '/event-types/old.thing', { key: tenant.apiKey, body: { deprecated: true } });
    const res = await post('/events', { type: 'old.thing', payload: {} });
    expect(res.status).toBe(202);
    expect((await read(res.body.event_id)).version).toBe(1);
  });
});

describe('metadata and source', () => {
  it('are stored and returned by GET /events/:id and GET /events', async () => {
    const res = await post('/events', {
      type: 'meta.one',
      payload: {},
      source: 'billing-service',
      metadata: { region: 'eu-west', 'trace:id': 'abc' },
    });
    expect(res.status).toBe(202);
    expect(await read(res.body.event_id)).toMatchObject({
      source: 'billing-service',
      metadata: { region: 'eu-west', 'trace:id': 'abc' },
    });
    const list = await app.request('GET', '/events?type=meta.one', { key: tenant.apiKey });
    expect(list.body.data[0]).toMatchObject({ source: 'billing-service', metadata: { region: 'eu-west' } });
  });

  it.each<[string, Record<string, unknown>, string, string]>([
    ['a metadata value that is not a string', { metadata: { n: 1 } }, 'metadata.n', 'must be a string'],
    ['metadata that is not an object', { metadata: ['a'] }, 'metadata', 'must be an object of strings'],
    [
      'more than 50 metadata keys',
      { metadata: Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`k${i}`, 'v'])) },
      'metadata',
      'must have at most 50 keys',
    ],
    [
      'a metadata value over 500 characters',
      { metadata: { k: 'x'.repeat(501) } },
      'metadata.k',
      'must be at most 500 characters',
    ],
    ['a source over 100 characters', { source: 's'.repeat(101) }, 'source', 'must be at most 100 characters'],
    ['an empty source', { source: '' }, 'source', 'must not be empty'],
  ])('refuse %s with 400', async (_what, fields, path, message) => {
    const res = await post('/events', { type: 'meta.bad', payload: {}, ...fields });
    expect(res.status).toBe(400);
    expect(res.body.error.details).toEqual([{ path, message }]);
  });
});

describe('the delivery body', () => {
  it('carries version, source and metadata when the event has them, and only then', async () => {
    const hook = await post('/webhooks', {
      url: receiver.url('/versions'),
      event_types: ['order.*', 'plain.*'],
    });
    expect(hook.status).toBe(201);
    const rich = await post('/events', {
      type: 'order.created',
      payload: { id: 'r', total: 2 },
      timestamp: '2026-03-04T05:06:07Z',
      source: 'shop',
      metadata: { region: 'eu' },
    });
    const plain = await post('/events', {
      type: 'plain.event',
      payload: { n: 1 },
      timestamp: '2026-03-04T05:06:07Z',
    });
    const got = await receiver.waitForRequests(2, '/versions', 15_000);
    const bodies = new Map(got.map((r) => [JSON.parse(r.body).id, r.body]));
    expect(JSON.parse(bodies.get(rich.body.event_id)!)).toEqual({
      id: rich.body.event_id,
      type: 'order.created',
      version: 2,
      timestamp: '2026-03-04T05:06:07.000Z',
      source: 'shop',
      metadata: { region: 'eu' },
      data: { id: 'r', total: 2 },
    });
    // Without them, the body is exactly the contract's four fields.
    expect(bodies.get(plain.body.event_id)).toBe(
      `{"id":"${plain.body.event_id}","type":"plain.event","timestamp":"2026-03-04T05:06:07.000Z","data":{"n": 1}}`,
    );
  });
});
