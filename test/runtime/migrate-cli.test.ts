/**
 * `npm run db:migrate`'s entry point (src/cli/migrate.ts): migrates an empty database and exits,
 * is a no-op the second time, and fails with exit 1 and a log line when the database is unreachable.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import pg from 'pg';
import { freePort } from '../../src/db/embedded.js';
import { latestMigrationMillis } from '../../src/db/migrate.js';
import { appliedMigrationMillis } from '../../src/queries/health.js';

const admin = () => new pg.Client({ connectionString: process.env.POSTBOX_TEST_ADMIN_URL });
const name = `postbox_migrate_${randomBytes(4).toString('hex')}`;
let url: string;

beforeAll(async () => {
  const c = admin();
  await c.connect();
  await c.query(`CREATE DATABASE ${name}`); // empty: not the migrated template
  await c.end();
  const u = new URL(process.env.POSTBOX_TEST_ADMIN_URL!);
  u.pathname = '/' + name;
  url = u.toString();
});

afterAll(async () => {
  const c = admin();
  await c.connect();
  await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await c.end();
});

function migrate(databaseUrl: string): Promise<{ code: number | null; out: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/migrate.ts'], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', DATABASE_URL: databaseUrl, LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (out += c.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, out })));
}

async function applied(): Promise<{ latest: number | null; count: number }> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const latest = await appliedMigrationMillis(c);
    const { rows } = await c.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM drizzle.__drizzle_migrations',
    );
    return { latest, count: rows[0]!.n };
  } finally {
    await c.end();
  }
}

it('migrates an empty database to the latest migration, then does nothing the second time', async () => {
  const first = await migrate(url);
  expect(first).toMatchObject({ code: 0 });
  expect(first.out).toContain('"message":"migrations applied"');
  const after = await applied();
  expect(after.latest).toBe(latestMigrationMillis());

  const second = await migrate(url);
  expect(second.code).toBe(0);
  expect(await applied()).toEqual(after);
}, 90_000);

it('exits 1 with a log line when the database cannot be reached', async () => {
  const closed = await freePort();
  const res = await migrate(`postgres://postgres@127.0.0.1:${closed}/postgres`);
  expect(res.code).toBe(1);
  expect(res.out).toContain('"message":"migrations failed"');
}, 60_000);
