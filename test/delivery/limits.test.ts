/**
 * Concurrency limits in the claim: webhooks.max_concurrency and the tenant's max_concurrent_deliveries,
 * counted from the database so they hold across engines; a webhook at its limit never blocks the
 * webhooks behind it; the breaker's open and half-open states. Claim-level tests call claimDue
 * directly; engine-level ones run two engines against a receiver that counts requests in progress.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { claimDue, lookaheadFor, recordResults, type AttemptResult } from '../../src/queries/deliveries.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { engineStarter, type EngineStarter } from '../helpers/engines.js';
import { queueMany, sqlWebhookOfOwnType } from '../helpers/fixtures.js';
import { sqlTenant, sqlWebhook } from '../helpers/fixtures-sql.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { waitFor } from '../helpers/wait.js';
import { DEFAULT_HEALTH_POLICY } from '../../src/config.js';
import type { Queryable } from '../../src/db/pool.js';

/** recordResults under the default breaker policy. */
const record = (...a: [Queryable, string, readonly AttemptResult[]]) =>
  recordResults(...a, DEFAULT_HEALTH_POLICY);

let app: TestApp;
let receiver: Receiver;
let engines: EngineStarter;
const db = () => app.db.pool;

beforeAll(async () => {
  receiver = await startReceiver();
  app = await startTestApp({ POSTBOX_ROLE: 'api' });
  engines = engineStarter(app);
});
afterEach(() => engines.stopAll());
afterAll(async () => {
  await app.close();
  await receiver.close();
});

const claim = (workerId: string, limit: number) =>
  claimDue(db(), { workerId, limit, leaseSeconds: 60, defaultMaxAttempts: 10 });

const ok = (deliveryId: string, attempt = 1): AttemptResult => ({
  deliveryId,
  attempt,
  startedAt: new Date(),
  durationMs: 5,
  statusCode: 200,
  error: null,
  responseExcerpt: null,
  outcome: 'succeeded',
  retryDelayMs: null,
});

async function tenant(maxConcurrent = 100): Promise<string> {
  const { id } = await sqlTenant(db());
  await db().query(`UPDATE quotas SET max_concurrent_deliveries = $2 WHERE tenant_id = $1`, [
    id,
    maxConcurrent,
  ]);
  return id;
}

describe('claimDue within the limits', () => {
  beforeEach(async () => {
    await db().query('DELETE FROM deliveries');
  });

  it('takes at most max_concurrency of a webhook, counting what is already in flight', async () => {
    const t = await tenant();
    const hook = await sqlWebhook(db(), t, { maxConcurrency: 3 });
    await queueMany(db(), t, hook.id, 10);
    const first = await claim('a', 10);
    expect(first.deliveries).toHaveLength(3);
    expect(first.heldBack).toBe(true);
    expect((await claim('b', 10)).deliveries).toHaveLength(0);
    await record(db(), 'a', [ok(first.deliveries[0]!.id)]);
    expect((await claim('b', 10)).deliveries).toHaveLength(1);
  });

  it('a webhook at its limit does not hide the due rows of other webhooks queued behind it', async () => {
    const t = await tenant();
    const slow = await sqlWebhookOfOwnType(db(), t, { maxConcurrency: 2 });
    const others = await Promise.all([1, 2, 3].map(() => sqlWebhookOfOwnType(db(), t)));
    // The slow webhook's backlog is older than everything else and fills the whole head.
    await queueMany(db(), t, slow.id, lookaheadFor(20) * 10, { type: slow.type });
    for (const o of others) await queueMany(db(), t, o.id, 4, { type: o.type });
    const { deliveries } = await claim('w', 20);
    const perHook = new Map<string, number>();
    for (const d of deliveries) perHook.set(d.webhookId, (perHook.get(d.webhookId) ?? 0) + 1);
    expect(perHook.get(slow.id)).toBe(2);
    for (const o of others) expect(perHook.get(o.id)).toBe(4);
    // Saturated now: nothing more to take, and nothing was taken twice.
    expect((await claim('w', 20)).deliveries).toHaveLength(0);
    expect(new Set(deliveries.map((d) => d.id)).size).toBe(14);
  });

  it('shares a batch round-robin between webhooks, not oldest-first into one', async () => {
    const t = await tenant();
    const [a, b] = await Promise.all([1, 2].map(() => sqlWebhookOfOwnType(db(), t, { maxConcurrency: 50 })));
    await queueMany(db(), t, a!.id, 40, { type: a!.type });
    await queueMany(db(), t, b!.id, 40, { type: b!.type });
    const { deliveries } = await claim('w', 10);
    expect(deliveries.filter((d) => d.webhookId === a!.id)).toHaveLength(5);
    expect(deliveries.filter((d) => d.webhookId === b!.id)).toHaveLength(5);
  });

  it("caps a tenant's deliveries in flight at max_concurrent_deliveries, across its webhooks", async () => {
    const t = await tenant(5);
    const other = await tenant();
    const hooks = await Promise.all([1, 2].map(() => sqlWebhookOfOwnType(db(), t)));
    const free = await sqlWebhook(db(), other);
    for (const h of hooks) await queueMany(db(), t, h.id, 10, { type: h.type });
    await queueMany(db(), other, free.id, 3);
    const first = await claim('w', 50);
    expect(first.deliveries.filter((d) => d.tenantId === t)).toHaveLength(5);
    expect(first.deliveries.filter((d) => d.tenantId === other)).toHaveLength(3);
    await record(
      db(),
      'w',
      first.deliveries
        .filter((d) => d.tenantId === t)
        .slice(0, 2)
        .map((d) => ok(d.id)),
    );
    const second = await claim('w', 50);
    expect(second.deliveries).toHaveLength(2);
    expect(second.deliveries.every((d) => d.tenantId === t)).toBe(true);
  });

  it('skips a webhook whose breaker is open; once the cool-down passed, one probe at a time', async () => {
    const t = await tenant();
    const hook = await sqlWebhook(db(), t);
    await queueMany(db(), t, hook.id, 5);
    await db().query(
      `UPDATE webhooks SET breaker_state = 'open', breaker_open_until = now() + interval '1 hour' WHERE id = $1`,
      [hook.id],
    );
    expect((await claim('w', 10)).deliveries).toHaveLength(0);
    await db().query(`UPDATE webhooks SET breaker_open_until = now() - interval '1 second' WHERE id = $1`, [
      hook.id,
    ]);
    const probe = await claim('w', 10);
    expect(probe.deliveries).toHaveLength(1);
    expect((await claim('w', 10)).deliveries).toHaveLength(0); // the probe is still in flight
  });

  it('a claim that meets another claim of the same tenant skips it and says so', async () => {
    const t = await tenant();
    const hook = await sqlWebhook(db(), t);
    await queueMany(db(), t, hook.id, 3);
    const client = await db().connect();
    try {
      await client.query('BEGIN');
      await client.query('SELECT 1 FROM quotas WHERE tenant_id = $1 FOR NO KEY UPDATE', [t]);
      const blocked = await claim('w', 10);
      expect(blocked.deliveries).toHaveLength(0);
      expect(blocked.contended).toBe(3);
    } finally {
      await client.query('ROLLBACK');
      client.release();
    }
    expect((await claim('w', 10)).deliveries).toHaveLength(3);
  });
});

/** Requests in progress per path (arrival until answer), and the most ever at once. */
function trackConcurrency(path: string, delayMs: () => number) {
  let now = 0;
  const peak = { value: 0 };
  receiver.on(path, () => {
    now++;
    peak.value = Math.max(peak.value, now);
    const ms = delayMs();
    setTimeout(() => now--, ms);
    return { delayMs: ms };
  });
  return peak;
}

describe('two engines sharing the limits', () => {
  it('never exceed a webhook’s max_concurrency, and use it', async () => {
    const t = await tenant();
    const a = await sqlWebhookOfOwnType(db(), t, { url: receiver.url('/mc3'), maxConcurrency: 3 });
    const b = await sqlWebhookOfOwnType(db(), t, { url: receiver.url('/mc5'), maxConcurrency: 5 });
    const peakA = trackConcurrency('/mc3', () => 10 + Math.floor(Math.random() * 30));
    const peakB = trackConcurrency('/mc5', () => 10 + Math.floor(Math.random() * 30));
    await queueMany(db(), t, a.id, 120, { type: a.type });
    await queueMany(db(), t, b.id, 120, { type: b.type });
    await Promise.all([engines.start({ concurrency: 30 }), engines.start({ concurrency: 30 })]);
    await waitFor(() => receiver.requestsTo('/mc3').length + receiver.requestsTo('/mc5').length >= 240, {
      timeoutMs: 20_000,
      what: 'all 240 deliveries',
    });
    expect(peakA.value).toBe(3);
    expect(peakB.value).toBe(5);
  });

  it("never exceed a tenant's max_concurrent_deliveries across its webhooks", async () => {
    const t = await tenant(4);
    let now = 0;
    let peak = 0;
    for (const path of ['/t1', '/t2', '/t3'])
      receiver.on(path, () => {
        now++;
        peak = Math.max(peak, now);
        setTimeout(() => now--, 20);
        return { delayMs: 20 };
      });
    for (const path of ['/t1', '/t2', '/t3']) {
      const h = await sqlWebhookOfOwnType(db(), t, { url: receiver.url(path) });
      await queueMany(db(), t, h.id, 40, { type: h.type });
    }
    await Promise.all([engines.start({ concurrency: 30 }), engines.start({ concurrency: 30 })]);
    await waitFor(() => ['/t1', '/t2', '/t3'].every((p) => receiver.requestsTo(p).length >= 40), {
      timeoutMs: 20_000,
      what: 'all 120 deliveries',
    });
    expect(peak).toBe(4);
  });
});
