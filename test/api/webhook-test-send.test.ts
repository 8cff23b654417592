/**
 * POST /webhooks/:id/test: one signed attempt through the real sender to a real receiver, answered
 * synchronously; nothing stored as a delivery, the webhook's health untouched, an audit row written.
 */
import { Webhook } from 'standardwebhooks';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { sqlTenant, sqlWebhook } from '../helpers/fixtures-sql.js';

let app: TestApp;
let receiver: Receiver;
let tenant: { id: string; apiKey: string };

beforeAll(async () => {
  [app, receiver] = await Promise.all([startTestApp({ SSRF_ALLOW_CIDRS: '127.0.0.0/8' }), startReceiver()]);
  tenant = await app.createTenant('test-send');
});
afterAll(async () => {
  await receiver.close();
  await app.close();
});

async function webhook(path: string, extra: Record<string, unknown> = {}) {
  const res = await app.request('POST', '/webhooks', {
    key: tenant.apiKey,
    body: { url: receiver.url(path), event_types: ['order.*'], ...extra },
  });
  expect(res.status).toBe(201);
  return res.body as { id: string; secret: string };
}

async function rowCounts(webhookId: string) {
  const { rows } = await app.db.pool.query(
    `SELECT (SELECT count(*)::int FROM deliveries WHERE webhook_id = $1) AS deliveries,
            (SELECT count(*)::int FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id
              WHERE d.webhook_id = $1) AS attempts,
            w.consecutive_failures, w.breaker_state, w.breaker_opens, w.failing_since
       FROM webhooks w WHERE w.id = $1`,
    [webhookId],
  );
  return rows[0];
}

test('sends the documented default event, signed like a real delivery, and answers with the outcome', async () => {
  receiver.on('/ok', { status: 200, body: 'thanks' });
  const hook = await webhook('/ok');
  const res = await app.request('POST', `/webhooks/${hook.id}/test`, { key: tenant.apiKey });
  expect(res.status).toBe(200);
  expect(res.body).toEqual({
    status_code: 200,
    duration_ms: expect.any(Number),
    response_excerpt: 'thanks',
    error: null,
  });
  const [got] = receiver.requestsTo('/ok');
  // The webhook's event_types (order.*) do not filter a test; the secret verifies it.
  const verified = new Webhook(hook.secret).verify(got!.body, got!.headers as Record<string, string>) as any;
  expect(verified).toMatchObject({ type: 'postbox.test', data: { message: 'A test event from Postbox.' } });
  expect(got!.headers['x-webhook-event']).toBe('postbox.test');
  expect(got!.headers['x-webhook-attempt']).toBe('1');
  expect(got!.headers['user-agent']).toMatch(/^Postbox\//);
  // Not a delivery: no rows, and the audit log has it with its outcome.
  expect(await rowCounts(hook.id)).toMatchObject({ deliveries: 0, attempts: 0 });
  const audit = await app.request('GET', `/audit?tenant_id=${tenant.id}&action=webhook.test`);
  expect(audit.body.data[0]).toMatchObject({
    actor: expect.stringMatching(/^pbk_/),
    object_id: hook.id,
    changes: { type: 'postbox.test', status_code: 200, error: null },
  });
});

test('sends a given type and payload; a failing receiver changes neither health nor breaker', async () => {
  receiver.on('/down', { status: 503, body: 'maintenance', headers: { 'retry-after': '60' } });
  const hook = await webhook('/down');
  const before = await rowCounts(hook.id);
  for (let i = 0; i < 6; i++) {
    const res = await app.request('POST', `/webhooks/${hook.id}/test`, {
      key: tenant.apiKey,
      body: { type: 'order.created', payload: { order: 7, i } },
    });
    expect(res.body).toMatchObject({ status_code: 503, response_excerpt: 'maintenance', error: 'HTTP 503' });
  }
  const requests = receiver.requestsTo('/down');
  expect(requests).toHaveLength(6);
  expect(JSON.parse(requests[5]!.body)).toMatchObject({ type: 'order.created', data: { order: 7, i: 5 } });
  // Six failures in a row would open a real delivery's breaker (threshold 5): a test send is not counted.
  expect(await rowCounts(hook.id)).toEqual(before);
  expect(before).toMatchObject({ consecutive_failures: 0, breaker_state: 'closed', breaker_opens: 0 });
  // Each test has its own webhook-id, so a deduplicating receiver sees each one.
  expect(new Set(requests.map((r) => r.headers['webhook-id'])).size).toBe(6);
});

test("answers within the webhook's timeout with the timeout as error", async () => {
  receiver.on('/slow', { status: 200, delayMs: 5000 });
  const hook = await webhook('/slow', { timeout_ms: 1000 });
  const t0 = Date.now();
  const res = await app.request('POST', `/webhooks/${hook.id}/test`, { key: tenant.apiKey });
  expect(Date.now() - t0).toBeLessThan(4500);
  expect(res.body).toMatchObject({
    status_code: null,
    response_excerpt: null,
    error: 'timeout after 1000 ms',
  });
});

test('a receiver that is not there, a redirect, and a disabled webhook', async () => {
  const gone = await webhook('/x');
  await app.db.pool.query(`UPDATE webhooks SET url = 'http://127.0.0.1:9/closed' WHERE id = $1`, [gone.id]);
  const refused = await app.request('POST', `/webhooks/${gone.id}/test`, { key: tenant.apiKey });
  expect(refused.body).toMatchObject({ status_code: null, error: expect.stringContaining('ECONNREFUSED') });

  receiver.on('/moved', { redirectTo: receiver.url('/ok') });
  const moved = await webhook('/moved');
  const redirect = await app.request('POST', `/webhooks/${moved.id}/test`, { key: tenant.apiKey });
  expect(redirect.body).toMatchObject({ status_code: 302, error: 'HTTP 302 (redirects are not followed)' });

  // A disabled webhook can be tried before it is enabled again.
  await app.request('PATCH', `/webhooks/${moved.id}`, { key: tenant.apiKey, body: { enabled: false } });
  receiver.on('/moved', { status: 204 });
  const disabled = await app.request('POST', `/webhooks/${moved.id}/test`, { key: tenant.apiKey });
  expect(disabled.body).toMatchObject({ status_code: 204, error: null });
});

test('signs with both secrets during a rotation overlap', async () => {
  receiver.on('/rotating', { status: 200 });
  const hook = await webhook('/rotating');
  const rotated = await app.request('POST', `/webhooks/${hook.id}/rotate-secret`, { key: tenant.apiKey });
  await app.request('POST', `/webhooks/${hook.id}/test`, { key: tenant.apiKey });
  const [got] = receiver.requestsTo('/rotating');
  const headers = got!.headers as Record<string, string>;
  expect(headers['webhook-signature']!.split(' ')).toHaveLength(2);
  expect(() => new Webhook(hook.secret).verify(got!.body, headers)).not.toThrow();
  expect(() => new Webhook(rotated.body.secret).verify(got!.body, headers)).not.toThrow();
});

test('SSRF: without SSRF_ALLOW_CIDRS a loopback URL is refused at connection time, as for deliveries', async () => {
  const strict = await startTestApp({}); // no SSRF_ALLOW_CIDRS
  try {
    const t = await sqlTenant(strict.db.pool, 'ssrf');
    // Registered behind the API's back (as if DNS had changed since registration).
    const hook = await sqlWebhook(strict.db.pool, t.id, { url: receiver.url('/ssrf') });
    receiver.on('/ssrf', { status: 200 });
    const res = await strict.request('POST', `/webhooks/${hook.id}/test`, { key: t.apiKey });
    expect(res.status).toBe(200);
    expect(res.body.status_code).toBeNull();
    expect(res.body.error).toMatch(/not allowed|refus|private|loopback/i);
    expect(receiver.requestsTo('/ssrf')).toHaveLength(0);
  } finally {
    await strict.close();
  }
});

test('bad input is a 400, another tenant’s webhook a 404, no key a 401', async () => {
  const hook = await webhook('/ok');
  const bad = await app.request('POST', `/webhooks/${hook.id}/test`, {
    key: tenant.apiKey,
    body: { type: 'not a type!', extra: 1 },
  });
  expect(bad.status).toBe(400);
  expect(bad.body.error.code).toBe('validation_failed');
  const other = await app.createTenant('other');
  const hidden = await app.request('POST', `/webhooks/${hook.id}/test`, { key: other.apiKey });
  expect(hidden.status).toBe(404);
  expect((await app.request('POST', `/webhooks/${hook.id}/test`, { key: null })).status).toBe(401);
  expect(receiver.requestsTo('/ok')).toHaveLength(1); // only the first test's
});
