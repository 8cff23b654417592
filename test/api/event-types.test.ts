/**
 * The event-type catalog API: GET/POST/PATCH /event-types per tenant, versions append-only, schemas
 * within the documented subset, examples valid against them, every change audited.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { allPages } from '../helpers/pages.js';

let app: TestApp;
let tenant: { id: string; apiKey: string };
let other: { id: string; apiKey: string };
beforeAll(async () => {
  app = await startTestApp();
  tenant = await app.createTenant('catalog');
  other = await app.createTenant('other');
});
afterAll(async () => {
  await app.close();
});

const orderSchema = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', pattern: '^ord_' }, total: { type: 'number', minimum: 0 } },
};

async function create(body: Record<string, unknown>, key = tenant.apiKey) {
  return app.request('POST', '/event-types', { key, body });
}

describe('POST /event-types', () => {
  it('adds a type with its version 1, schema and example, and audits it', async () => {
    const res = await create({
      name: 'order.created',
      description: 'An order was placed',
      schema: orderSchema,
      example: { id: 'ord_1', total: 3 },
    });
    expect(res.status).toBe(201);
    expect(res.body).toEqual({
      id: expect.any(String),
      tenant_id: tenant.id,
      name: 'order.created',
      description: 'An order was placed',
      deprecated: false,
      latest_version: 1,
      versions: [
        {
          version: 1,
          schema: orderSchema,
          example: { id: 'ord_1', total: 3 },
          created_at: expect.any(String),
        },
      ],
      created_at: expect.any(String),
      updated_at: expect.any(String),
    });
    const audit = await app.request('GET', `/audit?tenant_id=${tenant.id}&action=event_type.create`);
    expect(audit.body.data).toEqual([
      expect.objectContaining({
        object_type: 'event_type',
        object_id: res.body.id,
        changes: expect.objectContaining({ name: 'order.created', latest_version: 1 }),
      }),
    ]);
  });

  it('takes a type without a schema or an example', async () => {
    const res = await create({ name: 'note.added', description: '' });
    expect(res.status).toBe(201);
    expect(res.body.versions).toEqual([
      { version: 1, schema: null, example: null, created_at: expect.any(String) },
    ]);
  });

  it('answers 409 for a name the tenant has; another tenant may use it', async () => {
    await create({ name: 'dup.one', description: 'first' });
    const again = await create({ name: 'dup.one', description: 'second' });
    expect([again.status, again.body.error.code]).toEqual([409, 'conflict']);
    expect((await create({ name: 'dup.one', description: 'theirs' }, other.apiKey)).status).toBe(201);
  });

  it.each<[string, Record<string, unknown>, string, string]>([
    [
      'a reserved name',
      { name: 'postbox.test', description: '' },
      'name',
      'postbox.* event types are reserved for Postbox itself',
    ],
    [
      'a wildcard name',
      { name: 'order.*', description: '' },
      'name',
      'may contain only letters, digits and _ . : - (no *)',
    ],
    [
      'no description',
      { name: 'a.b' },
      'description',
      'Invalid key: Expected "description" but received undefined',
    ],
    [
      'an unsupported keyword',
      { name: 'a.b', description: '', schema: { type: 'object', properties: { a: { oneOf: [] } } } },
      'schema.properties.a.oneOf',
      'is not a supported keyword (docs/event-types.md lists them)',
    ],
    [
      'a pattern PostgreSQL cannot compile',
      { name: 'a.b', description: '', schema: { properties: { a: { pattern: '(' } } } },
      'schema.properties.a.pattern',
      'is not a valid regular expression',
    ],
    [
      'an example the schema refuses',
      { name: 'a.b', description: '', schema: orderSchema, example: { id: 'x' } },
      'example.id',
      'does not match the schema: must match the pattern ^ord_',
    ],
    [
      'a schema over 64 KiB',
      { name: 'a.b', description: '', schema: { description: 'x'.repeat(70_000) } },
      'schema',
      'must be at most 65536 bytes as JSON',
    ],
  ])('refuses %s with 400 naming the path, storing nothing', async (_what, body, path, message) => {
    const res = await create(body);
    expect(res.status).toBe(400);
    expect(res.body.error.details).toEqual([{ path, message }]);
    expect((await app.request('GET', '/event-types/a.b', { key: tenant.apiKey })).status).toBe(404);
  });

  it('with the admin key names the tenant in the body', async () => {
    const missing = await app.request('POST', '/event-types', {
      body: { name: 'admin.made', description: '' },
    });
    expect(missing.status).toBe(400);
    const made = await app.request('POST', '/event-types', {
      body: { name: 'admin.made', description: '', tenant_id: tenant.id },
    });
    expect([made.status, made.body.tenant_id]).toEqual([201, tenant.id]);
  });
});

describe('GET /event-types', () => {
  it('reads one by name; another tenant gets 404; the admin key names the tenant', async () => {
    await create({ name: 'read.me', description: 'readable' });
    const own = await app.request('GET', '/event-types/read.me', { key: tenant.apiKey });
    expect([own.status, own.body.description]).toEqual([200, 'readable']);
    expect((await app.request('GET', '/event-types/read.me', { key: other.apiKey })).status).toBe(404);
    expect(
      (await app.request('GET', `/event-types/read.me?tenant_id=${other.id}`, { key: tenant.apiKey })).status,
    ).toBe(404);
    expect((await app.request('GET', '/event-types/read.me')).status).toBe(400);
    const admin = await app.request('GET', `/event-types/read.me?tenant_id=${tenant.id}`);
    expect([admin.status, admin.body.name]).toEqual([200, 'read.me']);
  });

  it("lists a tenant's types newest first, page by page, and only its own", async () => {
    const lister = await app.createTenant('lister');
    for (const name of ['l.one', 'l.two', 'l.three']) await create({ name, description: '' }, lister.apiKey);
    const pages = await allPages(app, '/event-types?limit=2', lister.apiKey);
    expect(pages.map((p) => p.map((t: { name: string }) => t.name))).toEqual([
      ['l.three', 'l.two'],
      ['l.one'],
    ]);
    const admin = await app.request('GET', `/event-types?tenant_id=${lister.id}`);
    expect(admin.body.data).toHaveLength(3);
  });
});

describe('PATCH /event-types/:name', () => {
  it('changes the description, deprecates, and appends versions; earlier versions stay as they were', async () => {
    await create({ name: 'ver.sioned', description: 'v1', schema: orderSchema, example: { id: 'ord_1' } });
    const v2Schema = { ...orderSchema, required: ['id', 'total'] };
    const res = await app.request('PATCH', '/event-types/ver.sioned', {
      key: tenant.apiKey,
      body: {
        description: 'now with totals',
        new_version: { schema: v2Schema, example: { id: 'ord_2', total: 1 } },
      },
    });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ description: 'now with totals', deprecated: false, latest_version: 2 });
    expect(res.body.versions.map((x: { version: number; schema: unknown }) => [x.version, x.schema])).toEqual(
      [
        [1, orderSchema],
        [2, v2Schema],
      ],
    );
    const dep = await app.request('PATCH', '/event-types/ver.sioned', {
      key: tenant.apiKey,
      body: { deprecated: true, new_version: {} },
    });
    expect(dep.body).toMatchObject({ deprecated: true, latest_version: 3, description: 'now with totals' });
    expect(dep.body.versions[2]).toMatchObject({ version: 3, schema: null, example: null });

    const audit = await app.request('GET', `/audit?tenant_id=${tenant.id}&action=event_type.update`);
    expect(audit.body.data.slice(0, 2).map((a: { changes: unknown }) => a.changes)).toEqual([
      { before: { deprecated: false }, after: { deprecated: true }, added_version: 3 },
      { before: { description: 'v1' }, after: { description: 'now with totals' }, added_version: 2 },
    ]);
  });

  it('checks a new version like a new type, naming paths under new_version', async () => {
    await create({ name: 'ver.bad', description: '' });
    const res = await app.request('PATCH', '/event-types/ver.bad', {
      key: tenant.apiKey,
      body: { new_version: { schema: { type: 'object', required: ['a'] }, example: {} } },
    });
    expect(res.status).toBe(400);
    expect(res.body.error.details).toEqual([
      { path: 'new_version.example.a', message: 'does not match the schema: is required' },
    ]);
    expect(
      (await app.request('GET', '/event-types/ver.bad', { key: tenant.apiKey })).body.latest_version,
    ).toBe(1);
  });

  it("answers 404 for another tenant's type and refuses unknown fields", async () => {
    await create({ name: 'mine.only', description: '' });
    const theirs = await app.request('PATCH', '/event-types/mine.only', {
      key: other.apiKey,
      body: { description: 'taken over' },
    });
    expect(theirs.status).toBe(404);
    const typo = await app.request('PATCH', '/event-types/mine.only', {
      key: tenant.apiKey,
      body: { schema: {} },
    });
    expect(typo.status).toBe(400);
  });
});

describe('versions in the database', () => {
  it('are append-only: changing one is refused', async () => {
    const t = await create({ name: 'frozen.one', description: '' });
    await expect(
      app.db.pool.query(`UPDATE event_type_versions SET schema = '{}' WHERE event_type_id = $1`, [t.body.id]),
    ).rejects.toThrow(/append-only/);
  });
});
