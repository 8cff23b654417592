import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../../src/config.js';
import { silentLogger } from '../../src/logger.js';
import { startPostbox } from '../../src/runtime/postbox.js';
import { ADMIN_KEY, SECRETS_KEY, startTestAppOn } from '../helpers/app.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { sqlTenant, sqlWebhook } from '../helpers/fixtures-sql.js';

const OTHER_KEY = 'b'.repeat(64);

const dirs: string[] = [];
function dataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'postbox-key-test-'));
  dirs.push(dir);
  return dir;
}

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db.drop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Starts (and stops) an API-only instance on `database` with the given environment. */
async function start(database: TestDatabase, env: Record<string, string>): Promise<void> {
  const config = loadConfig({
    DATABASE_URL: database.url,
    DATA_DIR: dataDir(),
    ADMIN_API_KEY: ADMIN_KEY,
    POSTBOX_ROLE: 'api',
    ...env,
  });
  const postbox = await startPostbox(config, silentLogger());
  await postbox.stop();
}

async function refusal(promise: Promise<unknown>): Promise<ConfigError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('start-up was not refused');
}

const ONE_LINE =
  /^invalid configuration: SECRETS_KEY does not open the secrets stored in this database: set the key they were sealed with/;

describe('the secrets key at start-up', () => {
  it('seals the check on the first start and accepts the same key later', async () => {
    await start(db, { SECRETS_KEY });
    const { rows } = await db.pool.query('SELECT sealed FROM secrets_key_check');
    expect(rows).toHaveLength(1);
    expect(rows[0].sealed.toString('utf8')).not.toContain('postbox');
    await start(db, { SECRETS_KEY });
    const again = await startTestAppOn(db);
    expect((await again.request('GET', '/health', { key: null })).status).toBe(200);
    await again.close();
  });

  it('refuses a different SECRETS_KEY with one line naming it', async () => {
    const err = await refusal(start(db, { SECRETS_KEY: OTHER_KEY }));
    expect(err.variable).toBe('SECRETS_KEY');
    expect(err.message).toMatch(ONE_LINE);
    expect(err.message).not.toContain('\n');
    expect(err.message).not.toContain(OTHER_KEY);
  });

  it('refuses a missing SECRETS_KEY (a new key generated into an empty DATA_DIR)', async () => {
    const err = await refusal(start(db, {}));
    expect(err.message).toMatch(ONE_LINE);
  });

  it('judges a database from before the check by its webhook secrets', async () => {
    const legacy = await createTestDatabase();
    try {
      const tenant = await sqlTenant(legacy.pool);
      await sqlWebhook(legacy.pool, tenant.id); // sealed with the test SECRETS_KEY
      expect((await refusal(start(legacy, { SECRETS_KEY: OTHER_KEY }))).message).toMatch(ONE_LINE);
      expect((await legacy.pool.query('SELECT 1 FROM secrets_key_check')).rowCount).toBe(0);
      await start(legacy, { SECRETS_KEY });
      expect((await legacy.pool.query('SELECT 1 FROM secrets_key_check')).rowCount).toBe(1);
    } finally {
      await legacy.drop();
    }
  });

  it('stops the process with exit code 2 and that one line on stderr', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      env: {
        PATH: process.env.PATH,
        DATABASE_URL: db.url,
        DATA_DIR: dataDir(),
        ADMIN_API_KEY: ADMIN_KEY,
        SECRETS_KEY: OTHER_KEY,
        POSTBOX_ROLE: 'api',
        PORT: '0',
        LOG_LEVEL: 'error',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.stdout.resume();
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    expect(code).toBe(2);
    const lines = stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(ONE_LINE);
  }, 60_000);
});
