/**
 * Operational webhooks end to end: real engines and receivers on 127.0.0.1, webhooks and events made
 * through the API, notices received, verified and counted. A failing endpoint is disabled and the
 * tenant's operational endpoint hears about it once; 500 dead deliveries make one notice, not 500.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { Webhook } from 'standardwebhooks';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { engineStarter, type EngineStarter } from '../helpers/engines.js';
import { startReceiver, type ReceivedRequest, type Receiver } from '../helpers/receiver.js';
import { waitFor } from '../helpers/wait.js';
import { silentLogger } from '../../src/logger.js';
import { startNoticeFlusher, type NoticeFlusher } from '../../src/operational/notice-flusher.js';

const fast = { max_attempts: 50, initial_delay_ms: 100, max_delay_ms: 200 };
/** Receivers that only die: neither the breaker nor auto-disable gets in the way of deaths. */
const neverTrip = {
  failureThreshold: 1000,
  cooldownMs: 300,
  cooldownMaxMs: 600,
  autoDisableAfterMs: 3_600_000,
};

let app: TestApp;
let receiver: Receiver;
let engines: EngineStarter;
const flushers: NoticeFlusher[] = [];
const db = () => app.db.pool;

beforeAll(async () => {
  receiver = await startReceiver();
  receiver.on('*', { status: 200 });
  app = await startTestApp({ POSTBOX_ROLE: 'api', SSRF_ALLOW_CIDRS: '127.0.0.0/8' });
  engines = engineStarter(app, {
    health: { failureThreshold: 3, cooldownMs: 300, cooldownMaxMs: 600, autoDisableAfterMs: 1500 },
  });
});
afterEach(async () => {
  await Promise.all(flushers.splice(0).map((f) => f.stop()));
  await engines.stopAll();
  await db().query(`UPDATE deliveries SET status = 'cancelled' WHERE status IN ('pending', 'in_flight')`);
});
afterAll(async () => {
  await app.close();
  await receiver.close();
});

/** A flusher that only runs when told to (flushNow), unless intervalMs is given. */
function flusher(options: { windowMs?: number; intervalMs?: number } = {}): NoticeFlusher {
  const f = startNoticeFlusher({ pool: db(), logger: silentLogger(), intervalMs: 3_600_000, ...options });
  flushers.push(f);
  return f;
}

async function tenantWithOps(name: string, opsTypes: string[], quotas?: Record<string, number>) {
  const tenant = await app.createTenant(name, quotas);
  const path = `/ops-${name}`;
  const ops = await app.request('POST', '/webhooks', {
    key: tenant.apiKey,
    body: { url: receiver.url(path), event_types: opsTypes, retry_policy: fast },
  });
  expect(ops.status).toBe(201);
  const hook = async (p: string, extra: Record<string, unknown> = {}) => {
    const res = await app.request('POST', '/webhooks', {
      key: tenant.apiKey,
      body: { url: receiver.url(p), event_types: ['order.*'], retry_policy: fast, ...extra },
    });
    expect(res.status).toBe(201);
    return res.body as { id: string; secret: string };
  };
  const notices = (type?: string) =>
    receiver
      .requestsTo(path)
      .filter((r) => type === undefined || r.headers['x-webhook-event'] === type)
      .map((r) => ({ req: r, body: JSON.parse(r.body) }));
  return { tenant, ops: ops.body as { id: string; secret: string }, path, hook, notices };
}

function verify(secret: string, req: ReceivedRequest) {
  return new Webhook(secret).verify(req.body, {
    'webhook-id': String(req.headers['webhook-id']),
    'webhook-timestamp': String(req.headers['webhook-timestamp']),
    'webhook-signature': String(req.headers['webhook-signature']),
  });
}

async function pendingOf(webhookId: string): Promise<number> {
  const { rows } = await db().query(
    `SELECT count(*)::int AS n FROM deliveries WHERE webhook_id = $1 AND status IN ('pending', 'in_flight')`,
    [webhookId],
  );
  return rows[0].n;
}

async function postEvents(key: string, n: number) {
  const events = Array.from({ length: n }, (_, i) => ({ type: 'order.created', payload: { i } }));
  const res = await app.request('POST', '/events/batch', { key, body: { events } });
  expect(res.status).toBe(202);
}

describe('operational webhooks', () => {
  it('an endpoint that keeps failing is disabled, and the operational endpoint is told once, signed', async () => {
    const t = await tenantWithOps('disable', ['postbox.*']);
    receiver.on('/always-down', { status: 500 });
    const down = await t.hook('/always-down');
    // A '*' subscriber gets business events only, never Postbox's own.
    const everything = await t.hook('/everything', { event_types: ['*'] });
    await postEvents(t.tenant.apiKey, 20);
    await engines.start();

    await waitFor(
      async () =>
        (await db().query(`SELECT enabled FROM webhooks WHERE id = $1`, [down.id])).rows[0].enabled === false,
      { timeoutMs: 30_000, what: 'the failing webhook to be disabled' },
    );
    const [notice] = await waitFor(
      () => t.notices('postbox.endpoint.disabled').length > 0 && t.notices('postbox.endpoint.disabled'),
      {
        timeoutMs: 15_000,
        what: 'the disabled notice',
      },
    );
    expect(verify(t.ops.secret, notice!.req)).toMatchObject({ type: 'postbox.endpoint.disabled' });
    expect(notice!.body.data).toMatchObject({ webhook_id: down.id, url: receiver.url('/always-down') });
    expect(notice!.body.data.reason).toMatch(/disabled automatically/);
    // The breaker opened before it was disabled: that was told too.
    expect(t.notices('postbox.endpoint.breaker_opened').map((n) => n.body.data.webhook_id)).toContain(
      down.id,
    );

    // Everything for the operational endpoint delivered: the disabled notice came exactly once.
    await waitFor(async () => (await pendingOf(t.ops.id)) === 0, {
      what: 'operational deliveries to finish',
    });
    expect(t.notices('postbox.endpoint.disabled')).toHaveLength(1);
    const listed = await app.request('GET', '/events?type=postbox.endpoint.disabled', {
      key: t.tenant.apiKey,
    });
    expect(listed.body.data).toHaveLength(1);
    // Visible like any delivery: the webhook-id the receiver got is a delivery of the ops webhook.
    const delivery = await app.request('GET', `/deliveries/${String(notice!.req.headers['webhook-id'])}`, {
      key: t.tenant.apiKey,
    });
    expect(delivery.body).toMatchObject({ webhook_id: t.ops.id, status: 'succeeded' });
    expect(receiver.requestsTo('/everything').length).toBeGreaterThan(0);
    expect(
      receiver
        .requestsTo('/everything')
        .filter((r) => String(r.headers['x-webhook-event']).startsWith('postbox.')),
    ).toEqual([]);
    expect(everything.id).toBeDefined();
  }, 120_000);

  it('tells breaker_opened and then recovered when the endpoint comes back', async () => {
    const t = await tenantWithOps('recover', ['postbox.endpoint.*']);
    let up = false;
    receiver.on('/flaky', () => (up ? { status: 200 } : { status: 503 }));
    const flaky = await t.hook('/flaky');
    await postEvents(t.tenant.apiKey, 10);
    await engines.start({
      health: { failureThreshold: 3, cooldownMs: 300, cooldownMaxMs: 600, autoDisableAfterMs: 3_600_000 },
    });
    await waitFor(() => t.notices('postbox.endpoint.breaker_opened').length > 0, {
      timeoutMs: 15_000,
      what: 'breaker_opened',
    });
    up = true;
    const [recovered] = await waitFor(
      () => t.notices('postbox.endpoint.recovered').length > 0 && t.notices('postbox.endpoint.recovered'),
      { timeoutMs: 15_000, what: 'recovered' },
    );
    expect(recovered!.body.data).toMatchObject({ webhook_id: flaky.id });
    const types = t.notices().map((n) => n.body.type);
    expect(types.indexOf('postbox.endpoint.breaker_opened')).toBeLessThan(
      types.indexOf('postbox.endpoint.recovered'),
    );
  }, 120_000);

  it('500 dead deliveries make one dead_lettered notice with the count, and the DLQ quota one quota_exceeded', async () => {
    const t = await tenantWithOps('dead', ['postbox.delivery.*', 'postbox.tenant.quota_exceeded'], {
      max_dlq_size: 100,
    });
    receiver.on('/dies', { status: 500 });
    const dies = await t.hook('/dies', {
      retry_policy: { max_attempts: 1, initial_delay_ms: 100, max_delay_ms: 100 },
    });
    await postEvents(t.tenant.apiKey, 500);
    const f = flusher({ windowMs: 3_600_000 });
    await engines.start({ health: neverTrip });
    await waitFor(
      async () =>
        (
          await db().query(`SELECT count(*)::int AS n FROM dead_letter_queue WHERE webhook_id = $1`, [
            dies.id,
          ])
        ).rows[0].n === 500,
      { timeoutMs: 60_000, what: 'all 500 to die' },
    );
    expect(await f.flushNow()).toBe(2);
    await waitFor(() => t.notices().length >= 2, { what: 'the two notices' });
    await waitFor(async () => (await pendingOf(t.ops.id)) === 0, {
      what: 'operational deliveries to finish',
    });

    const dead = t.notices('postbox.delivery.dead_lettered');
    expect(dead).toHaveLength(1);
    expect(dead[0]!.body.data).toMatchObject({ webhook_id: dies.id, count: 500 });
    expect(dead[0]!.body.data.sample).toHaveLength(10);
    expect(dead[0]!.body.data.sample[0]).toMatchObject({ event_type: 'order.created' });
    const quota = t.notices('postbox.tenant.quota_exceeded');
    expect(quota).toHaveLength(1);
    expect(quota[0]!.body.data).toMatchObject({ quota: 'max_dlq_size', limit: 100, count: 1 });

    // Within the window, new deaths are counted, not sent; nothing is due.
    await postEvents(t.tenant.apiKey, 5);
    await waitFor(
      async () =>
        (await db().query(`SELECT pending_count FROM notice_digests WHERE subject = $1`, [dies.id])).rows[0]
          ?.pending_count === 5,
      { timeoutMs: 30_000, what: 'the next deaths to be counted' },
    );
    expect(await f.flushNow()).toBe(0);
  }, 120_000);

  it('a window later, the deaths counted meanwhile go out in the next notice', async () => {
    const t = await tenantWithOps('window', ['postbox.delivery.dead_lettered']);
    receiver.on('/dies-too', { status: 500 });
    const dies = await t.hook('/dies-too', {
      retry_policy: { max_attempts: 1, initial_delay_ms: 100, max_delay_ms: 100 },
    });
    flusher({ windowMs: 1500, intervalMs: 100 });
    await engines.start({ health: neverTrip });
    await postEvents(t.tenant.apiKey, 3);
    await waitFor(() => t.notices().length === 1, { timeoutMs: 15_000, what: 'the first notice' });
    await postEvents(t.tenant.apiKey, 4);
    await waitFor(() => t.notices().reduce((n, x) => n + x.body.data.count, 0) === 7, {
      timeoutMs: 15_000,
      what: 'all 7 deaths notified',
    });
    const notices = t.notices();
    expect(notices.length).toBeGreaterThanOrEqual(2);
    expect(notices.length).toBeLessThanOrEqual(3);
    // No faster than the window: the second notice was written at least 1.5 s after the first.
    const written = notices.map((n) => Date.parse(n.body.timestamp)).sort((a, b) => a - b);
    expect(written[1]! - written[0]!).toBeGreaterThanOrEqual(1500);
    expect(notices.every((n) => n.body.data.webhook_id === dies.id)).toBe(true);
  }, 120_000);

  it('an event rate over the quota is told as quota_exceeded', async () => {
    const t = await tenantWithOps('rate', ['postbox.tenant.*'], { max_events_per_sec: 1 });
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++)
      statuses.push(
        (
          await app.request('POST', '/events', {
            key: t.tenant.apiKey,
            body: { type: 'order.created', payload: {} },
          })
        ).status,
      );
    expect(statuses).toContain(429);
    const f = flusher();
    await waitFor(
      async () =>
        (
          await db().query(`SELECT pending_count FROM notice_digests WHERE tenant_id = $1 AND subject = $2`, [
            t.tenant.id,
            'max_events_per_sec',
          ])
        ).rows[0]?.pending_count > 0,
      { what: 'the refusal to be noted' },
    );
    expect(await f.flushNow()).toBe(1);
    await engines.start();
    const [notice] = await waitFor(() => t.notices().length > 0 && t.notices(), { what: 'the quota notice' });
    expect(notice!.body).toMatchObject({
      type: 'postbox.tenant.quota_exceeded',
      data: { quota: 'max_events_per_sec', limit: 1 },
    });
  }, 120_000);

  it('is written with its cause: a rolled-back disable tells nothing, a committed one tells once', async () => {
    const t = await tenantWithOps('tx', ['postbox.endpoint.disabled']);
    const hook = await t.hook('/quiet');
    const count = async () =>
      (
        await db().query(
          `SELECT count(*)::int AS n FROM events WHERE tenant_id = $1 AND type = 'postbox.endpoint.disabled'`,
          [t.tenant.id],
        )
      ).rows[0].n;
    const client = await db().connect();
    try {
      await client.query('BEGIN');
      await client.query(`UPDATE webhooks SET enabled = false WHERE id = $1`, [hook.id]);
      expect(
        (await client.query(`SELECT count(*)::int AS n FROM events WHERE tenant_id = $1`, [t.tenant.id]))
          .rows[0].n,
      ).toBe(1);
      await client.query('ROLLBACK');
    } finally {
      client.release();
    }
    expect(await count()).toBe(0);
    const patch = await app.request('PATCH', `/webhooks/${hook.id}`, {
      key: t.tenant.apiKey,
      body: { enabled: false },
    });
    expect(patch.status).toBe(200);
    expect(await count()).toBe(1);
    // Disabling an already disabled webhook is no new state change.
    await app.request('PATCH', `/webhooks/${hook.id}`, { key: t.tenant.apiKey, body: { enabled: false } });
    expect(await count()).toBe(1);
  }, 120_000);

  it('refuses postbox.* event types from producers', async () => {
    const tenant = await app.createTenant('producer');
    const res = await app.request('POST', '/events', {
      key: tenant.apiKey,
      body: { type: 'postbox.endpoint.disabled', payload: { webhook_id: 'forged' } },
    });
    expect(res.status).toBe(400);
    expect(res.body.error.details).toEqual([expect.objectContaining({ path: 'type' })]);
    const batch = await app.request('POST', '/events/batch', {
      key: tenant.apiKey,
      body: { events: [{ type: 'postbox.tenant.quota_exceeded', payload: {} }] },
    });
    expect(batch.status).toBe(400);
  }, 120_000);
});
