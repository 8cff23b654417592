/**
 * max_dlq_size through a whole instance (API + engine, POSTBOX_ROLE=all): a tenant's DLQ growing past
 * it is logged once per crossing, counted in /metrics, flagged in GET /quotas, and nothing is
 * dropped. The breaker is kept out of the way (BREAKER_FAILURE_THRESHOLD) and reported through the
 * same paths in breaker.test.ts.
 */
import { Writable } from 'node:stream';
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import winston from 'winston';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { sampleValue } from '../helpers/prom.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { waitFor } from '../helpers/wait.js';

const lines: Record<string, unknown>[] = [];
const logger = winston.createLogger({
  level: 'info',
  format: winston.format.json(),
  transports: [
    new winston.transports.Stream({
      stream: new Writable({
        write(chunk, _enc, done) {
          for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line));
          done();
        },
      }),
    }),
  ],
});

let app: TestApp;
let receiver: Receiver;

beforeAll(async () => {
  receiver = await startReceiver();
  app = await startTestApp(
    {
      POSTBOX_ROLE: 'all',
      SSRF_ALLOW_CIDRS: '127.0.0.0/8',
      POLL_INTERVAL_MS: '50',
      BREAKER_FAILURE_THRESHOLD: '1000',
    },
    logger,
  );
});
afterAll(async () => {
  await app.close();
  await receiver.close();
});

const overLimitLines = () =>
  lines.filter((l) => l.message === 'tenant DLQ over max_dlq_size (nothing is dropped)');

it('a DLQ past max_dlq_size is logged and counted once per crossing, flagged in GET /quotas, and kept whole', async () => {
  receiver.on('/refuses', { status: 500 });
  const tenant = await app.createTenant('dlq-limit', { max_dlq_size: 2 });
  const hook = await app.request('POST', '/webhooks', {
    key: tenant.apiKey,
    body: {
      url: receiver.url('/refuses'),
      retry_policy: { max_attempts: 1, initial_delay_ms: 100, max_delay_ms: 100 },
    },
  });
  expect(hook.status).toBe(201);
  const events = Array.from({ length: 5 }, (_, i) => ({ type: 'dlq.test', payload: { i } }));
  const quota = () => app.request('GET', `/quotas/${tenant.id}`, { key: tenant.apiKey });
  const metric = async () =>
    sampleValue(await (await fetch(`${app.baseUrl}/metrics`)).text(), 'postbox_tenant_dlq_over_limit_total');
  expect(await metric()).toBe(0);
  const text = await (await fetch(`${app.baseUrl}/metrics`)).text();
  expect(sampleValue(text, 'postbox_webhook_health_events_total', { event: 'breaker_opened' })).toBe(0);

  await app.request('POST', '/events/batch', { key: tenant.apiKey, body: { events } });
  await waitFor(async () => (await quota()).body.current_usage.dlq_size === 5, { what: '5 dead deliveries' });
  expect((await quota()).body.current_usage).toMatchObject({ dlq_size: 5, over_dlq_limit: true });
  expect(overLimitLines()).toEqual([
    expect.objectContaining({ level: 'warn', tenant_id: tenant.id, max_dlq_size: 2 }),
  ]);
  expect(await metric()).toBe(1);

  // Still over the limit: more dead deliveries are no new crossing.
  await app.request('POST', '/events/batch', { key: tenant.apiKey, body: { events } });
  await waitFor(async () => (await quota()).body.current_usage.dlq_size === 10, {
    what: '10 dead deliveries',
  });
  expect(overLimitLines()).toHaveLength(1);

  // Emptied by a retry, then over again: a second crossing.
  const retried = await app.request('POST', '/dlq/retry', { key: tenant.apiKey, body: {} });
  expect(retried.body).toEqual({ requeued: 10 });
  await waitFor(async () => (await quota()).body.current_usage.dlq_size === 10, { what: 'all dead again' });
  await waitFor(() => overLimitLines().length === 2, { what: 'the second crossing' });
  expect(await metric()).toBe(2);
});
