/**
 * The backup docs/deployment.md gives for the embedded database: stop Postbox, copy DATA_DIR (the
 * cluster under pg/ and the keys beside it), and a Postbox started on the copy in a fresh place
 * serves the same data with the same keys. (The embedded package ships no pg_dump; see the docs.)
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from '@jest/globals';
import { loadConfig } from '../../src/config.js';
import { silentLogger } from '../../src/logger.js';
import { startPostbox } from '../../src/runtime/postbox.js';

const dirs: string[] = [];
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'postbox-backup-'));
  chmodSync(d, 0o755); // the embedded server's user must be able to enter it when run as root
  dirs.push(d);
  return d;
};
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const config = (dataDir: string) =>
  loadConfig({ DATA_DIR: dataDir, POSTBOX_ROLE: 'api', LOG_LEVEL: 'error' });

it('a stopped-server copy of DATA_DIR restores into a fresh directory with its data and keys', async () => {
  const original = tempDir();
  const first = await startPostbox(config(original), silentLogger());
  await first.pool.query(
    `INSERT INTO tenants (id, name) VALUES ('0190b6a4-3f1e-7c3a-9d2e-0000000000b1', 'backed-up')`,
  );
  await first.stop();

  const restored = join(tempDir(), 'restored');
  execFileSync('cp', ['-a', original, restored]); // -a: owners and modes too, as PostgreSQL requires
  rmSync(original, { recursive: true, force: true }); // the original is gone: only the copy remains

  const second = await startPostbox(config(restored), silentLogger());
  try {
    const { rows } = await second.pool.query('SELECT name FROM tenants WHERE id = $1', [
      '0190b6a4-3f1e-7c3a-9d2e-0000000000b1',
    ]);
    expect(rows).toEqual([{ name: 'backed-up' }]);
    expect(readFileSync(join(restored, 'admin-api-key'), 'utf8')).toMatch(/^pbadmin_/);
  } finally {
    await second.stop();
  }
}, 120_000);
