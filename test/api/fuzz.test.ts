/**
 * Property-based fuzzing of every route (fast-check, seeded: FUZZ_SEED reproduces a failure):
 * generated methods, paths, ids, query strings, headers and bodies (malformed JSON, wrong types,
 * control characters, deep and large documents). Every answer must be below 500, a 4xx must carry the
 * JSON error shape, and a refused request must write nothing (row counts unchanged).
 */
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { startTestApp, type TestApp } from '../helpers/app.js';

let app: TestApp;
let tenantKey: string;
beforeAll(async () => {
  app = await startTestApp({ SSRF_ALLOW_CIDRS: '127.0.0.0/8' });
  tenantKey = (await app.createTenant('fuzz')).apiKey;
});
afterAll(async () => {
  await app.close();
});

const SEED = Number(process.env.FUZZ_SEED ?? 20261202);
// 2,000 in every `npm test` (about 90 s here); `FUZZ_RUNS=10000 npm test -- test/api/fuzz.test.ts` for the full run.
const RUNS = Number(process.env.FUZZ_RUNS ?? 2_000);
const TABLES = ['tenants', 'webhooks', 'events', 'deliveries', 'dead_letter_queue', 'audit_log', 'api_keys'];

const id = fc.oneof(
  fc.uuid(),
  fc.constant('0190b6a4-3f1e-7c3a-9d2e-000000000000'),
  fc.string({ maxLength: 40 }),
  fc.constantFrom('%00', '..%2F..', "'; DROP TABLE events;--", 'x'.repeat(300), '%E0%A4%A'),
);
const path = fc.oneof(
  fc.constantFrom(
    '/tenants',
    '/webhooks',
    '/events',
    '/events/batch',
    '/deliveries',
    '/dlq',
    '/dlq/retry',
    '/audit',
    '/admin/api-keys',
    '/openapi.json',
    '/health',
    '/ready',
    '/nope',
  ),
  id.map((x) => `/tenants/${encodeURIComponent(x)}`),
  id.map((x) => `/tenants/${encodeURIComponent(x)}/api-keys`),
  id.map((x) => `/webhooks/${encodeURIComponent(x)}`),
  id.map((x) => `/webhooks/${encodeURIComponent(x)}/rotate-secret`),
  id.map((x) => `/webhooks/${encodeURIComponent(x)}/test`),
  id.map((x) => `/webhooks/${encodeURIComponent(x)}/recover`),
  id.map((x) => `/events/${encodeURIComponent(x)}`),
  id.map((x) => `/deliveries/${encodeURIComponent(x)}`),
  id.map((x) => `/deliveries/${encodeURIComponent(x)}/replay`),
  id.map((x) => `/dlq/${encodeURIComponent(x)}/retry`),
  id.map((x) => `/quotas/${encodeURIComponent(x)}`),
);
const queryValue = fc.oneof(
  fc.string({ maxLength: 30 }),
  fc.integer().map(String),
  fc.constantFrom('\u0000', '-1', '0', '501', 'NaN', '2026-02-30T00:00:00Z', 'infinity'),
);
const query = fc
  .array(
    fc.tuple(
      fc.constantFrom(
        'limit',
        'cursor',
        'tenant_id',
        'webhook_id',
        'event_id',
        'status',
        'type',
        'from',
        'to',
        'action',
        'event_type',
        'x',
      ),
      queryValue,
    ),
    { maxLength: 4 },
  )
  .map((pairs) =>
    pairs.length ? '?' + pairs.map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&') : '',
  );
const field = fc.constantFrom(
  'name',
  'url',
  'secret',
  'event_types',
  'type',
  'payload',
  'tenant_id',
  'events',
  'retry_policy',
  'timeout_ms',
  'enabled',
  'idempotency_key',
  'event_type',
  'webhook_id',
  'since',
  'overlap_seconds',
  'quotas',
  'description',
  'filter',
  'client_certificate',
  'ordering',
);
const value = fc.letrec((tie) => ({
  v: fc.oneof(
    { depthSize: 'small' },
    fc.string({ maxLength: 20 }),
    fc.constantFrom(
      '\u0000',
      '\ud800',
      'http://127.0.0.1:1/x',
      'order.*',
      '',
      ' '.repeat(16),
      'x'.repeat(5000),
    ),
    fc.integer(),
    fc.double(),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie('v'), { maxLength: 3 }),
    fc.dictionary(fc.oneof(field, fc.string({ maxLength: 5 })), tie('v'), { maxKeys: 3 }),
  ),
})).v;
const deep = fc.integer({ min: 100, max: 3000 }).map((n) => '['.repeat(n) + ']'.repeat(n));
const body = fc.oneof(
  fc.constant(undefined),
  fc.dictionary(field, value, { maxKeys: 5 }).map((o) => JSON.stringify(o)),
  value.map((x) => JSON.stringify(x) ?? 'null'),
  fc.string({ maxLength: 50 }),
  deep,
  deep.map((d) => `{"type":"a","payload":${d}}`),
);
const request = fc.record({
  method: fc.constantFrom('GET', 'POST', 'PATCH', 'DELETE', 'PUT'),
  path,
  query,
  body,
  contentType: fc.constantFrom(
    'application/json',
    'application/json',
    'text/plain',
    'application/json; charset=latin1',
    'application/x-www-form-urlencoded',
  ),
  key: fc.constantFrom('admin', 'tenant', 'none', 'bad'),
});

async function rowCounts(): Promise<string> {
  const parts = TABLES.map((t) => `(SELECT count(*) FROM ${t})`).join(', ');
  const { rows } = await app.db.pool.query(`SELECT ARRAY[${parts}]::int[] AS n`);
  return JSON.stringify(rows[0].n);
}

it(`${RUNS} generated requests: no 5xx, JSON errors, nothing written when refused`, async () => {
  let before = await rowCounts();
  await fc.assert(
    fc.asyncProperty(request, async (r) => {
      const key =
        r.key === 'admin' ? undefined : r.key === 'tenant' ? tenantKey : r.key === 'bad' ? 'pbk_nope' : null;
      const hasBody = r.body !== undefined && r.method !== 'GET';
      const res = await app.request(r.method, r.path + r.query, {
        key,
        ...(hasBody ? { rawBody: r.body!, headers: { 'content-type': r.contentType } } : {}),
      });
      expect(res.status).toBeLessThan(500);
      if (res.status >= 400 && r.path !== '/ready')
        expect(res.body).toEqual({
          error: expect.objectContaining({ code: expect.any(String), message: expect.any(String) }),
        });
      const after = await rowCounts();
      if (res.status >= 400) expect(after).toBe(before);
      before = after;
    }),
    { seed: SEED, numRuns: RUNS },
  );
}, 600_000);
