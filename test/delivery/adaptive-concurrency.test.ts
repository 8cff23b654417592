/**
 * Adaptive per-webhook concurrency (src/queries/adaptive-concurrency.ts): the recorder adapts
 * webhooks.concurrency_limit from each batch of results, the claim honours it. Statement-level tests
 * drive recordResults with chosen results; engine-level ones run a real receiver that speeds up or
 * slows down and watch the limit and the requests in progress.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { DEFAULT_HEALTH_POLICY } from '../../src/config.js';
import { claimDue, recordResults, type AttemptResult } from '../../src/queries/deliveries.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { engineStarter, type EngineStarter } from '../helpers/engines.js';
import { queueMany } from '../helpers/fixtures.js';
import { sqlTenant, sqlWebhook } from '../helpers/fixtures-sql.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { waitFor } from '../helpers/wait.js';

let app: TestApp;
let receiver: Receiver;
let engines: EngineStarter;
const db = () => app.db.pool;

beforeAll(async () => {
  receiver = await startReceiver();
  app = await startTestApp({ POSTBOX_ROLE: 'api' });
  engines = engineStarter(app);
});
// Each test claims from the whole queue: start it empty.
beforeEach(async () => {
  await db().query('DELETE FROM deliveries');
});
afterEach(() => engines.stopAll());
afterAll(async () => {
  await app.close();
  await receiver.close();
});

async function tenant(): Promise<string> {
  const { id } = await sqlTenant(db());
  await db().query(`UPDATE quotas SET max_concurrent_deliveries = 1000 WHERE tenant_id = $1`, [id]);
  return id;
}

interface Adaptive {
  limit: number;
  floor: number | null;
  inForce: number;
}

async function adaptive(webhookId: string): Promise<Adaptive> {
  const { rows } = await db().query(
    `SELECT concurrency_limit AS limit, latency_floor_ms AS floor,
            floor(least(concurrency_limit, max_concurrency))::int AS "inForce"
       FROM webhooks WHERE id = $1`,
    [webhookId],
  );
  return rows[0];
}

const result = (deliveryId: string, statusCode: number | null, durationMs: number): AttemptResult => ({
  deliveryId,
  attempt: 1,
  startedAt: new Date(),
  durationMs,
  statusCode,
  error: statusCode === null ? 'timeout' : null,
  responseExcerpt: null,
  outcome: statusCode !== null && statusCode < 300 ? 'succeeded' : 'retry',
  retryDelayMs: statusCode !== null && statusCode < 300 ? null : 60_000,
});

/** A webhook with `queued` deliveries, `claimed` of them in flight under worker 'w'. */
async function claimedHook(o: { queued: number; claimed: number; maxConcurrency?: number }) {
  const t = await tenant();
  const hook = await sqlWebhook(db(), t, { maxConcurrency: o.maxConcurrency ?? 200 });
  await queueMany(db(), t, hook.id, o.queued);
  const { deliveries } = await claimDue(db(), {
    workerId: 'w',
    limit: o.claimed,
    leaseSeconds: 60,
    defaultMaxAttempts: 10,
  });
  return { hook, ids: deliveries.map((d) => d.id) };
}

const record = (results: AttemptResult[]) => recordResults(db(), 'w', results, DEFAULT_HEALTH_POLICY);

describe('the recorder adapts concurrency_limit', () => {
  it('starts at 10 and the claim honours it', async () => {
    const { hook, ids } = await claimedHook({ queued: 30, claimed: 30 });
    expect(ids).toHaveLength(10);
    expect(await adaptive(hook.id)).toEqual({ limit: 10, floor: null, inForce: 10 });
  });

  it('adds 1/limit per 2xx while the window is in use and latency stays near its floor', async () => {
    const { hook, ids } = await claimedHook({ queued: 30, claimed: 30 });
    await record(ids.slice(0, 5).map((id) => result(id, 200, 8)));
    expect(await adaptive(hook.id)).toMatchObject({ limit: 10.5, floor: 8 });
    // 5 of 10 still in flight: half the window is in use, so it still grows.
    await record(ids.slice(5).map((id) => result(id, 200, 9)));
    const after = await adaptive(hook.id);
    expect(after.limit).toBeCloseTo(10.5 + 5 / 10.5, 6);
    expect(after.floor).toBeGreaterThanOrEqual(8);
    expect(after.floor).toBeLessThan(9);
  });

  it('does not grow while less than half the window is in use', async () => {
    const { hook, ids } = await claimedHook({ queued: 4, claimed: 4 });
    await record(ids.map((id) => result(id, 200, 5)));
    expect(await adaptive(hook.id)).toMatchObject({ limit: 10, floor: 5 });
  });

  it.each([
    ['a timeout', null],
    ['a 503', 503],
    ['a 429', 429],
  ])(
    'cuts it by a quarter on %s, once per mean attempt duration (at least 250 ms)',
    async (_what, status) => {
      const { hook, ids } = await claimedHook({ queued: 10, claimed: 10 });
      await record([result(ids[0]!, status, 900)]);
      expect(await adaptive(hook.id)).toMatchObject({ limit: 7.5, inForce: 7 });
      // The same overload episode, seen by the next batch at once: no second cut.
      await record([result(ids[1]!, status, 900)]);
      expect((await adaptive(hook.id)).limit).toBe(7.5);
    },
  );

  it('leaves it alone on a 4xx other than 429 (the receiver is not overloaded)', async () => {
    const { hook, ids } = await claimedHook({ queued: 10, claimed: 10 });
    await record([result(ids[0]!, 400, 5)]);
    expect((await adaptive(hook.id)).limit).toBe(10);
  });

  it('cuts it when the 2xx latency rises well above its floor', async () => {
    const { hook, ids } = await claimedHook({ queued: 10, claimed: 10 });
    await record([result(ids[0]!, 200, 5)]);
    await record([result(ids[1]!, 200, 110)]); // the moving average stays within 3 × 5 + 100 ms
    const near = await adaptive(hook.id);
    expect(near.limit).toBeGreaterThan(10);
    await record([result(ids[2]!, 200, 500)]);
    expect((await adaptive(hook.id)).limit).toBeCloseTo(near.limit * 0.75, 6);
  });

  it('stays between 1 and max_concurrency', async () => {
    const { hook, ids } = await claimedHook({ queued: 10, claimed: 10, maxConcurrency: 10 });
    await record(ids.slice(0, 5).map((id) => result(id, 200, 5)));
    expect((await adaptive(hook.id)).limit).toBe(10);
    await db().query(
      `UPDATE webhooks SET concurrency_limit = 1.2, concurrency_decreased_at = NULL WHERE id = $1`,
      [hook.id],
    );
    await record([result(ids[5]!, 503, 5)]);
    expect(await adaptive(hook.id)).toMatchObject({ limit: 1, inForce: 1 });
  });
});

/** A receiver path that tracks requests in progress; its delay can be changed while it runs. */
function trackedPath(path: string, initialDelayMs: number) {
  const s = { delayMs: initialDelayMs, open: 0, peak: 0, answered: 0 };
  receiver.on(path, () => {
    s.open++;
    s.peak = Math.max(s.peak, s.open);
    const ms = s.delayMs;
    setTimeout(() => {
      s.open--;
      s.answered++;
    }, ms);
    return { delayMs: ms };
  });
  return s;
}

describe('engines against a real receiver', () => {
  // The receiver shares this process's event loop with the engine: on a loaded machine a 1 ms answer
  // measures tens of milliseconds, so a 50 ms one keeps the latency signal about the receiver.
  it('ramp a fast receiver up from the default of 10', async () => {
    const t = await tenant();
    const path = trackedPath('/fast', 50);
    const hook = await sqlWebhook(db(), t, { url: receiver.url('/fast'), maxConcurrency: 200 });
    await queueMany(db(), t, hook.id, 5000);
    await engines.start({ concurrency: 200, claimBatchSize: 50 });
    await waitFor(async () => (await adaptive(hook.id)).inForce >= 20, {
      timeoutMs: 90_000,
      what: 'the limit to double',
    });
    await waitFor(() => path.peak >= 15, { timeoutMs: 30_000, what: '15 requests in progress at once' });
  }, 150_000);

  it('back a receiver that slows from 5 ms to 500 ms off, without timeouts', async () => {
    const t = await tenant();
    const path = trackedPath('/slows', 5);
    const hook = await sqlWebhook(db(), t, {
      url: receiver.url('/slows'),
      maxConcurrency: 200,
      timeoutMs: 5000,
    });
    await queueMany(db(), t, hook.id, 8000);
    await engines.start({ concurrency: 200, claimBatchSize: 50 });
    await waitFor(async () => (await adaptive(hook.id)).inForce >= 20, {
      timeoutMs: 60_000,
      what: 'the limit to reach 20',
    });
    const before = (await adaptive(hook.id)).inForce;
    path.delayMs = 500;
    await waitFor(async () => (await adaptive(hook.id)).inForce <= Math.floor(before / 2), {
      timeoutMs: 30_000,
      what: 'the limit to halve',
    });
    // Requests in progress follow the limit down as the slow ones finish.
    const limit = (await adaptive(hook.id)).inForce;
    await waitFor(() => path.open <= Math.max(limit, Math.floor(before / 2)), {
      timeoutMs: 30_000,
      what: 'requests in progress to fall',
    });
    const { rows } = await db().query(
      `SELECT count(*)::int AS n FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id
        WHERE d.webhook_id = $1 AND a.status_code IS NULL`,
      [hook.id],
    );
    expect(rows[0].n).toBe(0);
  }, 150_000);
});
