import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startTestApp, type TestApp } from '../helpers/app.js';

/** Every spelling of an address a webhook must not reach, with what the refusal should say. */
const REFUSED: [string, RegExp][] = [
  ['http://127.0.0.1/hook', /127\.0\.0\.1 is a loopback address/],
  ['http://127.0.0.1:8080/hook', /loopback/],
  ['http://2130706433/', /127\.0\.0\.1 is a loopback address/],
  ['http://0x7f000001/', /127\.0\.0\.1 is a loopback address/],
  ['http://017700000001/', /127\.0\.0\.1 is a loopback address/],
  ['http://0177.0.0.1/', /127\.0\.0\.1 is a loopback address/],
  ['http://127.1/', /127\.0\.0\.1 is a loopback address/],
  ['http://localhost:3000/', /localhost resolves to .* loopback address/],
  ['http://0.0.0.0/', /unspecified/],
  ['http://0/', /unspecified/],
  ['http://10.1.2.3/', /private address/],
  ['http://172.16.0.1/', /private address/],
  ['http://192.168.1.1/', /private address/],
  ['http://100.64.0.1/', /carrier-grade NAT/],
  ['http://169.254.169.254/latest/meta-data/', /metadata/],
  ['http://169.254.1.1/', /link-local/],
  ['http://100.100.100.200/', /metadata/],
  ['http://[fd00:ec2::254]/', /metadata/],
  ['http://224.0.0.1/', /multicast/],
  ['http://255.255.255.255/', /broadcast/],
  ['http://240.0.0.1/', /reserved/],
  ['http://[::1]/', /loopback/],
  ['http://[::]/', /unspecified/],
  ['http://[fe80::1]/', /link-local/],
  ['http://[fc00::1]/', /unique-local/],
  ['http://[fd12:3456::1]/', /unique-local/],
  ['http://[::ffff:127.0.0.1]/', /IPv4-mapped.*loopback/],
  ['http://[::ffff:169.254.169.254]/', /IPv4-mapped.*metadata/],
  ['http://[::127.0.0.1]/', /IPv4-compatible.*loopback/],
  ['http://[64:ff9b::10.0.0.1]/', /NAT64.*private/],
  ['http://[2002:7f00:1::]/', /6to4.*loopback/],
  ['http://example.com@127.0.0.1/', /user name or password|credentials/],
  ['https://user:secret@example.com/', /user name or password|credentials/],
  ['ftp://example.com/', /http/],
  ['file:///etc/passwd', /http/],
  ['gopher://127.0.0.1:6379/_', /http/],
];

describe('registration without SSRF_ALLOW_CIDRS', () => {
  let app: TestApp;
  let tenant: { id: string; apiKey: string };
  beforeAll(async () => {
    app = await startTestApp();
    tenant = await app.createTenant('ssrf');
  });
  afterAll(async () => {
    await app.close();
  });

  async function webhookCount(): Promise<number> {
    const { rows } = await app.db.pool.query('SELECT count(*)::int AS n FROM webhooks WHERE tenant_id = $1', [
      tenant.id,
    ]);
    return rows[0].n;
  }

  it.each(REFUSED)('POST refuses %s', async (url, reason) => {
    const before = await webhookCount();
    const res = await app.request('POST', '/webhooks', { key: tenant.apiKey, body: { url } });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('validation_failed');
    expect(res.body.error.details).toEqual([{ path: 'url', message: expect.stringMatching(reason) }]);
    expect(await webhookCount()).toBe(before);
  });

  it.each(REFUSED)('PATCH refuses %s and leaves the webhook alone', async (url, reason) => {
    const created = await app.request('POST', '/webhooks', {
      key: tenant.apiKey,
      body: { url: 'https://93.184.216.34/hook' },
    });
    expect(created.status).toBe(201);
    const res = await app.request('PATCH', `/webhooks/${created.body.id}`, {
      key: tenant.apiKey,
      body: { url },
    });
    expect(res.status).toBe(400);
    expect(res.body.error.details).toEqual([{ path: 'url', message: expect.stringMatching(reason) }]);
    const read = await app.request('GET', `/webhooks/${created.body.id}`, { key: tenant.apiKey });
    expect(read.body.url).toBe('https://93.184.216.34/hook');
  });

  it('accepts public addresses and names', async () => {
    for (const url of [
      'https://93.184.216.34/hook',
      'http://[2606:4700::1111]:8443/in',
      'https://example.com/hook',
    ]) {
      const res = await app.request('POST', '/webhooks', { key: tenant.apiKey, body: { url } });
      expect(res.status).toBe(201);
      expect(res.body.url).toBe(url);
    }
  });
});

describe('registration with SSRF_ALLOW_CIDRS=127.0.0.0/8', () => {
  let app: TestApp;
  let tenant: { id: string; apiKey: string };
  beforeAll(async () => {
    app = await startTestApp({ SSRF_ALLOW_CIDRS: '127.0.0.0/8' });
    tenant = await app.createTenant('local');
  });
  afterAll(async () => {
    await app.close();
  });

  it.each(['http://127.0.0.1:9000/hook', 'http://127.1/', 'http://2130706433/', 'http://localhost:9000/'])(
    'registers %s',
    async (url) => {
      const res = await app.request('POST', '/webhooks', { key: tenant.apiKey, body: { url } });
      expect(res.status).toBe(201);
    },
  );

  it.each([
    ['http://10.0.0.1/', /private/],
    ['http://169.254.169.254/', /metadata/],
    ['http://[::ffff:127.0.0.1]/', /IPv4-mapped/],
    ['http://example.com@127.0.0.1/', /user name or password|credentials/],
  ])('still refuses %s', async (url, reason) => {
    const res = await app.request('POST', '/webhooks', { key: tenant.apiKey, body: { url } });
    expect(res.status).toBe(400);
    expect(res.body.error.details[0]).toEqual({ path: 'url', message: expect.stringMatching(reason) });
  });
});

describe('registration with REQUIRE_HTTPS=true', () => {
  let app: TestApp;
  let tenant: { id: string; apiKey: string };
  beforeAll(async () => {
    app = await startTestApp({ REQUIRE_HTTPS: 'true' });
    tenant = await app.createTenant('tls');
  });
  afterAll(async () => {
    await app.close();
  });

  it('refuses http: and accepts https:', async () => {
    const plain = await app.request('POST', '/webhooks', {
      key: tenant.apiKey,
      body: { url: 'http://93.184.216.34/hook' },
    });
    expect(plain.status).toBe(400);
    expect(plain.body.error.details).toEqual([
      { path: 'url', message: 'must use https (REQUIRE_HTTPS is set)' },
    ]);
    const tls = await app.request('POST', '/webhooks', {
      key: tenant.apiKey,
      body: { url: 'https://93.184.216.34/hook' },
    });
    expect(tls.status).toBe(201);
    const patch = await app.request('PATCH', `/webhooks/${tls.body.id}`, {
      key: tenant.apiKey,
      body: { url: 'http://93.184.216.34/other' },
    });
    expect(patch.status).toBe(400);
  });

  it('rejects a REQUIRE_HTTPS that is not a flag at start-up', async () => {
    const { loadConfig } = await import('../../src/config.js');
    expect(() => loadConfig({ REQUIRE_HTTPS: 'maybe' })).toThrow(/REQUIRE_HTTPS must be true or false/);
    expect(loadConfig({ REQUIRE_HTTPS: 'yes' }).REQUIRE_HTTPS).toBe(true);
    expect(loadConfig({}).REQUIRE_HTTPS).toBe(false);
    expect(() => loadConfig({ SSRF_ALLOW_CIDRS: '127.0.0.0/40' })).toThrow(/SSRF_ALLOW_CIDRS/);
    expect(() => loadConfig({ SSRF_ALLOW_CIDRS: '0x7f.1/8' })).toThrow(/SSRF_ALLOW_CIDRS/);
  });
});
