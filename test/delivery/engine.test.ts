/**
 * The engine's life cycle with engines started by hand against one database: NOTIFY wake-up (and its
 * reconnect), two engines sharing a queue, lease rescue, and shutdown that finishes or releases
 * in-flight work.
 */
import http from 'node:http';
import https from 'node:https';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import {
  startDeliveryEngine,
  type DeliveryEngine,
  type DeliveryEngineOptions,
} from '../../src/delivery/engine.js';
import { silentLogger } from '../../src/logger.js';
import type { RetryPolicy } from '../../src/delivery/retry-policy.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { attemptRows, deliveryState, queueEvent, queueMany } from '../helpers/fixtures.js';
import { sqlDelivery, sqlEvent, sqlTenant, sqlWebhook, testSecretBox } from '../helpers/fixtures-sql.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { claimRounds } from '../helpers/claim-rounds.js';
import { waitFor } from '../helpers/wait.js';

const fast: RetryPolicy = { max_attempts: 3, initial_delay_ms: 100, max_delay_ms: 200 };

let app: TestApp;
let receiver: Receiver;
const engines: DeliveryEngine[] = [];
const db = () => app.db.pool;

beforeAll(async () => {
  receiver = await startReceiver();
  app = await startTestApp({ POSTBOX_ROLE: 'api' });
});
afterEach(async () => {
  await Promise.all(engines.splice(0).map((e) => e.stop(0)));
  await db().query(`UPDATE deliveries SET status = 'cancelled' WHERE status IN ('pending', 'in_flight')`);
});
afterAll(async () => {
  await app.close();
  await receiver.close();
});

async function engine(over: Partial<DeliveryEngineOptions> = {}): Promise<DeliveryEngine> {
  const e = await startDeliveryEngine({
    pool: db(),
    databaseUrl: app.db.url,
    secretBox: testSecretBox,
    logger: silentLogger(),
    concurrency: 20,
    claimBatchSize: 10,
    leaseSeconds: 5,
    pollIntervalMs: 60_000, // tests here must not be rescued by the poll unless they say so
    shutdownGraceMs: 1000,
    ssrfAllowCidrs: ['127.0.0.0/8'],
    ...over,
  });
  engines.push(e);
  return e;
}

/** A webhook in a tenant of its own: events queued for it match no other test's webhooks. */
async function webhook(path: string, maxConcurrency?: number) {
  const { id: tenantId } = await sqlTenant(db());
  const hook = await sqlWebhook(db(), tenantId, {
    url: receiver.url(path),
    retryPolicy: fast,
    timeoutMs: 15_000,
    maxConcurrency,
  });
  return { ...hook, tenantId };
}

async function allInState(ids: string[], status: string, timeoutMs = 10_000) {
  return waitFor(
    async () => {
      const { rows } = await db().query(
        `SELECT count(*)::int AS n FROM deliveries WHERE id = ANY($1) AND status = $2`,
        [ids, status],
      );
      return rows[0].n === ids.length;
    },
    { timeoutMs, what: `${ids.length} deliveries ${status}` },
  );
}

describe('wake-up', () => {
  it('NOTIFY wakes an idle engine at once, long before the poll', async () => {
    const claims: number[] = [];
    await engine({ hooks: { onClaim: (n) => void claims.push(n) } });
    await waitFor(() => claims.length > 0, { what: 'the start-up claim' }); // it would find the quiet event
    const hook = await webhook('/notify');
    // Without a notification nothing happens (the poll is a minute away)...
    const quiet = await queueEvent(db(), hook.tenantId, [hook.id], { notify: false });
    expect(claims.every((n) => n === 0)).toBe(true);
    // ...and one NOTIFY (as ingest sends on commit) delivers it within milliseconds.
    const t0 = Date.now();
    const loud = await queueEvent(db(), hook.tenantId, [hook.id]);
    const reqs = await receiver.waitForRequests(2, '/notify', 2000);
    expect(Math.max(...reqs.map((r) => r.at)) - t0).toBeLessThan(500);
    // The quiet one waited for that NOTIFY: the one claim that took anything took both.
    expect(claims.filter((n) => n > 0)).toEqual([2]);
    await allInState([...quiet.deliveryIds, ...loud.deliveryIds], 'succeeded');
  });

  it('the listener reconnects after its connection is killed', async () => {
    await engine({});
    const listenerPid = () =>
      db()
        .query(
          `SELECT pid FROM pg_stat_activity
            WHERE application_name = 'postbox-listener' AND datname = current_database()`,
        )
        .then((r) => r.rows[0]?.pid as number | undefined);
    const before = await waitFor(listenerPid, { what: 'a listener connection' });
    await db().query('SELECT pg_terminate_backend($1)', [before]);
    await waitFor(
      async () => {
        const pid = await listenerPid();
        return pid !== undefined && pid !== before;
      },
      { what: 'the listener to reconnect' },
    );
    const hook = await webhook('/reconnected');
    const t0 = Date.now();
    await queueEvent(db(), hook.tenantId, [hook.id]);
    const [req] = await receiver.waitForRequests(1, '/reconnected', 3000);
    expect(req!.at - t0).toBeLessThan(1000);
  });

  it('the poll finds due work when nobody notifies', async () => {
    await engine({ pollIntervalMs: 50 });
    const hook = await webhook('/polled');
    const { deliveryIds } = await queueEvent(db(), hook.tenantId, [hook.id], { notify: false });
    await allInState(deliveryIds, 'succeeded', 3000);
  });
});

describe('claim cooldown', () => {
  it('after a claim that ran dry, a wake-up within the cooldown claims once it has passed, not at once', async () => {
    const cooldownMs = 1500;
    const hook = await webhook('/cooldown');
    const claims: { rows: number; began: number }[] = [];
    await engine({
      claimCooldownMs: cooldownMs,
      hooks: { onClaim: (rows, durationMs) => void claims.push({ rows, began: Date.now() - durationMs }) },
    });
    await waitFor(() => claims.length > 0, { what: 'the start-up claim' }); // took nothing: the queue ran dry
    const dryAt = claims[0]!.began;
    const queuedAt = Date.now();
    await queueEvent(db(), hook.tenantId, [hook.id]); // its NOTIFY arrives within milliseconds
    const [req] = await receiver.waitForRequests(1, '/cooldown', 10_000);
    const taking = claims.find((c) => c.rows > 0)!;
    // The claim waited for the cooldown (allowing a timer's 1 ms of rounding)...
    expect(taking.began - dryAt).toBeGreaterThanOrEqual(cooldownMs - 1);
    // ...which had not passed when the event came, so it was not a late NOTIFY; and it was not the poll.
    expect(queuedAt - dryAt).toBeLessThan(cooldownMs);
    expect(req!.at - queuedAt).toBeLessThan(cooldownMs + 2000);
  });

  it('a full claim claims again at once', async () => {
    const hook = await webhook('/cooldown-full');
    const ids = await queueMany(db(), hook.tenantId, hook.id, 7); // no NOTIFY: the start-up claim finds them
    const startedAt = Date.now();
    await engine({ claimBatchSize: 2, claimCooldownMs: 10_000 });
    // Claims of 2, 2, 2 are full and 1 is short: only a claim after that last one would wait 10 s.
    const reqs = await receiver.waitForRequests(7, '/cooldown-full', 8000);
    expect(Math.max(...reqs.map((r) => r.at)) - startedAt).toBeLessThan(8000);
    await allInState(ids, 'succeeded');
  });

  it('a claim that ran dry after 16 rows or more claims again at once: the cooldown is for a trickle', async () => {
    const hook = await webhook('/cooldown-busy');
    // Its adaptive limit opened, so that nothing holds rows back.
    await db().query('UPDATE webhooks SET concurrency_limit = 100 WHERE id = $1', [hook.id]);
    await queueMany(db(), hook.tenantId, hook.id, 20); // no NOTIFY: the start-up claim takes all 20
    const claims: number[] = [];
    await engine({
      concurrency: 100,
      claimBatchSize: 50,
      claimCooldownMs: 10_000,
      hooks: { onClaim: (rows) => void claims.push(rows) },
    });
    await receiver.waitForRequests(20, '/cooldown-busy', 8000);
    expect(claims[0]).toBe(20);
    const queuedAt = Date.now();
    await queueEvent(db(), hook.tenantId, [hook.id]);
    const reqs = await receiver.waitForRequests(21, '/cooldown-busy', 8000);
    expect(Math.max(...reqs.map((r) => r.at)) - queuedAt).toBeLessThan(5000);
  });

  it("a FIFO head's written result claims the next of its queue at once", async () => {
    const hook = await webhook('/cooldown-fifo');
    await db().query(`UPDATE webhooks SET ordering = 'fifo' WHERE id = $1`, [hook.id]);
    const ids = await queueMany(db(), hook.tenantId, hook.id, 3);
    await engine({ claimCooldownMs: 10_000 });
    // Each claim takes one head (short); the next head is claimable only once its result is written.
    const reqs = await receiver.waitForRequests(3, '/cooldown-fifo', 8000);
    expect(reqs.map((r) => JSON.parse(r.body).data.i)).toEqual([1, 2, 3]);
    await allInState(ids, 'succeeded');
  });
});

describe('leases', () => {
  it('an abandoned in-flight delivery is delivered again once its lease expires', async () => {
    const rounds = claimRounds();
    await engine({ pollIntervalMs: 50, hooks: rounds.hooks });
    const hook = await webhook('/abandoned');
    // By hand: ingest cannot leave a delivery in flight under another worker's lease.
    const { id: eventId } = await sqlEvent(db(), hook.tenantId);
    const id = await sqlDelivery(db(), {
      tenantId: hook.tenantId,
      eventId,
      webhookId: hook.id,
      status: 'in_flight',
      attempts: 1,
      leaseOwner: 'a-worker-that-died',
      leaseExpiresAt: new Date(Date.now() + 1500),
    });
    // Still leased: polls run and leave it alone.
    expect(await rounds.claimedInNext(3)).toBe(0);
    expect(receiver.requestsTo('/abandoned')).toHaveLength(0);
    const [req] = await receiver.waitForRequests(1, '/abandoned', 5000);
    expect(req!.headers['webhook-id']).toBe(id);
    expect(req!.headers['x-webhook-attempt']).toBe('2');
    await allInState([id], 'succeeded');
  });

  it('two engines on one database never hold the same delivery at once', async () => {
    const active = new Set<string>();
    const overlaps: string[] = [];
    receiver.on('/shared', (req) => {
      const id = req.headers['webhook-id'] as string;
      if (active.has(id)) overlaps.push(id);
      active.add(id);
      const delayMs = 2 + Math.floor(Math.random() * 10);
      setTimeout(() => active.delete(id), delayMs);
      return { delayMs };
    });
    // Room for both engines at once (the default max_concurrency 10 could let one of them take all).
    const hook = await webhook('/shared', 100);
    // The adaptive limit starts at 10; open it to the ceiling, or one engine could still hold every slot.
    await db().query(`UPDATE webhooks SET concurrency_limit = max_concurrency WHERE id = $1`, [hook.id]);
    const ids = await queueMany(db(), hook.tenantId, hook.id, 400);
    const byEngine = new Map<string, number>();
    const count = (name: string) => () => void byEngine.set(name, (byEngine.get(name) ?? 0) + 1);
    const [a, b] = await Promise.all([
      engine({ concurrency: 16, claimBatchSize: 8, hooks: { onAttempt: count('a') } }),
      engine({ concurrency: 16, claimBatchSize: 8, hooks: { onAttempt: count('b') } }),
    ]);
    a.wake();
    b.wake();
    await allInState(ids, 'succeeded', 20_000);
    expect(overlaps).toEqual([]);
    const received = receiver.requestsTo('/shared').map((r) => r.headers['webhook-id']);
    expect(received).toHaveLength(400);
    expect(new Set(received).size).toBe(400);
    expect(byEngine.get('a')).toBeGreaterThan(0);
    expect(byEngine.get('b')).toBeGreaterThan(0);
  });
});

describe('shutdown', () => {
  it('lets in-flight attempts finish within the grace and records them', async () => {
    receiver.on('/finishing', { delayMs: 300 });
    const e = await engine();
    const hook = await webhook('/finishing');
    const ids = await queueMany(db(), hook.tenantId, hook.id, 5, { notify: true });
    await receiver.waitForRequests(5, '/finishing');
    const t0 = Date.now();
    await e.stop(5000);
    expect(Date.now() - t0).toBeLessThan(3000);
    for (const id of ids) expect((await deliveryState(db(), id)).status).toBe('succeeded');
  });

  it('at the end of the grace: a request that went out is a recorded attempt, one that did not is given back', async () => {
    receiver.on('/hanging', { delayMs: 20_000 });
    // One socket per receiver: the second request waits for it and never goes out.
    const e = await engine({
      agentFactory: () => ({
        http: new http.Agent({ keepAlive: true, maxSockets: 1 }),
        https: new https.Agent(),
      }),
    });
    const hook = await webhook('/hanging');
    const ids = await queueMany(db(), hook.tenantId, hook.id, 2, { notify: true });
    const [req] = await receiver.waitForRequests(1, '/hanging');
    await waitFor(() => e.inFlight === 2, { what: 'both deliveries in flight' });
    const sentId = req!.headers['webhook-id'] as string;
    const queuedId = ids.find((id) => id !== sentId)!;

    const t0 = Date.now();
    await e.stop(200);
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(e.inFlight).toBe(0);

    // The receiver has attempt 1 of this one: it stays counted and recorded, due again at once.
    const sent = await deliveryState(db(), sentId);
    expect(sent).toMatchObject({ status: 'pending', attempts: 1, lease_owner: null, lease_expires_at: null });
    expect(sent.next_attempt_at.getTime()).toBeLessThanOrEqual(Date.now() + 1000);
    expect(await attemptRows(db(), sentId)).toEqual([
      expect.objectContaining({ attempt: 1, status_code: null, error: 'aborted by shutdown' }),
    ]);
    // This one never left: released with its attempt number given back, nothing recorded.
    expect(await deliveryState(db(), queuedId)).toMatchObject({
      status: 'pending',
      attempts: 0,
      lease_owner: null,
      lease_expires_at: null,
    });
    expect(await attemptRows(db(), queuedId)).toEqual([]);

    // The next engine picks both up at once.
    receiver.on('/hanging', {});
    await engine();
    await allInState(ids, 'succeeded');
    const retried = receiver.requestsTo('/hanging').slice(1);
    const attemptOf = new Map(retried.map((r) => [r.headers['webhook-id'], r.headers['x-webhook-attempt']]));
    expect(Object.fromEntries(attemptOf)).toEqual({ [sentId]: '2', [queuedId]: '1' });
  });

  it('stop() is idempotent and a stopped engine claims nothing', async () => {
    let stoppedClaims = 0;
    const e = await engine({ pollIntervalMs: 20, hooks: { onClaim: () => void stoppedClaims++ } });
    await Promise.all([e.stop(), e.stop()]);
    const claimsAtStop = stoppedClaims;
    const hook = await webhook('/after-stop');
    const { deliveryIds } = await queueEvent(db(), hook.tenantId, [hook.id]);
    // Neither that NOTIFY nor its 20 ms poll moves the stopped engine: the next engine gets the delivery.
    await engine({});
    await allInState(deliveryIds, 'succeeded');
    expect(stoppedClaims).toBe(claimsAtStop);
    const [req] = receiver.requestsTo('/after-stop');
    expect(req!.headers['webhook-id']).toBe(deliveryIds[0]);
    expect(receiver.requestsTo('/after-stop')).toHaveLength(1);
  });
});
