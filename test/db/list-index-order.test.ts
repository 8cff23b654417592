/**
 * Lists are `ORDER BY id DESC` (NULLS FIRST by default). An index declared `DESC NULLS LAST` cannot
 * serve that order, so the planner sorts every matching row before LIMIT. With seq scans off, each
 * list shape must be answered by an index walk with no Sort node.
 */
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import type pg from 'pg';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';

let db: TestDatabase;
let client: pg.PoolClient;
beforeAll(async () => {
  db = await createTestDatabase();
  client = await db.pool.connect();
  // Empty tables: make every alternative to an ordered index walk look unaffordable, so a Sort
  // appears only when no index can give the order.
  await client.query('SET enable_seqscan = off; SET enable_bitmapscan = off; SET enable_sort = off');
});
afterAll(async () => {
  client.release();
  await db.drop();
});

const tenant = "'0190b6a4-3f1e-7c3a-9d2e-000000000000'::uuid";
/** Each list shape and the index that must serve it, filter and order together. */
const shapes: Record<string, [string, string]> = {
  events: [
    'events_tenant_id_idx',
    `SELECT id FROM events WHERE tenant_id = ${tenant} ORDER BY id DESC LIMIT 51`,
  ],
  'events by type': [
    'events_tenant_type_idx',
    `SELECT id FROM events WHERE tenant_id = ${tenant} AND type = 'a' ORDER BY id DESC LIMIT 51`,
  ],
  webhooks: [
    'webhooks_tenant_id_idx',
    `SELECT id FROM webhooks WHERE tenant_id = ${tenant} ORDER BY id DESC LIMIT 51`,
  ],
  deliveries: [
    'deliveries_tenant_id_idx',
    `SELECT id FROM deliveries WHERE tenant_id = ${tenant} ORDER BY id DESC LIMIT 51`,
  ],
  'deliveries by webhook': [
    'deliveries_webhook_id_idx',
    `SELECT id FROM deliveries WHERE webhook_id = ${tenant} ORDER BY id DESC LIMIT 51`,
  ],
  audit: [
    'audit_log_tenant_idx',
    `SELECT id FROM audit_log WHERE tenant_id = ${tenant} ORDER BY id DESC LIMIT 51`,
  ],
  dlq: [
    'dead_letter_queue_tenant_idx',
    `SELECT delivery_id FROM dead_letter_queue WHERE tenant_id = ${tenant} ORDER BY dead_at DESC, delivery_id DESC LIMIT 51`,
  ],
  'dlq, admin': [
    'dead_letter_queue_dead_at_idx',
    `SELECT delivery_id FROM dead_letter_queue ORDER BY dead_at DESC, delivery_id DESC LIMIT 51`,
  ],
};

it.each(Object.entries(shapes))(
  '%s: newest first is a walk of its index, not a sort',
  async (_name, [index, sql]) => {
    const { rows } = await client.query(`EXPLAIN (COSTS OFF) ${sql}`);
    const plan = rows.map((r) => r['QUERY PLAN']).join('\n');
    expect(plan).toMatch(new RegExp(`Index (Only )?Scan using ${index} `));
    expect(plan).not.toMatch(/Sort/);
  },
);
