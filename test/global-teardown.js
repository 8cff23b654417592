import pg from 'pg';

export default async function globalTeardown() {
  const server = globalThis.__POSTBOX_TEST_SERVER__;
  if (!server) return;
  if (process.env.TEST_DATABASE_URL) {
    // Leave a shared server as we found it.
    const admin = new pg.Client({ connectionString: server.url });
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS ${process.env.POSTBOX_TEST_TEMPLATE} WITH (FORCE)`);
    await admin.end();
  }
  await server.stop();
}
