/**
 * The embedded default, as `npm start` runs it: no DATABASE_URL, a real PostgreSQL under DATA_DIR/pg,
 * migrations applied at start; after a stop and a start on the same DATA_DIR, the data is still there
 * and the generated keys are reused.
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from '@jest/globals';
import pg from 'pg';
import { loadConfig } from '../../src/config.js';
import { runningEmbeddedUrl } from '../../src/db/embedded.js';
import { silentLogger } from '../../src/logger.js';
import { startPostbox } from '../../src/runtime/postbox.js';

const dataDir = mkdtempSync(join(tmpdir(), 'postbox-embedded-'));
chmodSync(dataDir, 0o755);
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

const config = () => loadConfig({ DATA_DIR: dataDir, POSTBOX_ROLE: 'api', LOG_LEVEL: 'error' });

it('keeps data and keys across a restart', async () => {
  const first = await startPostbox(config(), silentLogger());
  const adminKey = readFileSync(join(dataDir, 'admin-api-key'), 'utf8').trim();
  expect(statSync(join(dataDir, 'admin-api-key')).mode & 0o777).toBe(0o600);
  expect(statSync(join(dataDir, 'secrets-key')).mode & 0o777).toBe(0o600);
  const { rows } = await first.pool.query<{ id: string }>(
    `INSERT INTO tenants (id, name)
     VALUES ('0190b6a4-3f1e-7c3a-9d2e-000000000001', 'kept') RETURNING id`,
  );
  await first.stop();

  const second = await startPostbox(config(), silentLogger());
  try {
    expect(readFileSync(join(dataDir, 'admin-api-key'), 'utf8').trim()).toBe(adminKey);
    const again = await second.pool.query('SELECT name FROM tenants WHERE id = $1', [rows[0]!.id]);
    expect(again.rows).toEqual([{ name: 'kept' }]);
    // A tool (npm run secrets:rekey) finds the running instance's server from DATA_DIR alone.
    const url = runningEmbeddedUrl(dataDir);
    expect(url).toBeDefined();
    const tool = new pg.Client({ connectionString: url });
    await tool.connect();
    try {
      expect((await tool.query('SELECT name FROM tenants')).rows).toEqual([{ name: 'kept' }]);
    } finally {
      await tool.end();
    }
  } finally {
    await second.stop();
  }
  expect(runningEmbeddedUrl(dataDir)).toBeUndefined();
}, 60_000);
