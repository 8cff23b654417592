import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { apiKeyPrefix } from '../../src/security/api-keys.js';
import pg from 'pg';
import { SECRETS_KEY, startTestApp, type TestApp } from '../helpers/app.js';
import { waitFor } from '../helpers/wait.js';
import { SecretBox, parseSecretsKey } from '../../src/security/secret-box.js';
import { DEFAULT_RETRY_POLICY } from '../../src/delivery/retry-policy.js';
import { DELIVERIES_CHANNEL } from '../../src/queries/notify.js';

let app: TestApp;
let acme: { id: string; apiKey: string };
let other: { id: string; apiKey: string };
const box = new SecretBox(parseSecretsKey(SECRETS_KEY)!);
const MISSING = '0190b6a4-3f1e-7c3a-9d2e-000000000000';

beforeAll(async () => {
  app = await startTestApp();
  acme = await app.createTenant('acme');
  other = await app.createTenant('other');
});
afterAll(async () => {
  await app.close();
});

async function createWebhook(body: Record<string, unknown> = {}, key = acme.apiKey) {
  const res = await app.request('POST', '/webhooks', {
    key,
    body: { url: 'https://example.com/hook', ...body },
  });
  if (res.status !== 201) throw new Error(`createWebhook: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

/**
 * A webhook's sealed secrets, opened: the current one, the previous one and when it stops signing
 * (the claim signs with it only before then: src/queries/claim.ts). Read straight from the table,
 * since no API shows a secret again; test/delivery/delivery.test.ts checks real signatures after a
 * rotation.
 */
async function storedSecrets(webhookId: string) {
  const { rows } = await app.db.pool.query(
    `SELECT secret_ciphertext, previous_secret_ciphertext, previous_secret_expires_at
       FROM webhooks WHERE id = $1`,
    [webhookId],
  );
  const row = rows[0]!;
  return {
    current: box.decrypt(row.secret_ciphertext),
    previous: row.previous_secret_ciphertext ? box.decrypt(row.previous_secret_ciphertext) : null,
    previousUntil: row.previous_secret_expires_at as Date | null,
  };
}

async function auditRows(objectId: string) {
  const { rows } = await app.db.pool.query(
    'SELECT actor, action, tenant_id, changes FROM audit_log WHERE object_id = $1 ORDER BY id',
    [objectId],
  );
  return rows;
}

/** An event and one delivery per status, written directly: ingest is not under test here. */
async function seedDeliveries(tenantId: string, webhookId: string) {
  const { rows } = await app.db.pool.query<{ status: string; id: string }>(
    `WITH e AS (
       INSERT INTO events (id, tenant_id, type, payload, occurred_at)
       VALUES (gen_random_uuid(), $1, 'seed.event', '{}', now()) RETURNING id)
     INSERT INTO deliveries (id, tenant_id, event_id, webhook_id, status, completed_at)
     SELECT gen_random_uuid(), $1, e.id, $2, s::delivery_status,
            CASE WHEN s IN ('succeeded', 'failed') THEN now() END
       FROM e, unnest(ARRAY['pending', 'in_flight', 'succeeded', 'failed']) s
     RETURNING status::text, id`,
    [tenantId, webhookId],
  );
  return Object.fromEntries(rows.map((r) => [r.status, r.id])) as Record<string, string>;
}

describe('POST /webhooks', () => {
  it('registers a webhook with defaults and shows a generated secret once', async () => {
    const res = await app.request('POST', '/webhooks', {
      key: acme.apiKey,
      body: { url: 'https://example.com/hook' },
    });
    expect(res.status).toBe(201);
    expect(res.body).toEqual({
      id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      tenant_id: acme.id,
      url: 'https://example.com/hook',
      secret: expect.stringMatching(/^whsec_[A-Za-z0-9+/]{43}=$/),
      event_types: ['*'],
      description: null,
      retry_policy: DEFAULT_RETRY_POLICY,
      timeout_ms: 15000,
      // A high ceiling; the limit in force starts at 10 and adapts to the receiver.
      max_concurrency: 200,
      concurrency_limit: 10,
      enabled: true,
      disabled_reason: null,
      filter: null,
      ordering: 'none',
      client_certificate: null,
      created_at: expect.any(String),
      updated_at: expect.any(String),
    });
    expect(Buffer.from(res.body.secret.slice(6), 'base64')).toHaveLength(32);

    const read = await app.request('GET', `/webhooks/${res.body.id}`, { key: acme.apiKey });
    expect(read.status).toBe(200);
    const { secret: _secret, ...withoutSecret } = res.body;
    expect(read.body).toEqual(withoutSecret);
  });

  it('stores the secret only sealed, and never in the audit log', async () => {
    const hook = await createWebhook({ secret: 'my-own-secret-value-123' });
    const { rows } = await app.db.pool.query('SELECT * FROM webhooks WHERE id = $1', [hook.id]);
    const row = rows[0];
    expect(JSON.stringify(row)).not.toContain('my-own-secret-value-123');
    expect(row.secret_ciphertext.toString('latin1')).not.toContain('my-own-secret-value-123');
    expect(box.decrypt(row.secret_ciphertext)).toBe('my-own-secret-value-123');
    const audit = await auditRows(hook.id);
    expect(audit).toEqual([
      expect.objectContaining({
        action: 'webhook.create',
        actor: apiKeyPrefix(acme.apiKey),
        tenant_id: acme.id,
      }),
    ]);
    expect(audit[0].changes).toMatchObject({ url: hook.url, event_types: ['*'] });
    expect(JSON.stringify(audit)).not.toContain('my-own-secret-value-123');
  });

  it('accepts every documented field', async () => {
    const secret = 'whsec_' + Buffer.alloc(32, 7).toString('base64');
    const hook = await createWebhook({
      secret,
      event_types: ['order.created', 'invoice.*', 'order.created'],
      description: 'orders to the ERP',
      retry_policy: { max_attempts: 5 },
      timeout_ms: 1000,
      max_concurrency: 100,
    });
    expect(hook).toMatchObject({
      secret,
      event_types: ['order.created', 'invoice.*'],
      description: 'orders to the ERP',
      retry_policy: { ...DEFAULT_RETRY_POLICY, max_attempts: 5 },
      timeout_ms: 1000,
      max_concurrency: 100,
    });
  });

  it('lets the admin register for a named tenant, and only a named, existing one', async () => {
    const res = await app.request('POST', '/webhooks', {
      body: { url: 'http://example.com/a', tenant_id: other.id },
    });
    expect(res.status).toBe(201);
    expect(res.body.tenant_id).toBe(other.id);
    expect((await auditRows(res.body.id))[0].actor).toBe('admin');

    const unnamed = await app.request('POST', '/webhooks', { body: { url: 'http://example.com/a' } });
    expect(unnamed.status).toBe(400);
    expect(unnamed.body.error.details[0].path).toBe('tenant_id');

    const unknown = await app.request('POST', '/webhooks', {
      body: { url: 'http://example.com/a', tenant_id: MISSING },
    });
    expect(unknown.status).toBe(404);
  });

  it('does not let a tenant register for another tenant', async () => {
    const res = await app.request('POST', '/webhooks', {
      key: acme.apiKey,
      body: { url: 'http://example.com/a', tenant_id: other.id },
    });
    expect(res.status).toBe(404);
  });

  it.each([
    ['ftp: URL', { url: 'ftp://example.com/x' }, 'url'],
    ['relative URL', { url: '/hooks/1' }, 'url'],
    ['javascript: URL', { url: 'javascript:alert(1)' }, 'url'],
    ['scheme without slashes', { url: 'http:example.com' }, 'url'],
    ['URL with user info', { url: 'https://user:pass@example.com/' }, 'url'],
    ['URL with spaces', { url: 'https://example.com/a b' }, 'url'],
    ['URL over 2048 characters', { url: 'https://example.com/' + 'a'.repeat(2030) }, 'url'],
    ['URL that is not a string', { url: 42 }, 'url'],
    ['missing URL', { url: undefined }, 'url'],
    ['secret too short', { secret: 'x'.repeat(15) }, 'secret'],
    ['secret too long', { secret: 'x'.repeat(129) }, 'secret'],
    ['secret not printable', { secret: 'abcdefghijklmnop\u0001' }, 'secret'],
    ['whsec_ secret that is not base64', { secret: 'whsec_not base64 at all!!!!!!!!!!!!' }, 'secret'],
    ['secret that is not a string', { secret: 1234567890123456 }, 'secret'],
    ['unknown field (event_type for event_types)', { event_type: ['a.b'] }, 'event_type'],
    ['empty event_types', { event_types: [] }, 'event_types'],
    ['middle wildcard', { event_types: ['order.*.created'] }, 'event_types.0'],
    ['bare prefix wildcard', { event_types: ['ok', 'order*'] }, 'event_types.1'],
    ['over 100 event types', { event_types: Array.from({ length: 101 }, (_, i) => `t${i}`) }, 'event_types'],
    ['event_types not an array', { event_types: 'order.created' }, 'event_types'],
    ['description too long', { description: 'd'.repeat(1001) }, 'description'],
    ['description with NUL', { description: 'a\u0000b' }, 'description'],
    ['retry_policy max_attempts 0', { retry_policy: { max_attempts: 0 } }, 'retry_policy.max_attempts'],
    ['retry_policy max_attempts 51', { retry_policy: { max_attempts: 51 } }, 'retry_policy.max_attempts'],
    [
      'retry_policy initial delay < 100',
      { retry_policy: { initial_delay_ms: 99 } },
      'retry_policy.initial_delay_ms',
    ],
    ['retry_policy unknown field', { retry_policy: { attempts: 3 } }, 'retry_policy.attempts'],
    [
      'retry_policy max below initial',
      { retry_policy: { initial_delay_ms: 10_000, max_delay_ms: 5_000 } },
      'retry_policy.max_delay_ms',
    ],
    ['timeout_ms 999', { timeout_ms: 999 }, 'timeout_ms'],
    ['timeout_ms 30001', { timeout_ms: 30001 }, 'timeout_ms'],
    ['timeout_ms fractional', { timeout_ms: 1500.5 }, 'timeout_ms'],
    ['timeout_ms as a string', { timeout_ms: '2000' }, 'timeout_ms'],
    ['max_concurrency 0', { max_concurrency: 0 }, 'max_concurrency'],
    ['max_concurrency 1001', { max_concurrency: 1001 }, 'max_concurrency'],
    ['tenant_id not a UUID', { tenant_id: 'acme' }, 'tenant_id'],
  ])('answers 400 for %s, naming the field', async (_what, patch, path) => {
    const body: Record<string, unknown> = { url: 'https://example.com/hook', ...patch };
    const res = await app.request('POST', '/webhooks', { key: acme.apiKey, body });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('validation_failed');
    expect(res.body.error.details.map((d: { path: string }) => d.path)).toContain(path);
    if (typeof body.secret === 'string') expect(JSON.stringify(res.body)).not.toContain(body.secret);
  });

  it('answers 400 for malformed JSON and a body that is not an object', async () => {
    const bad = await app.request('POST', '/webhooks', { key: acme.apiKey, rawBody: '{"url": "http' });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('invalid_json');
    const array = await app.request('POST', '/webhooks', { key: acme.apiKey, body: ['x'] });
    expect(array.status).toBe(400);
    const none = await app.request('POST', '/webhooks', { key: acme.apiKey });
    expect(none.status).toBe(400);
  });

  it('answers 413 for a body over the limit and 401 without a key', async () => {
    const big = await app.request('POST', '/webhooks', {
      key: acme.apiKey,
      rawBody: JSON.stringify({ url: 'https://example.com', description: 'x'.repeat(1024 * 1024 + 1) }),
    });
    expect(big.status).toBe(413);
    expect(big.body.error.code).toBe('payload_too_large');
    const anon = await app.request('POST', '/webhooks', { key: null, body: { url: 'https://example.com' } });
    expect(anon.status).toBe(401);
  });
});

describe('GET /webhooks', () => {
  it('lists a tenant its own webhooks, newest first, page by page', async () => {
    const tenant = await app.createTenant('lister');
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await createWebhook({ description: `n${i}` }, tenant.apiKey)).id);
    const first = await app.request('GET', '/webhooks?limit=2', { key: tenant.apiKey });
    expect(first.status).toBe(200);
    expect(first.body.data.map((w: any) => w.id)).toEqual([ids[4], ids[3]]);
    expect(first.body.data[0].secret).toBeUndefined();
    const second = await app.request('GET', `/webhooks?limit=2&cursor=${first.body.next_cursor}`, {
      key: tenant.apiKey,
    });
    expect(second.body.data.map((w: any) => w.id)).toEqual([ids[2], ids[1]]);
    const third = await app.request('GET', `/webhooks?limit=2&cursor=${second.body.next_cursor}`, {
      key: tenant.apiKey,
    });
    expect(third.body).toEqual({ data: [expect.objectContaining({ id: ids[0] })], next_cursor: null });
  });

  it('shows the admin every tenant, or the one it names', async () => {
    const mine = await createWebhook({}, acme.apiKey);
    const theirs = await createWebhook({}, other.apiKey);
    const all = await app.request('GET', '/webhooks?limit=500');
    const allIds = all.body.data.map((w: any) => w.id);
    expect(allIds).toEqual(expect.arrayContaining([mine.id, theirs.id]));
    const filtered = await app.request('GET', `/webhooks?limit=500&tenant_id=${other.id}`);
    expect(filtered.body.data.every((w: any) => w.tenant_id === other.id)).toBe(true);
    expect(filtered.body.data.map((w: any) => w.id)).toContain(theirs.id);
  });

  it("never shows a tenant another tenant's webhooks", async () => {
    const theirs = await createWebhook({}, other.apiKey);
    const list = await app.request('GET', '/webhooks?limit=500', { key: acme.apiKey });
    expect(list.body.data.every((w: any) => w.tenant_id === acme.id)).toBe(true);
    expect((await app.request('GET', `/webhooks/${theirs.id}`, { key: acme.apiKey })).status).toBe(404);
    const named = await app.request('GET', `/webhooks?tenant_id=${other.id}`, { key: acme.apiKey });
    expect(named.status).toBe(404);
  });

  it.each([
    ['limit 0', 'limit=0', 'limit'],
    ['limit 501', 'limit=501', 'limit'],
    ['limit not a number', 'limit=ten', 'limit'],
    ['a cursor that is not ours', 'cursor=bm9wZQ', 'cursor'],
    ['a cursor that holds no id', `cursor=${Buffer.from('["x"]').toString('base64url')}`, 'cursor'],
    ['an unknown parameter', 'tenant=1', 'tenant'],
    ['a repeated parameter', 'limit=1&limit=2', 'limit'],
  ])('answers 400 for %s', async (_what, query, path) => {
    const res = await app.request('GET', `/webhooks?${query}`, { key: acme.apiKey });
    expect(res.status).toBe(400);
    expect(res.body.error.details[0].path).toBe(path);
  });

  it('answers 400 for an id that is not a UUID and 404 for an unknown one', async () => {
    const bad = await app.request('GET', '/webhooks/not-a-uuid', { key: acme.apiKey });
    expect(bad.status).toBe(400);
    expect(bad.body.error.details[0].path).toBe('id');
    expect((await app.request('GET', `/webhooks/${MISSING}`, { key: acme.apiKey })).status).toBe(404);
  });
});

describe('PATCH /webhooks/:id', () => {
  it('changes the given fields, merges retry_policy over the current one, and audits the change', async () => {
    const hook = await createWebhook({ retry_policy: { max_attempts: 3 }, description: 'before' });
    const res = await app.request('PATCH', `/webhooks/${hook.id}`, {
      key: acme.apiKey,
      body: {
        url: 'https://example.org/new',
        event_types: ['order.*'],
        description: null,
        retry_policy: { initial_delay_ms: 1000 },
        timeout_ms: 20000,
        max_concurrency: 2,
      },
    });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      id: hook.id,
      url: 'https://example.org/new',
      event_types: ['order.*'],
      description: null,
      retry_policy: { ...DEFAULT_RETRY_POLICY, max_attempts: 3, initial_delay_ms: 1000 },
      timeout_ms: 20000,
      max_concurrency: 2,
      concurrency_limit: 2, // the ceiling bounds the adaptive limit at once
      enabled: true,
    });
    expect(res.body.secret).toBeUndefined();
    expect(new Date(res.body.updated_at).getTime()).toBeGreaterThanOrEqual(
      new Date(hook.updated_at).getTime(),
    );
    const audit = await auditRows(hook.id);
    expect(audit.map((a) => a.action)).toEqual(['webhook.create', 'webhook.update']);
    expect(audit[1].changes).toEqual({
      before: {
        url: hook.url,
        event_types: ['*'],
        description: 'before',
        retry_policy: hook.retry_policy,
        timeout_ms: hook.timeout_ms,
        max_concurrency: hook.max_concurrency,
      },
      after: {
        url: 'https://example.org/new',
        event_types: ['order.*'],
        description: null,
        retry_policy: res.body.retry_policy,
        timeout_ms: 20000,
        max_concurrency: 2,
      },
    });
  });

  it('disables with a reason and re-enables, waking the workers', async () => {
    const hook = await createWebhook();
    const off = await app.request('PATCH', `/webhooks/${hook.id}`, {
      key: acme.apiKey,
      body: { enabled: false },
    });
    expect(off.body).toMatchObject({ enabled: false, disabled_reason: 'disabled by tenant' });

    const listener = new pg.Client({ connectionString: app.db.url });
    await listener.connect();
    const notes: string[] = [];
    listener.on('notification', (n) => notes.push(n.channel));
    await listener.query(`LISTEN ${DELIVERIES_CHANNEL}`);
    try {
      const on = await app.request('PATCH', `/webhooks/${hook.id}`, {
        key: acme.apiKey,
        body: { enabled: true },
      });
      expect(on.body).toMatchObject({ enabled: true, disabled_reason: null });
      await waitFor(() => notes.includes(DELIVERIES_CHANNEL), { what: 'a deliveries-due notification' });
    } finally {
      await listener.end();
    }

    const byAdmin = await app.request('PATCH', `/webhooks/${hook.id}`, { body: { enabled: false } });
    expect(byAdmin.body).toMatchObject({ enabled: false, disabled_reason: 'disabled by admin' });
  });

  it('rejects bad input and fields that cannot be changed', async () => {
    const hook = await createWebhook();
    const cases: [unknown, string][] = [
      [{ url: 'ftp://example.com' }, 'url'],
      [{ secret: 'another-secret-value' }, 'secret'],
      [{ tenant_id: other.id }, 'tenant_id'],
      [{ enabled: 'yes' }, 'enabled'],
      [{ event_types: ['a.*.b'] }, 'event_types.0'],
      [{ retry_policy: { max_delay_ms: 100 } }, 'retry_policy.max_delay_ms'],
      [{ timeout_ms: null }, 'timeout_ms'],
    ];
    for (const [body, path] of cases) {
      const res = await app.request('PATCH', `/webhooks/${hook.id}`, { key: acme.apiKey, body });
      expect([res.status, res.body.error.details[0].path]).toEqual([400, path]);
    }
    const badJson = await app.request('PATCH', `/webhooks/${hook.id}`, { key: acme.apiKey, rawBody: '{' });
    expect(badJson.status).toBe(400);
    const unchanged = await app.request('GET', `/webhooks/${hook.id}`, { key: acme.apiKey });
    expect(unchanged.body.updated_at).toBe(hook.updated_at);
  });

  it("answers 404 for another tenant's webhook and leaves it alone", async () => {
    const theirs = await createWebhook({}, other.apiKey);
    const res = await app.request('PATCH', `/webhooks/${theirs.id}`, {
      key: acme.apiKey,
      body: { url: 'https://evil.example/' },
    });
    expect(res.status).toBe(404);
    const read = await app.request('GET', `/webhooks/${theirs.id}`, { key: other.apiKey });
    expect(read.body.url).toBe('https://example.com/hook');
  });
});

describe('DELETE /webhooks/:id', () => {
  it('soft-deletes, cancels undelivered deliveries in the same transaction, and is gone after', async () => {
    const hook = await createWebhook();
    const ids = await seedDeliveries(acme.id, hook.id);
    const res = await app.request('DELETE', `/webhooks/${hook.id}`, { key: acme.apiKey });
    expect(res.status).toBe(204);
    expect(res.body).toBeUndefined();

    const { rows } = await app.db.pool.query(
      'SELECT id, status::text, completed_at FROM deliveries WHERE webhook_id = $1',
      [hook.id],
    );
    const byId = Object.fromEntries(rows.map((r) => [r.id, r]));
    expect(byId[ids.pending!]).toMatchObject({ status: 'cancelled', completed_at: expect.any(Date) });
    expect(byId[ids.in_flight!]).toMatchObject({ status: 'cancelled', completed_at: expect.any(Date) });
    expect(byId[ids.succeeded!].status).toBe('succeeded');
    expect(byId[ids.failed!].status).toBe('failed');
    const stored = await app.db.pool.query('SELECT deleted_at FROM webhooks WHERE id = $1', [hook.id]);
    expect(stored.rows[0].deleted_at).toBeInstanceOf(Date);

    for (const [method, path, body] of [
      ['GET', `/webhooks/${hook.id}`, undefined],
      ['PATCH', `/webhooks/${hook.id}`, { enabled: false }],
      ['DELETE', `/webhooks/${hook.id}`, undefined],
      ['POST', `/webhooks/${hook.id}/rotate-secret`, {}],
    ] as const)
      expect((await app.request(method, path, { key: acme.apiKey, body })).status).toBe(404);
    const list = await app.request('GET', '/webhooks?limit=500', { key: acme.apiKey });
    expect(list.body.data.map((w: any) => w.id)).not.toContain(hook.id);
    const audit = await auditRows(hook.id);
    expect(audit[audit.length - 1]).toMatchObject({
      action: 'webhook.delete',
      changes: { cancelled_deliveries: 2 },
    });
  });

  it("answers 404 for another tenant's webhook; the admin may delete any", async () => {
    const theirs = await createWebhook({}, other.apiKey);
    expect((await app.request('DELETE', `/webhooks/${theirs.id}`, { key: acme.apiKey })).status).toBe(404);
    expect((await app.request('GET', `/webhooks/${theirs.id}`, { key: other.apiKey })).status).toBe(200);
    expect((await app.request('DELETE', `/webhooks/${theirs.id}`)).status).toBe(204);
    expect((await app.request('DELETE', '/webhooks/12345')).status).toBe(400);
  });
});

describe('POST /webhooks/:id/rotate-secret', () => {
  it('issues a new secret; the old one keeps signing for the overlap', async () => {
    const hook = await createWebhook();
    const res = await app.request('POST', `/webhooks/${hook.id}/rotate-secret`, { key: acme.apiKey });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ secret: expect.stringMatching(/^whsec_/) });
    expect(res.body.secret).not.toBe(hook.secret);

    const stored = await storedSecrets(hook.id);
    expect(stored).toMatchObject({ current: res.body.secret, previous: hook.secret });
    const overlapMs = stored.previousUntil!.getTime() - Date.now();
    expect(overlapMs).toBeGreaterThan(86_400_000 - 60_000);
    expect(overlapMs).toBeLessThanOrEqual(86_400_000);

    const audit = await auditRows(hook.id);
    expect(audit[audit.length - 1]).toMatchObject({
      action: 'webhook.rotate_secret',
      changes: { overlap_seconds: 86400 },
    });
    expect(JSON.stringify(audit)).not.toContain(res.body.secret);
    expect(JSON.stringify(audit)).not.toContain(hook.secret);
  });

  it('takes overlap_seconds, 0 ending the old secret at once', async () => {
    const hook = await createWebhook();
    const res = await app.request('POST', `/webhooks/${hook.id}/rotate-secret`, {
      key: acme.apiKey,
      body: { overlap_seconds: 0 },
    });
    expect(res.status).toBe(200);
    const stored = await storedSecrets(hook.id);
    expect(stored.current).toBe(res.body.secret);
    // The old one is kept, but its overlap is already over: it signs nothing.
    expect(stored.previousUntil!.getTime()).toBeLessThanOrEqual(Date.now());
  });

  it('rejects a supplied secret, a bad overlap, and other tenants', async () => {
    const hook = await createWebhook();
    for (const [body, path] of [
      [{ secret: 'my-chosen-secret-123' }, 'secret'],
      [{ overlap_seconds: 604_801 }, 'overlap_seconds'],
      [{ overlap_seconds: -1 }, 'overlap_seconds'],
      [{ overlap_seconds: '60' }, 'overlap_seconds'],
    ] as const) {
      const res = await app.request('POST', `/webhooks/${hook.id}/rotate-secret`, { key: acme.apiKey, body });
      expect([res.status, res.body.error.details[0].path]).toEqual([400, path]);
    }
    const theirs = await app.request('POST', `/webhooks/${hook.id}/rotate-secret`, { key: other.apiKey });
    expect(theirs.status).toBe(404);
    expect(await storedSecrets(hook.id)).toEqual({
      current: hook.secret,
      previous: null,
      previousUntil: null,
    });
  });
});
