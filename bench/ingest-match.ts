/**
 * The ingest statement (postbox.ingest) against 100,000 webhooks of one tenant, with and without
 * payload filters. Times each call from the client (one event per call, as POST /events with no
 * concurrency) and prints p50/p95 per scenario:
 *
 *   types-only       100,000 webhooks on other types, 5 on the event's type, no filters
 *   filters-elsewhere the same, and every webhook carries a filter (the 5 matching ones too)
 *   filters-on-type  100,000 webhooks all on the event's type, each with its own filter; 1 matches
 *                    (the worst case: the filter is evaluated for every webhook)
 *
 *   npm run bench:ingest-match                  # BENCH_EVENTS=200 events per scenario
 *
 * An embedded PostgreSQL in a temp dir; no network but loopback; stops by itself.
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { startEmbeddedPostgres } from '../src/db/embedded.js';
import { runMigrations } from '../src/db/migrate.js';
import { newId } from '../src/ids.js';
import { compileFilter } from '../src/ingest/payload-filter.js';
import { insertEventsWithDeliveries } from '../src/queries/events.js';

const EVENTS = Number(process.env.BENCH_EVENTS ?? 200);
const WEBHOOKS = 100_000;

async function seed(db: pg.Client, tenant: string, rows: (g: string) => string, filtered: boolean) {
  await db.query('TRUNCATE deliveries, webhooks CASCADE');
  const sample = { path: 'customer', eq: 'c1' };
  await db.query(
    `INSERT INTO webhooks (id, tenant_id, url, secret_ciphertext, event_types, retry_policy, filter, filter_path)
     SELECT gen_random_uuid(), $1, 'https://example.com/' || g, '\\x00'::bytea, ${rows('g')},
            '{"max_attempts":1,"initial_delay_ms":100,"max_delay_ms":100}',
            CASE WHEN $2 THEN jsonb_build_object('path', 'customer', 'eq', 'c' || g) END,
            CASE WHEN $2 THEN replace($3, '"c1"', '"c' || g || '"')::jsonpath END
       FROM generate_series(1, ${WEBHOOKS}) g`,
    [tenant, filtered, compileFilter(sample)],
  );
  await db.query('ANALYZE webhooks');
}

async function time(db: pg.Client, tenant: string, type: string, payload: (i: number) => unknown) {
  const ms: number[] = [];
  let queued = 0;
  for (let i = 0; i < EVENTS; i++) {
    const t0 = performance.now();
    const [row] = await insertEventsWithDeliveries(db, [
      {
        ord: 0,
        id: newId(),
        tenantId: tenant,
        type,
        payload: JSON.stringify(payload(i)),
        occurredAt: null,
        idempotencyKey: null,
        traceparent: null,
      },
    ]);
    ms.push(performance.now() - t0);
    queued += row!.deliveryIds.length;
  }
  ms.sort((a, b) => a - b);
  const at = (p: number) => Math.round(ms[Math.min(ms.length - 1, Math.floor(p * ms.length))]! * 100) / 100;
  return { p50_ms: at(0.5), p95_ms: at(0.95), deliveries_per_event: queued / EVENTS };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'postbox-bench-match-'));
  chmodSync(dir, 0o755);
  const server = await startEmbeddedPostgres(dir);
  const db = new pg.Client({ connectionString: server.url });
  try {
    await runMigrations(server.url);
    await db.connect();
    const tenant = newId();
    await db.query(`INSERT INTO tenants (id, name) VALUES ($1, 'bench')`, [tenant]);
    const otherTypes = (g: string) =>
      `CASE WHEN ${g} % 20000 = 0 THEN ARRAY['order.*'] ELSE ARRAY['bulk.type' || ${g}, 'bulk.*'] END`;
    const results: Record<string, unknown> = {};

    await seed(db, tenant, otherTypes, false);
    results['types-only'] = await time(db, tenant, 'order.created', (i) => ({ customer: `c${i}` }));
    await seed(db, tenant, otherTypes, true);
    // Customers c20000, c40000, ...: the matching webhooks' own filters pass for one in 5 of the 5.
    results['filters-elsewhere'] = await time(db, tenant, 'order.created', (i) => ({
      customer: `c${20000 * ((i % 5) + 1)}`,
    }));
    await seed(db, tenant, () => `ARRAY['order.*']`, true);
    results['filters-on-type'] = await time(db, tenant, 'order.created', (i) => ({
      customer: `c${(i % WEBHOOKS) + 1}`,
    }));

    console.log(JSON.stringify({ webhooks: WEBHOOKS, events_per_scenario: EVENTS, results }, null, 2));
  } finally {
    await db.end().catch(() => {});
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
