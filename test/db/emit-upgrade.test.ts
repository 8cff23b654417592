/**
 * Upgrading a database whose producers already call postbox.emit: the migration that gives emit its
 * catalog arguments (0025) replaces the function, and the roles that could execute the old one keep
 * that right on the new one. Migrations are applied as drizzle's migrator applies them (each file's
 * statements in journal order, in a transaction), stopping before 0025 to set up a producer role as
 * an operator would.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import pg from 'pg';
import { migrationsFolder } from '../../src/paths.js';
import { createProducerRole } from '../../src/queries/producers.js';

const UPGRADE = '0025_event_versions_at_ingest';

const admin = () => new pg.Client({ connectionString: process.env.POSTBOX_TEST_ADMIN_URL });
const name = `postbox_upgrade_${randomBytes(4).toString('hex')}`;
const role = `producer_${randomBytes(4).toString('hex')}`;
let url: string;
let db: pg.Client;

beforeAll(async () => {
  const a = admin();
  await a.connect();
  await a.query(`CREATE DATABASE ${name}`);
  await a.end();
  const u = new URL(process.env.POSTBOX_TEST_ADMIN_URL!);
  u.pathname = `/${name}`;
  url = u.toString();
  db = new pg.Client({ connectionString: url });
  await db.connect();
  await db.query('SET client_min_messages = warning');
});

afterAll(async () => {
  await db?.end();
  const a = admin();
  await a.connect();
  await a.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await a.query(`DROP ROLE IF EXISTS ${role}`);
  await a.end();
});

async function apply(tags: string[]): Promise<void> {
  await db.query('BEGIN');
  for (const tag of tags) {
    const text = readFileSync(join(migrationsFolder, `${tag}.sql`), 'utf8');
    for (const statement of text.split('--> statement-breakpoint'))
      if (statement.trim()) await db.query(statement);
  }
  await db.query('COMMIT');
}

it("keeps a producer role's EXECUTE on postbox.emit across the migration that replaces it", async () => {
  const journal = JSON.parse(readFileSync(join(migrationsFolder, 'meta', '_journal.json'), 'utf8')) as {
    entries: { tag: string }[];
  };
  const tags = journal.entries.map((e) => e.tag);
  const at = tags.indexOf(UPGRADE);
  expect(at).toBeGreaterThan(0);
  await apply(tags.slice(0, at));
  await createProducerRole(db, role, 'upgrade-test');
  const canEmit = async () =>
    (
      await db.query<{ ok: boolean }>(
        `SELECT has_function_privilege($1, p.oid, 'EXECUTE') AS ok FROM pg_proc p
          WHERE p.oid = to_regproc('postbox.emit')`,
        [role],
      )
    ).rows[0]?.ok;
  expect(await canEmit()).toBe(true);

  await apply([UPGRADE]);
  expect(await canEmit()).toBe(true);
  const { rows } = await db.query<{ args: string }>(
    `SELECT pg_get_function_identity_arguments('postbox.emit'::regproc) AS args`,
  );
  expect(rows[0]!.args).toBe(
    'tenant_id uuid, type text, payload jsonb, idempotency_key text, occurred_at timestamp with time zone, version integer, metadata jsonb, source text',
  );
  // PUBLIC still may not.
  const pub = await db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_proc p, aclexplode(p.proacl) a
      WHERE p.oid = 'postbox.emit'::regproc AND a.grantee = 0`,
  );
  expect(pub.rows[0]!.n).toBe(0);
});
