import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startTestApp, startTestAppOn, type ApiResponse, type TestApp } from '../helpers/app.js';
import { waitFor } from '../helpers/wait.js';

let app: TestApp;
/** A second instance on the same database: another Postbox process. */
let second: TestApp;
beforeAll(async () => {
  app = await startTestApp();
  second = await startTestAppOn(app.db);
});
afterAll(async () => {
  await second.close();
  await app.close();
});

/** Waits until the database clock is early in a second, so a short burst stays in one window. */
async function freshSecond(): Promise<void> {
  await waitFor(
    async () => {
      const { rows } = await app.db.pool.query('SELECT extract(epoch FROM clock_timestamp()) % 1 AS f');
      return Number(rows[0].f) < 0.4;
    },
    { intervalMs: 10, what: 'the start of a second' },
  );
}

async function storedEvents(tenantId: string): Promise<number> {
  const { rows } = await app.db.pool.query('SELECT count(*)::int AS n FROM events WHERE tenant_id = $1', [
    tenantId,
  ]);
  return rows[0].n;
}

async function windows(tenantId: string): Promise<number[]> {
  const { rows } = await app.db.pool.query('SELECT count FROM rate_windows WHERE tenant_id = $1', [tenantId]);
  return rows.map((r) => r.count);
}

function post(instance: TestApp, key: string, i: number): Promise<ApiResponse> {
  return instance.request('POST', '/events', { key, body: { type: 'order.created', payload: { i } } });
}

function expectRateLimited(res: ApiResponse, message: RegExp) {
  expect(res.status).toBe(429);
  expect(res.body.error.code).toBe('rate_limited');
  expect(res.body.error.message).toMatch(message);
  const retryAfter = res.headers.get('retry-after');
  expect(retryAfter).toMatch(/^\d+$/);
  expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
}

describe('max_events_per_sec at ingest', () => {
  it('answers 429 with Retry-After over the limit and stores nothing for it', async () => {
    const t = await app.createTenant('limited', { max_events_per_sec: 3 });
    const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => post(app, t.apiKey, i)));
    const accepted = answers.filter((r) => r.status === 202);
    const refused = answers.filter((r) => r.status !== 202);
    // Even if the burst straddles two windows, at most 2 × 3 get through.
    expect(accepted.length).toBeGreaterThanOrEqual(1);
    expect(refused.length).toBeGreaterThanOrEqual(4);
    for (const r of refused) expectRateLimited(r, /max_events_per_sec \(3\)/);
    expect(await storedEvents(t.id)).toBe(accepted.length);
    for (const count of await windows(t.id)) expect(count).toBeLessThanOrEqual(3);
  });

  it('counts a batch as its number of events', async () => {
    const t = await app.createTenant('batcher', { max_events_per_sec: 5 });
    const events = (n: number) =>
      Array.from({ length: n }, (_, i) => ({ type: 'order.created', payload: { i } }));
    const tooBig = await app.request('POST', '/events/batch', { key: t.apiKey, body: { events: events(6) } });
    expectRateLimited(tooBig, /6 events are more than max_events_per_sec \(5\)/);
    expect(await storedEvents(t.id)).toBe(0);

    await freshSecond();
    const fits = await app.request('POST', '/events/batch', { key: t.apiKey, body: { events: events(5) } });
    expect(fits.status).toBe(202);
    const more = await post(app, t.apiKey, 99);
    expectRateLimited(more, /retry after the current second/);
    expect(await storedEvents(t.id)).toBe(5);
  });

  it('checks each tenant of an admin batch', async () => {
    const small = await app.createTenant('small', { max_events_per_sec: 1 });
    const big = await app.createTenant('big', { max_events_per_sec: 100 });
    const res = await app.request('POST', '/events/batch', {
      body: {
        events: [
          { type: 'a', payload: {}, tenant_id: big.id },
          { type: 'a', payload: {}, tenant_id: small.id },
          { type: 'a', payload: {}, tenant_id: small.id },
        ],
      },
    });
    expectRateLimited(res, /max_events_per_sec \(1\)/);
    expect(await storedEvents(big.id)).toBe(0);
    // What the big tenant's share took was given back.
    await waitFor(async () => (await windows(big.id)).every((c) => c === 0), { what: 'the refund' });
  });

  it('does not spend quota on requests refused as invalid', async () => {
    const t = await app.createTenant('careful', { max_events_per_sec: 1 });
    await freshSecond();
    const bad = await app.request('POST', '/events', { key: t.apiKey, body: { payload: {} } });
    expect(bad.status).toBe(400);
    expect((await post(app, t.apiKey, 1)).status).toBe(202);
  });

  it('shares the limit between two instances on one database', async () => {
    const t = await app.createTenant('shared', { max_events_per_sec: 4 });
    await freshSecond();
    const answers = await Promise.all(
      Array.from({ length: 12 }, (_, i) => post(i % 2 ? app : second, t.apiKey, i)),
    );
    const accepted = answers.filter((r) => r.status === 202).length;
    // Per-process limits would let 8 through in one second; shared, at most 4 per window.
    const counts = await windows(t.id);
    for (const count of counts) expect(count).toBeLessThanOrEqual(4);
    expect(counts.reduce((a, b) => a + b, 0)).toBe(accepted);
    expect(await storedEvents(t.id)).toBe(accepted);
    expect(answers.filter((r) => r.status === 429).length).toBe(12 - accepted);
    expect(12 - accepted).toBeGreaterThanOrEqual(4);
    // In one window (the usual case after freshSecond) exactly the limit got through, from both.
    if (counts.length === 1) expect(accepted).toBe(4);
  });

  it('shows this second in GET /quotas', async () => {
    const t = await app.createTenant('visible', { max_events_per_sec: 50 });
    await freshSecond();
    await post(app, t.apiKey, 1);
    await post(second, t.apiKey, 2);
    const res = await app.request('GET', `/quotas/${t.id}`, { key: t.apiKey });
    expect(res.body.current_usage.events_this_second).toBe(2);
  });
});
