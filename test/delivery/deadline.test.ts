/**
 * The retry deadline (retry_policy.max_age_seconds) through a whole instance and a real receiver that
 * keeps failing: retries stop when the next attempt would fall past the deadline, long before
 * max_attempts, and the delivery is dead-lettered with that reason. A DLQ retry starts a new cycle,
 * so the deadline counts again from the retry.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { waitFor } from '../helpers/wait.js';

let app: TestApp;
let receiver: Receiver;
beforeAll(async () => {
  receiver = await startReceiver();
  app = await startTestApp({
    POSTBOX_ROLE: 'all',
    SSRF_ALLOW_CIDRS: '127.0.0.0/8',
    POLL_INTERVAL_MS: '50',
    // The breaker would hold retries back and blur what the deadline does.
    BREAKER_FAILURE_THRESHOLD: '1000',
  });
});
afterAll(async () => {
  await app?.close();
  await receiver?.close();
});

const MAX_AGE_SECONDS = 2;
const DELAY_MS = 300;

async function failingWebhook(tenantKey: string, path: string) {
  receiver.on(path, { status: 500 });
  const hook = await app.request('POST', '/webhooks', {
    key: tenantKey,
    body: {
      url: receiver.url(path),
      retry_policy: {
        max_attempts: 50,
        initial_delay_ms: DELAY_MS,
        max_delay_ms: DELAY_MS,
        max_age_seconds: MAX_AGE_SECONDS,
      },
    },
  });
  expect(hook.status).toBe(201);
  return hook.body;
}

const dlqEntry = (key: string, deliveryId: string) =>
  waitFor(
    async () =>
      (await app.request('GET', '/dlq', { key })).body.data.find((d: any) => d.delivery_id === deliveryId),
    { what: 'the delivery in the DLQ', timeoutMs: 20_000 },
  );

async function cycleStart(deliveryId: string): Promise<number> {
  const { rows } = await app.db.pool.query('SELECT cycle_started_at FROM deliveries WHERE id = $1', [
    deliveryId,
  ]);
  return (rows[0].cycle_started_at as Date).getTime();
}

describe('retry_policy.max_age_seconds', () => {
  it('dead-letters a failing delivery at the deadline, long before max_attempts, saying why', async () => {
    const tenant = await app.createTenant('deadline');
    const hook = await failingWebhook(tenant.apiKey, '/deadline');
    expect(hook.retry_policy).toEqual({
      max_attempts: 50,
      initial_delay_ms: DELAY_MS,
      max_delay_ms: DELAY_MS,
      max_age_seconds: MAX_AGE_SECONDS,
    });
    const event = await app.request('POST', '/events', {
      key: tenant.apiKey,
      body: { type: 'order.created', payload: { n: 1 } },
    });
    const deliveryId: string = event.body.delivery_ids[0];
    const started = await cycleStart(deliveryId);

    const dead = await dlqEntry(tenant.apiKey, deliveryId);
    expect(dead.last_error).toBe(
      `HTTP 500; gave up: the next attempt would fall past the retry deadline (retry_policy.max_age_seconds = ${MAX_AGE_SECONDS})`,
    );
    // 300 ms (±20 %) apart within 2 s: a handful of attempts, never the 50 allowed.
    expect(dead.attempts).toBeGreaterThanOrEqual(3);
    expect(dead.attempts).toBeLessThanOrEqual(Math.ceil((MAX_AGE_SECONDS * 1000) / (DELAY_MS * 0.8)) + 1);
    const got = receiver.requestsTo('/deadline').filter((r) => r.headers['webhook-id'] === deliveryId);
    expect(got).toHaveLength(dead.attempts);

    const detail = await app.request('GET', `/deliveries/${deliveryId}`, { key: tenant.apiKey });
    expect(detail.body).toMatchObject({
      status: 'failed',
      last_status_code: 500,
      last_error: dead.last_error,
    });
    // Each attempt row keeps the receiver's answer alone; only the delivery says why it stopped.
    expect(new Set(detail.body.attempts.map((a: any) => a.error))).toEqual(new Set(['HTTP 500']));
    // Every attempt was planned within the deadline (the claim may start one a little late).
    for (const a of detail.body.attempts)
      expect(Date.parse(a.started_at)).toBeLessThan(started + MAX_AGE_SECONDS * 1000 + 1000);
  });

  it('a DLQ retry is a new cycle: the deadline counts again from the retry', async () => {
    const tenant = await app.createTenant('deadline-retry');
    await failingWebhook(tenant.apiKey, '/deadline-retry');
    const event = await app.request('POST', '/events', {
      key: tenant.apiKey,
      body: { type: 'order.created', payload: { n: 2 } },
    });
    const deliveryId: string = event.body.delivery_ids[0];
    const first = await dlqEntry(tenant.apiKey, deliveryId);
    const firstStart = await cycleStart(deliveryId);

    // Retried once the first cycle's deadline is behind us: measured from that cycle, the retry would
    // die after a single attempt.
    await waitFor(() => Date.now() > firstStart + MAX_AGE_SECONDS * 1000 + 100, {
      what: 'the first deadline',
    });
    expect((await app.request('POST', `/dlq/${deliveryId}/retry`, { key: tenant.apiKey })).status).toBe(202);
    expect(await cycleStart(deliveryId)).toBeGreaterThan(firstStart + MAX_AGE_SECONDS * 1000);
    const again = await waitFor(
      async () => {
        const d = (await app.request('GET', '/dlq', { key: tenant.apiKey })).body.data[0];
        return d && Date.parse(d.dead_at) > Date.parse(first.dead_at) ? d : undefined;
      },
      { what: 'the retried delivery back in the DLQ', timeoutMs: 20_000 },
    );
    expect(again.attempts).toBeGreaterThanOrEqual(3);
    expect(again.last_error).toContain('retry deadline');
  });

  it('is validated, merged on PATCH and removed with null', async () => {
    const tenant = await app.createTenant('deadline-api');
    const create = (retry_policy: unknown) =>
      app.request('POST', '/webhooks', { key: tenant.apiKey, body: { url: receiver.url(), retry_policy } });
    for (const bad of [0, -1, 1.5, '60', 30 * 86_400 + 1]) {
      const res = await create({ max_age_seconds: bad });
      expect(res.status).toBe(400);
      expect(res.body.error.details.map((d: any) => d.path)).toContain('retry_policy.max_age_seconds');
    }
    const plain = await create({ max_attempts: 5 });
    expect(plain.body.retry_policy.max_age_seconds).toBeNull();

    const id = plain.body.id;
    const patch = (retry_policy: unknown) =>
      app.request('PATCH', `/webhooks/${id}`, { key: tenant.apiKey, body: { retry_policy } });
    expect((await patch({ max_age_seconds: 3600 })).body.retry_policy).toMatchObject({
      max_attempts: 5,
      max_age_seconds: 3600,
    });
    expect((await patch({ max_attempts: 7 })).body.retry_policy).toMatchObject({
      max_attempts: 7,
      max_age_seconds: 3600,
    });
    expect((await patch({ max_age_seconds: null })).body.retry_policy.max_age_seconds).toBeNull();
  });

  it('a policy stored before the field existed reads as no deadline', async () => {
    const tenant = await app.createTenant('deadline-old');
    const hook = await app.request('POST', '/webhooks', {
      key: tenant.apiKey,
      body: { url: receiver.url() },
    });
    await app.db.pool.query(
      `UPDATE webhooks SET retry_policy = retry_policy - 'max_age_seconds' WHERE id = $1`,
      [hook.body.id],
    );
    const res = await app.request('GET', `/webhooks/${hook.body.id}`, { key: tenant.apiKey });
    expect(res.body.retry_policy.max_age_seconds).toBeNull();
  });
});
