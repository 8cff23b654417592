/** Run only by test/structure/leak-check.test.ts: the same handles as leaky.fixture.ts, all closed. */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:http';
import { expect, it } from '@jest/globals';
import pg from 'pg';

it('opens a server, a child process, a pool and a client, and closes them all', async () => {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  await new Promise((resolve) => server.close(resolve));
  const child = spawn('sleep', ['60'], { stdio: 'ignore' });
  child.kill();
  await once(child, 'exit');
  const url = process.env.POSTBOX_TEST_ADMIN_URL;
  const pool = new pg.Pool({ connectionString: url });
  await pool.query('SELECT 1');
  await pool.end();
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.end();
  expect(true).toBe(true);
});
