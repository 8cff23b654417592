/**
 * Retention of a day of attempts: dropping its partition (what runRetention does now) against deleting
 * its rows in batches (what it did before migration 0019), on the same rows.
 *
 *   npm run bench:retention                 # BENCH_ATTEMPTS=1000000 attempts on the expired day
 *
 * An embedded PostgreSQL in a temp dir, migrated. One day 31 days ago gets BENCH_ATTEMPTS attempts
 * (INSERT … SELECT generate_series), two recent days BENCH_KEPT each that must stay. Then:
 *
 * - partitioned: the whole retention job (runRetention, RETENTION_DAYS=30; its deliveries, events, payload
 *   and audit steps find nothing: the deliveries are young), BENCH_REPEAT times (default 3; median) on a
 *   fresh fill of the expired day each time, at BENCH_ATTEMPTS and at a tenth of it: the drop does not
 *   grow with the rows. Also the job once with nothing to drop;
 * - row_by_row: the same rows in an unpartitioned table shaped like delivery_attempts before 0019 (same
 *   columns, primary key and indexes), emptied with the statement the old retention ran, 1000 rows a time.
 *
 * Sizes are pg_total_relation_size summed over a table's partitions, before, after, and (row by row) after
 * a plain VACUUM too. Prints one JSON line; stops its server by itself.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import type pg from 'pg';
import { startEmbeddedPostgres } from '../src/db/embedded.js';
import { runMigrations } from '../src/db/migrate.js';
import { createPool } from '../src/db/pool.js';
import { runRetention } from '../src/maintenance/retention.js';

const ATTEMPTS = Number(process.env.BENCH_ATTEMPTS ?? 1_000_000);
const KEPT = Number(process.env.BENCH_KEPT ?? 100_000);
const DELIVERIES = 10_000;
const DAYS = 30;
const BATCH = 1000;
const REPEAT = Number(process.env.BENCH_REPEAT ?? 3);
const POLICY = { recordDays: DAYS, payloadDays: DAYS, attemptDays: DAYS, dlqDays: DAYS, auditDays: DAYS };

/** Attempts spread over the UTC day `dayOffset` days from today, into `table`. */
async function fill(db: pg.Pool, table: string, dayOffset: number, n: number): Promise<void> {
  // Realistic width: a status, an error on one in five, a short response excerpt on every row.
  await db.query(
    `INSERT INTO ${table} (delivery_id, attempt, started_at, duration_ms, status_code, error, response_excerpt)
     SELECT ('00000000-0000-7000-8000-' || lpad(to_hex(g % ${DELIVERIES}), 12, '0'))::uuid,
            1 + g % 5,
            ((now() AT TIME ZONE 'UTC')::date + $1::int)::timestamp AT TIME ZONE 'UTC'
              + (g::float8 / $2) * interval '1 day',
            20 + g % 300,
            CASE WHEN g % 5 = 0 THEN 503 ELSE 200 END,
            CASE WHEN g % 5 = 0 THEN 'HTTP 503' END,
            '{"ok":true,"request":"' || md5(g::text) || '"}'
       FROM generate_series(0, $2::int - 1) g`,
    [dayOffset, n],
  );
}

/** pg_total_relation_size of a table and all its partitions (pg_partition_tree is empty for a plain table). */
async function bytes(db: pg.Pool, table: string): Promise<number> {
  const { rows } = await db.query<{ b: string }>(
    `SELECT coalesce((SELECT sum(pg_total_relation_size(relid)) FROM pg_partition_tree($1::regclass)),
                     pg_total_relation_size($1::regclass))::bigint AS b`,
    [table],
  );
  return Number(rows[0]!.b);
}

async function count(db: pg.Pool, table: string): Promise<number> {
  const { rows } = await db.query<{ n: string }>(`SELECT count(*) AS n FROM ${table}`);
  return Number(rows[0]!.n);
}

const ms = (t0: number) => Math.round((performance.now() - t0) * 10) / 10;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** The kept days of delivery_attempts (yesterday and today), filled once. */
async function fillKept(db: pg.Pool) {
  await db.query(
    `SELECT postbox.create_attempt_partition((now() AT TIME ZONE 'UTC')::date + g) FROM generate_series(-1, 3) g`,
  );
  await fill(db, 'delivery_attempts', -1, KEPT);
  await fill(db, 'delivery_attempts', 0, KEPT);
}

/**
 * REPEAT times: fills the day 31 days ago with `attempts`, then times the whole retention job (which
 * drops that day; its other steps find nothing). Sizes and fill time are those of the first round.
 */
async function partitioned(db: pg.Pool, attempts: number) {
  const runs: number[] = [];
  let first: Record<string, unknown> = {};
  for (let round = 0; round < REPEAT; round++) {
    await db.query(`SELECT postbox.create_attempt_partition((now() AT TIME ZONE 'UTC')::date - 31)`);
    const f0 = performance.now();
    await fill(db, 'delivery_attempts', -31, attempts);
    const fillMs = ms(f0);
    await db.query('VACUUM ANALYZE delivery_attempts');
    const before = {
      rows: await count(db, 'delivery_attempts'),
      bytes: await bytes(db, 'delivery_attempts'),
    };
    const t0 = performance.now();
    const run = await runRetention(db, { policy: POLICY, batchSize: BATCH });
    runs.push(ms(t0));
    if (run.attemptDays !== 1) throw new Error(`expected one day dropped, got ${run.attemptDays}`);
    const after = { rows: await count(db, 'delivery_attempts'), bytes: await bytes(db, 'delivery_attempts') };
    if (after.rows !== 2 * KEPT)
      throw new Error(`expected the ${2 * KEPT} kept attempts, found ${after.rows}`);
    if (round === 0) first = { fill_ms: fillMs, before, after };
  }
  return { retention_run_ms: median(runs), retention_run_ms_each: runs, ...first };
}

/** The same rows in a table shaped like delivery_attempts before 0019, deleted as the old retention did. */
async function rowByRow(db: pg.Pool, attempts: number) {
  await db.query(`CREATE TABLE old_attempts (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id uuid NOT NULL, attempt integer NOT NULL, started_at timestamptz NOT NULL,
    duration_ms integer NOT NULL, status_code integer, error text, response_excerpt text)`);
  await db.query('CREATE INDEX old_attempts_delivery_id_idx ON old_attempts (delivery_id, attempt)');
  await db.query('CREATE INDEX old_attempts_started_at_idx ON old_attempts (started_at)');
  await fill(db, 'old_attempts', -31, attempts);
  await fill(db, 'old_attempts', -1, KEPT);
  await fill(db, 'old_attempts', 0, KEPT);
  await db.query('VACUUM ANALYZE old_attempts');
  const before = { rows: await count(db, 'old_attempts'), bytes: await bytes(db, 'old_attempts') };

  const { rows } = await db.query<{ cutoff: Date }>(`SELECT now() - interval '${DAYS} days' AS cutoff`);
  const cutoff = rows[0]!.cutoff;
  let deleted = 0;
  let statements = 0;
  const t0 = performance.now();
  for (;;) {
    // The statement of the old src/queries/retention.ts (deleteAttemptsBefore), on this table.
    const { rowCount } = await db.query(
      `DELETE FROM old_attempts WHERE id IN (
         SELECT id FROM old_attempts WHERE started_at < $1 ORDER BY started_at LIMIT $2)`,
      [cutoff, BATCH],
    );
    statements++;
    deleted += rowCount ?? 0;
    if ((rowCount ?? 0) < BATCH) break;
  }
  const deleteMs = ms(t0);
  const after = { rows: await count(db, 'old_attempts'), bytes: await bytes(db, 'old_attempts') };
  if (after.rows !== 2 * KEPT) throw new Error(`expected the ${2 * KEPT} kept attempts, found ${after.rows}`);
  const v0 = performance.now();
  await db.query('VACUUM old_attempts');
  const vacuumMs = ms(v0);
  const afterVacuum = { bytes: await bytes(db, 'old_attempts') };
  await db.query('DROP TABLE old_attempts');
  return {
    delete_ms: deleteMs,
    statements,
    deleted,
    vacuum_ms: vacuumMs,
    before,
    after,
    after_vacuum: afterVacuum,
  };
}

function commit(): string {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'postbox-bench-retention-'));
  chmodSync(dir, 0o755);
  const server = await startEmbeddedPostgres(dir);
  const db = createPool(server.url, 4);
  try {
    await runMigrations(server.url);
    // Young, finished deliveries for the attempts to belong to: the other retention steps find nothing.
    const tenant = '00000000-0000-7000-8000-000000000001';
    const webhook = '00000000-0000-7000-8000-000000000002';
    await db.query(`INSERT INTO tenants (id, name) VALUES ($1, 'bench')`, [tenant]);
    await db.query(
      `INSERT INTO webhooks (id, tenant_id, url, secret_ciphertext, retry_policy)
       VALUES ($1, $2, 'https://example.com/h', '\\x00', '{"max_attempts":5,"initial_delay_ms":1000,"max_delay_ms":60000}')`,
      [webhook, tenant],
    );
    await db.query(
      `INSERT INTO events (id, tenant_id, type, payload, occurred_at) VALUES (postbox.uuidv7(), $1, 'bench', '{}', now())`,
      [tenant],
    );
    await db.query(
      `INSERT INTO deliveries (id, tenant_id, event_id, webhook_id, status, completed_at)
       SELECT postbox.uuidv7(), $1, (SELECT id FROM events LIMIT 1), $2, 'succeeded', now()
         FROM generate_series(1, ${DELIVERIES})`,
      [tenant, webhook],
    );

    const load = loadavg()[0];
    await fillKept(db);
    // The job with nothing to drop: what its other steps and the partition bookkeeping cost alone.
    const idle0 = performance.now();
    await runRetention(db, { policy: POLICY, batchSize: BATCH });
    const idleMs = ms(idle0);
    const big = await partitioned(db, ATTEMPTS);
    const small = await partitioned(db, Math.round(ATTEMPTS / 10));
    const old = await rowByRow(db, ATTEMPTS);
    const oldSmall = await rowByRow(db, Math.round(ATTEMPTS / 10));
    console.log(
      JSON.stringify({
        bench: 'retention',
        commit: commit(),
        attempts_on_expired_day: ATTEMPTS,
        attempts_kept: 2 * KEPT,
        batch: BATCH,
        repeat: REPEAT,
        retention_run_nothing_to_drop_ms: idleMs,
        partitioned: big,
        partitioned_tenth: {
          attempts_on_expired_day: Math.round(ATTEMPTS / 10),
          retention_run_ms: small.retention_run_ms,
          retention_run_ms_each: small.retention_run_ms_each,
        },
        row_by_row: old,
        row_by_row_tenth: {
          attempts_on_expired_day: Math.round(ATTEMPTS / 10),
          delete_ms: oldSmall.delete_ms,
          statements: oldSmall.statements,
        },
        machine: {
          cpus: cpus().length,
          cpu: cpus()[0]?.model,
          mem_gib: Math.round(totalmem() / 2 ** 30),
          load_1m_at_start: load,
          load_1m_at_end: loadavg()[0],
          node: process.version,
        },
      }),
    );
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
