import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { v7 } from 'uuid';
import type { RetentionPolicy } from '../../src/config.js';
import { runRetention, uuidV7Floor } from '../../src/maintenance/retention.js';
import { replay } from '../../src/delivery/recovery.js';
import { replayDelivery } from '../../src/queries/recovery.js';
import { deleteFinishedDeliveriesBatch, FIRST_ID, retentionCutoff } from '../../src/queries/retention.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';

const DAY = 86_400_000;
const RETENTION_DAYS = 30;
const OLD = 40; // days: past retention
const YOUNG = 2; // days: within retention

let db: TestDatabase;
let tenantId: string;
let webhookId: string;

const daysAgo = (days: number) => new Date(Date.now() - days * DAY);

/** Every period `days` (RETENTION_DAYS alone), with some set apart. */
const policy = (days: number, apart: Partial<RetentionPolicy> = {}): RetentionPolicy => ({
  recordDays: days,
  payloadDays: days,
  attemptDays: days,
  dlqDays: days,
  auditDays: days,
  ...apart,
});
const DEFAULTS = policy(RETENTION_DAYS);

/** An event received `ageDays` ago, with the UUIDv7 id it would have been given then. */
async function insertEvent(ageDays: number): Promise<string> {
  const at = daysAgo(ageDays);
  const id = v7({ msecs: at.getTime() });
  await db.pool.query(
    `INSERT INTO events (id, tenant_id, type, payload, occurred_at, received_at)
     VALUES ($1, $2, 'order.created', '{}', $3, $3)`,
    [id, tenantId, at],
  );
  return id;
}

interface DeliveryFixture {
  ageDays: number;
  status: 'pending' | 'in_flight' | 'succeeded' | 'failed' | 'cancelled';
  completedDaysAgo?: number;
  /** failed only: when its DLQ row was written (defaults to completion). */
  deadDaysAgo?: number;
  /** Start times of its attempts, in days ago. */
  attemptsDaysAgo?: number[];
}

async function insertDelivery(eventId: string, f: DeliveryFixture): Promise<string> {
  const created = daysAgo(f.ageDays);
  const id = v7({ msecs: created.getTime() });
  const completed = f.completedDaysAgo === undefined ? null : daysAgo(f.completedDaysAgo);
  await db.pool.query(
    `INSERT INTO deliveries (id, tenant_id, event_id, webhook_id, status, attempts, created_at, completed_at,
                             lease_owner, lease_expires_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
    [
      id,
      tenantId,
      eventId,
      webhookId,
      f.status,
      f.attemptsDaysAgo?.length ?? 0,
      created,
      completed,
      f.status === 'in_flight' ? 'some-worker' : null,
      f.status === 'in_flight' ? new Date(Date.now() + 60_000) : null,
    ],
  );
  for (const [i, d] of (f.attemptsDaysAgo ?? []).entries()) {
    await db.pool.query(
      `INSERT INTO delivery_attempts (delivery_id, attempt, started_at, duration_ms, status_code)
       VALUES ($1, $2, $3, 12, 500)`,
      [id, i + 1, daysAgo(d)],
    );
  }
  if (f.status === 'failed') {
    await db.pool.query(
      `INSERT INTO dead_letter_queue (delivery_id, tenant_id, webhook_id, event_id, event_type, attempts, dead_at)
       VALUES ($1, $2, $3, $4, 'order.created', $5, $6)`,
      [
        id,
        tenantId,
        webhookId,
        eventId,
        f.attemptsDaysAgo?.length ?? 0,
        daysAgo(f.deadDaysAgo ?? f.completedDaysAgo!),
      ],
    );
  }
  return id;
}

async function ids(table: string, column = 'id'): Promise<string[]> {
  const { rows } = await db.pool.query(`SELECT ${column} AS id FROM ${table}`);
  return rows.map((r) => String(r.id));
}

async function attemptsOf(deliveryId: string): Promise<number> {
  const { rows } = await db.pool.query(
    'SELECT count(*)::int AS n FROM delivery_attempts WHERE delivery_id = $1',
    [deliveryId],
  );
  return rows[0].n;
}

beforeAll(async () => {
  db = await createTestDatabase();
  tenantId = v7();
  webhookId = v7();
  await db.pool.query(`INSERT INTO tenants (id, name) VALUES ($1, 'acme')`, [tenantId]);
  await db.pool.query(
    `INSERT INTO webhooks (id, tenant_id, url, secret_ciphertext, retry_policy)
     VALUES ($1, $2, 'https://example.com/hook', $3, '{"max_attempts":3,"initial_delay_ms":1000,"max_delay_ms":10000}')`,
    [webhookId, tenantId, Buffer.from('ciphertext')],
  );
});

afterAll(async () => {
  await db.drop();
});

beforeEach(async () => {
  // Clean slate per test; events can only go through the retention switch.
  const client = await db.pool.connect();
  try {
    await client.query('BEGIN');
    await client.query(`SELECT set_config('postbox.retention', 'on', true)`);
    await client.query('DELETE FROM deliveries');
    await client.query('DELETE FROM events');
    // Attempts have no foreign key to deliveries (they go with their day), so they are cleared apart.
    await client.query('DELETE FROM delivery_attempts');
    await client.query('DELETE FROM audit_log');
    await client.query('COMMIT');
  } finally {
    client.release();
  }
});

describe('runRetention', () => {
  it('deletes old finished deliveries, their attempts, DLQ rows and events; keeps anything live or young', async () => {
    // Old and finished: everything goes.
    const eSucceeded = await insertEvent(OLD);
    const dSucceeded = await insertDelivery(eSucceeded, {
      ageDays: OLD,
      status: 'succeeded',
      completedDaysAgo: OLD,
      attemptsDaysAgo: [OLD, OLD],
    });
    const eCancelled = await insertEvent(OLD);
    const dCancelled = await insertDelivery(eCancelled, {
      ageDays: OLD,
      status: 'cancelled',
      completedDaysAgo: OLD,
    });
    const eFailed = await insertEvent(OLD);
    const dFailed = await insertDelivery(eFailed, {
      ageDays: OLD,
      status: 'failed',
      completedDaysAgo: OLD - 1,
      attemptsDaysAgo: [OLD, OLD - 1],
    });
    const eNoDeliveries = await insertEvent(OLD);

    // Old but live: the delivery and its event stay; only its old attempt goes.
    const ePending = await insertEvent(OLD);
    const dPending = await insertDelivery(ePending, {
      ageDays: OLD,
      status: 'pending',
      attemptsDaysAgo: [OLD, YOUNG],
    });
    const eInFlight = await insertEvent(OLD);
    const dInFlight = await insertDelivery(eInFlight, { ageDays: OLD, status: 'in_flight' });

    // Old, but finished recently (a replay): stays, and so does its event.
    const eReplayed = await insertEvent(OLD);
    const dReplayed = await insertDelivery(eReplayed, {
      ageDays: OLD,
      status: 'succeeded',
      completedDaysAgo: YOUNG,
      attemptsDaysAgo: [YOUNG],
    });
    // Failed long ago but dead-lettered again recently: the DLQ row is young, so it stays.
    const eRedead = await insertEvent(OLD);
    const dRedead = await insertDelivery(eRedead, {
      ageDays: OLD,
      status: 'failed',
      completedDaysAgo: OLD,
      deadDaysAgo: YOUNG,
    });
    // One old event with two deliveries, one of them still live: the event stays, the finished one goes.
    const eMixed = await insertEvent(OLD);
    const dMixedDone = await insertDelivery(eMixed, {
      ageDays: OLD,
      status: 'succeeded',
      completedDaysAgo: OLD,
    });
    const dMixedLive = await insertDelivery(eMixed, { ageDays: OLD, status: 'pending' });

    // Young: untouched.
    const eYoung = await insertEvent(YOUNG);
    const dYoung = await insertDelivery(eYoung, {
      ageDays: YOUNG,
      status: 'succeeded',
      completedDaysAgo: YOUNG,
      attemptsDaysAgo: [YOUNG],
    });
    const eYoungAlone = await insertEvent(YOUNG);

    const result = await runRetention(db.pool, { policy: DEFAULTS, batchSize: 100 });

    // No partition covers 40 days ago in this database, so those attempts sit in the default partition
    // and go row by row (a daily partition would go whole: partitions.test.ts).
    expect(result).toMatchObject({
      defaultAttempts: 5,
      deliveries: 4,
      deadLetters: 1,
      events: 4,
      complete: true,
    });
    expect((await ids('deliveries')).sort()).toEqual(
      [dPending, dInFlight, dReplayed, dRedead, dMixedLive, dYoung].sort(),
    );
    expect(await ids('deliveries')).not.toEqual(
      expect.arrayContaining([dSucceeded, dCancelled, dFailed, dMixedDone]),
    );
    expect((await ids('events')).sort()).toEqual(
      [ePending, eInFlight, eReplayed, eRedead, eMixed, eYoung, eYoungAlone].sort(),
    );
    expect(await ids('events')).not.toContain(eNoDeliveries);
    expect(await ids('dead_letter_queue', 'delivery_id')).toEqual([dRedead]);
    expect(await attemptsOf(dSucceeded)).toBe(0);
    expect(await attemptsOf(dFailed)).toBe(0);
    expect(await attemptsOf(dPending)).toBe(1); // the young one
    expect(await attemptsOf(dReplayed)).toBe(1);
    expect(await attemptsOf(dYoung)).toBe(1);

    // A second run finds nothing more to do.
    expect(await runRetention(db.pool, { policy: DEFAULTS, batchSize: 100 })).toMatchObject({
      defaultAttempts: 0,
      deliveries: 0,
      events: 0,
    });
  });

  it('works through many rows in small batches, skipping rows it keeps', async () => {
    const doomed: string[] = [];
    const kept: string[] = [];
    for (let i = 0; i < 25; i++) {
      const e = await insertEvent(OLD + i / 10);
      // Every fifth delivery is still live, so batches see a mix of rows to delete and rows to keep.
      const live = i % 5 === 0;
      await insertDelivery(e, {
        ageDays: OLD + i / 10,
        status: live ? 'pending' : 'succeeded',
        ...(live ? {} : { completedDaysAgo: OLD }),
        attemptsDaysAgo: [OLD + 1],
      });
      (live ? kept : doomed).push(e);
    }
    const result = await runRetention(db.pool, { policy: DEFAULTS, batchSize: 3 });
    expect(result).toMatchObject({ defaultAttempts: 25, deliveries: 20, events: 20, complete: true });
    expect((await ids('events')).sort()).toEqual(kept.sort());
  });

  it('deletes at most one batch per statement', async () => {
    for (let i = 0; i < 5; i++) {
      await insertDelivery(await insertEvent(OLD), {
        ageDays: OLD,
        status: 'succeeded',
        completedDaysAgo: OLD,
      });
    }
    const cutoff = await retentionCutoff(db.pool, RETENTION_DAYS);
    const batch = await deleteFinishedDeliveriesBatch(
      db.pool,
      { records: cutoff, deadLetters: cutoff },
      uuidV7Floor(cutoff),
      FIRST_ID,
      2,
    );
    expect(batch).toMatchObject({ scanned: 2, deleted: 2 });
    expect(await ids('deliveries')).toHaveLength(3);
  });

  it('stops between batches when its signal is aborted', async () => {
    for (let i = 0; i < 3; i++) {
      await insertDelivery(await insertEvent(OLD), {
        ageDays: OLD,
        status: 'succeeded',
        completedDaysAgo: OLD,
      });
    }
    const aborted = AbortSignal.abort();
    const result = await runRetention(db.pool, {
      policy: DEFAULTS,
      batchSize: 1,
      signal: aborted,
    });
    expect(result).toMatchObject({ deliveries: 0, events: 0, complete: false });
    expect(await ids('deliveries')).toHaveLength(3);
  });

  it('refuses a batch size below 1', async () => {
    await expect(runRetention(db.pool, { policy: DEFAULTS, batchSize: 0 })).rejects.toThrow(RangeError);
  });
});

async function payloadOf(eventId: string): Promise<unknown> {
  const { rows } = await db.pool.query('SELECT payload FROM events WHERE id = $1', [eventId]);
  expect(rows).toHaveLength(1);
  return rows[0].payload;
}

async function insertAudit(ageDays: number): Promise<string> {
  const { rows } = await db.pool.query(
    `INSERT INTO audit_log (at, actor, action, object_type, object_id, tenant_id)
     VALUES ($1, 'admin', 'webhook.update', 'webhook', $2, $3) RETURNING id`,
    [daysAgo(ageDays), webhookId, tenantId],
  );
  return String(rows[0].id);
}

describe('each retention setting on its own', () => {
  it('RETENTION_DLQ_DAYS: dead-lettered deliveries leave after their own period, the others keep theirs', async () => {
    const deadOld = await insertDelivery(await insertEvent(10), {
      ageDays: 10,
      status: 'failed',
      completedDaysAgo: 9,
    });
    const deadYoung = await insertDelivery(await insertEvent(3), {
      ageDays: 3,
      status: 'failed',
      completedDaysAgo: 2,
    });
    const succeeded = await insertDelivery(await insertEvent(10), {
      ageDays: 10,
      status: 'succeeded',
      completedDaysAgo: 9,
    });
    const shorter = await runRetention(db.pool, { policy: policy(30, { dlqDays: 7 }), batchSize: 100 });
    expect(shorter).toMatchObject({ deliveries: 1, deadLetters: 1, events: 0 });
    expect((await ids('deliveries')).sort()).toEqual([deadYoung, succeeded].sort());
    expect(await ids('dead_letter_queue', 'delivery_id')).toEqual([deadYoung]);
    expect(deadOld).toBeDefined();

    // Longer than RETENTION_DAYS: the DLQ keeps what finished deliveries would lose.
    const deadKept = await insertDelivery(await insertEvent(40), {
      ageDays: 40,
      status: 'failed',
      completedDaysAgo: 40,
    });
    const doneOld = await insertDelivery(await insertEvent(40), {
      ageDays: 40,
      status: 'succeeded',
      completedDaysAgo: 40,
    });
    const longer = await runRetention(db.pool, { policy: policy(30, { dlqDays: 60 }), batchSize: 100 });
    expect(longer).toMatchObject({ deliveries: 1, deadLetters: 0, events: 1 });
    expect(await ids('deliveries')).toEqual(expect.arrayContaining([deadKept]));
    expect(await ids('deliveries')).not.toContain(doneOld);
  });

  it('RETENTION_PAYLOAD_DAYS: payloads are emptied after their period unless a delivery may still send them', async () => {
    const eDone = await insertEvent(10);
    await insertDelivery(eDone, { ageDays: 10, status: 'succeeded', completedDaysAgo: 10 });
    const eNoDeliveries = await insertEvent(10);
    const ePending = await insertEvent(10);
    await insertDelivery(ePending, { ageDays: 10, status: 'pending' });
    const eInFlight = await insertEvent(10);
    await insertDelivery(eInFlight, { ageDays: 10, status: 'in_flight' });
    const eDead = await insertEvent(10);
    await insertDelivery(eDead, { ageDays: 10, status: 'failed', completedDaysAgo: 10 });
    const eYoung = await insertEvent(3);
    await insertDelivery(eYoung, { ageDays: 3, status: 'succeeded', completedDaysAgo: 3 });

    const result = await runRetention(db.pool, { policy: policy(30, { payloadDays: 7 }), batchSize: 2 });
    expect(result).toMatchObject({ payloads: 2, deliveries: 0, events: 0, complete: true });
    // The rows stay (RETENTION_DAYS); only the payload is gone, as SQL NULL.
    expect(await payloadOf(eDone)).toBeNull();
    expect(await payloadOf(eNoDeliveries)).toBeNull();
    const { rows } = await db.pool.query('SELECT count(*)::int AS n FROM events WHERE payload IS NULL');
    expect(rows[0].n).toBe(2);
    for (const kept of [ePending, eInFlight, eDead, eYoung]) expect(await payloadOf(kept)).toEqual({});

    // Nothing left to empty: the next run looks only at events still holding a payload.
    expect(
      await runRetention(db.pool, { policy: policy(30, { payloadDays: 7 }), batchSize: 2 }),
    ).toMatchObject({ payloads: 0 });
  });

  it('a replay of a delivery whose payload is gone is refused (409), and a replay racing retention keeps the payload', async () => {
    const eGone = await insertEvent(10);
    const dGone = await insertDelivery(eGone, { ageDays: 10, status: 'succeeded', completedDaysAgo: 10 });
    const eRacing = await insertEvent(10);
    const dRacing = await insertDelivery(eRacing, { ageDays: 10, status: 'succeeded', completedDaysAgo: 10 });

    // A replay holds its event's lock while retention runs: retention passes that event by.
    const client = await db.pool.connect();
    try {
      await client.query('BEGIN');
      await expect(replayDelivery(client, dRacing, undefined)).resolves.toMatchObject({ kind: 'requeued' });
      const result = await runRetention(db.pool, { policy: policy(30, { payloadDays: 7 }), batchSize: 100 });
      expect(result.payloads).toBe(1);
      await client.query('COMMIT');
    } finally {
      client.release();
    }
    expect(await payloadOf(eRacing)).toEqual({});
    expect(await payloadOf(eGone)).toBeNull();
    // Pending again now: a later run still keeps its payload.
    await runRetention(db.pool, { policy: policy(30, { payloadDays: 7 }), batchSize: 100 });
    expect(await payloadOf(eRacing)).toEqual({});

    await expect(
      replay(db.pool, dGone, {
        by: { actor: 'admin', keyPrefix: null, clientIp: null },
        tenantId: undefined,
      }),
    ).rejects.toMatchObject({
      status: 409,
      message: expect.stringContaining('RETENTION_PAYLOAD_DAYS'),
    });
    const { rows } = await db.pool.query('SELECT status FROM deliveries WHERE id = $1', [dGone]);
    expect(rows).toEqual([{ status: 'succeeded' }]);
  });

  it('RETENTION_AUDIT_DAYS: the audit log is trimmed after its own period, nothing else', async () => {
    const old = [await insertAudit(100), await insertAudit(40)];
    const young = [await insertAudit(10), await insertAudit(0)];
    const e = await insertEvent(40);
    const d = await insertDelivery(e, { ageDays: 40, status: 'succeeded', completedDaysAgo: 40 });
    const result = await runRetention(db.pool, { policy: policy(365, { auditDays: 30 }), batchSize: 1 });
    expect(result).toMatchObject({ audit: 2, deliveries: 0, events: 0, complete: true });
    expect((await ids('audit_log')).sort()).toEqual(young.sort());
    expect(old).toHaveLength(2);
    expect(await ids('deliveries')).toEqual([d]);
  });
});

describe('the events log outside retention', () => {
  it('still refuses a plain DELETE and UPDATE, also on connections retention has used', async () => {
    const e = await insertEvent(OLD);
    await runRetention(db.pool, { policy: DEFAULTS, batchSize: 10 }); // deletes e
    const kept = await insertEvent(OLD);
    await insertDelivery(kept, { ageDays: OLD, status: 'pending' });
    expect(await ids('events')).toEqual([kept]);
    expect(e).not.toBe(kept);

    // The pool's connections include the ones retention ran on: the switch must not have leaked.
    const clients = await Promise.all(Array.from({ length: 3 }, () => db.pool.connect()));
    try {
      for (const c of clients) {
        await expect(c.query('DELETE FROM events')).rejects.toMatchObject({ code: '42501' });
        await expect(c.query(`UPDATE events SET type = 'x'`)).rejects.toMatchObject({ code: '42501' });
      }
    } finally {
      for (const c of clients) c.release();
    }
    expect(await ids('events')).toEqual([kept]);
  });
});

describe('uuidV7Floor', () => {
  it('sorts below every UUIDv7 of that millisecond and above every earlier one', () => {
    const t = Date.UTC(2024, 0, 1, 12, 0, 0, 123);
    const floor = uuidV7Floor(new Date(t));
    expect(floor).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-0000-0000-000000000000$/);
    for (let i = 0; i < 50; i++) {
      expect(v7({ msecs: t }) >= floor).toBe(true);
      expect(v7({ msecs: t - 1 }) < floor).toBe(true);
    }
  });
});
