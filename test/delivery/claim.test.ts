/**
 * The engine's SQL against a real database: claimDue (SKIP LOCKED, leases, live webhooks only),
 * recordResults (batched, guarded by the lease) and releaseClaims. No engine runs here
 * (POSTBOX_ROLE=api), so nothing else touches the rows.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import {
  claimDue,
  claimStatement,
  LOST_ATTEMPT_ERROR,
  recordResults,
  releaseClaims,
  type AttemptResult,
} from '../../src/queries/deliveries.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import {
  attemptRows,
  deliveryState,
  queueEvent,
  queueMany,
  sqlWebhookOfOwnType,
} from '../helpers/fixtures.js';
import { sqlDelivery, sqlEvent, sqlTenant, sqlWebhook, testSecretBox } from '../helpers/fixtures-sql.js';
import { DEFAULT_HEALTH_POLICY } from '../../src/config.js';
import type { Queryable } from '../../src/db/pool.js';

/** recordResults under the default breaker policy. */
const record = (...a: [Queryable, string, readonly AttemptResult[]]) =>
  recordResults(...a, DEFAULT_HEALTH_POLICY);

let app: TestApp;
let tenantId: string;
const db = () => app.db.pool;

beforeAll(async () => {
  app = await startTestApp({ POSTBOX_ROLE: 'api' });
});
afterAll(async () => {
  await app.close();
});
beforeEach(async () => {
  // Every test starts from an empty queue, with a tenant of its own: ingest queues an event for every
  // matching webhook of the tenant, so earlier tests' webhooks must not be among them.
  await db().query('DELETE FROM deliveries');
  tenantId = (await sqlTenant(db())).id;
});

const claimAll = (workerId: string, limit = 100, leaseSeconds = 60) =>
  claimDue(db(), { workerId, limit, leaseSeconds, defaultMaxAttempts: 40 });
const claim = async (workerId: string, limit = 100, leaseSeconds = 60) =>
  (await claimAll(workerId, limit, leaseSeconds)).deliveries;

function result(deliveryId: string, attempt: number, over: Partial<AttemptResult> = {}): AttemptResult {
  return {
    deliveryId,
    attempt,
    startedAt: new Date(),
    durationMs: 12,
    statusCode: 200,
    error: null,
    responseExcerpt: 'ok',
    outcome: 'succeeded',
    retryDelayMs: null,
    ...over,
  };
}

describe('claimDue', () => {
  it('returns what the sender needs and marks the rows in flight under a lease', async () => {
    const hook = await sqlWebhook(db(), tenantId, { url: 'http://127.0.0.1:1/x', timeoutMs: 3000 });
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const { eventId, deliveryIds } = await queueEvent(db(), tenantId, [hook.id], {
      type: 'a.b',
      payload: { x: [1, 'two'] },
      traceparent,
    });
    const [row, ...rest] = await claim('w1', 10, 30);
    expect(rest).toHaveLength(0);
    expect(row).toMatchObject({
      id: deliveryIds[0],
      tenantId,
      eventId,
      webhookId: hook.id,
      attempt: 1,
      eventType: 'a.b',
      traceparent,
      url: 'http://127.0.0.1:1/x',
      timeoutMs: 3000,
      previousSecretCiphertext: null,
    });
    expect(JSON.parse(row!.payloadJson)).toEqual({ x: [1, 'two'] });
    expect(testSecretBox.decrypt(row!.secretCiphertext)).toBe(hook.secret);
    expect(row!.retryPolicy).toMatchObject({ max_attempts: expect.any(Number) });
    const d = await deliveryState(db(), deliveryIds[0]!);
    expect(d).toMatchObject({ status: 'in_flight', attempts: 1, lease_owner: 'w1' });
    const leaseMs = d.lease_expires_at!.getTime() - Date.now();
    expect(leaseMs).toBeGreaterThan(25_000);
    expect(leaseMs).toBeLessThanOrEqual(30_500);
    expect(await claim('w2')).toEqual([]);
  });

  it('takes at most `limit`, oldest due first, and nothing that is not due yet', async () => {
    const hook = await sqlWebhook(db(), tenantId);
    // By hand: ingest makes deliveries due now, not due at chosen times in the past and future.
    const { id: eventId } = await sqlEvent(db(), tenantId);
    const at = (s: number) => new Date(Date.now() + s * 1000);
    const ids = [];
    for (const s of [-10, -30, -20, 60]) {
      ids.push(await sqlDelivery(db(), { tenantId, eventId, webhookId: hook.id, nextAttemptAt: at(s) }));
    }
    // The two oldest (RETURNING order is unspecified, so compare as sets).
    expect((await claim('w', 2)).map((r) => r.id).sort()).toEqual([ids[1], ids[2]].sort());
    expect((await claim('w', 10)).map((r) => r.id)).toEqual([ids[0]]);
    expect(await claim('w', 10)).toEqual([]);
  });

  it('skips disabled and deleted webhooks, and deliveries in other states', async () => {
    const off = await sqlWebhook(db(), tenantId);
    const gone = await sqlWebhook(db(), tenantId);
    await queueEvent(db(), tenantId, [off.id, gone.id]);
    // Disabled and deleted behind the API's back, so their deliveries stay due rather than parked.
    await db().query(`UPDATE webhooks SET enabled = false WHERE id = $1`, [off.id]);
    await db().query(`UPDATE webhooks SET deleted_at = now() WHERE id = $1`, [gone.id]);
    const live = await sqlWebhook(db(), tenantId);
    // By hand: finished deliveries (ingest only queues pending ones).
    const { id: eventId } = await sqlEvent(db(), tenantId);
    for (const status of ['succeeded', 'failed', 'cancelled'] as const)
      await sqlDelivery(db(), { tenantId, eventId, webhookId: live.id, status });
    expect(await claim('w')).toEqual([]);
  });

  it('rescues in-flight deliveries whose lease ran out, and only those', async () => {
    const hook = await sqlWebhook(db(), tenantId);
    // By hand: deliveries in flight under leases (expired and live), which ingest cannot produce.
    const { id: eventId } = await sqlEvent(db(), tenantId);
    const abandoned = await sqlDelivery(db(), {
      tenantId,
      eventId,
      webhookId: hook.id,
      status: 'in_flight',
      attempts: 2,
      leaseOwner: 'dead-worker',
      leaseExpiresAt: new Date(Date.now() - 1000),
    });
    await sqlDelivery(db(), {
      tenantId,
      eventId,
      webhookId: hook.id,
      status: 'in_flight',
      attempts: 1,
      leaseOwner: 'live-worker',
      leaseExpiresAt: new Date(Date.now() + 60_000),
    });
    const rows = await claim('rescuer');
    expect(rows.map((r) => [r.id, r.attempt])).toEqual([[abandoned, 3]]);
    expect(await deliveryState(db(), abandoned)).toMatchObject({
      status: 'in_flight',
      lease_owner: 'rescuer',
    });
    // The lost attempt keeps its number and is in the history: the receiver may have got it.
    expect(await attemptRows(db(), abandoned)).toEqual([
      expect.objectContaining({ attempt: 2, status_code: null, error: LOST_ATTEMPT_ERROR }),
    ]);
  });

  it('dead-letters a rescued delivery whose lost attempts used up max_attempts instead of sending it', async () => {
    const hook = await sqlWebhook(db(), tenantId, {
      retryPolicy: { max_attempts: 2, initial_delay_ms: 100, max_delay_ms: 100 },
    });
    // By hand: in flight after two lost attempts, which ingest cannot produce.
    const { id: eventId, type } = await sqlEvent(db(), tenantId);
    const poison = await sqlDelivery(db(), {
      tenantId,
      eventId,
      webhookId: hook.id,
      status: 'in_flight',
      attempts: 2,
      leaseOwner: 'killed-twice',
      leaseExpiresAt: new Date(Date.now() - 1000),
    });
    const { deliveries, deadLettered } = await claimAll('rescuer');
    expect(deliveries).toEqual([]);
    expect(deadLettered).toEqual([{ id: poison, tenantId, eventId, webhookId: hook.id, attempts: 2 }]);
    expect(await deliveryState(db(), poison)).toMatchObject({
      status: 'failed',
      attempts: 2,
      last_error: LOST_ATTEMPT_ERROR,
      lease_owner: null,
      completed_at: expect.any(Date),
    });
    const { rows: dlq } = await db().query('SELECT * FROM dead_letter_queue WHERE delivery_id = $1', [
      poison,
    ]);
    expect(dlq).toEqual([
      expect.objectContaining({ event_type: type, attempts: 2, last_error: LOST_ATTEMPT_ERROR }),
    ]);
    expect((await attemptRows(db(), poison)).map((a) => a.attempt)).toEqual([2]);
  });

  it('counts expired leases against the limit', async () => {
    const hook = await sqlWebhook(db(), tenantId);
    // By hand: in flight under expired leases, which ingest cannot produce.
    const { id: eventId } = await sqlEvent(db(), tenantId);
    for (let i = 0; i < 3; i++)
      await sqlDelivery(db(), {
        tenantId,
        eventId,
        webhookId: hook.id,
        status: 'in_flight',
        leaseExpiresAt: new Date(Date.now() - 1000),
      });
    await queueMany(db(), tenantId, hook.id, 5);
    expect(await claim('w', 4)).toHaveLength(4);
    expect(await claim('w', 10)).toHaveLength(4);
  });

  it('raises the lease to the webhook timeout + 5 s when LEASE_SECONDS is shorter', async () => {
    const hook = await sqlWebhook(db(), tenantId, { timeoutMs: 30_000 });
    const { deliveryIds } = await queueEvent(db(), tenantId, [hook.id]);
    await claim('w', 10, 5);
    const d = await deliveryState(db(), deliveryIds[0]!);
    expect(d.lease_expires_at!.getTime() - Date.now()).toBeGreaterThan(33_000);
  });

  it('only signs with the previous secret while its overlap lasts', async () => {
    const current = await sqlWebhook(db(), tenantId);
    const expired = await sqlWebhook(db(), tenantId);
    await db().query(
      `UPDATE webhooks SET previous_secret_ciphertext = $2,
              previous_secret_expires_at = now() + CASE WHEN id = $1 THEN interval '1 hour' ELSE interval '-1 second' END
        WHERE id IN ($1, $3)`,
      [current.id, testSecretBox.encrypt('old-secret-0123456789'), expired.id],
    );
    await queueEvent(db(), tenantId, [current.id, expired.id]);
    const rows = await claim('w');
    const byHook = new Map(rows.map((r) => [r.webhookId, r]));
    expect(testSecretBox.decrypt(byHook.get(current.id)!.previousSecretCiphertext!)).toBe(
      'old-secret-0123456789',
    );
    expect(byHook.get(expired.id)!.previousSecretCiphertext).toBeNull();
  });

  it('concurrent claimers never get the same row', async () => {
    // Limits high enough for all 3000 to be in flight at once (limits: test/delivery/limits.test.ts).
    const tenants = [tenantId, (await sqlTenant(db(), 'second')).id];
    await db().query(`UPDATE quotas SET max_concurrent_deliveries = 10000`);
    const hooks = await Promise.all(
      [0, 1, 1].map((t) => sqlWebhookOfOwnType(db(), tenants[t]!, { maxConcurrency: 10000 })),
    );
    // The adaptive limit starts low (test/delivery/adaptive-concurrency.test.ts); open it to the ceiling.
    await db().query(`UPDATE webhooks SET concurrency_limit = max_concurrency`);
    const total = 3000;
    for (const [i, hook] of hooks.entries())
      await queueMany(db(), tenants[i === 0 ? 0 : 1]!, hook.id, total / 3, { type: hook.type });
    const workers = Array.from({ length: 8 }, (_, i) => `claimer-${i}`);
    const seen = new Map<string, string>();
    const duplicates: string[] = [];
    await Promise.all(
      workers.map(async (w) => {
        for (;;) {
          const { deliveries: rows, contended } = await claimAll(w, 37);
          // Another claimer held the tenant: not the end of the queue.
          if (rows.length === 0 && contended === 0) return;
          for (const r of rows) {
            if (seen.has(r.id)) duplicates.push(r.id);
            seen.set(r.id, w);
          }
        }
      }),
    );
    expect(duplicates).toEqual([]);
    expect(seen.size).toBe(total);
    const { rows } = await db().query(
      `SELECT lease_owner, count(*)::int AS n, min(attempts) AS lo, max(attempts) AS hi
         FROM deliveries GROUP BY lease_owner`,
    );
    // Every row is held by the worker that got it, claimed exactly once.
    for (const r of rows) {
      expect(r.lo).toBe(1);
      expect(r.hi).toBe(1);
      expect(r.n).toBe([...seen.values()].filter((w) => w === r.lease_owner).length);
    }
    expect(new Set(seen.values()).size).toBeGreaterThan(1);
  });
});

describe('claimDue with FIFO webhooks', () => {
  // A tenant of their own: the other tests' webhooks (of every type) do not get these events.
  let fifoTenant: string;
  beforeAll(async () => {
    fifoTenant = (await sqlTenant(db(), 'fifo')).id;
  });
  beforeEach(async () => {
    await db().query(`UPDATE webhooks SET deleted_at = now() WHERE tenant_id = $1`, [fifoTenant]);
  });

  /** `count` events through postbox.ingest (the statement POST /events runs), in one call. */
  async function ingest(count: number, type = 'fifo.claim') {
    await db().query(
      `SELECT count(*) FROM postbox.ingest((
         SELECT json_agg(json_build_object('ord', i, 'id', postbox.uuidv7(), 'tenant_id', $1::uuid,
                                           'type', $2::text, 'payload', json_build_object('i', i)))
           FROM generate_series(0, $3 - 1) AS i))`,
      [fifoTenant, type, count],
    );
  }
  async function fifoWebhook(types: string[]) {
    const { id } = await sqlWebhook(db(), fifoTenant, { eventTypes: types });
    await db().query(`UPDATE webhooks SET ordering = 'fifo' WHERE id = $1`, [id]);
    return id;
  }
  const queueOf = async (webhookId: string) =>
    (
      await db().query<{ id: string; status: string; waiting: boolean }>(
        `SELECT id, status, next_attempt_at = 'infinity' AS waiting FROM deliveries
          WHERE webhook_id = $1 ORDER BY fifo_seq`,
        [webhookId],
      )
    ).rows;

  it('queues the rows behind the head waiting, claims only the head, and the next once it is finished', async () => {
    const hook = await fifoWebhook(['fifo.*']);
    await ingest(3);
    const queued = await queueOf(hook);
    expect(queued.map((r) => r.waiting)).toEqual([false, true, true]);

    const first = await claim('w1');
    expect(first.map((d) => [d.id, d.fifoNext])).toEqual([[queued[0]!.id, true]]);
    expect(await claim('w2')).toEqual([]); // the head is in flight: its queue is held
    await record(db(), 'w1', [result(first[0]!.id, 1)]);
    // The recorder made the next one due (so the metrics see it due), the rest still wait.
    expect((await queueOf(hook)).map((r) => [r.status, r.waiting])).toEqual([
      ['succeeded', false],
      ['pending', false],
      ['pending', true],
    ]);

    const second = await claim('w2');
    expect(second.map((d) => [d.id, d.fifoNext])).toEqual([[queued[1]!.id, true]]);
    // A head that goes back to pending (retry) holds the queue until it is due again.
    await record(db(), 'w2', [result(second[0]!.id, 1, { outcome: 'retry', retryDelayMs: 60_000 })]);
    expect(await claim('w3')).toEqual([]);
    await db().query(`UPDATE deliveries SET next_attempt_at = now() WHERE id = $1`, [second[0]!.id]);
    expect((await claim('w3')).map((d) => d.id)).toEqual([second[0]!.id]);
    await record(db(), 'w3', [result(second[0]!.id, 2)]);

    const last = await claim('w1');
    expect(last.map((d) => [d.id, d.fifoNext])).toEqual([[queued[2]!.id, false]]);
  });

  it('a FIFO backlog costs a claim one index descent, not a visit per waiting row', async () => {
    const fifo = await fifoWebhook(['fifo.*']);
    const plain = (await sqlWebhook(db(), fifoTenant, { eventTypes: ['plain.*'] })).id;
    await ingest(3000);
    // A concurrent ingest can leave a head waiting too (it saw the queue busy): the claim still takes it.
    await db().query(`UPDATE deliveries SET next_attempt_at = 'infinity' WHERE webhook_id = $1`, [fifo]);
    const [head] = await claim('w1'); // the FIFO head, in flight: 2,999 rows wait behind it
    expect(head!.webhookId).toBe(fifo);
    await ingest(1, 'plain.one');

    const client = await db().connect();
    try {
      await client.query('BEGIN');
      const statement = claimStatement({
        workerId: 'w2',
        limit: 100,
        leaseSeconds: 60,
        defaultMaxAttempts: 40,
      });
      const { rows } = await client.query<{ 'QUERY PLAN': [{ Plan: Record<string, number> }] }>(
        `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ${statement.text}`,
        statement.values,
      );
      const plan = rows[0]!['QUERY PLAN'][0].Plan;
      // About 100 buffers. Before FIFO rows waited at 'infinity' it visited all 2,999: 18,000 buffers, 40 ms.
      expect(plan['Shared Hit Blocks']! + plan['Shared Read Blocks']!).toBeLessThan(300);
      const claimed = await client.query<{ webhook_id: string }>(
        `SELECT webhook_id FROM deliveries WHERE lease_owner = 'w2'`,
      );
      expect(claimed.rows.map((r) => r.webhook_id)).toEqual([plain]);
    } finally {
      await client.query('ROLLBACK');
      client.release();
    }
  });
});

describe('recordResults', () => {
  it('writes successes, retries and deaths of one batch in one statement', async () => {
    const hooks = [];
    for (let i = 0; i < 3; i++) hooks.push(await sqlWebhook(db(), tenantId));
    const { eventId, deliveryIds } = await queueEvent(
      db(),
      tenantId,
      hooks.map((h) => h.id),
      { type: 'batch.test' },
    );
    const [ok, again, dead] = deliveryIds as [string, string, string];
    await claim('me');
    const summary = await record(db(), 'me', [
      result(ok, 1),
      result(again, 1, { statusCode: 500, error: 'HTTP 500', outcome: 'retry', retryDelayMs: 60_000 }),
      result(dead, 1, {
        statusCode: null,
        error: 'timeout after 1000 ms',
        outcome: 'dead',
        responseExcerpt: null,
      }),
    ]);
    expect(summary).toMatchObject({ updated: 3, dead: 1 });

    expect(await deliveryState(db(), ok)).toMatchObject({
      status: 'succeeded',
      last_status_code: 200,
      lease_owner: null,
      lease_expires_at: null,
      completed_at: expect.any(Date),
    });
    const retry = await deliveryState(db(), again);
    expect(retry).toMatchObject({
      status: 'pending',
      attempts: 1,
      last_error: 'HTTP 500',
      completed_at: null,
    });
    expect(retry.next_attempt_at.getTime() - Date.now()).toBeGreaterThan(55_000);
    expect(retry.next_attempt_at.getTime() - Date.now()).toBeLessThanOrEqual(60_500);
    expect(await deliveryState(db(), dead)).toMatchObject({
      status: 'failed',
      last_error: 'timeout after 1000 ms',
    });
    const { rows: dlq } = await db().query('SELECT * FROM dead_letter_queue WHERE delivery_id = $1', [dead]);
    expect(dlq).toEqual([
      expect.objectContaining({
        event_id: eventId,
        event_type: 'batch.test',
        attempts: 1,
        webhook_id: hooks[2]!.id,
      }),
    ]);
    expect(await attemptRows(db(), again)).toEqual([
      expect.objectContaining({ attempt: 1, status_code: 500, error: 'HTTP 500', response_excerpt: 'ok' }),
    ]);
    // A retried delivery is claimable again only when due.
    expect(await claim('me')).toEqual([]);
  });

  it('does not clobber a delivery rescued and re-claimed by another worker', async () => {
    const hook = await sqlWebhook(db(), tenantId);
    const { deliveryIds } = await queueEvent(db(), tenantId, [hook.id]);
    const id = deliveryIds[0]!;
    await claim('slow-worker');
    await db().query(`UPDATE deliveries SET lease_expires_at = now() - interval '1 second' WHERE id = $1`, [
      id,
    ]);
    const [rescued] = await claim('rescuer');
    expect(rescued!.attempt).toBe(2);

    const late = await record(db(), 'slow-worker', [result(id, 1, { outcome: 'dead', statusCode: 500 })]);
    expect(late).toMatchObject({ updated: 0, dead: 0 });
    expect(await deliveryState(db(), id)).toMatchObject({ status: 'in_flight', lease_owner: 'rescuer' });
    // The late attempt still happened, so it is in the history.
    expect((await attemptRows(db(), id)).map((a) => a.attempt)).toEqual([1]);

    expect(await record(db(), 'rescuer', [result(id, 2)])).toMatchObject({ updated: 1, dead: 0 });
    expect((await deliveryState(db(), id)).status).toBe('succeeded');
  });

  it('ignores a stale result for an earlier attempt of the same worker', async () => {
    const hook = await sqlWebhook(db(), tenantId);
    const { deliveryIds } = await queueEvent(db(), tenantId, [hook.id]);
    const id = deliveryIds[0]!;
    await claim('w');
    await db().query(`UPDATE deliveries SET lease_expires_at = now() - interval '1 second' WHERE id = $1`, [
      id,
    ]);
    await claim('w'); // the same worker re-claims its own expired lease: attempt 2
    expect(await record(db(), 'w', [result(id, 1)])).toMatchObject({ updated: 0, dead: 0 });
    expect(await deliveryState(db(), id)).toMatchObject({ status: 'in_flight', attempts: 2 });
  });

  it('leaves cancelled deliveries cancelled and skips deleted ones', async () => {
    const hook = await sqlWebhook(db(), tenantId);
    const [cancelled, deleted] = (await queueMany(db(), tenantId, hook.id, 2)) as [string, string];
    await claim('w');
    await db().query(`UPDATE deliveries SET status = 'cancelled' WHERE id = $1`, [cancelled]);
    await db().query(`DELETE FROM deliveries WHERE id = $1`, [deleted]);
    expect(await record(db(), 'w', [result(cancelled, 1), result(deleted, 1)])).toMatchObject({
      updated: 0,
      dead: 0,
    });
    expect((await deliveryState(db(), cancelled)).status).toBe('cancelled');
  });

  it('replaces the DLQ entry of a delivery that dies again after a DLQ retry', async () => {
    const hook = await sqlWebhook(db(), tenantId);
    const { deliveryIds } = await queueEvent(db(), tenantId, [hook.id]);
    const id = deliveryIds[0]!;
    await claim('w');
    await record(db(), 'w', [result(id, 1, { outcome: 'dead', error: 'first death', statusCode: 500 })]);
    // A requeue that (wrongly or not) leaves the DLQ row behind must not break the next death.
    await db().query(
      `UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = now() WHERE id = $1`,
      [id],
    );
    await claim('w');
    const summary = await record(db(), 'w', [
      result(id, 1, { outcome: 'dead', error: 'second death', statusCode: 500 }),
    ]);
    expect(summary.dead).toBe(1);
    const { rows } = await db().query('SELECT last_error FROM dead_letter_queue WHERE delivery_id = $1', [
      id,
    ]);
    expect(rows).toEqual([{ last_error: 'second death' }]);
  });

  it('an empty batch costs nothing', async () => {
    expect(await record(db(), 'w', [])).toMatchObject({ updated: 0, dead: 0 });
  });
});

describe('releaseClaims', () => {
  it('gives back what this worker holds: pending, due now, attempt undone, lease cleared', async () => {
    const hook = await sqlWebhook(db(), tenantId);
    await queueMany(db(), tenantId, hook.id, 5);
    const mine = await claim('leaving', 3);
    const theirs = await claim('staying', 10);
    expect(theirs).toHaveLength(2);
    expect(await releaseClaims(db(), 'leaving')).toBe(3);
    for (const r of mine) {
      const d = await deliveryState(db(), r.id);
      expect(d).toMatchObject({ status: 'pending', attempts: 0, lease_owner: null, lease_expires_at: null });
      expect(d.next_attempt_at.getTime()).toBeLessThanOrEqual(Date.now() + 1000);
    }
    for (const r of theirs) expect((await deliveryState(db(), r.id)).lease_owner).toBe('staying');
    expect((await claim('next', 10)).map((r) => r.id).sort()).toEqual(mine.map((r) => r.id).sort());
  });

  it('can release only some ids', async () => {
    const hook = await sqlWebhook(db(), tenantId);
    await queueMany(db(), tenantId, hook.id, 3);
    const rows = await claim('w');
    expect(await releaseClaims(db(), 'w', [rows[0]!.id])).toBe(1);
    expect((await deliveryState(db(), rows[1]!.id)).status).toBe('in_flight');
  });
});
