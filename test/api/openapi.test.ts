/**
 * The OpenAPI document against the running service: it is valid OpenAPI 3.1, it lists exactly the
 * routes Express serves (a new route without its entry in src/api/openapi/operations.ts fails
 * here), auth is as documented, the README's example requests are valid requests that succeed, and
 * every answer of a live run — every operation, and the error statuses — fits the document.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Validator } from '@seriousme/openapi-schema-validator';
import { buildDocument } from '../../src/api/openapi/document.js';
import { projectRoot } from '../../src/paths.js';
import { startTestApp, type RequestOptions, type TestApp } from '../helpers/app.js';
import { sqlDeadDelivery, sqlDelivery, sqlEvent } from '../helpers/fixtures-sql.js';
import { documentRoutes, expressRoutes, openApiChecker, type OpenApiChecker } from '../helpers/openapi.js';
import { readmeCurls } from '../helpers/readme-curl.js';
import { waitFor } from '../helpers/wait.js';

let app: TestApp;
let doc: any;
let checker: OpenApiChecker;
/** `METHOD /path status` of every checked answer. */
const seen = new Set<string>();

beforeAll(async () => {
  app = await startTestApp({ SSRF_ALLOW_CIDRS: '127.0.0.0/8', BODY_LIMIT_BYTES: '4096' });
  const res = await app.request('GET', '/openapi.json', { key: null });
  expect(res.status).toBe(200);
  doc = res.body;
  checker = openApiChecker(doc);
});
afterAll(() => app.close());

/** A request whose answer must fit the document; `valid: false` for requests meant to be refused. */
async function call(method: string, url: string, options: RequestOptions & { valid?: boolean } = {}) {
  if (options.valid !== false) expect(checker.request(method, url, options.body)).toEqual([]);
  const res = await app.request(method, url, options);
  expect(checker.response(method, url, res.status, res.headers, res.body)).toEqual([]);
  seen.add(`${checker.match(method, url)!.key} ${res.status}`);
  return res;
}

describe('the document', () => {
  test('is valid OpenAPI 3.1, served without a key, and is what buildDocument() builds', async () => {
    const validator = new Validator();
    const result = await validator.validate(structuredClone(doc));
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(doc.openapi).toBe('3.1.0');
    expect(doc).toEqual(JSON.parse(JSON.stringify(buildDocument())));
  });

  test('lists exactly the routes Express serves', () => {
    const served = new Set(expressRoutes(app.postbox.app!));
    const documented = new Set(documentRoutes(doc));
    const missing = [...served].filter((r) => !documented.has(r));
    const stale = [...documented].filter((r) => !served.has(r));
    // A failure here: add the route to src/api/openapi/operations.ts (or remove a stale entry).
    expect({ missing, stale }).toEqual({ missing: [], stale: [] });
    expect(served.size).toBeGreaterThan(20);
  });

  test('every operation names its auth, a summary, and answers with the Error schema on errors', () => {
    for (const [path, item] of Object.entries<any>(doc.paths))
      for (const [method, op] of Object.entries<any>(item)) {
        const where = `${method.toUpperCase()} ${path}`;
        expect([where, op['x-auth']]).toEqual([where, expect.stringMatching(/^(none|key|admin)$/)]);
        expect(op.summary).toBeTruthy();
        for (const [status, r] of Object.entries<any>(op.responses))
          // /ready's 503 is its own answer ({status}), not an error.
          if (Number(status) >= 400 && path !== '/ready')
            expect([where, status, r.content['application/json'].schema]).toEqual([
              where,
              status,
              { $ref: '#/components/schemas/Error' },
            ]);
        if (op['x-auth'] !== 'none')
          expect(Object.keys(op.responses)).toEqual(expect.arrayContaining(['401']));
      }
  });

  test('auth is as documented: no key is 401 unless x-auth is none; a tenant key on admin routes is 403', async () => {
    const tenant = await app.createTenant('auth-check');
    for (const [path, item] of Object.entries<any>(doc.paths))
      for (const [method, op] of Object.entries<any>(item)) {
        const url = path.replace(/\{[^}]+\}/g, '01900000-0000-7000-8000-000000000000');
        const anonymous = await app.request(method.toUpperCase(), url, { key: null });
        expect([method, path, anonymous.status === 401]).toEqual([method, path, op['x-auth'] !== 'none']);
        if (op['x-auth'] === 'admin') {
          const res = await app.request(method.toUpperCase(), url, { key: tenant.apiKey });
          expect([method, path, res.status]).toEqual([method, path, 403]);
        }
      }
  });
});

describe("the README's examples", () => {
  test('are valid requests by the document, and each answers 2xx as documented', async () => {
    const readme = readFileSync(join(projectRoot, 'README.md'), 'utf8');
    const curls = readmeCurls(readme);
    expect(curls.length).toBeGreaterThan(20);
    const bound: Record<string, string> = {};
    let tenantKey: string | undefined;
    for (const c of curls) {
      // Each <delivery_id> example gets a fresh dead-lettered delivery of the tenant, so replay and
      // DLQ retry both have something to act on.
      if (c.url.includes('<delivery_id>')) {
        const dead = await sqlDeadDelivery(app.db.pool, bound.tenant_id!, bound.dlq_webhook_id!);
        bound.delivery_id = dead.deliveryId;
      }
      const url = c.url.replace(/<([a-z_]+)>/g, (_m, name: string) => {
        if (!bound[name]) throw new Error(`README: <${name}> used before anything bound it: ${c.source}`);
        return bound[name]!;
      });
      const body = c.body === undefined ? undefined : JSON.parse(c.body);
      expect([c.source, checker.request(c.method, url, body)]).toEqual([c.source, []]);
      // No header: no key; $ADMIN: the helper's default (the admin key); $TENANT: the README's tenant.
      const key = c.key === undefined ? null : c.key === 'ADMIN' ? undefined : tenantKey;
      const headers = Object.fromEntries(Object.entries(c.headers).filter(([h]) => h !== 'content-type'));
      const res = await app.request(c.method, url, { key, body, headers });
      expect([c.source, res.status >= 200 && res.status < 300]).toEqual([c.source, true]);
      expect([c.source, checker.response(c.method, url, res.status, res.headers, res.body)]).toEqual([
        c.source,
        [],
      ]);
      // What later examples refer to.
      if (c.method === 'POST' && c.url === '/tenants') {
        bound.tenant_id = res.body.id;
        tenantKey = res.body.api_key;
        bound.dlq_webhook_id = (
          await call('POST', '/webhooks', {
            body: { url: 'http://127.0.0.1:9/dead', tenant_id: res.body.id },
          })
        ).body.id;
      }
      if (c.method === 'POST' && c.url === '/webhooks') bound.webhook_id = res.body.id;
      if (c.method === 'POST' && c.url === '/tenants/<tenant_id>/api-keys') bound.key_id = res.body.id;
      if (c.method === 'POST' && c.url === '/events') bound.event_id = res.body.event_id;
    }
  });
});

describe('a live run', () => {
  test('every operation answers as documented, successes and errors alike', async () => {
    // No key
    for (const url of ['/health', '/ready', '/metrics', '/openapi.json'])
      await call('GET', url, { key: null });

    // Tenants
    const t = (await call('POST', '/tenants', { body: { name: 'live', quotas: { max_dlq_size: 100 } } }))
      .body;
    const key = t.api_key as string;
    await call('GET', `/tenants/${t.id}`);
    await call('GET', `/quotas/${t.id}`, { key });
    await call('PATCH', `/quotas/${t.id}`, { body: { max_events_per_sec: 100 } });

    // API keys
    const k = (await call('POST', `/tenants/${t.id}/api-keys`, { key, body: { name: 'producer' } })).body;
    await call('GET', `/tenants/${t.id}/api-keys?limit=10`, { key });
    const k2 = (await call('POST', `/tenants/${t.id}/api-keys/${k.id}/rotate`, { key })).body;
    await call('DELETE', `/tenants/${t.id}/api-keys/${k2.id}`, { key });
    const a = (await call('POST', '/admin/api-keys', { body: { name: 'ops' } })).body;
    await call('GET', '/admin/api-keys');
    const a2 = (await call('POST', `/admin/api-keys/${a.id}/rotate`, { body: { overlap_seconds: 0 } })).body;
    await call('DELETE', `/admin/api-keys/${a2.id}`);

    // Webhooks
    const w = (
      await call('POST', '/webhooks', {
        key,
        body: { url: 'http://127.0.0.1:9/hook', event_types: ['order.*'], description: 'live run' },
      })
    ).body;
    await call('GET', '/webhooks?limit=1', { key });
    await call('GET', `/webhooks/${w.id}`, { key });
    await call('PATCH', `/webhooks/${w.id}`, { key, body: { enabled: false } });
    await call('PATCH', `/webhooks/${w.id}`, { key, body: { enabled: true, timeout_ms: 5000 } });
    await call('POST', `/webhooks/${w.id}/rotate-secret`, { key });
    expect((await call('POST', `/webhooks/${w.id}/test`, { key })).body.error).toMatch(/ECONNREFUSED/);

    // Events
    const headers = { 'Idempotency-Key': 'live-1' };
    const first = await call('POST', '/events', {
      key,
      headers,
      body: { type: 'order.created', payload: { n: 1 } },
    });
    expect(first.status).toBe(202);
    const again = await call('POST', '/events', {
      key,
      headers,
      body: { type: 'order.created', payload: { n: 1 } },
    });
    expect(again.status).toBe(200);
    await call('POST', '/events/batch', {
      key,
      body: {
        events: [
          { type: 'order.paid', payload: null },
          { type: 'order.shipped', payload: [1] },
        ],
      },
    });
    await call('GET', '/events?limit=2&type=order.paid', { key });
    await call('GET', `/events/${first.body.event_id}`, { key });

    // Event-type catalog
    const schema = { type: 'object', properties: { id: { type: 'integer' } }, required: ['id'] };
    await call('POST', '/event-types', {
      key,
      body: { name: 'invoice.paid', description: 'An invoice was paid', schema, example: { id: 7 } },
    });
    expect(
      (await call('POST', '/event-types', { key, body: { name: 'invoice.paid', description: 'again' } }))
        .status,
    ).toBe(409);
    await call('GET', '/event-types?limit=5', { key });
    await call('GET', `/event-types/invoice.paid?tenant_id=${t.id}`);
    await call('PATCH', '/event-types/invoice.paid', {
      key,
      body: { deprecated: true, new_version: { schema: { type: 'object' }, example: {} } },
    });

    // Deliveries and dead letters
    const deliveryId = first.body.delivery_ids[0];
    await call('GET', `/deliveries?webhook_id=${w.id}`, { key });
    await call('GET', `/deliveries/${deliveryId}`, { key });
    const dead = await sqlDeadDelivery(app.db.pool, t.id, w.id, { type: 'order.failed' });
    await call('GET', `/deliveries/${dead.deliveryId}`, { key });
    await call('GET', `/dlq?webhook_id=${w.id}`, { key });
    await call('POST', `/dlq/${dead.deliveryId}/retry`, { key });
    await call('POST', `/deliveries/${dead.deliveryId}/replay`, { key });
    await sqlDeadDelivery(app.db.pool, t.id, w.id, { type: 'order.failed' });
    expect((await call('POST', '/dlq/retry', { key, body: { webhook_id: w.id } })).body.requeued).toBe(1);
    await sqlDeadDelivery(app.db.pool, t.id, w.id, { type: 'order.failed' });
    const since = new Date(Date.now() - 60_000).toISOString();
    expect((await call('POST', `/webhooks/${w.id}/recover`, { key, body: { since } })).body.requeued).toBe(1);

    // Audit and console
    await call('GET', `/audit?tenant_id=${t.id}&limit=5`);
    await call('GET', '/console/api/session', { key });
    await call('GET', '/console/api/webhook-health', { key });
    await call('GET', '/console/api/tenant-usage?limit=5');
    await call('GET', `/console/api/webhooks/${w.id}/stats?hours=3`, { key });

    // Errors: each status with its documented shape (and Retry-After where promised).
    const bad = { valid: false };
    await call('POST', '/webhooks', { ...bad, key, body: { url: 'ftp://x', event_type: ['typo'] } });
    await call('POST', '/events', { ...bad, key, rawBody: '{"type":' });
    await call('GET', '/webhooks', { ...bad, key: 'pbk_not_a_key' });
    await call('GET', '/audit', { key });
    await call('GET', `/webhooks/01900000-0000-7000-8000-000000000000`, { key });
    const event = await sqlEvent(app.db.pool, t.id);
    const busy = await sqlDelivery(app.db.pool, {
      tenantId: t.id,
      eventId: event.id,
      webhookId: w.id,
      status: 'in_flight',
    });
    expect((await call('POST', `/deliveries/${busy}/replay`, { key })).status).toBe(409);
    await call('POST', '/events', { ...bad, key, body: { type: 'big', payload: 'x'.repeat(5000) } });
    await call('POST', '/events', {
      ...bad,
      key,
      rawBody: '{"type":"a","payload":1}',
      headers: { 'content-type': 'application/json; charset=klingon' },
    });
    const slow = await app.createTenant('slow', { max_events_per_sec: 1 });
    await waitFor(
      async () =>
        (await call('POST', '/events', { key: slow.apiKey, body: { type: 'tick', payload: 1 } })).status ===
        429,
      { what: 'a 429 from a tenant allowed 1 event per second' },
    );

    await call('DELETE', `/webhooks/${w.id}`, { key });

    // Every documented success answer was seen, and each error status above.
    const expected: string[] = [];
    for (const [path, item] of Object.entries<any>(doc.paths))
      for (const [method, op] of Object.entries<any>(item))
        for (const status of Object.keys(op.responses))
          if (Number(status) < 300) expected.push(`${method.toUpperCase()} ${path} ${status}`);
    const statuses = new Set([...seen].map((s) => Number(s.split(' ')[2])));
    expect(expected.filter((e) => !seen.has(e))).toEqual([]);
    expect([400, 401, 403, 404, 409, 413, 415, 429].filter((s) => !statuses.has(s))).toEqual([]);
  });
});

describe('/docs', () => {
  test('is a static page (with the console CSP) that renders /openapi.json', async () => {
    const page = await fetch(`${app.baseUrl}/docs/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    const html = await page.text();
    expect(html).toContain('<script type="module" src="docs.js"></script>');
    const script = await fetch(`${app.baseUrl}/docs/docs.js`);
    expect(script.status).toBe(200);
    expect(await script.text()).toContain("fetch('/openapi.json')");
  });
});
