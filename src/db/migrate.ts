/**
 * Applies db/migrations (drizzle-kit's journal plus hand-written SQL) under an advisory lock, so
 * several processes starting together do not race.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { drizzle } from 'drizzle-orm/node-postgres';
import { migrate } from 'drizzle-orm/node-postgres/migrator';
import pg from 'pg';
import { migrationsFolder } from '../paths.js';

const MIGRATION_LOCK = 7_310_001; // arbitrary, fixed: the advisory lock key for migrations

interface Journal {
  entries: { when: number; tag: string }[];
}

export async function runMigrations(connectionString: string): Promise<void> {
  const client = new pg.Client({ connectionString, application_name: 'postbox-migrate' });
  await client.connect();
  try {
    await client.query('SET client_min_messages = warning');
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
    await migrate(drizzle(client), { migrationsFolder });
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => {});
    await client.end();
  }
}

/** The timestamp of the newest migration this build knows about. */
export function latestMigrationMillis(): number {
  const journal = JSON.parse(
    readFileSync(join(migrationsFolder, 'meta', '_journal.json'), 'utf8'),
  ) as Journal;
  return Math.max(...journal.entries.map((e) => e.when));
}
