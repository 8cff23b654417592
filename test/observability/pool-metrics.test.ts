/** The pool gauges follow a real pool: connections in use, idle, requests waiting, acquisition time. */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type pg from 'pg';
import { createPool } from '../../src/db/pool.js';
import { Registry } from 'prom-client';
import { registerPoolMetrics } from '../../src/observability/pool-metrics.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { sampleValue } from '../helpers/prom.js';

let db: TestDatabase;
let pool: pg.Pool;
beforeAll(async () => {
  db = await createTestDatabase();
  pool = createPool(db.url, 2);
});
afterAll(async () => {
  await pool.end();
  await db.drop();
});

describe('pool metrics', () => {
  it('show a saturated pool: all connections in use, a request waiting, and how long it waited', async () => {
    const registry = new Registry();
    registerPoolMetrics(registry, pool);
    // A second registry on the same pool sees the same acquisitions (the pool is wrapped once).
    const other = new Registry();
    registerPoolMetrics(other, pool);
    const read = async (r = registry) => {
      const text = await r.metrics();
      return (name: string) => sampleValue(text, name);
    };
    let v = await read();
    expect(v('postbox_pg_pool_max')).toBe(2);
    const acquiredBefore = v('postbox_pg_pool_acquire_seconds_count')!;

    const a = await pool.connect();
    const b = await pool.connect();
    const third = pool.query('SELECT 1'); // waits: both connections are taken
    v = await read();
    expect(v('postbox_pg_pool_total')).toBe(2);
    expect(v('postbox_pg_pool_idle')).toBe(0);
    expect(v('postbox_pg_pool_waiting')).toBe(1);

    const heldMs = 200;
    await new Promise((r) => setTimeout(r, heldMs)); // the wait being measured, not a synchronisation
    a.release();
    await third;
    b.release();
    v = await read();
    expect(v('postbox_pg_pool_waiting')).toBe(0);
    expect(v('postbox_pg_pool_idle')).toBe(2);
    // a, b and the query's own acquisition; the last one waited at least as long as `a` was held.
    expect(v('postbox_pg_pool_acquire_seconds_count')).toBe(acquiredBefore + 3);
    expect(v('postbox_pg_pool_acquire_seconds_sum')).toBeGreaterThanOrEqual((heldMs - 20) / 1000);
    expect((await read(other))('postbox_pg_pool_acquire_seconds_count')).toBe(acquiredBefore + 3);
  });
});
