/**
 * When the embedded PostgreSQL cannot start, the error names the directory and the fix instead of the
 * package's bare "init script failed".
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import { closedAncestor, startEmbeddedPostgres } from '../../src/db/embedded.js';

const made: string[] = [];
afterAll(() => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
});

/** mkdtemp makes 0700 folders: the case that trips root's embedded server. */
function tempDir(mode: number): string {
  const dir = mkdtempSync(join(tmpdir(), 'postbox-embedded-err-'));
  chmodSync(dir, mode);
  made.push(dir);
  return dir;
}

describe('closedAncestor', () => {
  it('finds the directory others cannot enter, nearest the root first', () => {
    const outer = tempDir(0o700);
    mkdirSync(join(outer, 'inner', 'data'), { recursive: true, mode: 0o700 });
    expect(closedAncestor(join(outer, 'inner', 'data', 'pg'))).toBe(outer);
    chmodSync(outer, 0o755);
    expect(closedAncestor(join(outer, 'inner', 'data', 'pg'))).toBe(join(outer, 'inner'));
    chmodSync(join(outer, 'inner'), 0o755);
    chmodSync(join(outer, 'inner', 'data'), 0o755);
    expect(closedAncestor(join(outer, 'inner', 'data', 'pg'))).toBeUndefined();
  });
});

describe('startEmbeddedPostgres', () => {
  const asRoot = process.getuid?.() === 0;

  it(
    asRoot
      ? 'as root, under a 0700 folder: refuses with the folder and the fix named'
      : 'as a normal user, under its own 0700 folder: starts as that user (no postgres user needed)',
    async () => {
      const closed = tempDir(0o700);
      const start = startEmbeddedPostgres(join(closed, 'data'));
      if (asRoot) {
        await expect(start).rejects.toThrow(closed);
        await expect(start).rejects.toThrow(/Move DATA_DIR .* or set DATABASE_URL/);
      } else {
        const db = await start;
        await db.stop();
      }
    },
    60_000,
  );

  it('a data directory the server rejects: the error names it and the server says why', async () => {
    const dataDir = tempDir(0o755);
    const pgDir = join(dataDir, 'pg');
    mkdirSync(pgDir, { mode: 0o700 });
    // Looks initialised, so no initdb runs; the server then refuses the folder.
    writeFileSync(join(pgDir, 'PG_VERSION'), '17\n');
    if (asRoot) chmodSync(pgDir, 0o777); // PostgreSQL refuses a data directory open to others
    const err = (await startEmbeddedPostgres(dataDir).catch((e: unknown) => e)) as Error;
    expect(err).toBeInstanceOf(Error);
    expect(err.message).toContain(`could not start in ${pgDir}`);
    expect(err.message).toContain('DATABASE_URL');
    expect(err.message).toMatch(/FATAL|permission|postgresql\.conf|invalid/i);
  }, 60_000);
});
