/**
 * POST /webhooks/:id/recover: an outage recovered with one call. The window selects the webhook's
 * failed deliveries by event arrival; a repeat while they are on their way queues nothing twice; a
 * real engine then delivers them to the receiver with their original webhook-id.
 */
import { startTestApp, type TestApp } from '../helpers/app.js';
import { engineStarter } from '../helpers/engines.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { sqlAttempts, sqlDeadLetter, sqlDelivery, sqlEvent, sqlWebhook } from '../helpers/fixtures-sql.js';
import { waitFor } from '../helpers/wait.js';

let app: TestApp;
let receiver: Receiver;
let tenant: { id: string; apiKey: string };

beforeAll(async () => {
  [app, receiver] = await Promise.all([startTestApp({ SSRF_ALLOW_CIDRS: '127.0.0.0/8' }), startReceiver()]);
  tenant = await app.createTenant('recover');
});
afterAll(async () => {
  await receiver.close();
  await app.close();
});

const HOUR = 3_600_000;
const ago = (ms: number) => new Date(Date.now() - ms);

/** A delivery of a new event that arrived `createdAt`, in `status`; failed ones also get their DLQ row. */
async function delivery(webhookId: string, createdAt: Date, status: 'failed' | 'succeeded' | 'pending') {
  const event = await sqlEvent(app.db.pool, tenant.id);
  const id = await sqlDelivery(app.db.pool, {
    tenantId: tenant.id,
    eventId: event.id,
    webhookId,
    status,
    createdAt,
    attempts: status === 'pending' ? 0 : 3,
    lastStatusCode: status === 'failed' ? 503 : null,
  });
  if (status === 'failed') {
    await sqlAttempts(app.db.pool, id, [{ attempt: 1, statusCode: 503 }]);
    await sqlDeadLetter(app.db.pool, id);
  }
  return id;
}

async function statusOf(ids: string[]) {
  const { rows } = await app.db.pool.query(
    `SELECT d.status, d.attempts, EXISTS (SELECT 1 FROM dead_letter_queue q WHERE q.delivery_id = d.id) AS dead
       FROM deliveries d WHERE d.id = ANY ($1) ORDER BY array_position($1, d.id)`,
    [ids],
  );
  return rows;
}

/** `key`: the tenant's by default, 'admin' for the admin key, null for none. */
const recover = (id: string, body: unknown, key: string | null = tenant.apiKey) =>
  app.request('POST', `/webhooks/${id}/recover`, { key: key === 'admin' ? undefined : key, body });

test("queues again exactly the window's failed deliveries, and a repeat while they run queues nothing", async () => {
  const hook = await sqlWebhook(app.db.pool, tenant.id, { url: 'https://example.com/hook' });
  const other = await sqlWebhook(app.db.pool, tenant.id, { url: 'https://example.com/other' });
  const before = await delivery(hook.id, ago(5 * HOUR), 'failed');
  const inside1 = await delivery(hook.id, ago(3 * HOUR), 'failed');
  const inside2 = await delivery(hook.id, ago(2 * HOUR), 'failed');
  const delivered = await delivery(hook.id, ago(2 * HOUR), 'succeeded');
  const after = await delivery(hook.id, ago(HOUR / 2), 'failed');
  const otherHook = await delivery(other.id, ago(2 * HOUR), 'failed');

  const window = { since: ago(4 * HOUR).toISOString(), until: ago(HOUR).toISOString() };
  const first = await recover(hook.id, window);
  expect(first.status).toBe(202);
  expect(first.body).toEqual({ requeued: 2, recovery_id: expect.any(String), already_running: false });
  expect(await statusOf([inside1, inside2])).toEqual([
    { status: 'pending', attempts: 0, dead: false },
    { status: 'pending', attempts: 0, dead: false },
  ]);
  expect(await statusOf([before, delivered, after, otherHook])).toEqual([
    { status: 'failed', attempts: 3, dead: true },
    { status: 'succeeded', attempts: 3, dead: false },
    { status: 'failed', attempts: 3, dead: true },
    { status: 'failed', attempts: 3, dead: true },
  ]);

  // The same window again while its deliveries are still pending: the first answer, nothing queued.
  const again = await recover(hook.id, window);
  expect(again.status).toBe(202);
  expect(again.body).toEqual({ ...first.body, already_running: true });

  // Once they are done (one failed again), the same window is a new recovery of what failed.
  await app.db.pool.query(`UPDATE deliveries SET status = 'succeeded' WHERE id = $1`, [inside1]);
  await app.db.pool.query(`UPDATE deliveries SET status = 'failed', attempts = 1 WHERE id = $1`, [inside2]);
  const later = await recover(hook.id, window);
  expect(later.body).toMatchObject({ requeued: 1, already_running: false });
  expect(later.body.recovery_id).not.toBe(first.body.recovery_id);

  // Without `until`: everything failed since `since`.
  const open = await recover(hook.id, { since: ago(HOUR).toISOString() });
  expect(open.body).toMatchObject({ requeued: 1, already_running: false });
  expect((await statusOf([after]))[0].status).toBe('pending');

  const audit = await app.request('GET', `/audit?tenant_id=${tenant.id}&action=webhook.recover`);
  expect(audit.body.data).toHaveLength(3);
  expect(audit.body.data[2]).toMatchObject({
    actor: expect.stringMatching(/^pbk_/),
    object_id: hook.id,
    changes: { ...window, requeued: 2, recovery_id: first.body.recovery_id },
  });
});

test('two identical recoveries at once queue each delivery once', async () => {
  const hook = await sqlWebhook(app.db.pool, tenant.id);
  for (let i = 0; i < 20; i++) await delivery(hook.id, ago(HOUR), 'failed');
  const body = { since: ago(2 * HOUR).toISOString() };
  const answers = await Promise.all([recover(hook.id, body), recover(hook.id, body), recover(hook.id, body)]);
  expect(answers.map((a) => a.status)).toEqual([202, 202, 202]);
  expect(answers.filter((a) => !a.body.already_running)).toHaveLength(1);
  expect(answers.map((a) => a.body.requeued)).toEqual([20, 20, 20]);
});

test('an outage recovered end to end: the receiver gets the dead deliveries again, same webhook-id', async () => {
  receiver.on('/outage', { status: 503 });
  // A tenant of its own: the other tests leave pending deliveries to unreachable hosts behind.
  const own = await app.createTenant('outage');
  const created = await app.request('POST', '/webhooks', {
    key: own.apiKey,
    body: {
      url: receiver.url('/outage'),
      retry_policy: { max_attempts: 1, initial_delay_ms: 100, max_delay_ms: 100 },
    },
  });
  const hookId = created.body.id;
  const t0 = new Date(Date.now() - 1000);
  const engines = engineStarter(app);
  await engines.start();
  try {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const ev = await app.request('POST', '/events', {
        key: own.apiKey,
        body: { type: 'order.created', payload: { i } },
      });
      ids.push(ev.body.delivery_ids[0]);
    }
    await waitFor(async () => (await statusOf(ids)).every((d: any) => d.dead), {
      what: 'three dead letters',
    });
    receiver.on('/outage', { status: 200 });
    const res = await recover(hookId, { since: t0.toISOString() }, own.apiKey);
    expect(res.body).toMatchObject({ requeued: 3, already_running: false });
    await waitFor(async () => (await statusOf(ids)).every((d: any) => d.status === 'succeeded'), {
      what: 'the recovered deliveries delivered',
      timeoutMs: 20_000,
    });
    const ok = receiver.requestsTo('/outage').filter((r) => r.headers['x-webhook-attempt'] === '1');
    // Each delivery was seen twice (the failed attempt and the recovered one) with one webhook-id.
    expect(new Set(ok.map((r) => r.headers['webhook-id']))).toEqual(new Set(ids));
    expect(ok).toHaveLength(6);
  } finally {
    await engines.stopAll();
  }
});

test('bad windows are 400s; another tenant, a deleted webhook and no key are refused', async () => {
  const hook = await sqlWebhook(app.db.pool, tenant.id);
  const now = new Date().toISOString();
  for (const body of [
    {},
    { since: 'yesterday' },
    { since: now, until: ago(HOUR).toISOString() },
    { since: now, x: 1 },
  ]) {
    const res = await recover(hook.id, body);
    expect([body, res.status, res.body.error.code]).toEqual([body, 400, 'validation_failed']);
  }
  const other = await app.createTenant('someone-else');
  expect((await recover(hook.id, { since: now }, other.apiKey)).status).toBe(404);
  expect((await recover(hook.id, { since: now }, null)).status).toBe(401);
  const gone = await sqlWebhook(app.db.pool, tenant.id, { deleted: true });
  expect((await recover(gone.id, { since: now })).status).toBe(404);
  // The admin key may recover any tenant's webhook.
  expect((await recover(hook.id, { since: now }, 'admin')).status).toBe(202);
});
