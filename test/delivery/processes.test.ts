/**
 * Real worker processes (node src/main.ts, POSTBOX_ROLE=worker) against one database: what happens
 * when there are several of them, when one is killed with SIGKILL mid-delivery, and when one is
 * stopped with SIGTERM. Events come in through the API of an API-only instance, as in production.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { killAllPostboxes, spawnPostbox, type LogLine } from '../helpers/processes.js';
import { startTrackingReceiver, type TrackingReceiver } from '../helpers/tracking-receiver.js';
import { waitFor } from '../helpers/wait.js';

let app: TestApp;
let tenantKey: string;
let receiver: TrackingReceiver | undefined;

beforeAll(async () => {
  app = await startTestApp({ SSRF_ALLOW_CIDRS: '127.0.0.0/8' });
  const tenant = await app.createTenant('processes', {
    max_events_per_sec: 1_000_000,
    max_concurrent_deliveries: 100_000,
  });
  tenantKey = tenant.apiKey;
}, 60_000);

afterEach(async () => {
  await killAllPostboxes();
  await receiver?.close();
  receiver = undefined;
});

afterAll(async () => {
  await killAllPostboxes();
  await app.close();
});

const db = () => app.db.pool;

/** A webhook for `types` only, so each test's events reach only its own receiver. */
async function createWebhook(url: string, types: string, timeoutMs: number): Promise<string> {
  const res = await app.request('POST', '/webhooks', {
    key: tenantKey,
    body: {
      url,
      event_types: [types],
      timeout_ms: timeoutMs,
      max_concurrency: 100,
      retry_policy: { max_attempts: 5, initial_delay_ms: 100, max_delay_ms: 1000 },
    },
  });
  if (res.status !== 201) throw new Error(`POST /webhooks: ${res.status} ${JSON.stringify(res.body)}`);
  // These tests are about leases and claims, not the adaptive limit (adaptive-concurrency.test.ts): start
  // at the ceiling, since they hold 20 requests open at once and spread load over the workers at once.
  await db().query('UPDATE webhooks SET concurrency_limit = max_concurrency WHERE id = $1', [res.body.id]);
  return res.body.id;
}

/** Ingests `count` events of `type` through POST /events/batch, 1000 per request; their delivery ids. */
async function ingest(type: string, count: number): Promise<string[]> {
  const ids: string[] = [];
  for (let start = 0; start < count; start += 1000) {
    const n = Math.min(1000, count - start);
    const events = Array.from({ length: n }, (_, i) => ({ type, payload: { n: start + i } }));
    const res = await app.request('POST', '/events/batch', { key: tenantKey, body: { events } });
    if (res.status !== 202) throw new Error(`POST /events/batch: ${res.status} ${JSON.stringify(res.body)}`);
    for (const e of res.body.data) ids.push(...e.delivery_ids);
  }
  return ids;
}

interface Row {
  id: string;
  status: string;
  attempts: number;
  lease_owner: string | null;
  lease_expires_at: Date | null;
}

async function deliveries(ids: string[]): Promise<Map<string, Row>> {
  const { rows } = await db().query<Row>(
    'SELECT id, status, attempts, lease_owner, lease_expires_at FROM deliveries WHERE id = ANY($1::uuid[])',
    [ids],
  );
  return new Map(rows.map((r) => [r.id, r]));
}

async function statuses(ids: string[]): Promise<Record<string, number>> {
  const { rows } = await db().query<{ status: string; n: number }>(
    'SELECT status, count(*)::int AS n FROM deliveries WHERE id = ANY($1::uuid[]) GROUP BY status',
    [ids],
  );
  return Object.fromEntries(rows.map((r) => [r.status, r.n]));
}

function allSucceeded(ids: string[], timeoutMs: number) {
  return waitFor(async () => (await statuses(ids)).succeeded === ids.length, {
    timeoutMs,
    intervalMs: 100,
    what: `${ids.length} deliveries to succeed`,
  });
}

const attemptLogs = (logs: LogLine[]) => logs.filter((l) => l.message === 'delivery attempt').length;

describe('maintenance in worker processes', () => {
  it('a worker schedules its maintenance jobs on pg-boss (the API-only instance does not) and stops on SIGTERM', async () => {
    const schema = async () =>
      (await db().query(`SELECT to_regnamespace('pgboss') AS s`)).rows[0].s as string | null;
    expect(await schema()).toBeNull(); // the API-only instance started no scheduler
    const w = await spawnPostbox(app.db.url, { name: 'w', env: { SHUTDOWN_GRACE_MS: '3000' } });
    const { rows } = await db().query('SELECT name, cron FROM pgboss.schedule ORDER BY name');
    expect(rows).toEqual([
      { name: 'postbox-client-certificates', cron: '37 * * * *' },
      { name: 'postbox-partitions', cron: '7 * * * *' },
      { name: 'postbox-retention', cron: '17 3 * * *' },
    ]);
    w.signal('SIGTERM');
    const exit = await w.exited;
    expect(exit.code).toBe(0);
    expect(exit.afterSignalMs).toBeLessThan(3000);
  }, 30_000);
});

describe('several worker processes', () => {
  it('deliver 10,000 deliveries exactly once each, never the same one twice at once', async () => {
    const r = (receiver = await startTrackingReceiver());
    // Four webhooks of 2,500 each: one webhook's max_concurrency (at most 100) would make this a test
    // of that limit instead of the two workers' throughput.
    const parts = ['a', 'b', 'c', 'd'];
    for (const p of parts) await createWebhook(r.url, `load.${p}`, 5000);
    const workers = await Promise.all([
      spawnPostbox(app.db.url, { name: 'w1' }),
      spawnPostbox(app.db.url, { name: 'w2' }),
    ]);
    const ids: string[] = [];
    for (const p of parts) ids.push(...(await ingest(`load.${p}`, 2500)));
    expect(new Set(ids).size).toBe(10_000);

    await waitFor(() => r.counts.size >= 10_000, {
      timeoutMs: 45_000,
      intervalMs: 100,
      what: 'every delivery id at the receiver',
    });
    await allSucceeded(ids, 10_000);

    expect(r.overlaps).toEqual([]);
    expect([...r.counts.keys()].sort()).toEqual([...ids].sort());
    // No crash, so at-least-once allows no duplicates at all.
    expect([...r.counts.values()].filter((n) => n !== 1)).toEqual([]);
    // Both processes took part (disjoint claims, not one idle bystander).
    const perWorker = workers.map((w) => attemptLogs(w.logs));
    expect(perWorker[0]! + perWorker[1]!).toBe(10_000);
    expect(Math.min(...perWorker)).toBeGreaterThan(0);
  }, 60_000);
});

describe('a worker killed with SIGKILL mid-delivery', () => {
  it('loses nothing: a worker started after it delivers again', async () => {
    const r = (receiver = await startTrackingReceiver());
    // timeout 3 s: the lease is max(LEASE_SECONDS 5, timeout + 5 s) = 8 s.
    await createWebhook(r.url, 'crash.*', 3000);
    r.hold = true;
    const w1 = await spawnPostbox(app.db.url, { name: 'w1' });
    const ids = await ingest('crash.item', 20);
    await waitFor(() => r.held === 20, { what: 'all 20 requests held open at the receiver' });
    const claimed = await deliveries(ids);
    expect([...claimed.values()].every((d) => d.status === 'in_flight')).toBe(true);

    w1.signal('SIGKILL');
    expect((await w1.exited).signal).toBe('SIGKILL');
    // The kernel closed its connections: the receiver sees every request abandoned, none answered.
    await waitFor(() => r.open === 0, { what: 'the killed worker’s connections to close' });
    expect(r.abandoned.sort()).toEqual([...ids].sort());
    r.hold = false;

    const w2 = await spawnPostbox(app.db.url, { name: 'w2' });
    await allSucceeded(ids, 20_000);

    expect(r.overlaps).toEqual([]);
    for (const id of ids) expect(r.counts.get(id)).toBe(2); // the crash's duplicate, and only that
    const again = r.arrivals.slice(20);
    expect(again).toHaveLength(20);
    // As a second attempt: the claim counted the one the crash interrupted. (When: the next test.)
    for (const a of again) expect(a.attempt).toBe(2);
    expect(attemptLogs(w2.logs)).toBe(20);
  }, 60_000);
});

describe('a worker killed with SIGKILL while holding every slot of a webhook', () => {
  it('another running worker resumes within 5 s, long before the lease would end', async () => {
    const r = (receiver = await startTrackingReceiver());
    // timeout 30 s: the lease is 35 s, so only noticing that the worker is gone brings them back in time.
    const webhookId = await createWebhook(r.url, 'slots.*', 30_000);
    const slots = 5;
    const patched = await app.request('PATCH', `/webhooks/${webhookId}`, {
      key: tenantKey,
      body: { max_concurrency: slots },
    });
    expect(patched.status).toBe(200);
    r.hold = true;
    const w1 = await spawnPostbox(app.db.url, { name: 'w1' });
    const ids = await ingest('slots.item', 2 * slots);
    await waitFor(() => r.held === slots, { what: 'w1 to hold every slot open at the receiver' });
    const w2 = await spawnPostbox(app.db.url, { name: 'w2' });
    const held = [...(await deliveries(ids)).values()].filter((d) => d.status === 'in_flight');
    expect(held).toHaveLength(slots);
    const leaseEnd = Math.min(...held.map((d) => d.lease_expires_at!.getTime()));
    expect(attemptLogs(w2.logs)).toBe(0); // every slot is w1's: w2 has nothing it may claim

    r.hold = false;
    w1.signal('SIGKILL');
    const killedAt = Date.now();
    expect((await w1.exited).signal).toBe('SIGKILL');
    const again = await waitFor(
      () => r.arrivals.find((a) => held.some((d) => d.id === a.id) && a.attempt === 2),
      { timeoutMs: 20_000, what: 'a delivery w1 held to arrive again' },
    );
    expect(again.at - killedAt).toBeLessThan(5000);
    expect(again.at).toBeLessThan(leaseEnd);
    await allSucceeded(ids, 20_000);
    expect(r.overlaps).toEqual([]);
    expect(
      w2.logs.some((l) => l.message === 'leases of gone workers ended; their deliveries are claimable now'),
    ).toBe(true);
  }, 60_000);
});

describe('a worker stopped with SIGTERM', () => {
  const env = { WORKER_CONCURRENCY: '5' };

  it('lets in-flight attempts finish within the grace, releases the rest, exits 0', async () => {
    const r = (receiver = await startTrackingReceiver());
    await createWebhook(r.url, 'drain.*', 10_000);
    r.hold = true;
    const w1 = await spawnPostbox(app.db.url, { name: 'w1', env: { ...env, SHUTDOWN_GRACE_MS: '4000' } });
    const ids = await ingest('drain.item', 20);
    await waitFor(() => r.held === 5, { what: '5 requests (the worker’s concurrency) held open' });
    const inFlight = [...r.counts.keys()];

    w1.signal('SIGTERM');
    await w1.waitForLog('shutting down');
    r.hold = false;
    r.release(200); // the attempts end inside the grace
    const exit = await w1.exited;
    expect(exit.code).toBe(0);
    expect(exit.afterSignalMs).toBeLessThan(4000);

    const after = await deliveries(ids);
    for (const id of ids) {
      const d = after.get(id)!;
      if (inFlight.includes(id)) expect(d).toMatchObject({ status: 'succeeded', attempts: 1 });
      else expect(d).toMatchObject({ status: 'pending', attempts: 0, lease_owner: null });
    }
    const { rows } = await db().query(
      'SELECT delivery_id, attempt, status_code FROM delivery_attempts WHERE delivery_id = ANY($1::uuid[])',
      [ids],
    );
    expect(rows.map((a) => a.delivery_id).sort()).toEqual([...inFlight].sort());
    expect(rows.every((a) => a.attempt === 1 && a.status_code === 200)).toBe(true);
    expect(r.counts.size).toBe(5); // nothing else was started after the signal

    await spawnPostbox(app.db.url, { name: 'w2', env });
    await allSucceeded(ids, 15_000);
    expect(r.overlaps).toEqual([]);
    // A clean stop makes no duplicates.
    expect([...r.counts.values()].every((n) => n === 1)).toBe(true);
    expect(r.counts.size).toBe(20);
  }, 60_000);

  it('aborts attempts still running when the grace ends and releases them, exits 0', async () => {
    const r = (receiver = await startTrackingReceiver());
    await createWebhook(r.url, 'abort.*', 10_000);
    r.hold = true;
    const grace = 1500;
    const w1 = await spawnPostbox(app.db.url, {
      name: 'w1',
      env: { ...env, SHUTDOWN_GRACE_MS: String(grace) },
    });
    const ids = await ingest('abort.item', 10);
    await waitFor(() => r.held === 5, { what: '5 requests held open' });
    const interrupted = [...r.counts.keys()];

    w1.signal('SIGTERM'); // and never answer
    const exit = await w1.exited;
    expect(exit.code).toBe(0);
    // The grace, then at most ~1 s for aborted attempts to unwind and the claims to be released.
    expect(exit.afterSignalMs).toBeGreaterThanOrEqual(grace);
    expect(exit.afterSignalMs).toBeLessThan(grace + 2500);
    expect(r.abandoned.sort()).toEqual([...interrupted].sort());

    const after = await deliveries(ids);
    for (const id of ids) expect(after.get(id)).toMatchObject({ status: 'pending', lease_owner: null });
    r.hold = false;

    await spawnPostbox(app.db.url, { name: 'w2', env });
    await allSucceeded(ids, 15_000);
    expect(r.overlaps).toEqual([]);
    for (const id of ids) expect(r.counts.get(id)).toBe(interrupted.includes(id) ? 2 : 1);
  }, 60_000);
});
