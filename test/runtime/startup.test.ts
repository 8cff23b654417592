/**
 * Start-up as a person and an orchestrator see it: a worker-only process still answers /health,
 * /ready and /metrics on PORT; in a terminal the first lines say where things are; piped, the output
 * is JSON lines only.
 */
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { freePort } from '../../src/db/embedded.js';
import { SECRETS_KEY } from '../helpers/app.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { rawRequest } from '../helpers/http.js';
import { killAllPostboxes, spawnPostbox } from '../helpers/processes.js';
import { waitFor } from '../helpers/wait.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await killAllPostboxes();
  await db.drop();
});

describe('a worker-only process', () => {
  it('serves /health, /ready and /metrics on PORT, and nothing else', async () => {
    const port = await freePort();
    const worker = await spawnPostbox(db.url, { env: { PORT: String(port) }, readyTimeoutMs: 120_000 });
    await worker.waitForLog((l) => l.message === 'listening' && l.port === port && l.role === 'worker');
    expect((await rawRequest({ port, path: '/health' })).json).toEqual({ status: 'ok' });
    expect((await rawRequest({ port, path: '/ready' })).json).toEqual({ status: 'ready' });
    const metrics = await rawRequest({ port, path: '/metrics' });
    expect(metrics.status).toBe(200);
    expect(metrics.text).toMatch(/^postbox_\w+/m);
    const api = await rawRequest({ port, path: '/webhooks', headers: { authorization: 'Bearer x' } });
    expect(api.status).toBe(404);
    expect(api.json.error.code).toBe('not_found');

    worker.signal('SIGTERM');
    expect((await worker.exited).code).toBe(0);
  }, 180_000);
});

describe('start-up output', () => {
  it('piped: JSON lines only', async () => {
    const proc = await spawnPostbox(db.url, {
      env: { POSTBOX_ROLE: 'all' },
      readyMessage: 'listening',
      readyTimeoutMs: 120_000,
    });
    const first = proc.tail(200).split('\n')[0]!;
    expect(() => JSON.parse(first)).not.toThrow();
    expect(proc.logs.every((l) => typeof l.level === 'string')).toBe(true);
    proc.signal('SIGTERM');
    await proc.exited;
  }, 180_000);

  it('in a terminal: the first lines say where the API, the console and the admin key are', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'postbox-tty-'));
    chmodSync(dataDir, 0o755);
    const port = await freePort();
    // script(1) gives the process a pseudo-terminal as its stdout, as an interactive shell would.
    const child = spawn('script', ['-qfec', `${process.execPath} --import tsx src/main.ts`, '/dev/null'], {
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: dataDir,
        DATABASE_URL: db.url,
        DATA_DIR: dataDir,
        PORT: String(port),
        SECRETS_KEY, // the key this database's other processes use
        LOG_LEVEL: 'warn',
      },
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true,
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (out += c.toString('utf8')));
    const exited = new Promise((resolve) => child.on('exit', resolve));
    try {
      await waitFor(() => out.includes('Postbox is ready') || child.exitCode !== null, {
        timeoutMs: 120_000,
        what: 'the ready line',
      }).catch((err: Error) => Promise.reject(new Error(`${err.message}; output:\n${out}`)));
      expect({ exit: child.exitCode, out }).toMatchObject({ exit: null });
      const lines = out.replace(/\r/g, '').split('\n');
      expect(lines[0]).toMatch(/^Postbox \S+ is starting \(POSTBOX_ROLE=all\)\.$/);
      expect(lines[1]).toBe(`  API:       http://localhost:${port}`);
      expect(lines[2]).toBe(`  Console:   http://localhost:${port}/console`);
      expect(lines[3]).toBe(`  Admin key: in ${join(dataDir, 'admin-api-key')} (created on the first start)`);
      expect(out).toContain(`Postbox is ready: API on http://localhost:${port}`);
    } finally {
      if (child.exitCode === null) process.kill(-child.pid!, 'SIGTERM');
      await exited;
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 180_000);
});
