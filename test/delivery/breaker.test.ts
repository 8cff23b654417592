/**
 * The circuit breaker and automatic disabling, end to end: real engines, a real receiver on
 * 127.0.0.1, state read back from the database, re-enabling through the API.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import type { RetryPolicy } from '../../src/delivery/retry-policy.js';
import type { HealthPolicy } from '../../src/config.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { engineStarter, type EngineStarter } from '../helpers/engines.js';
import { queueMany } from '../helpers/fixtures.js';
import { sqlTenant, sqlWebhook } from '../helpers/fixtures-sql.js';
import { claimRounds } from '../helpers/claim-rounds.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { waitFor } from '../helpers/wait.js';

const fast: RetryPolicy = { max_attempts: 50, initial_delay_ms: 100, max_delay_ms: 200 };
const health: HealthPolicy = {
  failureThreshold: 3,
  cooldownMs: 1000,
  cooldownMaxMs: 4000,
  autoDisableAfterMs: 3_600_000,
};

let app: TestApp;
let receiver: Receiver;
let engines: EngineStarter;
const db = () => app.db.pool;

beforeAll(async () => {
  receiver = await startReceiver();
  app = await startTestApp({ POSTBOX_ROLE: 'api' });
  engines = engineStarter(app, { health });
});
afterEach(async () => {
  await engines.stopAll();
  await db().query(`UPDATE deliveries SET status = 'cancelled' WHERE status IN ('pending', 'in_flight')`);
});
afterAll(async () => {
  await app.close();
  await receiver.close();
});

interface WebhookState {
  enabled: boolean;
  disabled_reason: string | null;
  breaker_state: string;
  breaker_open_until: Date | null;
  breaker_opens: number;
  consecutive_failures: number;
  failing_since: Date | null;
  last_success_at: Date | null;
  health_breaker: string;
}

async function state(id: string): Promise<WebhookState> {
  const { rows } = await db().query<WebhookState>(
    `SELECT w.enabled, w.disabled_reason, w.breaker_state, w.breaker_open_until, w.breaker_opens,
            w.consecutive_failures, w.failing_since, w.last_success_at, h.breaker_state AS health_breaker
       FROM webhooks w JOIN webhook_health h ON h.webhook_id = w.id WHERE w.id = $1`,
    [id],
  );
  return rows[0]!;
}

async function counts(webhookId: string): Promise<Record<string, number>> {
  const { rows } = await db().query<{ status: string; n: number }>(
    `SELECT status, count(*)::int AS n FROM deliveries WHERE webhook_id = $1 GROUP BY status`,
    [webhookId],
  );
  return Object.fromEntries(rows.map((r) => [r.status, r.n]));
}

/** A webhook in a tenant of its own: events queued for it match no other test's webhooks. */
async function webhook(path: string, maxConcurrency = 1, retryPolicy = fast) {
  const { id: tenantId } = await sqlTenant(db());
  const hook = await sqlWebhook(db(), tenantId, {
    url: receiver.url(path),
    retryPolicy,
    timeoutMs: 2000,
    maxConcurrency,
  });
  return { ...hook, tenantId };
}

describe('circuit breaker', () => {
  it('opens after N failures, defers (no requests, no attempts) for the cool-down, then one probe closes it and the backlog flows', async () => {
    let down = true;
    let successes = 0;
    let releaseProbe = () => {};
    const probeHeld = new Promise<void>((r) => (releaseProbe = r));
    // The probe (first success) is held open until the test has looked; the backlog takes 300 ms each.
    receiver.on('/flaky', () =>
      down ? { status: 503 } : successes++ === 0 ? { until: probeHeld } : { status: 200, delayMs: 300 },
    );
    const hook = await webhook('/flaky', 5);
    const ids = await queueMany(db(), hook.tenantId, hook.id, 30, { notify: true });
    const events: string[] = [];
    const rounds = claimRounds();
    await engines.start({
      hooks: {
        ...rounds.hooks,
        onWebhookHealth: (changes) => events.push(...changes.map((c) => String(c.breaker))),
      },
    });

    const opened = await waitFor(async () => {
      const s = await state(hook.id);
      return s.breaker_state === 'open' ? s : undefined;
    });
    expect(opened.consecutive_failures).toBeGreaterThanOrEqual(3);
    expect(opened.breaker_opens).toBe(1);
    expect(opened.health_breaker).toBe('open');
    const failedAtOpen = receiver.requestsTo('/flaky').length;
    // Up to max_concurrency were already on their way when the third failure was written.
    expect(failedAtOpen).toBeLessThanOrEqual(3 + 5);

    // The rest wait without burning attempts: never claimed while open.
    const { rows } = await db().query(
      `SELECT count(*)::int AS n FROM deliveries WHERE webhook_id = $1 AND attempts = 0`,
      [hook.id],
    );
    expect(rows[0].n).toBeGreaterThanOrEqual(30 - failedAtOpen);

    down = false;
    const probe = (await receiver.waitForRequests(failedAtOpen + 1, '/flaky', 5000))[failedAtOpen]!;
    // Nothing reached the receiver during the cool-down (same host clock; 50 ms for rounding).
    expect(probe.at).toBeGreaterThanOrEqual(opened.breaker_open_until!.getTime() - 50);
    expect((await state(hook.id)).health_breaker).toBe('half_open');
    // Half-open: one probe at a time. While it is out, polls take nothing.
    expect(await rounds.claimedInNext(2)).toBe(0);
    expect(receiver.requestsTo('/flaky')).toHaveLength(failedAtOpen + 1);
    releaseProbe();

    await waitFor(async () => (await counts(hook.id)).succeeded === 30, {
      timeoutMs: 10_000,
      what: 'the backlog to flow after the probe',
    });
    const closed = await state(hook.id);
    expect(closed).toMatchObject({
      breaker_state: 'closed',
      breaker_open_until: null,
      breaker_opens: 0,
      consecutive_failures: 0,
      failing_since: null,
      health_breaker: 'closed',
    });
    expect(closed.last_success_at).not.toBeNull();
    expect(events).toEqual(['opened', 'closed']);
    // After the close, up to max_concurrency (5) at once again.
    const after = receiver.requestsTo('/flaky').slice(failedAtOpen + 1);
    expect(after.length).toBe(29);
    expect(new Set(ids).size).toBe(30);
  });

  it('a failed probe reopens it with a doubled cool-down', async () => {
    receiver.on('/dead', { status: 500 });
    const hook = await webhook('/dead');
    await queueMany(db(), hook.tenantId, hook.id, 10, { notify: true });
    await engines.start();

    const first = await waitFor(async () => {
      const s = await state(hook.id);
      return s.breaker_state === 'open' ? s : undefined;
    });
    expect(receiver.requestsTo('/dead')).toHaveLength(3); // max_concurrency 1: exactly the threshold
    const [, , , probe] = await receiver.waitForRequests(4, '/dead', 5000);
    expect(probe!.at).toBeGreaterThanOrEqual(first.breaker_open_until!.getTime() - 50);

    const second = await waitFor(async () => {
      const s = await state(hook.id);
      return s.breaker_opens === 2 ? s : undefined;
    });
    expect(second.breaker_state).toBe('open');
    expect(second.consecutive_failures).toBe(4);
    // Reopened at the probe's result with twice the first cool-down (1 s → 2 s).
    const cooldown = second.breaker_open_until!.getTime() - probe!.at;
    expect(cooldown).toBeGreaterThan(1800);
    expect(cooldown).toBeLessThan(2500);
    const [, , , , probe2] = await receiver.waitForRequests(5, '/dead', 5000);
    expect(probe2!.at).toBeGreaterThanOrEqual(second.breaker_open_until!.getTime() - 50);
  });

  it('a breaker left open by a stopped engine is honoured by the next one', async () => {
    const hook = await webhook('/closed-shop');
    receiver.on('/closed-shop', { status: 200 });
    await db().query(
      `UPDATE webhooks SET breaker_state = 'open', breaker_opens = 1, consecutive_failures = 5,
              breaker_open_until = now() + interval '800 milliseconds' WHERE id = $1`,
      [hook.id],
    );
    await queueMany(db(), hook.tenantId, hook.id, 3, { notify: true });
    const t0 = Date.now();
    await engines.start();
    const [first] = await receiver.waitForRequests(1, '/closed-shop', 5000);
    expect(first!.at - t0).toBeGreaterThanOrEqual(700);
    await waitFor(async () => (await counts(hook.id)).succeeded === 3);
    expect((await state(hook.id)).breaker_state).toBe('closed');
  });
});

describe('disabling', () => {
  it('a 410 answer disables the webhook at once, with an audit row; its deliveries are kept and go out when re-enabled', async () => {
    let gone = true;
    receiver.on('/gone', () => ({ status: gone ? 410 : 200 }));
    const hook = await webhook('/gone');
    const ids = await queueMany(db(), hook.tenantId, hook.id, 5, { notify: true });
    const disabled: string[] = [];
    const rounds = claimRounds();
    await engines.start({
      hooks: {
        ...rounds.hooks,
        onWebhookHealth: (changes) => disabled.push(...changes.map((c) => String(c.disabled))),
      },
    });

    await waitFor(async () => !(await state(hook.id)).enabled, { what: 'the webhook to be disabled' });
    await waitFor(() => disabled.length > 0, { what: 'the hook' });
    expect(disabled).toEqual(['gone']);
    const s = await state(hook.id);
    expect(s.disabled_reason).toMatch(/410 Gone/);
    const res = await app.request('GET', `/webhooks/${hook.id}`);
    expect(res.body).toMatchObject({ enabled: false, disabled_reason: s.disabled_reason });
    const audit = await app.request('GET', `/audit?action=webhook.disable_gone`);
    expect(audit.body.data).toEqual([
      expect.objectContaining({
        actor: 'system',
        action: 'webhook.disable_gone',
        object_type: 'webhook',
        object_id: hook.id,
        tenant_id: hook.tenantId,
      }),
    ]);
    // Kept: all five pending, parked out of the claim's way, none sent again.
    expect(await counts(hook.id)).toEqual({ pending: 5 });
    const { rows } = await db().query(
      `SELECT count(*)::int AS n FROM deliveries WHERE webhook_id = $1 AND next_attempt_at = 'infinity'`,
      [hook.id],
    );
    expect(rows[0].n).toBe(5);
    expect(await rounds.claimedInNext(3)).toBe(0); // a few polls, and none takes them
    expect(receiver.requestsTo('/gone')).toHaveLength(1);

    gone = false;
    const patched = await app.request('PATCH', `/webhooks/${hook.id}`, { body: { enabled: true } });
    expect(patched.body).toMatchObject({ enabled: true, disabled_reason: null });
    await waitFor(async () => (await counts(hook.id)).succeeded === 5, { what: 'the kept deliveries' });
    const delivered = receiver
      .requestsTo('/gone')
      .slice(1)
      .map((r) => r.headers['webhook-id']);
    expect(delivered.sort()).toEqual([...ids].sort());
  });

  it('failing continuously for WEBHOOK_AUTO_DISABLE_AFTER_MS disables it (audit row); re-enabling delivers what was kept', async () => {
    let failing = true;
    receiver.on('/failing', () => ({ status: failing ? 500 : 200 }));
    const hook = await webhook('/failing');
    await queueMany(db(), hook.tenantId, hook.id, 4, { notify: true });
    // A breaker that never opens here, so the attempts keep coming; disabled after 1.5 s of failures.
    const rounds = claimRounds();
    const engine = await engines.start({
      health: { ...health, failureThreshold: 1000, autoDisableAfterMs: 1500 },
      hooks: rounds.hooks,
    });

    const disabled = await waitFor(
      async () => {
        const s = await state(hook.id);
        return s.enabled ? undefined : s;
      },
      { timeoutMs: 8000, what: 'the webhook to be disabled' },
    );
    expect(disabled.disabled_reason).toMatch(/every attempt failed since/);
    expect(disabled.failing_since).not.toBeNull();
    const { rows: audit } = await db().query(
      `SELECT actor, action, at, changes FROM audit_log WHERE object_id = $1`,
      [hook.id],
    );
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({ actor: 'system', action: 'webhook.auto_disable' });
    expect(audit[0].at.getTime() - disabled.failing_since!.getTime()).toBeGreaterThanOrEqual(1500);
    const attemptsBefore = receiver.requestsTo('/failing').length;
    expect(attemptsBefore).toBeGreaterThan(3);
    // An attempt already under way (max_concurrency 1) may still go out; after it, polls take nothing.
    expect(await rounds.claimedInNext(3)).toBe(0);
    await waitFor(() => engine.inFlight === 0, { what: 'the attempt under way to end' });
    expect(receiver.requestsTo('/failing').length).toBeLessThanOrEqual(attemptsBefore + 1);
    expect((await counts(hook.id)).pending).toBe(4);

    failing = false;
    const res = await app.request('PATCH', `/webhooks/${hook.id}`, { body: { enabled: true } });
    expect(res.status).toBe(200);
    await waitFor(async () => (await counts(hook.id)).succeeded === 4, { what: 'the kept deliveries' });
    expect(await state(hook.id)).toMatchObject({ consecutive_failures: 0, failing_since: null });
  });

  it('PATCH enabled=false parks the pending deliveries; enabled=true makes them due and closes the breaker', async () => {
    const hook = await webhook('/paused');
    receiver.on('/paused', { status: 200 });
    const ids = await queueMany(db(), hook.tenantId, hook.id, 3);
    const off = await app.request('PATCH', `/webhooks/${hook.id}`, { body: { enabled: false } });
    expect(off.body).toMatchObject({ enabled: false, disabled_reason: 'disabled by admin' });
    const parked = await db().query(
      `SELECT count(*)::int AS n FROM deliveries WHERE id = ANY($1) AND next_attempt_at = 'infinity'`,
      [ids],
    );
    expect(parked.rows[0].n).toBe(3);
    await db().query(
      `UPDATE webhooks SET breaker_state = 'open', breaker_open_until = now() + interval '1 hour',
              breaker_opens = 3, consecutive_failures = 9, failing_since = now() WHERE id = $1`,
      [hook.id],
    );
    const rounds = claimRounds();
    await engines.start({ hooks: rounds.hooks });
    expect(await rounds.claimedInFirst(3)).toBe(0); // the start-up claim and two polls
    expect(receiver.requestsTo('/paused')).toHaveLength(0);

    await app.request('PATCH', `/webhooks/${hook.id}`, { body: { enabled: true } });
    expect(await state(hook.id)).toMatchObject({
      breaker_state: 'closed',
      breaker_opens: 0,
      consecutive_failures: 0,
      breaker_open_until: null,
    });
    await waitFor(async () => (await counts(hook.id)).succeeded === 3, { what: 'the resumed deliveries' });
  });
});
