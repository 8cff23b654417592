/**
 * Tenant and admin API keys: several active per tenant, shown once, stored hashed with a prefix and
 * last-used time, revoked and rotated through the API, audited with the caller's key prefix.
 */
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ADMIN_KEY, startTestApp, startTestAppOn, type TestApp } from '../helpers/app.js';
import { apiKeyPrefix } from '../../src/security/api-keys.js';

let app: TestApp;

beforeAll(async () => {
  app = await startTestApp();
});

afterAll(async () => {
  await app.close();
});

const sha256 = (s: string) => createHash('sha256').update(s).digest();

async function auditOf(objectId: string) {
  const { rows } = await app.db.pool.query(
    `SELECT actor, action, changes FROM audit_log WHERE object_id = $1 ORDER BY id`,
    [objectId],
  );
  return rows;
}

describe('tenant API keys', () => {
  it('creates several active keys, each shown once and stored only as a hash', async () => {
    const tenant = await app.createTenant('several');
    const created = await app.request('POST', `/tenants/${tenant.id}/api-keys`, {
      key: tenant.apiKey,
      body: { name: 'ci producer' },
    });
    expect(created.status).toBe(201);
    const second: string = created.body.api_key;
    expect(second).toMatch(/^pbk_[A-Za-z0-9_-]{43}$/);
    expect(created.body).toMatchObject({ tenant_id: tenant.id, name: 'ci producer', active: true });
    expect(created.body.prefix).toBe(apiKeyPrefix(second));
    expect(second.startsWith(created.body.prefix)).toBe(true);

    // Both keys work at once.
    for (const key of [tenant.apiKey, second])
      expect((await app.request('GET', '/webhooks', { key })).status).toBe(200);

    const list = await app.request('GET', `/tenants/${tenant.id}/api-keys`, { key: second });
    expect(list.status).toBe(200);
    expect(list.body.data.map((k: any) => k.prefix)).toEqual([
      apiKeyPrefix(second),
      apiKeyPrefix(tenant.apiKey),
    ]);
    expect(JSON.stringify(list.body)).not.toContain(second);
    expect(list.body.data.every((k: any) => !('api_key' in k))).toBe(true);
    // Used just now: last_used_at is set, and recent.
    for (const k of list.body.data) expect(Date.now() - Date.parse(k.last_used_at)).toBeLessThan(60_000);

    // Stored: the SHA-256 and the prefix, never the key.
    const { rows } = await app.db.pool.query(
      `SELECT to_jsonb(k) AS row, key_hash FROM api_keys k WHERE id = $1`,
      [created.body.id],
    );
    expect(JSON.stringify(rows[0].row)).not.toContain(second.slice(10));
    expect(rows[0].key_hash.equals(sha256(second))).toBe(true);

    const audit = await auditOf(created.body.id);
    expect(audit).toEqual([
      expect.objectContaining({ action: 'api_key.create', actor: apiKeyPrefix(tenant.apiKey) }),
    ]);
  });

  it('revokes a key at once, audited with the revoking key prefix; the other keys keep working', async () => {
    const tenant = await app.createTenant('revoke');
    const extra = await app.request('POST', `/tenants/${tenant.id}/api-keys`, { key: tenant.apiKey });
    expect((await app.request('GET', '/webhooks', { key: extra.body.api_key })).status).toBe(200);

    const del = await app.request('DELETE', `/tenants/${tenant.id}/api-keys/${extra.body.id}`, {
      key: tenant.apiKey,
    });
    expect(del.status).toBe(204);
    // Used (and cached) a moment ago, refused now.
    expect((await app.request('GET', '/webhooks', { key: extra.body.api_key })).status).toBe(401);
    expect((await app.request('GET', '/webhooks', { key: tenant.apiKey })).status).toBe(200);

    const list = await app.request('GET', `/tenants/${tenant.id}/api-keys`, { key: tenant.apiKey });
    const revoked = list.body.data.find((k: any) => k.id === extra.body.id);
    expect(revoked).toMatchObject({ active: false });
    expect(revoked.revoked_at).not.toBeNull();
    expect((await auditOf(extra.body.id)).map((r) => [r.action, r.actor])).toEqual([
      ['api_key.create', apiKeyPrefix(tenant.apiKey)],
      ['api_key.revoke', apiKeyPrefix(tenant.apiKey)],
    ]);
  });

  it('a key revoked by one process is refused by another that had not cached it', async () => {
    const tenant = await app.createTenant('two processes');
    const extra = await app.request('POST', `/tenants/${tenant.id}/api-keys`, { key: tenant.apiKey });
    const other = await startTestAppOn(app.db);
    try {
      await app.request('DELETE', `/tenants/${tenant.id}/api-keys/${extra.body.id}`, { key: tenant.apiKey });
      expect((await other.request('GET', '/webhooks', { key: extra.body.api_key })).status).toBe(401);
      expect((await other.request('GET', '/webhooks', { key: tenant.apiKey })).status).toBe(200);
    } finally {
      await other.close();
    }
  });

  it('rotates: a new key under the same name, the old one stopping at once or after the overlap', async () => {
    const tenant = await app.createTenant('rotate');
    const [first] = (await app.request('GET', `/tenants/${tenant.id}/api-keys`, { key: tenant.apiKey })).body
      .data;

    const now = await app.request('POST', `/tenants/${tenant.id}/api-keys/${first.id}/rotate`, {
      key: tenant.apiKey,
      body: { overlap_seconds: 0 },
    });
    expect(now.status).toBe(201);
    expect(now.body).toMatchObject({ name: 'default', active: true });
    expect(now.body.replaced).toMatchObject({ id: first.id, active: false });
    expect((await app.request('GET', '/webhooks', { key: tenant.apiKey })).status).toBe(401);
    expect((await app.request('GET', '/webhooks', { key: now.body.api_key })).status).toBe(200);

    const later = await app.request('POST', `/tenants/${tenant.id}/api-keys/${now.body.id}/rotate`, {
      key: now.body.api_key,
      body: { overlap_seconds: 3600 },
    });
    expect(later.status).toBe(201);
    const expires = Date.parse(later.body.replaced.expires_at);
    expect(expires - Date.now()).toBeGreaterThan(3500_000);
    expect(expires - Date.now()).toBeLessThanOrEqual(3600_000);
    for (const key of [now.body.api_key, later.body.api_key])
      expect((await app.request('GET', '/webhooks', { key })).status).toBe(200);

    // A key that no longer works cannot be rotated (create a new one instead).
    const again = await app.request('POST', `/tenants/${tenant.id}/api-keys/${first.id}/rotate`, {
      key: later.body.api_key,
    });
    expect(again.status).toBe(409);
    expect((await auditOf(now.body.id)).map((r) => r.action)).toEqual(['api_key.create', 'api_key.rotate']);
  });

  it("keeps tenants apart: another tenant's keys are not found, admin keys need the admin key", async () => {
    const a = await app.createTenant('a');
    const b = await app.createTenant('b');
    const [bKey] = (await app.request('GET', `/tenants/${b.id}/api-keys`)).body.data;
    for (const [method, path] of [
      ['GET', `/tenants/${b.id}/api-keys`],
      ['POST', `/tenants/${b.id}/api-keys`],
      ['DELETE', `/tenants/${b.id}/api-keys/${bKey.id}`],
      ['POST', `/tenants/${b.id}/api-keys/${bKey.id}/rotate`],
    ] as const) {
      const res = await app.request(method, path, { key: a.apiKey });
      expect(res.status).toBe(404);
      expect(JSON.stringify(res.body)).not.toContain(bKey.prefix);
    }
    // Under its own tenant, b's key id is still not a's.
    expect(
      (await app.request('DELETE', `/tenants/${a.id}/api-keys/${bKey.id}`, { key: a.apiKey })).status,
    ).toBe(404);
    expect((await app.request('GET', '/admin/api-keys', { key: a.apiKey })).status).toBe(403);
    expect((await app.request('POST', '/admin/api-keys', { key: a.apiKey })).status).toBe(403);
    expect((await app.request('GET', `/tenants/${b.id}/api-keys`, { key: b.apiKey })).status).toBe(200);
  });

  it('answers bad input with 400 naming the field, an unknown tenant with 404', async () => {
    const t = await app.createTenant('bad input');
    const cases: [string, string, unknown, string][] = [
      ['POST', `/tenants/${t.id}/api-keys`, { name: '' }, 'name'],
      ['POST', `/tenants/${t.id}/api-keys`, { nmae: 'typo' }, 'nmae'],
      [
        'POST',
        `/tenants/${t.id}/api-keys/00000000-0000-7000-8000-000000000000/rotate`,
        { overlap_seconds: -1 },
        'overlap_seconds',
      ],
      ['POST', `/tenants/${t.id}/api-keys/not-a-uuid/rotate`, {}, 'key_id'],
    ];
    for (const [method, path, body, field] of cases) {
      const res = await app.request(method, path, { key: t.apiKey, body });
      expect(res.status).toBe(400);
      expect(res.body.error.details.map((d: any) => d.path)).toContain(field);
    }
    const unknown = '00000000-0000-7000-8000-000000000000';
    expect((await app.request('GET', `/tenants/${unknown}/api-keys`)).status).toBe(404);
    expect((await app.request('POST', `/tenants/${unknown}/api-keys`)).status).toBe(404);
    const { rows } = await app.db.pool.query(`SELECT count(*)::int AS n FROM api_keys WHERE tenant_id = $1`, [
      unknown,
    ]);
    expect(rows[0].n).toBe(0);
  });
});

describe('admin API keys', () => {
  it('creates admin keys that act on every tenant, audited as admin:<prefix>; the last one cannot be revoked', async () => {
    const created = await app.request('POST', '/admin/api-keys', { body: { name: 'oncall' } });
    expect(created.status).toBe(201);
    const key: string = created.body.api_key;
    expect(key).toMatch(/^pbadmin_/);
    expect(created.body.tenant_id).toBeNull();

    const tenant = await app.request('POST', '/tenants', { key, body: { name: 'made by oncall' } });
    expect(tenant.status).toBe(201);
    expect(await auditOf(tenant.body.id)).toEqual([
      expect.objectContaining({ action: 'tenant.create', actor: `admin:${apiKeyPrefix(key)}` }),
    ]);

    const list = await app.request('GET', '/admin/api-keys', { key });
    expect(list.body.data.map((k: any) => k.name)).toEqual(['oncall', 'bootstrap']);
    const bootstrap = list.body.data[1];
    expect(bootstrap.prefix).toBe(apiKeyPrefix(ADMIN_KEY));

    expect((await app.request('DELETE', `/admin/api-keys/${created.body.id}`)).status).toBe(204);
    expect((await app.request('GET', '/tenants/' + tenant.body.id, { key })).status).toBe(401);
    // Only the configured key is left: revoking it would lock every operator out.
    const last = await app.request('DELETE', `/admin/api-keys/${bootstrap.id}`);
    expect(last.status).toBe(409);
    expect((await app.request('GET', '/admin/api-keys')).status).toBe(200);
  });
});

describe('the configured admin key', () => {
  it('rotates without a restart: DATA_DIR/admin-api-key holds the new key, the old one stops', async () => {
    const own = await startTestApp({ ADMIN_API_KEY: '' });
    try {
      const file = join(own.dataDir, 'admin-api-key');
      const oldKey = readFileSync(file, 'utf8').trim();
      const [bootstrap] = (await own.request('GET', '/admin/api-keys', { key: oldKey })).body.data;
      expect(bootstrap.name).toBe('bootstrap');

      const rotated = await own.request('POST', `/admin/api-keys/${bootstrap.id}/rotate`, {
        key: oldKey,
        body: { overlap_seconds: 0 },
      });
      expect(rotated.status).toBe(201);
      const newKey: string = rotated.body.api_key;
      expect(readFileSync(file, 'utf8').trim()).toBe(newKey);
      expect(statSync(file).mode & 0o777).toBe(0o600);
      expect((await own.request('GET', '/admin/api-keys', { key: oldKey })).status).toBe(401);
      expect((await own.request('GET', '/admin/api-keys', { key: newKey })).status).toBe(200);

      // A process started afterwards with the new key accepts it, and not the old one.
      const next = await startTestAppOn(own.db, { ADMIN_API_KEY: newKey });
      try {
        expect((await next.request('GET', '/admin/api-keys', { key: newKey })).status).toBe(200);
        expect((await next.request('GET', '/admin/api-keys', { key: oldKey })).status).toBe(401);
      } finally {
        await next.close();
      }
    } finally {
      await own.close();
    }
  });

  it('replacing ADMIN_API_KEY and restarting retires the previous key', async () => {
    const own = await startTestApp();
    try {
      const replaced = 'replacement-admin-key-0123456789';
      const next = await startTestAppOn(own.db, { ADMIN_API_KEY: replaced });
      try {
        expect((await next.request('GET', '/admin/api-keys', { key: replaced })).status).toBe(200);
        expect((await next.request('GET', '/admin/api-keys', { key: ADMIN_KEY })).status).toBe(401);
      } finally {
        await next.close();
      }
    } finally {
      await own.close();
    }
  });
});
