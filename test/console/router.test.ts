/**
 * The console's server side without a browser: the static files and their security headers, no CORS
 * on the API, and the two JSON routes (session, webhook health) with tenant isolation.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startTestApp, type TestApp } from '../helpers/app.js';

let app: TestApp;
let acme: { id: string; apiKey: string };
let other: { id: string; apiKey: string };

beforeAll(async () => {
  app = await startTestApp();
  acme = await app.createTenant('acme');
  other = await app.createTenant('other');
});
afterAll(async () => {
  await app.close();
});

async function createWebhook(key: string, description: string): Promise<string> {
  const res = await app.request('POST', '/webhooks', {
    key,
    body: { url: 'https://example.com/hook', description },
  });
  expect(res.status).toBe(201);
  return res.body.id;
}

describe('console static files', () => {
  it('serves the page without a key, with a strict CSP and no-sniff, no-referrer headers', async () => {
    const res = await fetch(`${app.baseUrl}/console/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).toContain("frame-ancestors 'none'");
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('referrer-policy')).toBe('no-referrer');
    const html = await res.text();
    expect(html).toContain('<script type="module" src="console.js"></script>');
    // No inline script at all: the CSP would refuse it, and it would be a place for injection.
    expect(html.match(/<script/g)).toHaveLength(1);
  });

  it('serves the modules as JavaScript with the same headers', async () => {
    for (const file of ['console.js', 'api.js', 'dom.js']) {
      const res = await fetch(`${app.baseUrl}/console/${file}`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/javascript/);
      expect(res.headers.get('content-security-policy')).toContain("default-src 'self'");
    }
    const css = await fetch(`${app.baseUrl}/console/console.css`);
    expect(css.headers.get('content-type')).toMatch(/^text\/css/);
  });

  it('never builds HTML from strings in its scripts', async () => {
    for (const file of ['console.js', 'api.js', 'dom.js']) {
      const source = await (await fetch(`${app.baseUrl}/console/${file}`)).text();
      expect(source).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(/);
    }
  });

  it('redirects /console to /console/ and answers 404 JSON for a missing file', async () => {
    const redirect = await fetch(`${app.baseUrl}/console`, { redirect: 'manual' });
    expect(redirect.status).toBe(301);
    expect(redirect.headers.get('location')).toBe('/console/');
    const missing = await app.request('GET', '/console/nope.js', { key: null });
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe('not_found');
    const traversal = await app.request('GET', '/console/..%2f..%2fpackage.json', { key: null });
    expect(traversal.status).toBeGreaterThanOrEqual(400);
    expect(JSON.stringify(traversal.body)).not.toContain('"dependencies"');
  });

  it('answers API calls without CORS headers, so other origins cannot read them', async () => {
    const get = await fetch(`${app.baseUrl}/console/api/session`, {
      headers: { authorization: `Bearer ${acme.apiKey}`, origin: 'https://evil.example' },
    });
    expect(get.status).toBe(200);
    expect(get.headers.get('access-control-allow-origin')).toBeNull();
    const preflight = await fetch(`${app.baseUrl}/webhooks`, {
      method: 'OPTIONS',
      headers: {
        origin: 'https://evil.example',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization, content-type',
      },
    });
    expect(preflight.headers.get('access-control-allow-origin')).toBeNull();
    expect(preflight.headers.get('access-control-allow-headers')).toBeNull();
  });
});

describe('GET /console/api/session', () => {
  it('names the kind of key', async () => {
    expect((await app.request('GET', '/console/api/session')).body).toEqual({
      kind: 'admin',
      tenant_id: null,
    });
    const res = await app.request('GET', '/console/api/session', { key: acme.apiKey });
    expect(res.body).toEqual({ kind: 'tenant', tenant_id: acme.id });
  });

  it('needs a valid key', async () => {
    expect((await app.request('GET', '/console/api/session', { key: null })).status).toBe(401);
    const wrong = await app.request('GET', '/console/api/session', { key: 'pbk_wrong' });
    expect(wrong.status).toBe(401);
    expect(wrong.body.error.code).toBe('unauthorized');
  });
});

describe('GET /console/api/webhook-health', () => {
  let acmeHooks: string[];
  let otherHook: string;
  beforeAll(async () => {
    acmeHooks = [await createWebhook(acme.apiKey, 'first'), await createWebhook(acme.apiKey, 'second')];
    otherHook = await createWebhook(other.apiKey, 'not yours');
  });

  it("lists the tenant's webhooks newest first, each with a health object", async () => {
    const res = await app.request('GET', '/console/api/webhook-health', { key: acme.apiKey });
    expect(res.status).toBe(200);
    expect(res.body.data.map((w: { id: string }) => w.id)).toEqual([...acmeHooks].reverse());
    expect(res.body.next_cursor).toBeNull();
    const [second] = res.body.data;
    expect(second).toMatchObject({ tenant_id: acme.id, description: 'second', enabled: true });
    expect(second.url).toBe('https://example.com/hook');
    expect(second.health).toEqual({
      pending: 0,
      due: 0,
      in_flight: 0,
      succeeded_attempts_1h: 0,
      failed_attempts_1h: 0,
      succeeded_attempts_24h: 0,
      failed_attempts_24h: 0,
      success_rate_24h: null,
      consecutive_failures: 0,
      last_success_at: null,
      oldest_due_at: null,
      breaker_state: 'closed',
      dead_letters: 0,
      concurrency_limit: 10,
      max_concurrency: 200,
      latency_floor_ms: null,
    });
  });

  it('counts a queued delivery as pending and due', async () => {
    const [hook] = acmeHooks;
    const res = await app.request('POST', '/events', {
      key: acme.apiKey,
      body: { type: 'order.created', payload: {} },
    });
    expect(res.status).toBe(202);
    // This instance runs no workers (POSTBOX_ROLE=api), so the deliveries stay pending.
    const list = await app.request('GET', '/console/api/webhook-health', { key: acme.apiKey });
    const health = list.body.data.find((w: { id: string }) => w.id === hook).health;
    expect(health).toMatchObject({ pending: 1, due: 1, in_flight: 0 });
    expect(Date.parse(health.oldest_due_at)).toBeLessThanOrEqual(Date.now());
  });

  it('pages with limit and cursor', async () => {
    const first = await app.request('GET', '/console/api/webhook-health?limit=1', { key: acme.apiKey });
    expect(first.body.data).toHaveLength(1);
    expect(first.body.next_cursor).toEqual(expect.any(String));
    const next = await app.request(
      'GET',
      `/console/api/webhook-health?limit=1&cursor=${encodeURIComponent(first.body.next_cursor)}`,
      { key: acme.apiKey },
    );
    expect(next.body.data.map((w: { id: string }) => w.id)).toEqual([acmeHooks[0]]);
    expect(next.body.next_cursor).toBeNull();
  });

  it('never shows another tenant its webhooks; the admin sees all and may filter by tenant', async () => {
    const mine = await app.request('GET', '/console/api/webhook-health', { key: other.apiKey });
    expect(mine.body.data.map((w: { id: string }) => w.id)).toEqual([otherHook]);
    const foreign = await app.request('GET', `/console/api/webhook-health?tenant_id=${acme.id}`, {
      key: other.apiKey,
    });
    expect(foreign.status).toBe(404);
    const all = await app.request('GET', '/console/api/webhook-health');
    expect(all.body.data.map((w: { id: string }) => w.id)).toEqual(
      expect.arrayContaining([...acmeHooks, otherHook]),
    );
    const filtered = await app.request('GET', `/console/api/webhook-health?tenant_id=${other.id}`);
    expect(filtered.body.data.map((w: { id: string }) => w.id)).toEqual([otherHook]);
  });

  it('leaves deleted webhooks out', async () => {
    const gone = await createWebhook(acme.apiKey, 'to delete');
    expect((await app.request('DELETE', `/webhooks/${gone}`, { key: acme.apiKey })).status).toBe(204);
    const res = await app.request('GET', '/console/api/webhook-health', { key: acme.apiKey });
    expect(res.body.data.map((w: { id: string }) => w.id)).not.toContain(gone);
  });

  it('rejects bad query parameters with 400', async () => {
    for (const q of ['limit=0', 'limit=501', 'cursor=nope', 'tenant_id=x', 'colour=blue']) {
      const res = await app.request('GET', `/console/api/webhook-health?${q}`, { key: acme.apiKey });
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('validation_failed');
    }
  });
});
