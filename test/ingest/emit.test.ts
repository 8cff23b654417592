/**
 * postbox.emit: the producer-side outbox. A producer's own transaction queues the event; it is
 * delivered only if that transaction commits, and it follows the same rules as POST /events.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import pg from 'pg';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { waitFor } from '../helpers/wait.js';
import { createProducerRole } from '../../src/queries/producers.js';

type Tenant = { id: string; apiKey: string };
let app: TestApp;
let receiver: Receiver;
let tenant: Tenant;

beforeAll(async () => {
  receiver = await startReceiver();
  app = await startTestApp({
    POSTBOX_ROLE: 'all',
    SSRF_ALLOW_CIDRS: '127.0.0.0/8',
    POLL_INTERVAL_MS: '200',
    SHUTDOWN_GRACE_MS: '500',
  });
  tenant = await app.createTenant('producer');
});
afterAll(async () => {
  await app.close();
  await receiver.close();
});

async function webhook(t: Tenant, path: string, eventTypes: string[] = ['*']): Promise<string> {
  const res = await app.request('POST', '/webhooks', {
    key: t.apiKey,
    body: { url: receiver.url(path), event_types: eventTypes },
  });
  expect(res.status).toBe(201);
  return res.body.id;
}

/** A producer's own connection, as its service would hold one. */
async function producer(url = app.db.url): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  return client;
}

async function emit(db: pg.ClientBase | pg.Pool, ...args: unknown[]): Promise<string> {
  const params = args.map((_, i) => `$${i + 1}`).join(', ');
  const { rows } = await db.query<{ id: string }>(`SELECT postbox.emit(${params}) AS id`, args);
  return rows[0]!.id;
}

const count = async (sql: string, params: unknown[]) =>
  (await app.db.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${sql}`, params)).rows[0]!.n;

describe('inside the producer transaction', () => {
  it('a rolled-back transaction leaves no event, no delivery, and sends nothing', async () => {
    await webhook(tenant, '/rollback', ['shop.*']);
    const client = await producer();
    try {
      await client.query('BEGIN');
      await client.query('CREATE TEMP TABLE orders (id int)');
      await client.query('INSERT INTO orders VALUES (1)');
      const lost = await emit(client, tenant.id, 'shop.order.created', { order: 1 });
      await client.query('ROLLBACK');
      expect(await count('events WHERE id = $1', [lost])).toBe(0);
      expect(await count('deliveries WHERE event_id = $1', [lost])).toBe(0);

      // A committed event after it: once that one has arrived, the rolled-back one would have too.
      await client.query('BEGIN');
      const kept = await emit(client, tenant.id, 'shop.order.created', { order: 2 });
      await client.query('COMMIT');
      const [got] = await receiver.waitForRequests(1, '/rollback', 15_000);
      expect(JSON.parse(got!.body)).toMatchObject({ id: kept, data: { order: 2 } });
      await waitFor(
        async () => (await count(`deliveries WHERE event_id = $1 AND status = 'succeeded'`, [kept])) === 1,
        { timeoutMs: 15_000, what: 'the committed delivery' },
      );
      expect(receiver.requestsTo('/rollback')).toHaveLength(1);
    } finally {
      await client.end();
    }
  });

  it('a committed event is matched like POST /events and delivered with its envelope', async () => {
    await webhook(tenant, '/committed', ['billing.invoice.*']);
    await webhook(tenant, '/other-type', ['shipping.*']);
    const client = await producer();
    try {
      await client.query('BEGIN');
      const id = await emit(
        client,
        tenant.id,
        'billing.invoice.paid',
        { amount: 42 },
        null,
        '2026-01-02T03:04:05Z',
      );
      // Not visible to anyone before the commit.
      expect(await count('events WHERE id = $1', [id])).toBe(0);
      await client.query('COMMIT');
      const [got] = await receiver.waitForRequests(1, '/committed', 15_000);
      expect(JSON.parse(got!.body)).toEqual({
        id,
        type: 'billing.invoice.paid',
        timestamp: '2026-01-02T03:04:05.000Z',
        data: { amount: 42 },
      });
      expect(got!.headers['x-webhook-event']).toBe('billing.invoice.paid');
      expect(await count('deliveries WHERE event_id = $1', [id])).toBe(1);
      const api = await app.request('GET', `/events/${id}`, { key: tenant.apiKey });
      expect(api.status).toBe(200);
      expect(api.body.payload).toEqual({ amount: 42 });
    } finally {
      await client.end();
    }
  });

  it('wakes the workers on commit (NOTIFY), never before', async () => {
    await webhook(tenant, '/notify', ['wake.*']);
    const listener = await producer();
    const notes: string[] = [];
    listener.on('notification', (n) => notes.push(n.channel));
    await listener.query('LISTEN postbox_deliveries_due');
    const client = await producer();
    try {
      await client.query('BEGIN');
      await emit(client, tenant.id, 'wake.up', {});
      await client.query('SELECT pg_notify($1, $2)', ['emit_marker', '']);
      await listener.query('LISTEN emit_marker');
      await client.query('ROLLBACK');
      await app.db.pool.query(`SELECT pg_notify('emit_marker', 'after rollback')`);
      await waitFor(() => notes.includes('emit_marker'), { what: 'the marker' });
      expect(notes).not.toContain('postbox_deliveries_due');

      await client.query('BEGIN');
      await emit(client, tenant.id, 'wake.up', {});
      await client.query('COMMIT');
      await waitFor(() => notes.includes('postbox_deliveries_due'), { what: 'the wake-up' });
    } finally {
      await client.end();
      await listener.end();
    }
  });
});

describe('one set of rules with POST /events', () => {
  it('a repeated idempotency key returns the first event and queues nothing new', async () => {
    await webhook(tenant, '/idem', ['idem.*']);
    const first = await emit(app.db.pool, tenant.id, 'idem.one', { n: 1 }, 'key-1');
    const again = await emit(app.db.pool, tenant.id, 'idem.one', { n: 2 }, 'key-1');
    expect(again).toBe(first);
    const api = await app.request('POST', '/events', {
      key: tenant.apiKey,
      body: { type: 'idem.one', payload: {}, idempotency_key: 'key-1' },
    });
    expect([api.status, api.body.event_id]).toEqual([200, first]);
    expect(await count('deliveries WHERE event_id = $1', [first])).toBe(1);
  });

  it('POST /events waits for an open emit with the same key and answers with its event', async () => {
    const client = await producer();
    try {
      await client.query('BEGIN');
      const emitted = await emit(client, tenant.id, 'race.open', {}, 'key-open');
      const posting = app.request('POST', '/events', {
        key: tenant.apiKey,
        body: { type: 'race.open', payload: {}, idempotency_key: 'key-open' },
      });
      // The API's insert is blocked on the unique index until the producer commits.
      await waitFor(
        async () =>
          (
            await app.db.pool.query(
              `SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()`,
            )
          ).rowCount! > 0,
        { what: 'the API insert waiting on the open emit' },
      );
      await client.query('COMMIT');
      const res = await posting;
      expect([res.status, res.body.event_id]).toEqual([200, emitted]);
      expect(
        await count('events WHERE tenant_id = $1 AND idempotency_key = $2', [tenant.id, 'key-open']),
      ).toBe(1);
    } finally {
      await client.end();
    }
  });

  it('concurrent POST /events and emit with one key store one event, whichever wins', async () => {
    await webhook(tenant, '/race', ['race.*']);
    for (let round = 0; round < 5; round++) {
      const key = `race-${round}`;
      const client = await producer();
      try {
        const [viaApi, viaEmit] = await Promise.all([
          app.request('POST', '/events', {
            key: tenant.apiKey,
            body: { type: 'race.run', payload: { round }, idempotency_key: key },
          }),
          (async () => {
            await client.query('BEGIN');
            const id = await emit(client, tenant.id, 'race.run', { round }, key);
            await client.query('COMMIT');
            return id;
          })(),
        ]);
        expect([200, 202]).toContain(viaApi.status);
        expect(viaApi.body.event_id).toBe(viaEmit);
        expect(await count('events WHERE tenant_id = $1 AND idempotency_key = $2', [tenant.id, key])).toBe(1);
        expect(await count('deliveries WHERE event_id = $1', [viaEmit])).toBe(1);
      } finally {
        await client.end();
      }
    }
  });

  it.each([
    ['an empty type', ['', {}], 'type', 'must not be empty'],
    [
      'a type with a wildcard',
      ['order.*', {}],
      'type',
      'may contain only letters, digits and _ . : - (no *)',
    ],
    ['a type over 200 characters', ['a'.repeat(201), {}], 'type', 'must be at most 200 characters'],
    [
      'a reserved postbox.* type',
      ['postbox.endpoint.disabled', { webhook_id: 'forged' }],
      'type',
      'postbox.* event types are reserved for Postbox itself',
    ],
    ['a SQL NULL payload', ['order.created', null], 'payload', "must be given (JSON null is 'null'::jsonb)"],
    ['an empty idempotency key', ['order.created', {}, ''], 'idempotency_key', 'must not be empty'],
    [
      'a key with a control character',
      ['order.created', {}, 'a\tb'],
      'idempotency_key',
      'must not contain control characters',
    ],
    [
      'a timestamp before 1970',
      ['order.created', {}, null, '1969-12-31T23:59:59Z'],
      'timestamp',
      'must be between 1970 and 9999',
    ],
  ])('refuses %s with PB400 naming the field, storing nothing', async (_what, args, column, message) => {
    const before = await count('events WHERE tenant_id = $1', [tenant.id]);
    const err = await emit(app.db.pool, tenant.id, ...args).catch((e: unknown) => e as pg.DatabaseError);
    expect(err).toMatchObject({ code: 'PB400', column, message: `${column}: ${message}` });
    expect(await count('events WHERE tenant_id = $1', [tenant.id])).toBe(before);
  });

  it('refuses a payload over 1 MiB of JSON text with PB413', async () => {
    const err = await emit(app.db.pool, tenant.id, 'big.one', { s: 'x'.repeat(1024 * 1024) }).catch((e) => e);
    expect(err).toMatchObject({ code: 'PB413', column: 'payload' });
    await expect(emit(app.db.pool, tenant.id, 'big.one', { s: 'x'.repeat(1024 * 1000) })).resolves.toMatch(
      /-/,
    );
  });

  it('refuses an unknown tenant with PB404', async () => {
    const err = await emit(app.db.pool, '0190b6a4-3f1e-7c3a-9d2e-000000000000', 'a.b', {}).catch((e) => e);
    expect(err).toMatchObject({ code: 'PB404', message: 'tenant not found' });
  });

  it('counts against max_events_per_sec and refuses over it with PB429 and when to retry', async () => {
    const limited = await app.createTenant('limited', { max_events_per_sec: 1 });
    // Three calls within microseconds: at most one second boundary falls between them.
    const err = await app.db.pool
      .query(`SELECT postbox.emit($1, 'limited.x', '{}') FROM generate_series(1, 3)`, [limited.id])
      .catch((e: unknown) => e as pg.DatabaseError);
    expect(err).toMatchObject({ code: 'PB429', hint: expect.stringMatching(/^retry after \d+ seconds$/) });
    expect(await count('events WHERE tenant_id = $1', [limited.id])).toBe(0);
  });
});

describe('the event-type catalog, as for POST /events', () => {
  beforeAll(async () => {
    const res = await app.request('POST', '/event-types', {
      key: tenant.apiKey,
      body: {
        name: 'catalog.order',
        description: 'an order',
        schema: {
          type: 'object',
          required: ['id', 'lines'],
          properties: {
            id: { type: 'string' },
            lines: {
              type: 'array',
              items: { type: 'object', properties: { qty: { type: 'integer', minimum: 1 } } },
            },
          },
        },
      },
    });
    expect(res.status).toBe(201);
  });

  it('raises PB400 naming the JSON path when the payload breaks the schema, inside the producer transaction', async () => {
    const client = await producer();
    try {
      await client.query('BEGIN');
      await client.query('CREATE TEMP TABLE orders (id int)');
      await client.query('INSERT INTO orders VALUES (1)');
      const err = await emit(client, tenant.id, 'catalog.order', {
        id: 'o1',
        lines: [{ qty: 1 }, { qty: 0 }],
      }).catch((e: unknown) => e as pg.DatabaseError);
      expect(err).toMatchObject({
        code: 'PB400',
        column: 'payload.lines.1.qty',
        message: 'payload.lines.1.qty: must be at least 1',
        detail: 'The payload does not match the schema of catalog.order version 1 (input row 0)',
        hint: 'the event is not valid; nothing was stored',
      });
      // The error aborts the producer's transaction, its own row with it.
      await client.query('ROLLBACK');
    } finally {
      await client.end();
    }
    expect(await count(`events WHERE tenant_id = $1 AND type = 'catalog.order'`, [tenant.id])).toBe(0);
  });

  it('stores version, metadata and source; refuses a version the catalog does not have', async () => {
    const id = await emit(
      app.db.pool,
      tenant.id,
      'catalog.order',
      { id: 'o2', lines: [] },
      null,
      null,
      1,
      { region: 'eu' },
      'orders-db',
    );
    const api = await app.request('GET', `/events/${id}`, { key: tenant.apiKey });
    expect(api.body).toMatchObject({ version: 1, metadata: { region: 'eu' }, source: 'orders-db' });
    // Named arguments, as a producer would write them; the version defaults to the latest.
    const { rows } = await app.db.pool.query<{ id: string }>(
      `SELECT postbox.emit($1, 'catalog.order', '{"id": "o3", "lines": []}', source => 'named') AS id`,
      [tenant.id],
    );
    expect((await app.request('GET', `/events/${rows[0]!.id}`, { key: tenant.apiKey })).body).toMatchObject({
      version: 1,
      source: 'named',
      metadata: null,
    });
    for (const [args, column, message] of [
      [
        ['catalog.order', { id: 'o', lines: [] }, null, null, 9],
        'version',
        'version: catalog.order has no version 9',
      ],
      [
        ['not.in.catalog', {}, null, null, 1],
        'version',
        'version: not.in.catalog is not in the event-type catalog (send no version)',
      ],
      [
        ['catalog.order', { id: 'o', lines: [] }, null, null, null, { n: 1 }],
        'metadata.n',
        'metadata.n: must be a string',
      ],
    ] as const)
      await expect(emit(app.db.pool, tenant.id, ...args)).rejects.toMatchObject({
        code: 'PB400',
        column,
        message,
      });
  });
});

describe('a producer role', () => {
  it('may call postbox.emit and nothing else', async () => {
    const name = `producer_${randomBytes(4).toString('hex')}`;
    const password = randomBytes(12).toString('hex');
    await createProducerRole(app.db.pool, name, password);
    const url = new URL(app.db.url);
    url.username = name;
    url.password = password;
    const client = await producer(url.toString());
    try {
      await client.query('BEGIN');
      const id = await emit(client, tenant.id, 'role.check', { ok: true });
      await client.query('COMMIT');
      expect(await count('events WHERE id = $1', [id])).toBe(1);

      for (const sql of [
        'SELECT count(*) FROM events',
        'SELECT count(*) FROM webhooks',
        `INSERT INTO events (id, tenant_id, type, payload, occurred_at) VALUES (gen_random_uuid(), '${tenant.id}', 'x', '{}', now())`,
        `SELECT * FROM postbox.ingest('[]')`,
        `SELECT * FROM postbox.ingest_jsonb('[]')`,
        `SELECT * FROM postbox.consume_event_quota('${tenant.id}', 1)`,
      ]) {
        await expect(client.query(sql)).rejects.toMatchObject({ code: '42501' });
      }
      // A temporary table named like ours cannot redirect the SECURITY DEFINER function.
      await client.query('CREATE TEMP TABLE webhooks (LIKE pg_catalog.pg_class)').catch(() => undefined);
      const again = await emit(client, tenant.id, 'role.check', { ok: 2 });
      expect(await count('events WHERE id = $1', [again])).toBe(1);
    } finally {
      await client.end();
      await app.db.pool.query(`DROP OWNED BY ${name}; DROP ROLE ${name}`);
    }
  });
});
