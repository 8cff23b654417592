/**
 * End to end: a real instance with its delivery engine, a real receiver on 127.0.0.1. A delivery
 * that died is retried from the DLQ (and a delivered one replayed), and the receiver gets it again
 * under the same webhook-id, correctly signed, as attempt 1 of a new cycle.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Webhook } from 'standardwebhooks';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { waitFor } from '../helpers/wait.js';

let app: TestApp;
let receiver: Receiver;
beforeAll(async () => {
  receiver = await startReceiver();
  app = await startTestApp({ POSTBOX_ROLE: 'all', SSRF_ALLOW_CIDRS: '127.0.0.0/8' });
});
afterAll(async () => {
  await app?.close();
  await receiver?.close();
});

async function setUp(maxAttempts: number) {
  const tenant = await app.createTenant('redelivery');
  const hook = await app.request('POST', '/webhooks', {
    key: tenant.apiKey,
    body: {
      url: receiver.url(),
      retry_policy: { max_attempts: maxAttempts, initial_delay_ms: 100, max_delay_ms: 200 },
      timeout_ms: 5000,
    },
  });
  expect(hook.status).toBe(201);
  const event = await app.request('POST', '/events', {
    key: tenant.apiKey,
    body: { type: 'order.created', payload: { order: 42 } },
  });
  expect(event.status).toBe(202);
  expect(event.body.delivery_ids).toHaveLength(1);
  return { key: tenant.apiKey, secret: hook.body.secret as string, deliveryId: event.body.delivery_ids[0] };
}

const requestsFor = (deliveryId: string) =>
  receiver.requests.filter((r) => r.headers['webhook-id'] === deliveryId);

describe('redelivery through the engine', () => {
  it('retries a dead delivery from the DLQ; the receiver gets it again with the same webhook-id', async () => {
    receiver.on('/hook', { status: 500 });
    const { key, secret, deliveryId } = await setUp(2);

    const dead = await waitFor(
      async () => {
        const res = await app.request('GET', '/dlq', { key });
        return res.body.data.find((d: any) => d.delivery_id === deliveryId);
      },
      { what: 'the delivery to reach the DLQ' },
    );
    expect(dead).toMatchObject({ attempts: 2, event_type: 'order.created' });
    expect(requestsFor(deliveryId).map((r) => r.headers['x-webhook-attempt'])).toEqual(['1', '2']);

    receiver.on('/hook', { status: 200 });
    const retry = await app.request('POST', `/dlq/${deliveryId}/retry`, { key });
    expect(retry.status).toBe(202);
    expect((await app.request('GET', '/dlq', { key })).body.data).toEqual([]);

    const delivered = await waitFor(
      async () => {
        const res = await app.request('GET', `/deliveries/${deliveryId}`, { key });
        return res.body.status === 'succeeded' ? res.body : undefined;
      },
      { what: 'the retried delivery to succeed' },
    );
    expect(delivered.attempt_count).toBe(1);
    expect(delivered.attempts.map((a: any) => a.status_code)).toEqual([500, 500, 200]);

    const got = requestsFor(deliveryId);
    expect(got).toHaveLength(3);
    const last = got[2]!;
    expect(last.headers['x-webhook-attempt']).toBe('1');
    expect(last.body).toBe(got[0]!.body);
    expect(JSON.parse(last.body)).toMatchObject({ type: 'order.created', data: { order: 42 } });
    // Signed afresh, verifiable with the webhook's secret under the same id.
    expect(() => new Webhook(secret).verify(last.body, last.headers as Record<string, string>)).not.toThrow();
  });

  it('replays a delivered delivery to the receiver under the same webhook-id', async () => {
    receiver.on('/hook', { status: 200 });
    const { key, deliveryId } = await setUp(3);
    await waitFor(
      async () =>
        (await app.request('GET', `/deliveries/${deliveryId}`, { key })).body.status === 'succeeded',
      {
        what: 'the first delivery',
      },
    );
    expect(requestsFor(deliveryId)).toHaveLength(1);

    expect((await app.request('POST', `/deliveries/${deliveryId}/replay`, { key })).status).toBe(202);
    await waitFor(() => requestsFor(deliveryId).length === 2, { what: 'the replayed request' });
    const [first, second] = requestsFor(deliveryId);
    expect(second!.body).toBe(first!.body);
    expect(second!.headers['x-webhook-attempt']).toBe('1');
    await waitFor(
      async () =>
        (await app.request('GET', `/deliveries/${deliveryId}`, { key })).body.status === 'succeeded',
      {
        what: 'the replay to be recorded',
      },
    );
  });

  it('refuses to replay the deliveries of a deleted webhook (409)', async () => {
    receiver.on('/hook', { status: 500 });
    const { key, deliveryId } = await setUp(50);
    const { rows } = await app.db.pool.query('SELECT webhook_id FROM deliveries WHERE id = $1', [deliveryId]);
    expect((await app.request('DELETE', `/webhooks/${rows[0].webhook_id}`, { key })).status).toBe(204);
    await waitFor(
      async () =>
        (await app.request('GET', `/deliveries/${deliveryId}`, { key })).body.status === 'cancelled',
      {
        what: 'the delivery to be cancelled',
      },
    );
    const res = await app.request('POST', `/deliveries/${deliveryId}/replay`, { key });
    expect(res.status).toBe(409);
  });
});
