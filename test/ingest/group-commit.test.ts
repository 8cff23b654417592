import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Queryable } from '../../src/db/pool.js';
import { IngestGroupCommit } from '../../src/ingest/group-commit.js';
import type { EventInput } from '../../src/ingest/ingest.js';
import { newId } from '../../src/ids.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { sqlTenant, sqlWebhook } from '../helpers/fixtures-sql.js';

let db: TestDatabase;
let tenantId: string;
let webhookId: string;

/** The pool, counting the statements that insert events. */
function countingPool(): { pool: Queryable; inserts: () => number } {
  let inserts = 0;
  const pool: Queryable = {
    query: ((text: unknown, values?: unknown) => {
      if (typeof text === 'string' && text.includes('INSERT INTO events')) inserts++;
      return db.pool.query(text as string, values as unknown[]);
    }) as Queryable['query'],
  };
  return { pool, inserts: () => inserts };
}

const event = (over: Partial<EventInput> = {}): EventInput => ({
  tenantId,
  type: 'order.created',
  payloadJson: '{"n":1}',
  ...over,
});

beforeAll(async () => {
  db = await createTestDatabase();
  tenantId = (await sqlTenant(db.pool)).id;
  webhookId = (await sqlWebhook(db.pool, tenantId, { eventTypes: ['order.*'] })).id;
});
afterAll(async () => {
  await db.drop();
});

describe('ingest group commit', () => {
  it('combines concurrent requests into fewer statements and gives each its own answer', async () => {
    const { pool, inserts } = countingPool();
    const gc = new IngestGroupCommit(pool, { maxEvents: 1000, maxInFlight: 1, parallelFrom: 1 });
    const requests = Array.from({ length: 30 }, (_, i) => [event({ payloadJson: JSON.stringify({ i }) })]);
    const answers = await Promise.all(requests.map((r) => gc.ingest(r)));

    expect(inserts()).toBeLessThan(30);
    expect(answers.every((a) => a.length === 1 && a[0]!.created && a[0]!.delivery_ids.length === 1)).toBe(
      true,
    );
    // Each answer belongs to its own request: the stored payload of each event is the one sent.
    for (const [i, [a]] of answers.entries()) {
      const { rows } = await db.pool.query('SELECT payload FROM events WHERE id = $1', [a!.event_id]);
      expect(rows[0].payload).toEqual({ i });
      const d = await db.pool.query('SELECT webhook_id FROM deliveries WHERE id = $1', [a!.delivery_ids[0]]);
      expect(d.rows[0].webhook_id).toBe(webhookId);
    }
  });

  it('answers a repeated idempotency key in the same flush with the first answer', async () => {
    const gc = new IngestGroupCommit(db.pool, { maxEvents: 1000, maxInFlight: 1, parallelFrom: 1 });
    const key = `k-${newId()}`;
    const [blocker, first, second] = await Promise.all([
      gc.ingest([event()]),
      gc.ingest([event({ idempotencyKey: key })]),
      gc.ingest([event({ idempotencyKey: key })]),
    ]);
    expect(blocker[0]!.created).toBe(true);
    expect(first[0]!.created).toBe(true);
    expect(second[0]).toEqual({ ...first[0], created: false });
    const { rows } = await db.pool.query('SELECT count(*)::int AS n FROM events WHERE idempotency_key = $1', [
      key,
    ]);
    expect(rows[0].n).toBe(1);
  });

  it('fails only the request whose data breaks the combined statement', async () => {
    const gc = new IngestGroupCommit(db.pool, { maxEvents: 1000, maxInFlight: 1, parallelFrom: 1 });
    const unknownTenant = newId();
    const results = await Promise.allSettled([
      gc.ingest([event()]),
      gc.ingest([event({ payloadJson: '{"ok":1}' })]),
      gc.ingest([event({ tenantId: unknownTenant })]),
      gc.ingest([event({ payloadJson: '{"ok":2}' })]),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
    expect((results[2] as PromiseRejectedResult).reason.code).toBe('23503');
    const { rows } = await db.pool.query('SELECT count(*)::int AS n FROM events WHERE tenant_id = $1', [
      unknownTenant,
    ]);
    expect(rows[0].n).toBe(0);
  });

  it('fails every request of the flush when the database itself fails, storing nothing', async () => {
    const gc = new IngestGroupCommit(db.pool, { maxEvents: 1000, maxInFlight: 1, parallelFrom: 1 });
    const marker = `boom-${newId()}`;
    await db.pool.query(`
      CREATE FUNCTION fail_ingest() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN RAISE EXCEPTION 'injected failure'; END $$;
      CREATE TRIGGER fail_ingest BEFORE INSERT ON deliveries FOR EACH ROW EXECUTE FUNCTION fail_ingest();`);
    try {
      const results = await Promise.allSettled(
        [1, 2, 3].map((i) => gc.ingest([event({ payloadJson: JSON.stringify({ marker, i }) })])),
      );
      expect(results.every((r) => r.status === 'rejected')).toBe(true);
    } finally {
      await db.pool.query('DROP TRIGGER fail_ingest ON deliveries; DROP FUNCTION fail_ingest()');
    }
    const { rows } = await db.pool.query(
      `SELECT count(*)::int AS n FROM events WHERE payload->>'marker' = $1`,
      [marker],
    );
    expect(rows[0].n).toBe(0);
  });

  it('runs one statement at a time for small requests, and a second only while enough events wait', async () => {
    // Counts the ingest statements running at once, and the most seen.
    let running = 0;
    let most = 0;
    const pool: Queryable = {
      query: (async (text: unknown, values?: unknown) => {
        const counted = typeof text === 'object' && text !== null && 'name' in text;
        if (counted) most = Math.max(most, ++running);
        try {
          return await db.pool.query(text as string, values as unknown[]);
        } finally {
          if (counted) running--;
        }
      }) as Queryable['query'],
    };
    const gc = new IngestGroupCommit(pool, { maxEvents: 1000, maxInFlight: 2, parallelFrom: 100 });

    const singles = await Promise.all(Array.from({ length: 40 }, () => gc.ingest([event()])));
    expect(singles.every((a) => a.length === 1 && a[0]!.created)).toBe(true);
    expect(most).toBe(1);

    most = 0;
    const batch = () => Array.from({ length: 150 }, () => event());
    const batches = await Promise.all([gc.ingest(batch()), gc.ingest(batch()), gc.ingest(batch())]);
    expect(batches.every((a) => a.length === 150 && a.every((r) => r.created))).toBe(true);
    expect(most).toBe(2);
  });
});
