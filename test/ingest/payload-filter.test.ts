/**
 * Payload filters: the language checked at registration (every problem named by its path), and the
 * compiled predicate evaluated by PostgreSQL (`payload @@ filter_path`, as ingest does) on a table of
 * filters and payloads. Then through the API and postbox.emit.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { checkFilter, compileFilter } from '../../src/ingest/payload-filter.js';
import { startTestApp, type TestApp } from '../helpers/app.js';

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(async () => {
  await app.close();
});

const order = {
  id: 42,
  total: 99.5,
  currency: 'EUR',
  paid: true,
  coupon: null,
  customer: { country: 'DE', tier: 'gold', 'odd.key': 1 },
  tags: ['new', 'vip'],
  'a"b': 'quoted',
};

async function matches(filter: unknown, payload: unknown): Promise<boolean> {
  expect(checkFilter(filter)).toEqual([]);
  const { rows } = await app.db.pool.query<{ m: boolean | null }>('SELECT $1::jsonb @@ $2::jsonpath AS m', [
    JSON.stringify(payload),
    compileFilter(filter),
  ]);
  return rows[0]!.m === true;
}

describe('evaluation', () => {
  it.each<[string, unknown, unknown, boolean]>([
    ['eq string', { path: 'currency', eq: 'EUR' }, order, true],
    ['eq string, other value', { path: 'currency', eq: 'USD' }, order, false],
    ['eq number', { path: 'total', eq: 99.5 }, order, true],
    ['eq number against a string', { path: 'currency', eq: 5 }, order, false],
    ['eq boolean', { path: 'paid', eq: true }, order, true],
    ['eq null', { path: 'coupon', eq: null }, order, true],
    ['eq null on a missing path', { path: 'nothing', eq: null }, order, false],
    ['eq nested', { path: 'customer.country', eq: 'DE' }, order, true],
    ['eq on an array: any element', { path: 'tags', eq: 'vip' }, order, true],
    ['eq on an array, no element', { path: 'tags', eq: 'old' }, order, false],
    ['eq with a quote in the key', { path: 'a"b', eq: 'quoted' }, order, true],
    ['ne other value', { path: 'currency', ne: 'USD' }, order, true],
    ['ne same value', { path: 'currency', ne: 'EUR' }, order, false],
    ['ne on a missing path', { path: 'nothing', ne: 'x' }, order, true],
    ['ne against another type', { path: 'currency', ne: 5 }, order, true],
    ['in', { path: 'customer.country', in: ['FR', 'DE'] }, order, true],
    ['in, none', { path: 'customer.country', in: ['FR', 'IT'] }, order, false],
    ['in mixed types', { path: 'id', in: ['42', 42] }, order, true],
    ['nin', { path: 'customer.country', nin: ['FR', 'IT'] }, order, true],
    ['nin, listed', { path: 'customer.country', nin: ['DE'] }, order, false],
    ['nin on a missing path', { path: 'nothing', nin: ['DE'] }, order, true],
    ['gt', { path: 'total', gt: 99 }, order, true],
    ['gt equal', { path: 'total', gt: 99.5 }, order, false],
    ['gte equal', { path: 'total', gte: 99.5 }, order, true],
    ['lt', { path: 'total', lt: 100 }, order, true],
    ['lte below', { path: 'total', lte: 10 }, order, false],
    ['gt negative', { path: 'total', gt: -1 }, order, true],
    ['gt on a string value', { path: 'currency', gt: 1 }, order, false],
    ['string comparison by code point', { path: 'customer.tier', gte: 'go' }, order, true],
    ['exists true', { path: 'customer.tier', exists: true }, order, true],
    ['exists true on a JSON null', { path: 'coupon', exists: true }, order, true],
    ['exists false on a missing path', { path: 'customer.vat', exists: false }, order, true],
    ['exists false on a present path', { path: 'customer.tier', exists: false }, order, false],
    ['a path through a scalar', { path: 'currency.code', exists: true }, order, false],
    [
      'and, all hold',
      {
        and: [
          { path: 'paid', eq: true },
          { path: 'total', gte: 50 },
        ],
      },
      order,
      true,
    ],
    [
      'and, one fails',
      {
        and: [
          { path: 'paid', eq: true },
          { path: 'total', gte: 500 },
        ],
      },
      order,
      false,
    ],
    [
      'or, one holds',
      {
        or: [
          { path: 'total', gte: 500 },
          { path: 'tags', eq: 'vip' },
        ],
      },
      order,
      true,
    ],
    [
      'or, none',
      {
        or: [
          { path: 'total', gte: 500 },
          { path: 'tags', eq: 'x' },
        ],
      },
      order,
      false,
    ],
    ['not', { not: { path: 'customer.country', eq: 'FR' } }, order, true],
    ['not not', { not: { not: { path: 'customer.country', eq: 'FR' } } }, order, false],
    [
      'nested and/or/not',
      {
        and: [
          {
            or: [
              { path: 'customer.tier', eq: 'gold' },
              { path: 'total', gt: 1000 },
            ],
          },
          { not: { path: 'customer.country', in: ['US', 'CA'] } },
        ],
      },
      order,
      true,
    ],
    ['a JSON null payload', { path: 'a', exists: false }, null, true],
    ['a scalar payload', { path: 'a', eq: 1 }, 7, false],
    ['an array payload: any element', { path: 'kind', eq: 'b' }, [{ kind: 'a' }, { kind: 'b' }], true],
    [
      'a path through an array of objects',
      { path: 'items.sku', eq: 'A1' },
      { items: [{ sku: 'B' }, { sku: 'A1' }] },
      true,
    ],
    ['a dotted key is a path, not a key', { path: 'customer.odd.key', eq: 1 }, order, false],
  ])('%s', async (_what, filter, payload, expected) => {
    expect(await matches(filter, payload)).toBe(expected);
  });
});

describe('checking at registration', () => {
  const cases: [string, unknown, unknown][] = [
    ['not an object', 'x', [{ path: 'filter', message: expect.stringContaining('must be an object') }]],
    [
      'an empty and',
      { and: [] },
      [{ path: 'filter.and', message: 'must be a non-empty array of conditions' }],
    ],
    [
      'and with another key',
      { and: [{ path: 'a', eq: 1 }], x: 1 },
      [{ path: 'filter', message: '"and" must be the only key' }],
    ],
    [
      'a missing path',
      { eq: 1 },
      [{ path: 'filter.path', message: expect.stringContaining('dotted payload path') }],
    ],
    [
      'an empty segment',
      { path: 'a..b', eq: 1 },
      [{ path: 'filter.path', message: expect.stringContaining('empty segments') }],
    ],
    [
      'an unknown operator',
      { path: 'a', like: 'x%' },
      [{ path: 'filter.like', message: expect.stringContaining('is not an operator') }],
    ],
    [
      'two operators',
      { path: 'a', eq: 1, ne: 2 },
      [{ path: 'filter', message: expect.stringContaining('exactly one operator') }],
    ],
    [
      'no operator',
      { path: 'a' },
      [{ path: 'filter', message: expect.stringContaining('exactly one operator') }],
    ],
    [
      'an object value',
      { path: 'a', eq: { b: 1 } },
      [{ path: 'filter.eq', message: 'must be a string, number, boolean or null' }],
    ],
    [
      'a boolean comparison',
      { path: 'a', gt: true },
      [{ path: 'filter.gt', message: 'must be a number or a string' }],
    ],
    [
      'exists not boolean',
      { path: 'a', exists: 1 },
      [{ path: 'filter.exists', message: 'must be true or false' }],
    ],
    [
      'an empty in',
      { path: 'a', in: [] },
      [{ path: 'filter.in', message: 'must be an array of 1–100 values' }],
    ],
    [
      'a bad in item',
      { path: 'a', in: [1, [2]] },
      [{ path: 'filter.in.1', message: 'must be a string, number, boolean or null' }],
    ],
    [
      'problems deep inside, each named',
      { and: [{ path: 'a', eq: 1 }, { or: [{ path: '', eq: 1 }, { not: { path: 'b', gte: null } }] }] },
      [
        { path: 'filter.and.1.or.0.path', message: expect.stringContaining('empty segments') },
        { path: 'filter.and.1.or.1.not.gte', message: 'must be a number or a string' },
      ],
    ],
    [
      'too deep',
      { not: { not: { not: { not: { not: { not: { not: { not: { path: 'a', eq: 1 } } } } } } } } },
      [{ path: 'filter.not.not.not.not.not.not.not.not', message: 'nests deeper than 8 levels' }],
    ],
    [
      'too many conditions',
      { or: Array.from({ length: 51 }, (_, i) => ({ path: 'a', eq: i })) },
      [{ path: 'filter', message: 'must have at most 50 conditions' }],
    ],
  ];
  it.each(cases)('refuses %s, naming the path', (_what, filter, problems) => {
    expect(checkFilter(filter)).toEqual(problems);
  });
});

describe('through the API and emit', () => {
  it('queues only the events whose payload matches, for POST /events and postbox.emit alike', async () => {
    const tenant = await app.createTenant('filters');
    const create = await app.request('POST', '/webhooks', {
      key: tenant.apiKey,
      body: {
        url: 'https://example.com/big-orders',
        event_types: ['order.*'],
        filter: {
          and: [
            { path: 'total', gte: 100 },
            { path: 'country', in: ['DE', 'FR'] },
          ],
        },
      },
    });
    expect(create.status).toBe(201);
    expect(create.body.filter).toEqual({
      and: [
        { path: 'total', gte: 100 },
        { path: 'country', in: ['DE', 'FR'] },
      ],
    });
    const all = await app.request('POST', '/webhooks', {
      key: tenant.apiKey,
      body: { url: 'https://example.com/all', event_types: ['order.*'] },
    });

    const post = (payload: unknown) =>
      app.request('POST', '/events', { key: tenant.apiKey, body: { type: 'order.created', payload } });
    expect((await post({ total: 150, country: 'DE' })).body.webhooks_queued).toBe(2);
    expect((await post({ total: 50, country: 'DE' })).body.webhooks_queued).toBe(1);
    expect((await post({ total: 150, country: 'US' })).body.webhooks_queued).toBe(1);
    expect((await post('not an object')).body.webhooks_queued).toBe(1);

    const batch = await app.request('POST', '/events/batch', {
      key: tenant.apiKey,
      body: {
        events: [100, 99, 1000].map((total) => ({
          type: 'order.created',
          payload: { total, country: 'FR' },
        })),
      },
    });
    expect(batch.body.data.map((a: { webhooks_queued: number }) => a.webhooks_queued)).toEqual([2, 1, 2]);

    const emitted = async (payload: unknown) => {
      const { rows } = await app.db.pool.query<{ id: string }>(
        `SELECT postbox.emit($1, 'order.created', $2) AS id`,
        [tenant.id, JSON.stringify(payload)],
      );
      const queued = await app.db.pool.query(
        'SELECT 1 FROM deliveries WHERE event_id = $1 AND webhook_id = $2',
        [rows[0]!.id, create.body.id],
      );
      return queued.rowCount;
    };
    expect(await emitted({ total: 500, country: 'FR' })).toBe(1);
    expect(await emitted({ total: 500, country: 'IT' })).toBe(0);

    // PATCH replaces the filter, null removes it.
    const patched = await app.request('PATCH', `/webhooks/${create.body.id}`, {
      key: tenant.apiKey,
      body: { filter: { path: 'country', eq: 'US' } },
    });
    expect(patched.body.filter).toEqual({ path: 'country', eq: 'US' });
    expect((await post({ total: 1, country: 'US' })).body.webhooks_queued).toBe(2);
    await app.request('PATCH', `/webhooks/${create.body.id}`, { key: tenant.apiKey, body: { filter: null } });
    expect((await post({ anything: true })).body.webhooks_queued).toBe(2);
    const untouched = await app.request('PATCH', `/webhooks/${all.body.id}`, {
      key: tenant.apiKey,
      body: { description: 'no filter change' },
    });
    expect(untouched.body.filter).toBeNull();
  });

  it('answers 400 naming every bad path, and stores nothing', async () => {
    const tenant = await app.createTenant('bad-filters');
    const res = await app.request('POST', '/webhooks', {
      key: tenant.apiKey,
      body: {
        url: 'https://example.com/x',
        filter: {
          or: [
            { path: 'a', between: [1, 2] },
            { path: 'b', in: [] },
          ],
        },
      },
    });
    expect(res.status).toBe(400);
    expect(res.body.error.details.map((d: { path: string }) => d.path)).toEqual([
      'filter.or.0.between',
      'filter.or.1.in',
    ]);
    const list = await app.request('GET', '/webhooks', { key: tenant.apiKey });
    expect(list.body.data).toHaveLength(0);
  });
});
