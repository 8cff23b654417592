/** A clean, migrated database per test file: a clone of the template made in global-setup.js. */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { createPool } from '../../src/db/pool.js';

export interface TestDatabase {
  name: string;
  url: string;
  pool: pg.Pool;
  drop(): Promise<void>;
}

function adminUrl(): string {
  const url = process.env.POSTBOX_TEST_ADMIN_URL;
  if (!url) throw new Error('POSTBOX_TEST_ADMIN_URL is not set: run the tests with `npm test`');
  return url;
}

async function asAdmin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: adminUrl() });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `postbox_test_${randomBytes(6).toString('hex')}`;
  await asAdmin((c) => c.query(`CREATE DATABASE ${name} TEMPLATE ${process.env.POSTBOX_TEST_TEMPLATE}`));
  const url = new URL(adminUrl());
  url.pathname = '/' + name;
  const pool = createPool(url.toString(), 10);
  return {
    name,
    url: url.toString(),
    pool,
    async drop() {
      await pool.end();
      await asAdmin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    },
  };
}
