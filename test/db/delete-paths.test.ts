/**
 * events and deliveries carry no foreign keys (migration 0028: the per-row checks were the largest cost
 * of a batch ingest). What the cascades did is done by triggers, and the ingest locks each tenant and
 * webhook once per statement: these tests hold every delete path to "no row is left behind", including
 * a delete that races an ingest.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type pg from 'pg';
import { newId } from '../../src/ids.js';
import { ingestParams } from '../../src/queries/events.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { queueEvent } from '../helpers/fixtures.js';
import { sqlDeadDelivery, sqlTenant, sqlWebhook } from '../helpers/fixtures-sql.js';
import { waitFor } from '../helpers/wait.js';

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db.drop();
});

/** Rows of each table that belong to the tenant. */
async function rowsOf(tenantId: string): Promise<Record<string, number>> {
  const { rows } = await db.pool.query<Record<string, number>>(
    `SELECT (SELECT count(*)::int FROM events WHERE tenant_id = $1) AS events,
            (SELECT count(*)::int FROM deliveries WHERE tenant_id = $1) AS deliveries,
            (SELECT count(*)::int FROM dead_letter_queue WHERE tenant_id = $1) AS dead_letters,
            (SELECT count(*)::int FROM webhooks WHERE tenant_id = $1) AS webhooks,
            (SELECT count(*)::int FROM api_keys WHERE tenant_id = $1) AS api_keys`,
    [tenantId],
  );
  return rows[0]!;
}

/** A tenant with a webhook, a queued event and a dead-lettered delivery. */
async function populatedTenant(): Promise<{ tenantId: string; webhookId: string; eventId: string }> {
  const tenantId = (await sqlTenant(db.pool)).id;
  const webhookId = (await sqlWebhook(db.pool, tenantId)).id;
  const { eventId } = await queueEvent(db.pool, tenantId, [webhookId], { notify: false });
  await sqlDeadDelivery(db.pool, tenantId, webhookId);
  return { tenantId, webhookId, eventId };
}

/** Runs `fn` in a transaction with retention's switch on (the only way events may be deleted). */
async function asRetention(fn: (c: pg.PoolClient) => Promise<unknown>): Promise<void> {
  const c = await db.pool.connect();
  try {
    await c.query('BEGIN');
    await c.query(`SELECT set_config('postbox.retention', 'on', true)`);
    await fn(c);
    await c.query('COMMIT');
  } catch (err) {
    await c.query('ROLLBACK');
    throw err;
  } finally {
    c.release();
  }
}

/** Resolves once the backend `pid` is waiting for a lock. */
async function waitingForLock(pid: number): Promise<void> {
  await waitFor(async () => {
    const { rows } = await db.pool.query(`SELECT wait_event_type FROM pg_stat_activity WHERE pid = $1`, [
      pid,
    ]);
    return rows[0]?.wait_event_type === 'Lock';
  });
}

function ingestOne(c: pg.ClientBase, tenantId: string): Promise<pg.QueryResult> {
  const [param] = ingestParams([
    {
      ord: 0,
      id: newId(),
      tenantId,
      type: 'order.created',
      payload: '{"n":1}',
      occurredAt: null,
      idempotencyKey: null,
      traceparent: null,
    },
  ]);
  return c.query('SELECT * FROM postbox.ingest_jsonb($1::jsonb)', [param]);
}

describe('deleting without foreign keys on events and deliveries', () => {
  it('a deleted webhook takes its deliveries and their dead letters, and nothing of another webhook', async () => {
    const { tenantId, webhookId } = await populatedTenant();
    const other = (await sqlWebhook(db.pool, tenantId)).id;
    const { deliveryIds } = await queueEvent(db.pool, tenantId, [webhookId, other], { notify: false });

    await db.pool.query('DELETE FROM webhooks WHERE id = $1', [webhookId]);

    const { rows } = await db.pool.query(
      `SELECT (SELECT count(*)::int FROM deliveries WHERE webhook_id = $1) AS deliveries,
              (SELECT count(*)::int FROM dead_letter_queue WHERE webhook_id = $1) AS dead_letters,
              (SELECT count(*)::int FROM deliveries WHERE id = $2) AS kept`,
      [webhookId, deliveryIds[1]],
    );
    expect(rows[0]).toEqual({ deliveries: 0, dead_letters: 0, kept: 1 });
  });

  it('a tenant with events is refused as the immutable log refuses, and nothing is deleted', async () => {
    const { tenantId } = await populatedTenant();
    const before = await rowsOf(tenantId);

    await expect(db.pool.query('DELETE FROM tenants WHERE id = $1', [tenantId])).rejects.toMatchObject({
      code: '42501',
    });
    expect(await rowsOf(tenantId)).toEqual(before);
  });

  it('a tenant deleted with the retention switch on leaves no row behind, and another tenant keeps all', async () => {
    const { tenantId } = await populatedTenant();
    const bystander = await populatedTenant();
    const kept = await rowsOf(bystander.tenantId);

    await asRetention((c) => c.query('DELETE FROM tenants WHERE id = $1', [tenantId]));

    expect(await rowsOf(tenantId)).toEqual({
      events: 0,
      deliveries: 0,
      dead_letters: 0,
      webhooks: 0,
      api_keys: 0,
    });
    expect(await rowsOf(bystander.tenantId)).toEqual(kept);
  });

  it('a tenant without events is deleted with its webhooks and keys', async () => {
    const tenantId = (await sqlTenant(db.pool)).id;
    await sqlWebhook(db.pool, tenantId);

    await db.pool.query('DELETE FROM tenants WHERE id = $1', [tenantId]);

    expect(await rowsOf(tenantId)).toEqual({
      events: 0,
      deliveries: 0,
      dead_letters: 0,
      webhooks: 0,
      api_keys: 0,
    });
  });

  it('a deleted event takes its deliveries', async () => {
    const { eventId } = await populatedTenant();

    await asRetention((c) => c.query('DELETE FROM events WHERE id = $1', [eventId]));

    const { rows } = await db.pool.query(`SELECT count(*)::int AS n FROM deliveries WHERE event_id = $1`, [
      eventId,
    ]);
    expect(rows[0].n).toBe(0);
  });

  it('a webhook deleted while an ingest queues for it waits for that commit, then deletes what it queued', async () => {
    const tenantId = (await sqlTenant(db.pool)).id;
    const webhookId = (await sqlWebhook(db.pool, tenantId)).id;
    const ingesting = await db.pool.connect();
    const deleting = await db.pool.connect();
    try {
      await ingesting.query('BEGIN');
      const { rows } = await ingestOne(ingesting, tenantId);
      expect(rows[0].delivery_ids).toHaveLength(1);
      const pid = (await deleting.query('SELECT pg_backend_pid() AS pid')).rows[0].pid as number;
      const deleted = deleting.query('DELETE FROM webhooks WHERE id = $1', [webhookId]);
      await waitingForLock(pid);
      await ingesting.query('COMMIT');
      await deleted;
    } finally {
      ingesting.release();
      deleting.release();
    }
    const { rows } = await db.pool.query(`SELECT count(*)::int AS n FROM deliveries WHERE webhook_id = $1`, [
      webhookId,
    ]);
    expect(rows[0].n).toBe(0);
  });

  it('an ingest for a tenant deleted meanwhile fails as a foreign key did (23503) and stores nothing', async () => {
    const tenantId = (await sqlTenant(db.pool)).id;
    await sqlWebhook(db.pool, tenantId);
    const deleting = await db.pool.connect();
    const ingesting = await db.pool.connect();
    try {
      await deleting.query('BEGIN');
      await deleting.query('DELETE FROM tenants WHERE id = $1', [tenantId]);
      const pid = (await ingesting.query('SELECT pg_backend_pid() AS pid')).rows[0].pid as number;
      const ingested = ingestOne(ingesting, tenantId);
      ingested.catch(() => {}); // awaited below, after the commit it waits for
      await waitingForLock(pid);
      await deleting.query('COMMIT');
      await expect(ingested).rejects.toMatchObject({ code: '23503' });
    } finally {
      deleting.release();
      ingesting.release();
    }
    expect(await rowsOf(tenantId)).toMatchObject({ events: 0, deliveries: 0 });
  });
});
