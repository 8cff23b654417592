/**
 * A database that goes away or refuses mid-request costs producers a 503 with Retry-After, never a
 * 500: through a proxy that resets every connection (as a restart or a network cut does), and with
 * the quota statement (the first statement of POST /events) cancelled or terminated by PostgreSQL.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import pg from 'pg';
import { startTestAppOn, type TestApp } from '../helpers/app.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';
import { waitFor } from '../helpers/wait.js';

let db: TestDatabase;
let proxy: TcpProxy;
let app: TestApp;
let tenantId: string;
beforeAll(async () => {
  db = await createTestDatabase();
  proxy = await startTcpProxy(db.url);
  app = await startTestAppOn(db, { DATABASE_URL: proxy.url });
  tenantId = (await app.createTenant('outage')).id;
});
afterAll(async () => {
  await app.close();
  await proxy.close();
  await db.drop();
});

const postEvent = () =>
  app.request('POST', '/events', { body: { type: 'order.created', payload: {}, tenant_id: tenantId } });

function expectRetryLater(res: { status: number; headers: Headers; body: any }) {
  expect(res.status).toBe(503);
  expect(res.body.error.code).toBe('unavailable');
  expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
}

describe('connections reset', () => {
  it('POST /events and reads answer 503 with Retry-After, then recover', async () => {
    proxy.reset();
    try {
      for (let i = 0; i < 5; i++) expectRetryLater(await postEvent());
      expectRetryLater(await app.request('GET', '/events'));
      expectRetryLater(await app.request('POST', '/tenants', { body: { name: 'x' } }));
    } finally {
      proxy.pass();
    }
    expect((await postEvent()).status).toBe(202);
  });
});

/**
 * Holds rate_windows locked so the quota statement waits, then acts on the waiting backend with
 * `fn` (pg_cancel_backend: 57014, pg_terminate_backend: 57P01).
 */
async function whileQuotaStatementWaits(fn: 'pg_cancel_backend' | 'pg_terminate_backend') {
  const locker = new pg.Client({ connectionString: db.url });
  await locker.connect();
  try {
    await locker.query('BEGIN');
    await locker.query('LOCK TABLE rate_windows IN ACCESS EXCLUSIVE MODE');
    const answer = postEvent();
    const pid = await waitFor(
      async () => {
        const { rows } = await locker.query(
          `SELECT pid FROM pg_stat_activity
            WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()`,
        );
        return rows[0]?.pid as number | undefined;
      },
      { what: 'the quota statement to wait on the lock' },
    );
    await locker.query(`SELECT ${fn}($1)`, [pid]);
    const res = await answer;
    await locker.query('ROLLBACK');
    return res;
  } finally {
    await locker.end();
  }
}

describe('the quota statement fails', () => {
  it('cancelled (57014): 503 with Retry-After', async () => {
    expectRetryLater(await whileQuotaStatementWaits('pg_cancel_backend'));
    expect((await postEvent()).status).toBe(202);
  });

  it('its connection terminated (57P01): 503 with Retry-After', async () => {
    expectRetryLater(await whileQuotaStatementWaits('pg_terminate_backend'));
    expect((await postEvent()).status).toBe(202);
  });
});
