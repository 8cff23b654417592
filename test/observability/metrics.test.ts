/**
 * GET /metrics: the named series exist, carry no ids, and move when events are ingested (POST
 * /events) and delivered (a real engine and receiver); the queue gauges follow the database and never
 * make a scrape hang.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createPool } from '../../src/db/pool.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { queueEvent } from '../helpers/fixtures.js';
import { sqlDeadDelivery, sqlDelivery, sqlEvent, sqlTenant, sqlWebhook } from '../helpers/fixtures-sql.js';
import { metricNames, parseSamples, sampleValue } from '../helpers/prom.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { waitFor } from '../helpers/wait.js';

const NAMED = [
  'postbox_events_ingested_total',
  'postbox_deliveries_total',
  'postbox_delivery_attempt_duration_seconds',
  'postbox_delivery_lag_seconds',
  'postbox_delivery_failures_total',
  'postbox_queue_depth',
  'postbox_dlq_size',
  'postbox_oldest_due_seconds',
  'postbox_leases_expired',
  'postbox_queue_stats_up',
  'postbox_http_request_duration_seconds',
  'postbox_claim_batch_size',
  'postbox_claim_duration_seconds',
  'postbox_deliveries_revived_total',
  'postbox_attempt_partitions_ahead_seconds',
  'postbox_attempt_partition_default_rows',
  'postbox_webhook_client_certificates_expiring',
  'process_cpu_seconds_total',
  'nodejs_eventloop_lag_seconds',
];
const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i;

let api: TestApp; // no engine: the queue stays as the fixtures leave it
let full: TestApp; // API and engine, delivering to `receiver`
let receiver: Receiver;

beforeAll(async () => {
  receiver = await startReceiver();
  [api, full] = await Promise.all([
    startTestApp(),
    startTestApp({ POSTBOX_ROLE: 'all', SSRF_ALLOW_CIDRS: '127.0.0.0/8', POLL_INTERVAL_MS: '50' }),
  ]);
});
afterAll(async () => {
  await Promise.all([api?.close(), full?.close()]);
  await receiver?.close();
});

async function scrape(app: TestApp): Promise<string> {
  const res = await fetch(`${app.baseUrl}/metrics`);
  expect(res.status).toBe(200);
  return res.text();
}

describe('GET /metrics', () => {
  it('answers Prometheus text without a key, with every named series', async () => {
    const res = await fetch(`${api.baseUrl}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const names = metricNames(await res.text());
    for (const name of NAMED) expect(names).toContain(name);
  });

  it('starts every delivery outcome at zero, so rates work before the first delivery', async () => {
    const text = await scrape(api);
    for (const outcome of ['succeeded', 'failed_attempt', 'dead'])
      expect(sampleValue(text, 'postbox_deliveries_total', { outcome })).toBe(0);
  });

  it('labels requests by route pattern and status, never by the ids in the path', async () => {
    const tenant = await api.createTenant('routes');
    expect((await api.request('GET', `/tenants/${tenant.id}`)).status).toBe(200);
    expect((await api.request('GET', '/tenants/0190b6a4-3f1e-7c3a-9d2e-000000000000')).status).toBe(404);
    expect((await api.request('GET', '/no/such/route')).status).toBe(404);
    const text = await scrape(api);
    const count = (labels: Record<string, string>) =>
      sampleValue(text, 'postbox_http_request_duration_seconds_count', labels);
    expect(count({ route: '/tenants/:id', method: 'GET', status: '200' })).toBe(1);
    expect(count({ route: '/tenants/:id', method: 'GET', status: '404' })).toBe(1);
    expect(count({ route: '/tenants', method: 'POST', status: '201' })).toBeGreaterThanOrEqual(1);
    expect(count({ route: 'unmatched', method: 'GET', status: '404' })).toBeGreaterThanOrEqual(1);
    for (const s of parseSamples(text))
      for (const value of Object.values(s.labels)) expect(value).not.toMatch(UUID);
  });

  it('queue gauges follow the database: due, parked, scheduled, in flight, expired leases, DLQ, oldest due', async () => {
    const db = api.db.pool;
    const tenant = await sqlTenant(db);
    const hook = await sqlWebhook(db, tenant.id);
    const delivery = async (d: Partial<Parameters<typeof sqlDelivery>[1]>) =>
      sqlDelivery(db, {
        tenantId: tenant.id,
        webhookId: hook.id,
        eventId: (await sqlEvent(db, tenant.id)).id,
        ...d,
      });
    const minute = 60_000;
    await delivery({ nextAttemptAt: new Date(Date.now() - 5 * minute) });
    await delivery({ nextAttemptAt: new Date(Date.now() - minute) });
    await delivery({ nextAttemptAt: new Date(Date.now() + 10 * minute) });
    await delivery({ status: 'in_flight' });
    await delivery({ status: 'in_flight', leaseExpiresAt: new Date(Date.now() - minute) });
    await delivery({ status: 'succeeded' });
    await sqlDeadDelivery(db, tenant.id, hook.id);
    // A disabled webhook's due backlog waits for the webhook, not for workers: parked, and it does not
    // age the oldest-due gauge; its lapsed lease is not one the claim would retake either.
    const off = await sqlWebhook(db, tenant.id, { enabled: false });
    for (const d of [
      { nextAttemptAt: new Date(Date.now() - 30 * minute) },
      { status: 'in_flight' as const, leaseExpiresAt: new Date(Date.now() - minute) },
    ])
      await sqlDelivery(db, {
        tenantId: tenant.id,
        webhookId: off.id,
        eventId: (await sqlEvent(db, tenant.id)).id,
        ...d,
      });

    // The app's reading is cached for a few seconds: wait for the next one.
    const text = await waitFor(
      async () => {
        const t = await scrape(api);
        return sampleValue(t, 'postbox_dlq_size') === 1 ? t : undefined;
      },
      { what: 'the DLQ gauge to read 1' },
    );
    expect(sampleValue(text, 'postbox_queue_depth', { state: 'due' })).toBe(2);
    expect(sampleValue(text, 'postbox_queue_depth', { state: 'parked' })).toBe(1);
    expect(sampleValue(text, 'postbox_queue_depth', { state: 'held' })).toBe(0);
    expect(sampleValue(text, 'postbox_queue_depth', { state: 'scheduled' })).toBe(1);
    expect(sampleValue(text, 'postbox_queue_depth', { state: 'in_flight' })).toBe(3);
    expect(sampleValue(text, 'postbox_leases_expired')).toBe(1);
    expect(sampleValue(text, 'postbox_oldest_due_seconds')).toBeGreaterThanOrEqual(5 * 60);
    expect(sampleValue(text, 'postbox_oldest_due_seconds')).toBeLessThan(6 * 60);
    expect(sampleValue(text, 'postbox_queue_stats_up')).toBe(1);
  });
});

describe('queue gauges when the database is slow or away', () => {
  it('a database that refuses connections: /metrics still answers, with postbox_queue_stats_up 0', async () => {
    const pool = createPool('postgres://postgres@127.0.0.1:1/none', 2);
    const metrics = createMetrics({ pool, defaultMetrics: false });
    try {
      const text = await metrics.render();
      expect(sampleValue(text, 'postbox_queue_stats_up')).toBe(0);
      expect(sampleValue(text, 'postbox_queue_depth', { state: 'due' })).toBeUndefined();
    } finally {
      await pool.end();
    }
  });

  it('a pool with no free connection: the scrape gives up after maxWaitMs and serves the last values', async () => {
    const pool = createPool(api.db.url, 2);
    const metrics = createMetrics({
      pool,
      defaultMetrics: false,
      queueStats: { ttlMs: 0, maxWaitMs: 300 },
    });
    const held = [await pool.connect(), await pool.connect()];
    try {
      const started = Date.now();
      const text = await metrics.render();
      expect(Date.now() - started).toBeLessThan(2000);
      expect(sampleValue(text, 'postbox_queue_stats_up')).toBe(0);
    } finally {
      held.forEach((c) => c.release());
    }
    // Connections free again: the reading that was waiting completes and the next scrape is healthy.
    await waitFor(async () => sampleValue(await metrics.render(), 'postbox_queue_stats_up') === 1, {
      what: 'queue stats to recover',
    });
    await pool.end();
  });

  it('reuses one reading within ttlMs', async () => {
    const db = api.db.pool;
    const metrics = createMetrics({ pool: db, defaultMetrics: false, queueStats: { ttlMs: 60_000 } });
    const before = sampleValue(await metrics.render(), 'postbox_queue_depth', { state: 'scheduled' })!;
    const tenant = await sqlTenant(db);
    const hook = await sqlWebhook(db, tenant.id);
    await sqlDelivery(db, {
      tenantId: tenant.id,
      webhookId: hook.id,
      eventId: (await sqlEvent(db, tenant.id)).id,
      nextAttemptAt: new Date(Date.now() + 3_600_000),
    });
    expect(sampleValue(await metrics.render(), 'postbox_queue_depth', { state: 'scheduled' })).toBe(before);
    const fresh = createMetrics({ pool: db, defaultMetrics: false, queueStats: { ttlMs: 0 } });
    expect(sampleValue(await fresh.render(), 'postbox_queue_depth', { state: 'scheduled' })).toBe(before + 1);
  });
});

describe('recording', () => {
  it('the recording functions move their series', async () => {
    const metrics = createMetrics({ defaultMetrics: false });
    metrics.eventsIngested(3);
    metrics.eventsIngested(0);
    metrics.deliveryOutcome('succeeded', 120, 2500);
    metrics.deliveryOutcome('failed_attempt', 30_000);
    metrics.deliveryOutcome('dead', 15);
    metrics.claimed(7, 2);
    metrics.httpRequest('/events', 'BREW', 404, 1);
    const text = await metrics.render();
    expect(sampleValue(text, 'postbox_events_ingested_total')).toBe(3);
    expect(sampleValue(text, 'postbox_deliveries_total', { outcome: 'succeeded' })).toBe(1);
    expect(sampleValue(text, 'postbox_deliveries_total', { outcome: 'failed_attempt' })).toBe(1);
    expect(sampleValue(text, 'postbox_deliveries_total', { outcome: 'dead' })).toBe(1);
    expect(
      sampleValue(text, 'postbox_delivery_attempt_duration_seconds_bucket', {
        outcome: 'succeeded',
        le: '0.25',
      }),
    ).toBe(1);
    expect(sampleValue(text, 'postbox_delivery_lag_seconds_sum')).toBeCloseTo(2.5);
    expect(sampleValue(text, 'postbox_delivery_lag_seconds_count')).toBe(1);
    expect(sampleValue(text, 'postbox_claim_batch_size_sum')).toBe(7);
    // An unknown method cannot add label values.
    expect(sampleValue(text, 'postbox_http_request_duration_seconds_count', { method: 'OTHER' })).toBe(1);
    // Without a pool there are no queue gauges rather than zeros that look real.
    expect(metricNames(text)).not.toContain('postbox_queue_depth');
  });

  it('instances do not share a registry', async () => {
    const a = createMetrics({ defaultMetrics: false });
    const b = createMetrics({ defaultMetrics: false });
    a.eventsIngested(5);
    expect(sampleValue(await b.render(), 'postbox_events_ingested_total')).toBe(0);
  });
});

describe('through the API and the engine', () => {
  it('POST /events counts stored events, not idempotent repeats', async () => {
    const tenant = await full.createTenant('ingest-metrics');
    const before = sampleValue(await scrape(full), 'postbox_events_ingested_total')!;
    const send = (key: string) =>
      full.request('POST', '/events', {
        key: tenant.apiKey,
        body: { type: 'metrics.test', payload: {}, idempotency_key: key },
      });
    expect((await send('a')).status).toBe(202);
    expect((await send('a')).status).toBe(200);
    expect(
      (
        await full.request('POST', '/events/batch', {
          key: tenant.apiKey,
          body: {
            events: [
              { type: 'metrics.test', payload: {} },
              { type: 'metrics.test', payload: {} },
            ],
          },
        })
      ).status,
    ).toBe(202);
    expect(sampleValue(await scrape(full), 'postbox_events_ingested_total')).toBe(before + 3);
  });

  it('a delivered event moves succeeded, attempt duration, lag and claims', async () => {
    const tenant = await full.createTenant('delivery-metrics');
    const hook = await full.request('POST', '/webhooks', {
      key: tenant.apiKey,
      body: { url: receiver.url('/ok'), event_types: ['paid.*'] },
    });
    expect(hook.status).toBe(201);
    const before = await scrape(full);
    const res = await full.request('POST', '/events', {
      key: tenant.apiKey,
      body: { type: 'paid.ok', payload: { n: 1 } },
    });
    expect(res.status).toBe(202);
    expect(res.body.webhooks_queued).toBe(1);
    await receiver.waitForRequests(1, '/ok');
    const value = (t: string, name: string, labels: Record<string, string> = {}) =>
      sampleValue(t, name, labels) ?? 0;
    const after = await waitFor(
      async () => {
        const t = await scrape(full);
        return value(t, 'postbox_deliveries_total', { outcome: 'succeeded' }) >
          value(before, 'postbox_deliveries_total', { outcome: 'succeeded' })
          ? t
          : undefined;
      },
      { what: 'a succeeded delivery to be counted' },
    );
    expect(value(after, 'postbox_delivery_lag_seconds_count')).toBe(
      value(before, 'postbox_delivery_lag_seconds_count') + 1,
    );
    expect(
      value(after, 'postbox_delivery_attempt_duration_seconds_count', { outcome: 'succeeded' }),
    ).toBeGreaterThan(
      value(before, 'postbox_delivery_attempt_duration_seconds_count', { outcome: 'succeeded' }),
    );
    expect(value(after, 'postbox_claim_batch_size_sum')).toBeGreaterThan(
      value(before, 'postbox_claim_batch_size_sum'),
    );
  });

  it('a receiver answering 500 moves failed_attempt, then dead when retries run out', async () => {
    receiver.on('/down', { status: 500 });
    const tenant = await sqlTenant(full.db.pool);
    const hook = await sqlWebhook(full.db.pool, tenant.id, {
      url: receiver.url('/down'),
      retryPolicy: { max_attempts: 2, initial_delay_ms: 100, max_delay_ms: 100 },
    });
    const before = await scrape(full);
    await queueEvent(full.db.pool, tenant.id, [hook.id]);
    const count = (t: string, outcome: string) => sampleValue(t, 'postbox_deliveries_total', { outcome })!;
    const after = await waitFor(
      async () => {
        const t = await scrape(full);
        return count(t, 'dead') > count(before, 'dead') ? t : undefined;
      },
      { what: 'a dead delivery to be counted' },
    );
    expect(count(after, 'failed_attempt')).toBe(count(before, 'failed_attempt') + 1);
    expect(count(after, 'dead')).toBe(count(before, 'dead') + 1);
    // Both failures were the receiver's: they count under its cause, never under Postbox's.
    const cause = (t: string, c: string) => sampleValue(t, 'postbox_delivery_failures_total', { cause: c })!;
    expect(cause(after, 'receiver_status')).toBe(cause(before, 'receiver_status') + 2);
    expect(cause(after, 'postbox')).toBe(cause(before, 'postbox'));
    // Lag is only for successes.
    expect(sampleValue(after, 'postbox_delivery_lag_seconds_count')).toBe(
      sampleValue(before, 'postbox_delivery_lag_seconds_count'),
    );
  });
});
