/** Run only by test/structure/leak-check.test.ts: a file that leaves one of everything open. */
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { expect, it } from '@jest/globals';
import pg from 'pg';

it('opens a server, a child process, a pool and a client, and closes none', async () => {
  await new Promise<void>((resolve) => createServer().listen(0, '127.0.0.1', resolve));
  spawn('sleep', ['60'], { stdio: 'ignore' });
  const url = process.env.POSTBOX_TEST_ADMIN_URL;
  const pool = new pg.Pool({ connectionString: url });
  await pool.query('SELECT 1');
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  expect(true).toBe(true);
});
